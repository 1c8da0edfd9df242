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
* each run of ``%XX`` escapes is percent-decoded (as UTF-8; once: ``%2540`` stays ``%40``).

ASCII text without ``%`` (the usual request) is returned as it is: :func:`normalize`
costs two C-level passes over it and builds nothing. Otherwise the copy carries an
:class:`OffsetMap` so that a finding in the copy maps to the original characters
(a redaction replaces what the client sent, zero-width characters and escapes included).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from functools import lru_cache
from urllib.parse import unquote

__all__ = ["OffsetMap", "normalize"]

_SPECIAL = re.compile(r"[^\x00-\x7f]+|%[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*")


class OffsetMap:
    """Segments of the normalised text and the original span each came from. An
    *exact* segment maps character for character; another (a decoded escape run, a
    character NFKC expanded) maps as a whole."""

    __slots__ = ("_exact", "_norm", "_orig_end", "_orig_start")

    def __init__(self) -> None:
        self._norm: list[int] = []  # start of each segment in the normalised text
        self._orig_start: list[int] = []
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
        (widened to whole escapes / expanded characters; format characters inside kept)."""
        i = bisect_right(self._norm, start) - 1
        if self._exact[i]:
            first = self._orig_start[i] + start - self._norm[i]
        else:
            first = self._orig_start[i]
        j = bisect_right(self._norm, max(start, end - 1)) - 1
        last = self._orig_start[j] + end - self._norm[j] if self._exact[j] else self._orig_end[j]
        return first, max(first, last)


@lru_cache(maxsize=4096)
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


def _chars(text: str) -> str:
    return "".join([_char(c) if not c.isascii() else c for c in text])


def normalize(text: str) -> tuple[str, OffsetMap | None]:
    """The detectors' copy of ``text`` and the map back to it (``None``: the copy is
    ``text`` itself)."""
    if text.isascii() and "%" not in text:
        return text, None
    pieces: list[str] = []
    offsets = OffsetMap()
    pos = 0  # in text
    size = 0  # of the copy so far
    for m in _SPECIAL.finditer(text):
        run = m.group()
        if run[0] == "%":
            decoded: str | None = _chars(unquote(run, errors="replace"))
        else:
            decoded = None
            if "".join(map(_char, run)) == run:
                continue  # unchanged (plain letters of any script): copied with the gap
        start, end = m.span()
        if start > pos:
            pieces.append(text[pos:start])
            offsets._add(size, pos, start, True)
            size += start - pos
        if decoded is not None:
            if decoded:
                pieces.append(decoded)
                offsets._add(size, start, end, False)
                size += len(decoded)
        else:
            for i, ch in enumerate(run):
                out = _char(ch)
                if out:
                    pieces.append(out)
                    offsets._add(size, start + i, start + i + 1, len(out) == 1)
                    size += len(out)
        pos = end
    if not pieces and pos == 0:
        return text, None
    if pos < len(text):
        pieces.append(text[pos:])
        offsets._add(size, pos, len(text), True)
    if not pieces:  # nothing but format characters
        return "", None
    return "".join(pieces), offsets
