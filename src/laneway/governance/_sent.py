"""Every text a request sends upstream, walked in one place for the scanner and the redactor.

The walk is derived from the request itself, not from a list of fields: every field of
:class:`~laneway.providers.ChatRequest` (``dataclasses.fields``) and every key and string
leaf below it is visited, so a field added to the request, an unknown pass-through option
(``metadata``, ``prediction``, ``logit_bias`` …) or a new key in a message is scanned
without a change here. The adapters send nothing else of the client's: the OpenAI adapter
forwards these values, the Anthropic adapter turns ``user`` into ``metadata.user_id``,
``stop`` into ``stop_sequences`` and the JSON schema into a tool, Gemini and the local
model the same texts under other names.

Not visited, on purpose (the whole list):

* ``ChatRequest.model``: never sent (each adapter sends its deployment's model id);
* the enumerations the server validates before the scan: a message's ``role`` and the
  ``type`` of a content part or a tool call (everywhere else a ``type`` value is
  scanned like any string: in a schema it could be anything);
* a field's own number or flag (``seed``, ``max_tokens``, ``temperature`` …: the server
  validated them as numbers), and inside free-form JSON numbers with fewer than six
  digits (no sensitive value is that short), booleans and null;
* the pixels of an image. A ``data:`` URL is not scanned as text (base64 is noise to a
  pattern and a megabyte of it would cost milliseconds). It is decoded instead: a payload
  that is not an image of its declared type (``data:text/plain;base64,…``, an "image"
  that is text) is scanned as the text it decodes to, and so is the text an image carries
  in its metadata (PNG text chunks, JPEG comments and EXIF/XMP segments, GIF comments,
  WebP EXIF/XMP).
  What is drawn in the pixels (a photo of a passport) is not read: no text detector can.
  A value found in a ``data:`` URL cannot be replaced by a placeholder, so ``action:
  redact`` fails closed for such a request (self-hosted only). ``http(s)`` image URLs
  are scanned as text (percent-decoded by the normaliser).

A value split across two adjacent text parts of one message (``"dana@"``,
``"example.org"``) is found too: the scanner's visitor gets each such seam
(``seam(position, before, after)``, an optional method) and reads the texts around it.

Positions (the audit's ``positions``): a message's text counts under its role
(``system``, ``user``, ``assistant``, ``tool_result``), tool calls under ``tool_call``,
``tools`` and ``tool_choice`` under ``tools``, ``response_format`` under ``schema``,
every other field (``stop``, ``user``, ``options`` …, new fields) under ``params``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields, replace
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Protocol

from laneway.governance._images import data_url_text
from laneway.providers import ChatRequest

__all__ = [
    "FIELD_POSITIONS",
    "NOT_SENT",
    "ROLE_POSITIONS",
    "Visitor",
    "leaf_prefix",
    "plain_texts",
    "unvisited_strings",
    "walk_request",
]

NOT_SENT = frozenset({"model"})
FIELD_POSITIONS = MappingProxyType(
    {"tools": "tools", "tool_choice": "tools", "response_format": "schema"}
)  # every other field: "params"
_ROLE_POSITIONS = {
    "system": "system",
    "developer": "system",
    "tool": "tool_result",
    "function": "tool_result",
    "user": "user",
    "assistant": "assistant",
}
ROLE_POSITIONS = MappingProxyType(_ROLE_POSITIONS)
_FIELDS = tuple(f.name for f in fields(ChatRequest) if f.name not in NOT_SENT)
_OTHER_FIELDS = tuple(name for name in _FIELDS if name != "messages")
_SHORT = 100_000  # numbers below this (in absolute value) are not text worth scanning


class Visitor(Protocol):
    def text(self, position: str, prefix: str, text: str) -> str:
        """Visit one text (``prefix``: the context put before it, ``"phone: "``);
        return it, or its replacement."""

    def encoded(self, position: str, text: str) -> None:
        """Visit text decoded from a value that cannot be changed in place."""


def leaf_prefix(key: str) -> str:
    """The context put before a JSON leaf when it is scanned (``"phone: "``)."""
    return f"{key.replace('_', ' ')}: " if key else ""


def plain_texts(request: ChatRequest) -> list[tuple[str, str]] | None:
    """``(position, text)`` of a request made of plain ``{role, content: str}`` messages
    and nothing else to scan (the usual case, walked without the generic visitor);
    ``None`` for any other request."""
    if any(_text_values(request)) or not _NUMBER_TYPES.issuperset(
        map(type, _number_values(request))
    ):  # a text field is set, or a number field holds something else: walk it all
        return None
    texts = []
    positions = _ROLE_POSITIONS
    for message in request.messages:
        content = message.get("content")
        if type(content) is not str or len(message) != 2:
            return None
        texts.append((positions.get(message["role"], "other"), content))
    return texts


_NUMBERS = frozenset({int, float, bool})


def _numeric(annotation: object) -> bool:
    """A field declared as a number or a flag (``int | None``, ``bool`` …)."""
    parts = str(annotation).replace(" ", "").split("|")
    return all(part in ("int", "float", "bool", "None") for part in parts)


# Every field but messages, in two groups read in C: the fast path needs each text field
# empty and each number field a number (``seed``, ``max_tokens``: validated, not text).
_NUMBER_FIELDS = tuple(f.name for f in fields(ChatRequest) if _numeric(f.type))
_text_values = attrgetter(*(n for n in _OTHER_FIELDS if n not in _NUMBER_FIELDS))
_number_values = attrgetter(*_NUMBER_FIELDS)
_NUMBER_TYPES = frozenset({int, float, bool, type(None)})


def walk_request(request: ChatRequest, visitor: Visitor) -> ChatRequest:
    """Visit every text ``request`` sends; the request with the visitor's replacements
    (``request`` itself when nothing was replaced)."""
    changes: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(request, name)
        if value is None or type(value) in _NUMBERS:  # a field's own number is not text
            continue
        if name == "messages":
            new = _sequence(value, lambda m: _message(m, visitor))
        else:
            new = _free(value, FIELD_POSITIONS.get(name, "params"), name, visitor)
        if new is not value:
            changes[name] = new
    return replace(request, **changes) if changes else request


def _sequence(items: Any, visit: Any) -> Any:
    out: list[Any] | None = None  # built only once something changed
    for i, item in enumerate(items):
        new = visit(item)
        if new is not item and out is None:
            out = list(items[:i])
        if out is not None:
            out.append(new)
    if out is None:
        return items
    return tuple(out) if isinstance(items, tuple) else out


def _free(value: Any, position: str, key: str, visitor: Visitor) -> Any:
    """Any JSON-like value: strings and long numbers visited after their key, mapping
    keys visited as texts of their own. ``type`` keys directly under a known structure
    are handled by the callers, not here: in free-form JSON every string counts."""
    kind = type(value)
    if kind is str:
        return visitor.text(position, leaf_prefix(key), value)
    if value is None or kind is bool:
        return value
    if kind is dict or isinstance(value, Mapping):
        return _mapping(value, position, visitor)
    if kind is list or kind is tuple:
        return _sequence(value, lambda item: _free(item, position, key, visitor))
    if isinstance(value, int | float) and -_SHORT < value < _SHORT:
        return value
    text = str(value)  # a long number, or anything else the encoder would write
    new = visitor.text(position, leaf_prefix(key), text)
    return value if new == text else new


def _mapping(value: Mapping[Any, Any], position: str, visitor: Visitor) -> Any:
    out: dict[Any, Any] | None = None  # built only once something changed
    for i, (k, item) in enumerate(value.items()):
        new_key = visitor.text(position, "", k) if type(k) is str else k
        new = _free(item, position, str(k), visitor)
        if out is None and (new_key is not k or new is not item):
            out = dict(list(value.items())[:i])
        if out is not None:
            out[new_key] = new
    return value if out is None else out


def _structure(
    value: Any, position: str, visitor: Visitor, special: Mapping[str, Any], skip: str = "type"
) -> Any:
    """A dict of known shape: ``skip`` (a validated enumeration) is not visited, the keys
    in ``special`` go to their own visit, every other key is free-form."""
    if type(value) is not dict:
        return _free(value, position, "", visitor)
    out: dict[str, Any] | None = None
    for key, item in value.items():
        if key == skip:
            continue
        visit = special.get(key)
        new = visit(item) if visit is not None else _free(item, position, key, visitor)
        if new is not item:
            if out is None:
                out = dict(value)
            out[key] = new
    return value if out is None else out


def _message(message: Any, visitor: Visitor) -> Any:
    position = ROLE_POSITIONS.get(message.get("role", ""), "other")
    return _structure(
        message,
        position,
        visitor,
        {
            "content": lambda c: _content(c, position, visitor),
            "tool_calls": lambda calls: (
                _sequence(calls, lambda c: _call(c, visitor))
                if isinstance(calls, list | tuple)
                else _free(calls, "tool_call", "tool_calls", visitor)
            ),
        },
        skip="role",
    )


def _content(content: Any, position: str, visitor: Visitor) -> Any:
    if isinstance(content, str):
        return visitor.text(position, "", content)
    if isinstance(content, list):
        new = _sequence(content, lambda part: _part(part, position, visitor))
        seam = getattr(visitor, "seam", None)  # the scanner's: a value across two parts
        if seam is not None and len(content) > 1:
            _seams(content, position, seam)
        return new
    return _free(content, position, "content", visitor)


def _seams(parts: list[Any], position: str, seam: Any) -> None:
    """Each pair of adjacent text parts (the model reads them as one text) to the
    visitor's ``seam(position, before, after)``."""
    before: str | None = None
    for part in parts:
        text = part.get("text") if type(part) is dict and part.get("type") == "text" else None
        if type(text) is not str:
            before = None
            continue
        if before:
            seam(position, before, text)
        before = text


def _part(part: Any, position: str, visitor: Visitor) -> Any:
    return _structure(
        part,
        position,
        visitor,
        {
            "text": lambda t: visitor.text(position, "", t) if isinstance(t, str) else t,
            "image_url": lambda image: _structure(
                image, position, visitor, {"url": lambda url: _url(url, position, visitor)}, ""
            ),
        },
    )


def _url(url: Any, position: str, visitor: Visitor) -> Any:
    if not isinstance(url, str):
        return _free(url, position, "url", visitor)
    if url[:5].lower() != "data:":
        return visitor.text(position, "", url)
    decoded = data_url_text(url)
    if decoded:
        visitor.encoded(position, decoded)
    return url


def _call(call: Any, visitor: Visitor) -> Any:
    def function(fn: Any) -> Any:
        return _structure(fn, "tool_call", visitor, {"arguments": arguments}, "")

    def arguments(text: Any) -> Any:
        if not isinstance(text, str):
            return _free(text, "tool_call", "arguments", visitor)
        try:
            parsed = json.loads(text)
        except ValueError:
            return visitor.text("tool_call", "", text)
        new = _free(parsed, "tool_call", "", visitor)
        return text if new is parsed else json.dumps(new, ensure_ascii=False)

    return _structure(call, "tool_call", visitor, {"function": function})


class _Seen:
    """A visitor that records every text as the walk meets it (without its prefix)."""

    __slots__ = ("decoded", "texts")

    def __init__(self) -> None:
        self.texts: set[str] = set()
        self.decoded: set[str] = set()

    def text(self, position: str, prefix: str, text: str) -> str:
        self.texts.add(text)
        return text

    def encoded(self, position: str, text: str) -> None:
        self.decoded.add(text)


def unvisited_strings(
    doc: Any, request: ChatRequest, skip: frozenset[str] = frozenset()
) -> list[str]:
    """Every string of ``doc`` (a body sent upstream as it is: keys, values, long
    numbers) that the walk of ``request`` (the same body as governance reads it) does not
    visit, in order and once each; values under a key in ``skip`` are left out.

    A relayed body goes out unchanged while its scan is a translation: anything the
    translation drops (item ids, annotations, settings it does not read) must be
    scanned as well, or it would leave unread."""
    seen = _Seen()
    walk_request(request, seen)
    known = seen.texts
    out: dict[str, None] = {}

    def visit(value: Any) -> None:
        kind = type(value)
        if kind is str:
            if value[:5].lower() == "data:":  # read as the walk reads one: decoded
                value = data_url_text(value)
                if not value or value in seen.decoded:
                    return
            if value not in known:
                out[value] = None
        elif kind is dict:
            for key, item in value.items():
                visit(key)
                if key not in skip:
                    visit(item)
        elif kind is list or kind is tuple:
            for item in value:
                visit(item)
        elif (kind is int or kind is float) and not -_SHORT < value < _SHORT:
            visit(str(value))

    visit(doc)
    return list(out)
