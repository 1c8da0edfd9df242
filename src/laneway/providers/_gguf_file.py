"""Read a GGUF file: its metadata and its tensors as memory-mapped numpy arrays.

The format (ggml's ``docs/gguf.md``): a header, key/value metadata, tensor descriptions,
then the aligned tensor data. The ``gguf`` package reads the same, but decodes each of
the vocabulary's ~49,000 strings through numpy views: over 10 s for SmolLM2's file on
this project's 2-core machine, where this reader takes well under one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["GgufFile", "GgufTensor", "TensorType"]


class TensorType:
    """ggml tensor type ids that the numpy runtime multiplies."""

    F32 = 0
    F16 = 1
    Q4_0 = 2
    Q4_1 = 3
    Q8_0 = 8


# (elements per block, bytes per block)
_BLOCKS = {
    TensorType.F32: (1, 4),
    TensorType.F16: (1, 2),
    TensorType.Q4_0: (32, 18),
    TensorType.Q4_1: (32, 20),
    TensorType.Q8_0: (32, 34),
}
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True, slots=True)
class GgufTensor:
    """One tensor: ``data`` is rows × bytes-per-row (uint8) for a quantized type,
    rows × columns for F32/F16, memory-mapped from the file."""

    name: str
    kind: int
    dims: tuple[int, ...]  # ggml order: columns first
    data: npt.NDArray[Any]


class _Cursor:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def scalar(self, fmt: str) -> Any:
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        size = self.scalar("<Q")
        text = self.buf[self.pos : self.pos + size].decode("utf-8", "replace")
        self.pos += size
        return text

    def value(self, kind: int) -> Any:
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item_kind = self.scalar("<I")
            count = self.scalar("<Q")
            if item_kind in _SCALARS and item_kind != 7:
                dtype = np.dtype(_SCALARS[item_kind])
                values = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
                self.pos += dtype.itemsize * count
                return values.tolist()
            return [self.value(item_kind) for _ in range(count)]
        if kind not in _SCALARS:
            raise ValueError(f"unknown GGUF value type {kind}")
        return self.scalar(_SCALARS[kind])


class GgufFile:
    """``fields`` (metadata by key) and ``tensors`` (by name) of one GGUF file."""

    def __init__(self, path: str | Path) -> None:
        raw = np.memmap(path, dtype=np.uint8, mode="r")
        head = bytes(raw[: min(len(raw), 64 << 20)])  # metadata precedes the tensors
        cursor = _Cursor(head)
        if head[:4] != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        cursor.pos = 4
        version = cursor.scalar("<I")
        if version not in (2, 3):
            raise ValueError(f"GGUF version {version} is not supported")
        tensor_count = cursor.scalar("<Q")
        kv_count = cursor.scalar("<Q")
        fields: dict[str, Any] = {}
        for _ in range(kv_count):
            key = cursor.string()
            fields[key] = cursor.value(cursor.scalar("<I"))
        infos = []
        for _ in range(tensor_count):
            name = cursor.string()
            dims = tuple(cursor.scalar("<Q") for _ in range(cursor.scalar("<I")))
            infos.append((name, dims, cursor.scalar("<I"), cursor.scalar("<Q")))
        alignment = int(fields.get("general.alignment", 32))
        start = -(-cursor.pos // alignment) * alignment
        self.fields = fields
        self.tensors: dict[str, GgufTensor] = {}
        for name, dims, kind, offset in infos:
            if kind not in _BLOCKS:
                raise ValueError(
                    f"tensor {name!r} has ggml type {kind}, which the numpy runtime does not "
                    "read (it reads F32, F16, Q4_0, Q4_1 and Q8_0)"
                )
            per_block, block_bytes = _BLOCKS[kind]
            columns, rows = dims[0], prod(dims[1:])
            size = columns // per_block * block_bytes * rows
            flat = raw[start + offset : start + offset + size]
            if kind == TensorType.F32:
                data: npt.NDArray[Any] = flat.view(np.float32).reshape(rows, columns)
            elif kind == TensorType.F16:
                data = flat.view(np.float16).reshape(rows, columns)
            else:
                data = flat.reshape(rows, -1)
            self.tensors[name] = GgufTensor(name, kind, dims, data)
