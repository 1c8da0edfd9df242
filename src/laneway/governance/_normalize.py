"""The normalised copy of a text that the detectors read, and the map back to the original.

People write sensitive values in everyday forms a pattern over the raw text misses:
full-width or Arabic-Indic digits (``５３６``, ``٥٣٦``), a zero-width space or soft hyphen
inside an e-mail address, an en dash between digit groups, ``alice%40example.com`` in a
URL. :func:`normalize` returns a copy where each of these is in its plain form:

* every non-ASCII character goes through NFKC (full-width forms, ligatures, the
  compatibility spaces ``U+00A0`` / ``U+202F`` / ``U+3000`` become their plain form),
  one character at a time so that each output character maps back to one input
  character (a combining sequence is not composed: the detectors match ASCII shapes);
* format characters (Unicode category ``Cf``: zero-width spaces and joiners, the soft
  hyphen, bidi marks, the byte-order mark) are removed;
* every Unicode decimal digit (category ``Nd``) becomes its ASCII digit, every dash
  (category ``Pd``: ``‐ ‑ – — －``) an ASCII ``-``;
* each run of ``%XX`` escapes is percent-decoded (as UTF-8; once: ``%2540`` stays ``%40``);
* each numeric HTML character reference (``&#64;``, ``&#x40;``: e-mail addresses on web
  pages are often written so, and a model reads them as the character) is decoded.

ASCII text without ``%`` or ``&#`` (the usual request) is returned as it is: :func:`normalize`
costs two C-level passes over it and builds nothing. Other text is translated in C
(:meth:`str.translate` over a memo of the characters seen); a copy of the same length
needs no map. Otherwise the copy carries an :class:`OffsetMap` so that a finding in the
copy maps to the original characters (a redaction replaces what the client sent,
zero-width characters and escapes included): removed characters are mapped in bulk (their
positions, bisected), expansions one by one, at most :data:`MAX_EXPANSIONS` per text
(past it :func:`normalize` raises ``ValueError``: the scanner records a detector error and
the request is treated as sensitive, fail closed).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from html import unescape
from urllib.parse import unquote

__all__ = ["MAX_EXPANSIONS", "OffsetMap", "normalize"]

_ESCAPES = (
    r"%[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*"  # a run of percent-escapes
    r"|&#[0-9]{1,7};|&#[xX][0-9A-Fa-f]{1,6};"  # an HTML character reference: &#64; &#x40;
)
_MEMO_MAX = 65_536  # characters remembered by the translation table
MAX_EXPANSIONS = 50_000  # escape runs and expanding characters mapped in one text


class OffsetMap:
    """From the normalised copy back to the original: removed characters by position
    (``drops``), then segments of the copy and the span each came from. An *exact*
    segment maps character for character; another (a decoded escape run, a character
    NFKC expanded) maps as a whole."""

    __slots__ = ("_drops", "_exact", "_norm", "_orig_end", "_orig_start")

    def __init__(self, drops: list[int]) -> None:
        # drops[k]: where the k-th removed character sat, in the text without removals
        self._drops = drops
        self._norm: list[int] = []  # segment starts in the copy (empty: the identity)
        self._orig_start: list[int] = []  # in the text without removals
        self._orig_end: list[int] = []
        self._exact: list[bool] = []

    def _add(self, norm: int, start: int, end: int, exact: bool) -> None:
        if (
            exact
            and self._exact
            and self._exact[-1]
            and self._orig_end[-1] == start
            and self._norm[-1] + (self._orig_end[-1] - self._orig_start[-1]) == norm
        ):
            self._orig_end[-1] = end  # extends the previous exact segment
            return
        self._norm.append(norm)
        self._orig_start.append(start)
        self._orig_end.append(end)
        self._exact.append(exact)

    def original(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that ``[start, end)`` of the copy came from
        (widened to whole escapes / expanded characters; removed characters inside kept)."""
        if self._norm:
            i = bisect_right(self._norm, start) - 1
            first = self._orig_start[i] + (start - self._norm[i] if self._exact[i] else 0)
            j = bisect_right(self._norm, max(start, end - 1)) - 1
            exact = self._exact[j]
            end = self._orig_start[j] + end - self._norm[j] if exact else self._orig_end[j]
            start = first
        drops = self._drops
        if not drops:
            return start, max(start, end)
        first = start + bisect_right(drops, start)
        last = max(start, end - 1)
        return first, max(first, last + bisect_right(drops, last) + 1)


def _char(ch: str) -> str:
    """The normalised form of one non-ASCII character."""
    category = unicodedata.category(ch)
    if category == "Cf":
        return ""
    if category == "Nd":
        return chr(48 + unicodedata.decimal(ch))
    if category == "Pd":
        return "-"
    out = unicodedata.normalize("NFKC", ch)
    if out.isascii():
        return out
    return "".join(_char(c) if c != ch and not c.isascii() else c for c in out)


def _char_class(chars: frozenset[str]) -> str:
    return "[" + "".join(re.escape(c) for c in sorted(chars)) + "]"


class _Table(dict[int, str]):
    """``ord(ch) -> normalised ch`` for :meth:`str.translate`, filled the first time a
    character is seen (a bounded memo: translation runs in C for every character seen
    before). It also learns the characters that do not map to one character: removed
    ones (``drop``: format characters) and expanding ones (``expand``: ligatures,
    ``½``), at most a few thousand in all of Unicode."""

    def __init__(self) -> None:
        super().__init__({i: chr(i) for i in range(128)})
        self.irregular = re.compile(_ESCAPES)  # escape runs, removed or expanding chars
        self.drop: re.Pattern[str] | None = None
        self.expand = re.compile(_ESCAPES)
        self._drops: frozenset[str] = frozenset()
        self._expands: frozenset[str] = frozenset()

    def __missing__(self, key: int) -> str:
        ch = chr(key)
        out = _char(ch)
        if len(self) < _MEMO_MAX:
            self[key] = out
        if not out and ch not in self._drops:
            self._drops |= {ch}
            self.drop = re.compile(_char_class(self._drops))
        elif len(out) > 1 and ch not in self._expands:
            self._expands |= {ch}
            self.expand = re.compile(f"{_ESCAPES}|{_char_class(self._expands)}")
        if len(out) != 1:
            both = self._drops | self._expands
            self.irregular = re.compile(f"{_ESCAPES}|{_char_class(both)}")
        return out


_TABLE = _Table()


def normalize(text: str) -> tuple[str, OffsetMap | None]:
    """The detectors' copy of ``text`` and the map back to it (``None``: the copy has
    the same length and maps character for character, or is ``text`` itself)."""
    if text.isascii() and "%" not in text and "&#" not in text:
        return text, None
    table = _TABLE
    copy = text.translate(table)  # also learns the irregular characters of ``text``
    if table.irregular.search(text) is None:
        return (text if copy == text else copy), None
    drops: list[int] = []
    kept = text  # without the removed characters
    if table.drop is not None:
        drops = [m.start() - k for k, m in enumerate(table.drop.finditer(text))]
        if drops:
            kept = table.drop.sub("", text)
            if not kept:  # nothing but format characters
                return "", None
    offsets = OffsetMap(drops)
    if table.expand.search(kept) is None:
        return kept.translate(table), offsets
    pieces: list[str] = []
    pos = 0  # in kept
    size = 0  # of the copy so far
    for n, m in enumerate(table.expand.finditer(kept)):
        if n >= MAX_EXPANSIONS:
            raise ValueError(f"more than {MAX_EXPANSIONS} escapes or expansions in one text")
        start, end = m.span()
        if start > pos:
            pieces.append(kept[pos:start].translate(table))
            offsets._add(size, pos, start, True)
            size += start - pos
        run = m.group()
        if run[0] == "%":
            out = unquote(run, errors="replace")
        elif run[0] == "&":
            out = unescape(run)
        else:
            out = run
        out = out.translate(table)
        if out:
            pieces.append(out)
            offsets._add(size, start, end, False)
            size += len(out)
        pos = end
    if pos < len(kept):
        pieces.append(kept[pos:].translate(table))
        offsets._add(size, pos, len(kept), True)
    if not pieces:
        return "", None
    return "".join(pieces), offsets
