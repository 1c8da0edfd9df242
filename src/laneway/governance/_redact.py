"""Redaction: typed placeholders before an external call, restored in the answer.

Every detected value becomes ``[KIND_n]`` (``[EMAIL_1]``, ``[PAYMENT_CARD_2]``); the same
value gets the same placeholder everywhere in the request. The texts redacted are the
ones the scanner reads, visited by the same walk (:func:`._sent.walk_request`): message
content and text parts, names and ids, tool-call arguments (parsed, redacted leaf by leaf
and re-serialised so they stay valid JSON), tool definitions, the response schema,
``stop``, ``user``, every pass-through option. A value is found in the normalised copy of
a text and the original characters are replaced (a zero-width space or a ``%40`` inside
goes with it). :meth:`Redaction.restore` puts back only the placeholders Laneway issued;
a placeholder the model invents stays as it is. Values are held in memory for the one
request and never appear in a ``repr``.

If a detector raised while redacting, a value sat in a ``data:`` URL (which cannot be
edited), or the redacted request still scans as sensitive (a value whose context spans
two texts), :attr:`Redaction.errors` says so: the caller must not send the request to an
external model (fail closed).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping

from laneway.governance._scan import Finding, Scanner
from laneway.governance._sent import walk_request
from laneway.providers import ChatRequest

__all__ = ["Redaction", "StreamRestorer", "redact_output", "redact_request"]

_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z0-9_]*_\d+\]")
_PARTIAL = re.compile(r"\[[A-Z0-9_]*$")


class Redaction:
    """The placeholders issued for one request and the values they stand for."""

    __slots__ = ("_by_value", "_counts", "_values", "errors")

    def __init__(self) -> None:
        self._values: dict[str, str] = {}  # placeholder -> value
        self._by_value: dict[tuple[str, str], str] = {}
        self._counts: Counter[str] = Counter()
        self.errors: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Redaction(count={self.count}, kinds={dict(self._counts)}, errors={self.errors})"

    @property
    def count(self) -> int:
        """Distinct values replaced."""
        return len(self._values)

    @property
    def counts(self) -> Mapping[str, int]:
        """Distinct values replaced, per kind."""
        return dict(self._counts)

    def placeholder(self, kind: str, value: str) -> str:
        key = (kind, value)
        found = self._by_value.get(key)
        if found is None:
            self._counts[kind] += 1
            found = f"[{kind.upper()}_{self._counts[kind]}]"
            self._by_value[key] = found
            self._values[found] = value
        return found

    def restore(self, text: str) -> str:
        """Put the original values back in place of the placeholders issued."""
        if not self._values or "[" not in text:
            return text
        return _PLACEHOLDER.sub(lambda m: self._values.get(m.group(), m.group()), text)

    def restore_json(self, text: str) -> str:
        """As :meth:`restore`, inside a JSON string (tool-call arguments): values escaped."""
        if not self._values or "[" not in text:
            return text
        return _PLACEHOLDER.sub(
            lambda m: (
                json.dumps(self._values[m.group()])[1:-1]
                if m.group() in self._values
                else m.group()
            ),
            text,
        )

    def stream_restorer(self, *, json_escape: bool = False) -> StreamRestorer:
        return StreamRestorer(self, json_escape=json_escape)


class StreamRestorer:
    """Restores placeholders in a stream of chunks; a chunk ending in what could be the
    start of a placeholder (``"… [EMA"``) is held back until the next chunk or flush."""

    __slots__ = ("_json", "_pending", "_redaction")

    def __init__(self, redaction: Redaction, *, json_escape: bool = False) -> None:
        self._redaction = redaction
        self._json = json_escape
        self._pending = ""

    def _restore(self, text: str) -> str:
        r = self._redaction
        return r.restore_json(text) if self._json else r.restore(text)

    def feed(self, chunk: str) -> str:
        text = self._pending + chunk
        self._pending = ""
        cut = text.rfind("[")
        if cut != -1 and len(text) - cut <= 48 and _PARTIAL.match(text, cut):
            self._pending = text[cut:]
            text = text[:cut]
        return self._restore(text)

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return self._restore(text)


def _redact_text(text: str, scanner: Scanner, redaction: Redaction, skip: int = 0) -> str:
    """Replace findings at or after offset ``skip`` (a scanned key prefix) in ``text``."""
    findings, errors = scanner.scan_text_checked(text)
    if errors:
        redaction.errors = tuple(dict.fromkeys(redaction.errors + errors))
    if skip:
        findings = [f for f in findings if f.start >= skip]
        return _apply(text, findings, redaction)[skip:] if findings else text[skip:]
    return _apply(text, findings, redaction)


def _apply(text: str, findings: list[Finding], redaction: Redaction) -> str:
    if not findings:
        return text
    out: list[str] = []
    pos = 0
    for f in findings:
        out.append(text[pos : f.start])
        out.append(redaction.placeholder(f.kind, text[f.start : f.end]))
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


class _Redact:
    """The redactor's visitor over :func:`walk_request`."""

    __slots__ = ("redaction", "scanner")

    def __init__(self, scanner: Scanner, redaction: Redaction) -> None:
        self.scanner = scanner
        self.redaction = redaction

    def text(self, position: str, prefix: str, text: str) -> str:
        if not prefix:
            return _redact_text(text, self.scanner, self.redaction)
        new = _redact_text(prefix + text, self.scanner, self.redaction, len(prefix))
        return text if new == text else new

    def encoded(self, position: str, text: str) -> None:
        findings, errors = self.scanner.scan_text_checked(text)
        if findings or errors:  # cannot be replaced in place: fail closed
            _fail(self.redaction, "data_url")


def _fail(redaction: Redaction, reason: str) -> None:
    redaction.errors = tuple(dict.fromkeys((*redaction.errors, reason)))


def redact_request(request: ChatRequest, scanner: Scanner) -> tuple[ChatRequest, Redaction]:
    """A copy of ``request`` with every finding replaced by a typed placeholder; the
    redacted copy is scanned again and anything left makes the redaction fail."""
    redaction = Redaction()
    redacted = walk_request(request, _Redact(scanner, redaction))
    if not redaction.errors and scanner.scan_request(redacted).sensitive:
        _fail(redaction, "residual")
    return redacted, redaction


def redact_output(text: str, scanner: Scanner) -> str:
    """Mask sensitive values in a model's answer (output scan with ``redact_output``) as
    ``[REDACTED_KIND]``; nothing is restorable."""
    findings = scanner.scan_text(text)
    out: list[str] = []
    pos = 0
    for f in findings:
        out += [text[pos : f.start], f"[REDACTED_{f.kind.upper()}]"]
        pos = f.end
    out.append(text[pos:])
    return "".join(out)
