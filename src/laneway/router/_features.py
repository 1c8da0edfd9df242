"""Feature extraction: structural signals and the static sentence embedding.

Structural signals are chosen to mean the same thing in exam questions, chat, code
and writing requests: size of the conversation, numbers and units, mathematical
notation, code, constraints on the answer, multi-step wording, enumerations.
Every signal is bounded (log counts, fractions) so that prompts far outside the
training distribution (a 50 kB code file) cannot push the score off the scale.

The embedding is model2vec-style: the mean of per-token vectors distilled from
all-MiniLM-L6-v2, over the system prompt (down-weighted) and the last user turn.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from laneway.router._conversation import Conversation
from laneway.router._tokenizer import WordPieceTokenizer

__all__ = ["STRUCTURAL_NAMES", "StaticEmbedder", "structural_features"]

# Keyword patterns open with a look-ahead on the first letters of their words: the same
# matches, found 1.3-3x faster (the engine skips positions that cannot start one).
_SCAN_HEAD = 1500
_SCAN_TAIL = 500
_NUMBER = re.compile(r"(?=[-+\d])(?<![A-Za-z])[-+]?\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?")
_UNIT = re.compile(
    r"\d\s*(?:%|°|kg|g|mg|m|cm|mm|km|nm|s|ms|min|h|hz|khz|mhz|ghz|j|kj|ev|w|kw|v|a|ma|"
    r"mol|l|ml|n|pa|kpa|atm|k|ohm|Ω|\$|usd|ft|in|lb|mph|bits?|bytes?|kb|mb|gb)\b",
)
_MATH = re.compile(
    r"(?=[=<>^√∫∑∏π±×÷≤≥≠∞∂∆\\*sctl])"
    r"(?:[=<>^√∫∑∏π±×÷≤≥≠∞∂∆]|\\frac|\\sqrt|\\int|\\sum|\*\*|\b(?:sin|cos|tan|log|ln)\b)"
)
_LATEX = re.compile(r"\$[^$]+\$|\\\(|\\\[|\\begin\{")
_CODE = re.compile(
    r"```|^\s*(?:def|class|import|from|return|for|while|if|function|const|let|var|public|"
    r"private|#include|SELECT|fn|package)\b|[;{}][ \t]*$|=>|->|::|\)[ \t]*[:{][ \t]*$",
    re.MULTILINE,
)
_MULTI_STEP = re.compile(
    r"(?=[acdefhijnopst])"
    r"\b(?:step|steps|then|first|second|finally|next|calculate|compute|determine|derive|"
    r"prove|show that|estimate|solve|evaluate|how many|how much|find the|explain why|"
    r"analy[sz]e|compare|justify|optimi[sz]e|design|implement|debug)\b",
)
_CONSTRAINT = re.compile(
    r"(?=[abdefjlmnoprstwy])"
    r"\b(?:must|exactly|at least|at most|no more than|no less than|only|do not|don't|never|"
    r"always|without|format|json|yaml|table|bullet|words|sentences|paragraphs|limit|"
    r"ensure|should|require[sd]?)\b",
)
_NEGATION = re.compile(r"(?=[efiln])\b(?:not|except|least|false|incorrect|neither|nor)\b")
_WRITING = re.compile(
    r"(?=[delprstw])\b(?:write|essay|story|poem|email|letter|summari[sz]e|rewrite|translate|paraphrase|"
    r"draft|describe|list)\b",
)
_CHAT = re.compile(
    r"(?=[fghlnprst])\b(?:hi|hello|hey|thanks|thank you|lol|please|good (?:morning|night|evening)|"
    r"how are you|recommend|suggest|favou?rite|fun|nice)\b",
)
_HARD = re.compile(
    r"(?=[acdefgijlprt])\b(?:prove|proof|theorem|lemma|invariants?|rigorous\w*|formal(?:ly)?|complexity|"
    r"asymptotic|amortized|linearizab\w*|lock-free|concurren\w*|distributed|partitions?|"
    r"derive|derivation|edge cases|trade-?offs?|failure modes?|critically|generali[sz]e|"
    r"justify|counterexample)\b",
)
_FIRST_PERSON = re.compile(r"(?=[imow])\b(?:i|i'm|i've|my|me|we|our)\b")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)]|\(?[a-z]\))\s+", re.MULTILINE)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")

STRUCTURAL_NAMES: tuple[str, ...] = (
    "log_conversation_chars",
    "log_user_words",
    "mean_word_len",
    "digit_frac",
    "log_numbers",
    "log_units",
    "log_math",
    "latex",
    "log_code",
    "log_questions",
    "log_multi_step",
    "log_constraints",
    "log_negations",
    "log_writing",
    "log_list_items",
    "log_lines",
    "log_sentences",
    "upper_frac",
    "log_system_chars",
    "log_earlier_turns",
    "non_text_parts",
    "log_chat",
    "log_hard_terms",
    "log_first_person",
)


def _log_count(pattern: re.Pattern[str], text: str) -> float:
    return math.log1p(len(pattern.findall(text)))


def structural_features(conv: Conversation) -> list[float]:
    """The bounded structural signals, in ``STRUCTURAL_NAMES`` order."""
    user = conv.last_user
    if len(user) > _SCAN_HEAD + _SCAN_TAIL:
        user = user[:_SCAN_HEAD] + "\n" + user[-_SCAN_TAIL:]
    text = conv.system[:_SCAN_HEAD] + "\n" + user if conv.system else user
    lower = text.lower()
    n = max(len(text), 1)
    words = conv.last_user.split()
    n_words = len(words)
    return [
        math.log1p(conv.total_chars),
        math.log1p(n_words),
        min(sum(map(len, words)) / max(n_words, 1), 20.0) / 10.0,
        sum(map(str.isdigit, text)) / n,
        _log_count(_NUMBER, text),
        _log_count(_UNIT, lower),
        _log_count(_MATH, text),
        1.0 if _LATEX.search(text) else 0.0,
        _log_count(_CODE, text),
        math.log1p(text.count("?")),
        _log_count(_MULTI_STEP, lower),
        _log_count(_CONSTRAINT, lower),
        _log_count(_NEGATION, lower),
        _log_count(_WRITING, lower),
        _log_count(_LIST_ITEM, text),
        math.log1p(text.count("\n")),
        _log_count(_SENTENCE_END, text),
        sum(map(str.isupper, text)) / n,
        math.log1p(len(conv.system)),
        math.log1p(conv.earlier_turns),
        min(conv.non_text_parts, 4) / 4.0,
        _log_count(_CHAT, lower),
        _log_count(_HARD, lower),
        _log_count(_FIRST_PERSON, lower),
    ]


class StaticEmbedder:
    """Mean of distilled token vectors, L2-normalised; ``dim`` floats per text."""

    __slots__ = ("_table", "_tokenizer", "max_tokens")

    def __init__(
        self,
        tokenizer: WordPieceTokenizer,
        table: npt.NDArray[np.floating],
        max_tokens: int = 256,
    ) -> None:
        if table.shape[0] != tokenizer.size:
            raise ValueError("embedding table rows differ from the vocabulary size")
        self._tokenizer = tokenizer
        self._table = np.ascontiguousarray(table, dtype=np.float32)
        self.max_tokens = max_tokens

    @property
    def dim(self) -> int:
        return int(self._table.shape[1])

    def ids(self, conv: Conversation) -> list[int]:
        """Token ids embedded: up to a quarter of the budget from the system prompt."""
        user = self._tokenizer.encode(conv.last_user, self.max_tokens)
        if not conv.system:
            return user
        system = self._tokenizer.encode(conv.system, self.max_tokens // 4)
        return user + system

    def embed(self, conv: Conversation) -> npt.NDArray[np.float32]:
        return self.embed_ids(self.ids(conv))

    def embed_ids(self, ids: Sequence[int]) -> npt.NDArray[np.float32]:
        if not ids:
            return np.zeros(self.dim, dtype=np.float32)
        vec = self._table[np.asarray(ids, dtype=np.intp)].mean(axis=0)
        norm = float(np.linalg.norm(vec))
        result: npt.NDArray[np.float32] = (vec / norm if norm > 0 else vec).astype(np.float32)
        return result
