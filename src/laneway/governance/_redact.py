"""Redaction: typed placeholders before an external call, restored in the answer.

Every detected value becomes ``[KIND_n]`` (``[EMAIL_1]``, ``[PAYMENT_CARD_2]``); the same
value gets the same placeholder everywhere in the request (message content, multi-part
text parts, tool results and tool-call arguments, whose JSON is parsed, redacted leaf by
leaf and re-serialised so it stays valid). :meth:`Redaction.restore` puts back only the
placeholders Laneway issued; a placeholder the model invents stays as it is. Values are
held in memory for the one request and never appear in a ``repr``.

If a detector raised while redacting, :attr:`Redaction.errors` names it: the redaction may
be incomplete and the caller must not send the request to an external model (fail closed).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from laneway.governance._scan import Finding, Scanner, leaf_prefix
from laneway.providers._types import ChatRequest, ContentPart, Message, ToolCall

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
    return _apply(text, [f for f in findings if f.start >= skip], redaction)[skip:]


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


def _redact_json(value: Any, scanner: Scanner, redaction: Redaction, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _redact_json(item, scanner, redaction, str(k)) for k, item in value.items()}
    if isinstance(value, list):
        return [_redact_json(item, scanner, redaction, key) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str | int | float):
        prefix = leaf_prefix(key)
        text = str(value)
        redacted = _redact_text(prefix + text, scanner, redaction, len(prefix))
        return value if redacted == text else redacted
    return value


def _redact_arguments(arguments: str, scanner: Scanner, redaction: Redaction) -> str:
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return _redact_text(arguments, scanner, redaction)
    redacted = _redact_json(parsed, scanner, redaction)
    if redacted == parsed:
        return arguments
    return json.dumps(redacted, ensure_ascii=False)


def _redact_message(message: Message, scanner: Scanner, redaction: Redaction) -> Message:
    new: Message = {**message}
    content = message.get("content")
    if isinstance(content, str):
        new["content"] = _redact_text(content, scanner, redaction)
    elif isinstance(content, list):
        parts: list[ContentPart] = []
        for part in content:
            text = part.get("text")
            if isinstance(text, str):
                part = {**part, "text": _redact_text(text, scanner, redaction)}
            parts.append(part)
        new["content"] = parts
    calls = message.get("tool_calls")
    if calls:
        new_calls: list[ToolCall] = []
        for call in calls:
            fn = call["function"]
            args = _redact_arguments(fn["arguments"], scanner, redaction)
            new_calls.append({**call, "function": {**fn, "arguments": args}})
        new["tool_calls"] = new_calls
    return new


def redact_request(request: ChatRequest, scanner: Scanner) -> tuple[ChatRequest, Redaction]:
    """A copy of ``request`` with every finding replaced by a typed placeholder."""
    redaction = Redaction()
    messages = tuple(_redact_message(m, scanner, redaction) for m in request.messages)
    return replace(request, messages=messages), redaction


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
