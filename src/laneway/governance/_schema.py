"""A client's JSON schema, compiled once into a validator that can never reach the network,
the file system or a backtracking regex engine.

Schemas come from clients (``response_format.json_schema.schema``, every tool's
``function.parameters``) and from eval suites. :meth:`ClientSchema.compile` refuses, with
:class:`~laneway.errors.InvalidRequest` naming the offending place:

* any ``$ref`` / ``$dynamicRef`` / ``$recursiveRef`` that is not a local ``#…`` reference
  (``http:``, ``https:``, ``file:``, relative paths resolved against an ``$id``);
* a ``$schema`` that is not one of the known drafts (2020-12 is the default);
* a schema that is not valid against its metaschema, or whose local reference points to
  nothing;
* a ``pattern`` / ``patternProperties`` regex that the linear-time engine cannot run
  (look-around, back-references) or that is too large;
* more than :data:`MAX_SUBSCHEMAS` subschemas, or more than :data:`MAX_EXPANDED` once
  every reference is followed (a few definitions that refer twice to the next one grow
  exponentially).

Validation uses ``jsonschema-rs`` in offline mode (no retrieval at all) with the Rust
``regex`` engine, which runs in time linear in the text. ``format`` is an annotation only,
as the JSON Schema specification says by default. Checking an answer costs about
(schema size after following references) x (answer size): a small product is checked on
the calling thread (microseconds); a large one runs in a child process that is killed at
:data:`CHECK_SECONDS`, so that a hostile schema never holds the event loop.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote

import jsonschema_rs
import orjson

from laneway.errors import InvalidRequest

__all__ = [
    "CHECK_SECONDS",
    "KNOWN_DIALECTS",
    "MAX_ANSWER_CHARS",
    "MAX_EXPANDED",
    "MAX_SUBSCHEMAS",
    "ClientSchema",
]

MAX_SUBSCHEMAS: Final = 10_000
MAX_EXPANDED: Final = 100_000
MAX_ANSWER_CHARS: Final = 8 * 1024 * 1024
CHECK_SECONDS: Final = 5.0
# (expanded subschemas) x (answer bytes) checked in-line: ~10 ms of work at most.
_INLINE_BUDGET: Final = 10_000_000
_REGEX_BYTES: Final = 1 << 20

KNOWN_DIALECTS: Final = frozenset(
    {
        "https://json-schema.org/draft/2020-12/schema",
        "https://json-schema.org/draft/2020-12/schema#",
        "https://json-schema.org/draft/2019-09/schema",
        "https://json-schema.org/draft/2019-09/schema#",
        "http://json-schema.org/draft-07/schema",
        "http://json-schema.org/draft-07/schema#",
        "http://json-schema.org/draft-06/schema",
        "http://json-schema.org/draft-06/schema#",
        "http://json-schema.org/draft-04/schema",
        "http://json-schema.org/draft-04/schema#",
    }
)
_REF_KEYWORDS: Final = frozenset({"$ref", "$dynamicRef", "$recursiveRef"})
_ANCHOR_KEYWORDS: Final = frozenset({"$anchor", "$dynamicAnchor"})
# Values that are data, not schemas: a "$ref" inside them is just a string.
_DATA_KEYWORDS: Final = frozenset({"const", "enum", "default", "examples"})
# Keywords whose value maps names to subschemas (a property may be called "default").
_MAP_KEYWORDS: Final = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
_DEFINITIONS: Final = frozenset({"$defs", "definitions"})
_MESSAGE_CHARS: Final = 200


def _options() -> dict[str, Any]:
    return {
        "offline": True,
        "validate_formats": False,
        "pattern_options": jsonschema_rs.RegexOptions(
            size_limit=_REGEX_BYTES, dfa_size_limit=_REGEX_BYTES
        ),
    }


class ClientSchema:
    """A checked client schema and its validator. Build with :meth:`compile`."""

    __slots__ = ("_schema", "_validator", "expanded")

    def __init__(
        self, schema: Mapping[str, Any], validator: jsonschema_rs.Validator, expanded: int
    ) -> None:
        self._schema = schema
        self._validator = validator
        self.expanded = expanded  # subschemas once every reference is followed

    @classmethod
    def compile(cls, schema: Mapping[str, Any], where: str) -> ClientSchema:
        """Check ``schema`` (found at request field ``where``) and compile it; raises
        :class:`InvalidRequest` saying what is wrong and where."""
        doc = schema if type(schema) is dict else dict(schema)
        walk, validator = _build(doc, where)
        return cls(doc, validator, _expanded_size(doc, walk, where))

    @staticmethod
    def check_schema(schema: Mapping[str, Any], where: str) -> None:
        """The checks of :meth:`compile` for a schema that answers are never validated
        against here (tool parameters): no bound on following its references."""
        _build(schema if type(schema) is dict else dict(schema), where)

    def problem(self, value: Any) -> str | None:
        """Why the parsed JSON ``value`` does not satisfy the schema (``None`` when it does)."""
        error = next(iter(self._validator.iter_errors(value)), None)
        if error is None:
            return None
        return _answer_problem(error)

    async def check(self, content: str | None) -> str | None:
        """Why the answer text ``content`` does not satisfy the schema (``None`` when it
        does). A costly check runs in a child process with a deadline."""
        if content is None:
            return "the answer has no content"
        size = len(content)
        if size > MAX_ANSWER_CHARS:
            return (
                f"the answer is too large to check against the schema "
                f"({size} characters, at most {MAX_ANSWER_CHARS})"
            )
        if size * self.expanded > _INLINE_BUDGET:
            return await _check_in_child(self._schema, content)
        return _check_text(self._validator, content)


def _build(doc: dict[str, Any], where: str) -> tuple[_Walk, jsonschema_rs.Validator]:
    walk = _Walk(where)
    walk.run(doc)
    try:
        validator = jsonschema_rs.validator_for(doc, **_options())
    except jsonschema_rs.ValidationError as exc:
        raise _invalid_schema(exc, doc, where, walk) from None
    except ValueError as exc:  # "Recursion limit reached" and the like
        raise InvalidRequest(
            f"'{where}' cannot be compiled: {_short(str(exc))}", param=where
        ) from None
    return walk, validator


def _check_text(validator: jsonschema_rs.Validator, content: str) -> str | None:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return "the answer is not valid JSON"
    error = next(iter(validator.iter_errors(value)), None)
    return None if error is None else _answer_problem(error)


def _answer_problem(error: jsonschema_rs.ValidationError) -> str:
    return _problem_at([str(p) for p in error.instance_path], str(error.kind.name))


def _problem_at(path: list[str], keyword: str) -> str:
    where = "/".join(path) or "(root)"
    return f"the answer does not match the schema at {where}: {keyword} failed"


def _short(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return line if len(line) <= _MESSAGE_CHARS else line[: _MESSAGE_CHARS - 1] + "…"


def _pointer(parts: tuple[str, ...]) -> str:
    if not parts:
        return "(root)"
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class _Walk:
    """One pass over a schema: counts subschemas, finds references and anchors, refuses
    non-local references and unknown dialects with a message naming their place."""

    __slots__ = ("anchors", "count", "refs", "where")

    def __init__(self, where: str) -> None:
        self.where = where
        self.count = 0
        self.anchors: dict[str, Any] = {}
        self.refs: list[tuple[str, tuple[str, ...]]] = []  # local references and places

    def run(self, schema: Mapping[str, Any]) -> None:
        stack: list[tuple[Any, tuple[str, ...]]] = [(schema, ())]
        while stack:
            node, path = stack.pop()
            if type(node) is list:
                stack.extend((item, (*path, str(i))) for i, item in enumerate(node))
                continue
            if type(node) is not dict:
                continue
            self.count += 1
            if self.count > MAX_SUBSCHEMAS:
                raise InvalidRequest(
                    f"'{self.where}' has more than {MAX_SUBSCHEMAS} subschemas",
                    param=self.where,
                )
            for key, value in node.items():
                self._keyword(node, key, value, path, stack)

    def _keyword(
        self,
        node: dict[str, Any],
        key: str,
        value: Any,
        path: tuple[str, ...],
        stack: list[tuple[Any, tuple[str, ...]]],
    ) -> None:
        if key in _REF_KEYWORDS:
            if type(value) is str and not value.startswith("#"):
                raise InvalidRequest(
                    f"'{self.where}' refers to {value[:_MESSAGE_CHARS]!r} at "
                    f"{_pointer((*path, key))}: only local references ('#/…') are "
                    "allowed; the gateway never fetches schemas",
                    param=self.where,
                )
            if type(value) is str:
                self.refs.append((value, (*path, key)))
        elif key == "$schema":
            if value not in KNOWN_DIALECTS:
                raise InvalidRequest(
                    f"'{self.where}' names an unknown $schema {str(value)[:_MESSAGE_CHARS]!r} "
                    f"at {_pointer((*path, key))}: use draft 2020-12 (the default), "
                    "2019-09, 7, 6 or 4",
                    param=self.where,
                )
        elif key in _ANCHOR_KEYWORDS:
            if type(value) is str:
                self.anchors.setdefault(value, node)
        elif key in _DATA_KEYWORDS:
            return
        elif key in _MAP_KEYWORDS and type(value) is dict:
            stack.extend((sub, (*path, key, name)) for name, sub in value.items())
        elif type(value) is dict or type(value) is list:
            stack.append((value, (*path, key)))


class _TooBig(Exception):
    pass


def _resolve(schema: Mapping[str, Any], walk: _Walk, ref: str) -> Any:
    """The node a local reference names, read from the document root (``None`` when there is
    none). Approximate for pointers inside an embedded ``$id``: used for bounds and
    messages only; the validator resolves references itself."""
    if not ref.startswith("#/") and ref != "#":
        return walk.anchors.get(unquote(ref[1:]))
    node: Any = schema
    for raw in ref[2:].split("/") if ref != "#" else ():
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if type(node) is dict and part in node:
            node = node[part]
        elif type(node) is list and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _expanded_size(schema: Mapping[str, Any], walk: _Walk, where: str) -> int:
    """Subschemas evaluated for one instance once every reference is followed (a reference
    back to a schema being expanded counts once): a bound on the work per answer node."""
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        if key in active:
            return 1
        active.add(key)
        n = 1
        if type(node) is list:
            n = sum(size(item) for item in node)
        elif type(node) is dict:
            for keyword, value in node.items():
                if keyword in _DATA_KEYWORDS or keyword in _DEFINITIONS:
                    continue
                if keyword in _REF_KEYWORDS and type(value) is str:
                    target = _resolve(schema, walk, value)
                    n += size(target) if target is not None else 1
                elif keyword in _MAP_KEYWORDS and type(value) is dict:
                    n += sum(size(sub) for sub in value.values())
                elif type(value) is dict or type(value) is list:
                    n += size(value)
        active.discard(key)
        memo[key] = n
        if n > MAX_EXPANDED:
            raise _TooBig
        return n

    try:
        return max(size(schema), 1)
    except (_TooBig, RecursionError):
        raise InvalidRequest(
            f"'{where}' is too complex: following its references gives more than "
            f"{MAX_EXPANDED} subschemas",
            param=where,
        ) from None


def _invalid_schema(exc: Any, schema: Mapping[str, Any], where: str, walk: _Walk) -> InvalidRequest:
    kind = exc.kind
    message = _short(exc.message)
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Referencing):
        dangling = next((r for r in walk.refs if _resolve(schema, walk, r[0]) is None), None)
        at = (
            ""
            if dangling is None
            else f" ({dangling[0][:_MESSAGE_CHARS]!r} at {_pointer(dangling[1])})"
        )
        return InvalidRequest(
            f"'{where}' has a reference that points to nothing in the schema{at}: {message}",
            param=where,
        )
    at = _pointer(tuple(str(p) for p in exc.instance_path))
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Format) and kind.format == "regex":
        return InvalidRequest(
            f"'{where}' has a pattern at {at} that cannot be used: {message}; patterns run "
            "on a linear-time regex engine (no look-around, no back-references, at most "
            f"{_REGEX_BYTES // 1024} KiB compiled)",
            param=where,
        )
    return InvalidRequest(f"'{where}' is not a valid JSON Schema at {at}: {message}", param=where)


# The checking child imports only jsonschema-rs and orjson (fast to start); it gets
# {"schema", "answer", "regex_bytes"} and prints the first error as JSON, or nothing.
_CHILD = """
import sys, orjson, jsonschema_rs as J
doc = orjson.loads(sys.stdin.buffer.read())
size = doc["regex_bytes"]
validator = J.validator_for(doc["schema"], offline=True, validate_formats=False,
    pattern_options=J.RegexOptions(size_limit=size, dfa_size_limit=size))
try:
    value = orjson.loads(doc["answer"])
except orjson.JSONDecodeError:
    sys.stdout.buffer.write(orjson.dumps({"invalid_json": True}))
    sys.exit(0)
error = next(iter(validator.iter_errors(value)), None)
if error is not None:
    sys.stdout.buffer.write(orjson.dumps(
        {"path": [str(p) for p in error.instance_path], "keyword": error.kind.name}))
"""


async def _check_in_child(schema: Mapping[str, Any], content: str) -> str | None:
    payload = orjson.dumps({"schema": schema, "answer": content, "regex_bytes": _REGEX_BYTES})
    # Started from a worker thread: subprocess uses vfork there, while a fork on the event
    # loop (uvloop's spawn) copies the whole process's page tables first.
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-I", "-c", _CHILD],  # -I: no cwd, no PYTHON* variables
            input=payload,
            capture_output=True,
            timeout=CHECK_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:  # run() has killed the child
        return f"the answer could not be checked against the schema within {CHECK_SECONDS:g} s"
    if done.returncode != 0:
        return "the answer could not be checked against the schema"
    out = done.stdout
    if not out:
        return None
    found = orjson.loads(out)
    if found.get("invalid_json"):
        return "the answer is not valid JSON"
    return _problem_at(found["path"], found["keyword"])
