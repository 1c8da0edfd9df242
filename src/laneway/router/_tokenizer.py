"""A pure-Python BERT WordPiece tokenizer (uncased), matching ``BertTokenizer``.

It reproduces the Hugging Face ``BasicTokenizer`` + ``WordpieceTokenizer`` pair that
all-MiniLM-L6-v2 uses (lower-casing, accent stripping, CJK splitting, punctuation
splitting, greedy longest-match-first sub-words, ``[UNK]`` for words over 100
characters or with no match), so ids index the distilled static-embedding table.
ASCII text, by far the commonest, takes a regex fast path with the same result.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

__all__ = ["WordPieceTokenizer"]

_ASCII_TOKEN = re.compile(r"[a-z0-9]+|[!-/:-@\[-`{-~]")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAX_WORD_CHARS = 100
_CACHE_LIMIT = 50_000


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _basic_unicode(text: str) -> list[str]:
    """The general ``BasicTokenizer`` path for text with non-ASCII characters."""
    text = unicodedata.normalize("NFC", text)
    out: list[str] = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD:
            continue
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif unicodedata.category(ch).startswith("C"):
            continue
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    words: list[str] = []
    for raw in "".join(out).split():
        # per character, as the Rust tokenizer does (no context-sensitive final sigma)
        token = unicodedata.normalize("NFD", "".join(c.lower() for c in raw))
        token = "".join(c for c in token if unicodedata.category(c) != "Mn")
        current: list[str] = []
        for ch in token:
            if _is_punctuation(ch):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(ch)
            else:
                current.append(ch)
        if current:
            words.append("".join(current))
    return words


class WordPieceTokenizer:
    """Text → WordPiece ids (no ``[CLS]``/``[SEP]``); per-instance word cache."""

    __slots__ = ("_cache", "_unk", "_vocab")

    def __init__(self, vocab: Sequence[str], unk_token: str = "[UNK]") -> None:  # noqa: S107
        self._vocab = {tok: i for i, tok in enumerate(vocab)}
        self._unk = self._vocab[unk_token]
        self._cache: dict[str, tuple[int, ...]] = {}

    @property
    def size(self) -> int:
        return len(self._vocab)

    def basic_tokens(self, text: str) -> list[str]:
        """The words and punctuation marks the basic tokenizer produces."""
        if text.isascii():
            return _ASCII_TOKEN.findall(_ASCII_CONTROL.sub("", text).lower())
        return _basic_unicode(text)

    def encode(self, text: str, max_tokens: int | None = None) -> list[int]:
        """WordPiece ids of ``text``, stopping after ``max_tokens`` ids when given."""
        ids: list[int] = []
        for word in self.basic_tokens(text):
            pieces = self._cache.get(word)
            if pieces is None:
                pieces = self._wordpiece(word)
                if len(self._cache) < _CACHE_LIMIT:
                    self._cache[word] = pieces
            ids.extend(pieces)
            if max_tokens is not None and len(ids) >= max_tokens:
                return ids[:max_tokens]
        return ids

    def _wordpiece(self, word: str) -> tuple[int, ...]:
        whole = self._vocab.get(word)
        if whole is not None:
            return (whole,)
        if len(word) > _MAX_WORD_CHARS:
            return (self._unk,)
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found: int | None = None
            while start < end:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                found = self._vocab.get(sub)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return (self._unk,)
            pieces.append(found)
            start = end
        return tuple(pieces)
