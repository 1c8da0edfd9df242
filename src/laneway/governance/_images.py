"""What of a ``data:`` URL the scanner reads as text (see :mod:`._sent` for the decision).

:func:`data_url_text` decodes the URL. A payload that is an image of its declared type
(PNG, JPEG, GIF, WebP, checked by its signature) contributes only the text its metadata
carries: PNG ``tEXt`` / ``iTXt`` / ``zTXt`` chunks, JPEG comment and ``APPn`` segments
(EXIF, XMP), GIF comment extensions, WebP ``EXIF`` / ``XMP`` chunks; binary metadata is
reduced to its printable runs. Anything else (another media type, a payload that is not
valid base64, an "image" whose bytes are not one) is returned whole as text, decoded.
The walk reads headers only and is bounded by the payload's size.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from urllib.parse import unquote_to_bytes

__all__ = ["data_url_text"]

_SIGNATURES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/jpg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
_PRINTABLE = re.compile(rb"[\x20-\x7e\t\n\r]{4,}")
_INFLATED_MAX = 1 << 20  # bytes of a compressed PNG text chunk inflated at most


def data_url_text(url: str) -> str:
    """The text to scan in a ``data:`` URL: its header, plus the image's metadata text
    (for a verified image) or the whole decoded payload (for anything else)."""
    header, _, payload = url.partition(",")
    params = header[5:].split(";")
    media = params[0].strip().lower()
    is_base64 = params[-1].strip().lower() == "base64"
    if not is_base64:
        return header + "\n" + _text(unquote_to_bytes(payload))
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return url  # not base64: scanned as it is
    signatures = _SIGNATURES.get(media, ())
    webp_ok = media != "image/webp" or raw[8:12] == b"WEBP"
    if webp_ok and any(raw.startswith(s) for s in signatures):
        meta = _metadata(raw, media)
        rest = header.partition(";")[2]  # parameters other than the media type
        return "\n".join(t for t in (rest.removesuffix("base64").strip(";"), meta) if t)
    return header + "\n" + _text(raw)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _runs(raw: bytes) -> str:
    return "\n".join(m.group().decode("ascii") for m in _PRINTABLE.finditer(raw))


def _metadata(raw: bytes, media: str) -> str:
    try:
        if media == "image/png":
            return "\n".join(_png(raw))
        if media in ("image/jpeg", "image/jpg"):
            return "\n".join(_jpeg(raw))
        if media == "image/gif":
            return "\n".join(_gif(raw))
        return "\n".join(_webp(raw))
    except (IndexError, ValueError, zlib.error):
        return _runs(raw)  # a malformed container: every printable run, to be safe


def _png(raw: bytes) -> list[str]:
    out: list[str] = []
    pos = 8
    while pos + 8 <= len(raw):
        size = int.from_bytes(raw[pos : pos + 4], "big")
        kind = raw[pos + 4 : pos + 8]
        data = raw[pos + 8 : pos + 8 + size]
        if kind == b"tEXt":
            out.append(_text(data.replace(b"\0", b": ")))
        elif kind == b"zTXt":
            keyword, _, rest = data.partition(b"\0")
            out.append(_text(keyword) + ": " + _text(_inflate(rest[1:])))
        elif kind == b"iTXt":
            keyword, _, rest = data.partition(b"\0")
            compressed = rest[:1] == b"\x01"
            _lang, _, rest = rest[2:].partition(b"\0")
            translated, _, text = rest.partition(b"\0")
            body = _inflate(text) if compressed else text
            out.append(_text(keyword) + ": " + _text(translated) + " " + _text(body))
        elif kind == b"eXIf":
            out.append(_runs(data))
        if kind == b"IEND":
            break
        pos += 12 + size
    return out


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    return inflater.decompress(data, _INFLATED_MAX)


def _jpeg(raw: bytes) -> list[str]:
    out: list[str] = []
    pos = 2
    while pos + 4 <= len(raw) and raw[pos] == 0xFF:
        marker = raw[pos + 1]
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end: the image data follows
            break
        size = int.from_bytes(raw[pos + 2 : pos + 4], "big")
        if marker == 0xFE or 0xE0 <= marker <= 0xEF:
            out.append(_runs(raw[pos + 4 : pos + 2 + size]))
        pos += 2 + size
    return out


def _gif(raw: bytes) -> list[str]:
    out: list[str] = []
    flags = raw[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while pos < len(raw):
        block = raw[pos]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then data sub-blocks
            label = raw[pos + 1]
            data, pos = _sub_blocks(raw, pos + 2)
            if label in (0xFE, 0xFF):  # comment, application (XMP)
                out.append(_runs(data))
        elif block == 0x2C:  # image: descriptor, colour table, LZW size, sub-blocks
            flags = raw[pos + 9]
            pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1
            _, pos = _sub_blocks(raw, pos)
        else:
            raise ValueError("not a GIF block")
    return out


def _sub_blocks(raw: bytes, pos: int) -> tuple[bytes, int]:
    parts: list[bytes] = []
    while True:
        size = raw[pos]
        if size == 0:
            return b"".join(parts), pos + 1
        parts.append(raw[pos + 1 : pos + 1 + size])
        pos += 1 + size


def _webp(raw: bytes) -> list[str]:
    out: list[str] = []
    pos = 12
    while pos + 8 <= len(raw):
        kind = raw[pos : pos + 4]
        size = int.from_bytes(raw[pos + 4 : pos + 8], "little")
        if kind in (b"EXIF", b"XMP "):
            out.append(_runs(raw[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out
