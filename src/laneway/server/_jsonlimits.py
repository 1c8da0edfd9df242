"""Decode a request body into a JSON object, and typed checks of parsed JSON values.

``orjson`` does the parsing: it rejects ``NaN``/``Infinity``, invalid UTF-8 and
nesting past 1024 levels by itself, without recursion in Python; this module turns
its errors into clear ``InvalidRequest`` messages. :func:`check_depth` enforces a
smaller nesting limit with an iterative walk. The ``expect_*`` checks never accept a
boolean where a number is expected (``True`` is an ``int`` in Python).
"""

from __future__ import annotations

from typing import Any

import orjson

from laneway.errors import InvalidRequest

__all__ = [
    "check_depth",
    "expect_bool",
    "expect_int",
    "expect_name",
    "expect_nonempty_str",
    "expect_number",
    "expect_number_map",
    "expect_object",
    "expect_str",
    "expect_str_list",
    "expect_str_map",
    "json_type",
    "load_object",
    "only_keys",
    "type_error",
]

_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for error messages ("an object" …)."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def load_object(body: bytes, max_depth: int) -> dict[str, Any]:
    """Parse ``body`` as a JSON object nested at most ``max_depth`` levels deep."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _decode_error(body, exc, max_depth) from None
    if type(doc) is not dict:
        raise InvalidRequest(
            f"the request body must be a JSON object, got {json_type(doc)}", param=None
        )
    return doc


def check_depth(value: Any, max_depth: int, *, start: int = 1) -> None:
    """Raise ``InvalidRequest`` if ``value``, found at nesting level ``start`` of the
    body, nests deeper than ``max_depth`` levels. Iterative: no recursion."""
    if type(value) is not dict and type(value) is not list:
        return
    stack: list[tuple[Any, int]] = [(value, start)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise _too_deep(max_depth)
        children = node.values() if type(node) is dict else node
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))


def _too_deep(max_depth: int) -> InvalidRequest:
    return InvalidRequest(
        f"the request body nests JSON arrays/objects deeper than the limit of {max_depth} levels",
        param=None,
    )


def _decode_error(body: bytes, exc: orjson.JSONDecodeError, max_depth: int) -> InvalidRequest:
    if not body:
        return InvalidRequest("the request body is empty; expected a JSON object", param=None)
    try:
        bytes(body).decode("utf-8")
    except UnicodeDecodeError as bad:
        return InvalidRequest(
            f"the request body is not valid UTF-8 (invalid byte at offset {bad.start})",
            param=None,
        )
    pos = exc.pos
    where = f"line {exc.lineno} column {exc.colno}"
    if (
        body[pos : pos + 3] == b"NaN"
        or body[pos : pos + 8] == b"Infinity"
        or body[max(pos - 1, 0) : pos + 8] == b"-Infinity"
    ):
        return InvalidRequest(
            f"the request body is not valid JSON: NaN and Infinity are not allowed ({where})",
            param=None,
        )
    message = exc.msg
    if "infinity" in message:
        return InvalidRequest(
            f"the request body is not valid JSON: a number is too large to be finite ({where})",
            param=None,
        )
    if "depth limit" in message:
        return _too_deep(min(max_depth, 1024))  # orjson's own hard limit
    return InvalidRequest(f"the request body is not valid JSON: {message} ({where})", param=None)


# -- checks of parsed values -------------------------------------------------------------


def type_error(param: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(
        f"invalid type for '{param}': expected {expected}, got {json_type(value)}", param=param
    )


def expect_bool(value: Any, param: str) -> bool:
    if type(value) is not bool:
        raise type_error(param, "a boolean", value)
    return value


def expect_str(value: Any, param: str) -> str:
    if type(value) is not str:
        raise type_error(param, "a string", value)
    return value


def expect_nonempty_str(value: Any, param: str) -> str:
    if type(value) is not str:
        raise type_error(param, "a string", value)
    if not value:
        raise InvalidRequest(f"'{param}' must not be empty", param=param)
    return value


def expect_int(value: Any, param: str, low: int, high: int) -> int:
    if type(value) is not int:  # rejects bool: type(True) is bool
        raise type_error(param, "an integer", value)
    if not low <= value <= high:
        raise InvalidRequest(
            f"'{param}' must be between {low} and {high}, got {value}", param=param
        )
    return value


def expect_number(value: Any, param: str, low: float, high: float) -> float:
    kind = type(value)
    if kind is not float and kind is not int:  # rejects bool
        raise type_error(param, "a number", value)
    if not low <= value <= high:
        raise InvalidRequest(
            f"'{param}' must be between {low:g} and {high:g}, got {value}", param=param
        )
    return float(value)


def expect_object(value: Any, param: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise type_error(param, "an object", value)
    return value


def only_keys(obj: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    if not allowed.issuperset(obj):
        key = min(k for k in obj if k not in allowed)
        raise InvalidRequest(
            f"unknown key '{key}' in '{where}' (allowed: {', '.join(sorted(allowed))})",
            param=f"{where}.{key}",
        )


def expect_name(value: Any, param: str) -> str:
    name = expect_nonempty_str(value, param)
    bare = name.replace("_", "").replace("-", "")
    if len(name) > 64 or not name.isascii() or (bare and not bare.isalnum()):
        raise InvalidRequest(
            f"'{param}' must match ^[a-zA-Z0-9_-]{{1,64}}$, got {name[:80]!r}", param=param
        )
    return name


def expect_number_map(value: Any, param: str, low: float, high: float) -> dict[str, Any]:
    """An object whose values are numbers in ``[low, high]`` (``logit_bias``)."""
    obj = expect_object(value, param)
    for key, item in obj.items():
        expect_number(item, f"{param}.{key}", low, high)
    return obj


def expect_str_map(value: Any, param: str) -> dict[str, Any]:
    """An object whose values are strings (``metadata``)."""
    obj = expect_object(value, param)
    for key, item in obj.items():
        expect_str(item, f"{param}.{key}")
    return obj


def expect_str_list(value: Any, param: str) -> list[Any]:
    if type(value) is not list:
        raise type_error(param, "an array of strings", value)
    for i, item in enumerate(value):
        expect_str(item, f"{param}[{i}]")
    return value
