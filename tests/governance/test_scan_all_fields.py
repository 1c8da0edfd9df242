"""Every string a request sends upstream is scanned and redacted (issue 12, item 3): the
scanned set is derived from the request, so a new field or option cannot be forgotten."""

from __future__ import annotations

import base64
import dataclasses
import json
import struct
import zlib
from typing import Any

import pytest

from laneway.governance import Scanner
from laneway.governance._redact import redact_request
from laneway.governance._sent import NOT_SENT
from laneway.providers import ChatRequest
from laneway.settings._policies import SensitivePolicy

EMAIL = "dana.whitfield@example.org"
SSN = "536-22-8417"


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(SensitivePolicy())


def _base(**fields: Any) -> ChatRequest:
    messages = fields.pop("messages", ({"role": "user", "content": "hello"},))
    return dataclasses.replace(ChatRequest(model="m", messages=messages), **fields)


def _tool(description: str = "Look up an order", enum: tuple[str, ...] = ("open",)) -> Any:
    return {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {"status": {"type": "string", "enum": list(enum)}},
            },
        },
    }


# The nine fields an independent probe used to send values past the scan, and more.
PROBES: dict[str, tuple[ChatRequest, str]] = {
    "message name": (
        _base(messages=({"role": "user", "name": EMAIL, "content": "hi"},)),
        "user",
    ),
    "tool call id": (
        _base(
            messages=(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": EMAIL,
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
            )
        ),
        "tool_call",
    ),
    "tool_call_id": (
        _base(messages=({"role": "tool", "tool_call_id": EMAIL, "content": "done"},)),
        "tool_result",
    ),
    "user": (_base(user=EMAIL), "params"),
    "metadata": (_base(options={"metadata": {"customer": EMAIL}}), "params"),
    "tool description": (_base(tools=(_tool(description=f"Mail {EMAIL}"),)), "tools"),
    "tool enum": (_base(tools=(_tool(enum=("open", EMAIL)),)), "tools"),
    "schema": (
        _base(
            response_format={
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "schema": {"type": "object", "description": f"for {EMAIL}"},
                },
            }
        ),
        "schema",
    ),
    "stop": (_base(stop=("END", EMAIL)), "params"),
    "prediction": (
        _base(options={"prediction": {"type": "content", "content": f"Dear {EMAIL},"}}),
        "params",
    ),
    "logit_bias key": (_base(options={"logit_bias": {EMAIL: 5}}), "params"),
    "schema key": (
        _base(tools=(_tool() | {"function": {"name": "f", "parameters": {EMAIL: {}}}},)),
        "tools",
    ),
    "unknown option": (_base(options={"some_future_option": [{"deep": EMAIL}]}), "params"),
    "image url": (
        _base(
            messages=(
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": f"https://x.test/a?u={EMAIL}"}}
                    ],
                },
            )
        ),
        "user",
    ),
    "tool choice": (
        _base(tool_choice={"type": "function", "function": {"name": EMAIL}}),
        "tools",
    ),
}


@pytest.mark.parametrize("where", list(PROBES))
def test_a_value_anywhere_in_the_request_is_found(scanner: Scanner, where: str) -> None:
    request, position = PROBES[where]
    result = scanner.scan_request(request)
    assert dict(result.counts) == {"email": 1}
    assert dict(result.positions) == {position: 1}


def test_every_field_of_the_request_is_scanned(scanner: Scanner) -> None:
    """Fails when a field is added to ChatRequest that the walk does not reach: every
    field but the documented ``NOT_SENT`` gets a value holding an SSN, in the field's
    own shape where it has one (a string, a tuple, a mapping) or as a bare string."""
    assert {"model"} == NOT_SENT  # the only field never sent upstream (see _sent.py)
    shapes: dict[str, Any] = {
        "messages": ({"role": "user", "content": f"SSN {SSN}"},),
        "stop": (f"SSN {SSN}",),
        "tools": (_tool(description=f"SSN {SSN}"),),
        "response_format": {"type": "json_object", "note": f"SSN {SSN}"},
        "options": {"anything": f"SSN {SSN}"},
    }
    names = [f.name for f in dataclasses.fields(ChatRequest)]
    assert set(shapes) < set(names)
    for name in names:
        if name in NOT_SENT:
            continue
        value = shapes.get(name, f"SSN {SSN}")  # numbers and flags: a string all the same
        request = _base(**{name: value})
        assert scanner.scan_request(request).counts == {"national_id": 1}, name
    assert not scanner.scan_request(_base(model=f"SSN {SSN}")).sensitive


def test_numbers_and_enumerations_are_not_text(scanner: Scanner) -> None:
    request = _base(
        seed=536228417,
        temperature=0.2,
        max_tokens=128000,
        options={"logit_bias": {"1734": -100}},
        messages=({"role": "user", "content": [{"type": "text", "text": "hello"}]},),
    )
    assert not scanner.scan_request(request).sensitive
    from laneway.governance._sent import plain_texts

    assert plain_texts(_base(seed=536228417, max_tokens=128000)) is not None  # the fast path
    big = _base(options={"metadata": {"phone": 4155552671}})  # a long number in JSON: text
    assert scanner.scan_request(big).counts == {"phone": 1}


@pytest.mark.parametrize("where", list(PROBES))
def test_redaction_covers_the_same_fields(scanner: Scanner, where: str) -> None:
    request, _ = PROBES[where]
    redacted, redaction = redact_request(request, scanner)
    assert redaction.errors == ()
    sent = json.dumps(dataclasses.asdict(redacted), default=str)
    assert EMAIL not in sent
    assert "[EMAIL_1]" in sent
    assert not scanner.scan_request(redacted).sensitive
    assert redaction.restore("Sure, [EMAIL_1].") == f"Sure, {EMAIL}."


def test_redaction_leaves_the_rest_of_the_request_as_it_was(scanner: Scanner) -> None:
    request = _base(
        user=EMAIL,
        tools=(_tool(description=f"Mail {EMAIL}"),),
        stop=("END",),
        options={"metadata": {"team": "ops"}},
    )
    redacted, _ = redact_request(request, scanner)
    assert redacted.user == "[EMAIL_1]"
    assert redacted.tools[0]["function"]["description"] == "Mail [EMAIL_1]"
    assert redacted.tools[0]["function"]["parameters"] is request.tools[0]["function"]["parameters"]
    assert redacted.options is request.options and redacted.stop is request.stop
    assert redacted.messages is request.messages
    clean = _base(tools=(_tool(),))
    assert redact_request(clean, scanner)[0] is clean


def test_redaction_fails_closed_when_context_spans_two_texts(scanner: Scanner) -> None:
    # the birth word is in one message, the date in the next: the request scan reads
    # them together, each text alone holds nothing; what is left is found again
    request = _base(
        messages=(
            {"role": "user", "content": "12/05/1984"},
            {"role": "user", "content": "born on that day"},
        )
    )
    assert scanner.scan_request(request).sensitive
    _, redaction = redact_request(request, scanner)
    assert redaction.errors == ("residual",)


# -- data: URLs ------------------------------------------------------------------------


def _png(*chunks: tuple[bytes, bytes]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", header) + b"".join(chunk(k, d) for k, d in chunks)
    return (
        b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(b"\0\0")) + chunk(b"IEND", b"")
    )


def _jpeg(comment: bytes) -> bytes:
    segment = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
    return b"\xff\xd8" + segment + b"\xff\xda\x00\x02" + bytes(range(256)) * 4 + b"\xff\xd9"


def _gif(comment: bytes) -> bytes:
    screen = struct.pack("<HHBBB", 1, 1, 0, 0, 0)
    ext = b"\x21\xfe" + bytes([len(comment)]) + comment + b"\x00"
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x4c\x01\x00"
    return b"GIF89a" + screen + ext + image + b"\x3b"


def _webp(exif: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return kind + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)

    body = b"WEBP" + chunk(b"VP8 ", bytes(10)) + chunk(b"EXIF", exif)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _image_request(media: str, payload: bytes) -> ChatRequest:
    url = f"data:{media};base64," + base64.b64encode(payload).decode()
    part = {"type": "image_url", "image_url": {"url": url}}
    return _base(messages=({"role": "user", "content": [part]},))


@pytest.mark.parametrize(
    ("media", "payload", "sensitive"),
    [
        ("image/png", _png(), False),
        ("image/png", _png((b"tEXt", b"Author\0" + EMAIL.encode())), True),
        ("image/png", _png((b"zTXt", b"Comment\0\0" + zlib.compress(EMAIL.encode()))), True),
        ("image/jpeg", _jpeg(b"scanned by the copier"), False),
        ("image/jpeg", _jpeg(f"owner {EMAIL}".encode()), True),
        ("image/gif", _gif(b"made with care"), False),
        ("image/gif", _gif(f"to {EMAIL}".encode()), True),
        ("image/webp", _webp(b"Exif\0\0MM camera"), False),
        ("image/webp", _webp(b"Exif\0\0MM artist " + EMAIL.encode()), True),
        ("image/png", f"SSN {SSN}".encode(), True),  # declared an image, is text
        ("text/plain", f"SSN {SSN}".encode(), True),
        ("application/json", json.dumps({"email": EMAIL}).encode(), True),
    ],
)
def test_data_urls_are_decoded_not_read_as_base64(
    scanner: Scanner, media: str, payload: bytes, sensitive: bool
) -> None:
    request = _image_request(media, payload)
    result = scanner.scan_request(request)
    assert result.sensitive is sensitive
    if sensitive:  # a value inside an encoded payload cannot be replaced: fail closed
        _, redaction = redact_request(request, scanner)
        assert redaction.errors == ("data_url",)


def test_a_data_url_that_is_not_base64_is_scanned_as_text(scanner: Scanner) -> None:
    part = {"type": "image_url", "image_url": {"url": f"data:text/plain,SSN%20{SSN}"}}
    request = _base(messages=({"role": "user", "content": [part]},))
    assert scanner.scan_request(request).counts == {"national_id": 1}


def test_the_gateway_counts_every_scanned_field_to_decide_on_offloading() -> None:
    """A long tool schema or image is scanned off the event loop like a long message."""
    from laneway.gateway._core import OFFLOAD_SCAN_FROM, _text_size

    long = "x" * OFFLOAD_SCAN_FROM
    assert _text_size(_base(tools=(_tool(description=long),))) > OFFLOAD_SCAN_FROM
    assert _text_size(_base(options={"prediction": {"content": long}})) > OFFLOAD_SCAN_FROM
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + long}}
    assert _text_size(_base(messages=({"role": "user", "content": [image]},))) > OFFLOAD_SCAN_FROM
    assert _text_size(_base(tools=(_tool(),))) < 1000
