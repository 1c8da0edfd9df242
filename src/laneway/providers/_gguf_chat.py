"""Text side of the numpy runtime: the GGUF file's own tokenizer and chat template.

The tokenizer is rebuilt from the GGUF metadata (``tokenizer.ggml.*``: a GPT-2 style
byte-level BPE, vocabulary and merges) with the ``tokenizers`` library, using the
pre-tokenizer llama.cpp applies for the file's ``tokenizer.ggml.pre`` (``smollm``:
each digit alone, then the GPT-2 split). Control tokens (``<|im_start|>``…) are
special: recognised in a rendered prompt, never printed in an answer. The chat template
is rendered the way llama-cpp-python renders it (sandboxed Jinja2, ``trim_blocks``,
``lstrip_blocks``, ``add_generation_prompt``), so both runtimes see the same prompt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

__all__ = ["GgufTokenizer", "render_chat"]

_CONTROL = 3
_USER_DEFINED = 4
# Pre-tokenizers that split digits one by one before the GPT-2 regex (llama-vocab.cpp).
_SINGLE_DIGITS = frozenset({"smollm", "starcoder", "refact", "codeshell"})


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-in character for each byte, reversed."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


class GgufTokenizer:
    """Encode text to token ids and ids back to bytes, from GGUF tokenizer metadata."""

    def __init__(
        self,
        tokens: Sequence[str],
        token_types: Sequence[int],
        merges: Sequence[str],
        *,
        pre: str,
        eos_id: int,
        bos_id: int | None,
    ) -> None:
        from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

        vocab = {text: index for index, text in enumerate(tokens)}
        pairs = [(left, right) for left, _, right in (m.partition(" ") for m in merges)]
        bpe = models.BPE(vocab=vocab, merges=pairs, fuse_unk=False, byte_fallback=False)
        tokenizer = Tokenizer(bpe)
        byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tokenizer.pre_tokenizer = (
            pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
            if pre in _SINGLE_DIGITS
            else byte_level
        )
        tokenizer.decoder = decoders.ByteLevel()
        special = [
            tokens[i] for i, kind in enumerate(token_types) if kind in (_CONTROL, _USER_DEFINED)
        ]
        tokenizer.add_special_tokens(
            [AddedToken(t, special=True, normalized=False) for t in special]
        )
        self._tokenizer = tokenizer
        self.eos_id = eos_id
        self.bos_id = bos_id
        self.vocab_size = len(tokens)
        decoder = _byte_decoder()
        self._bytes: list[bytes] = [
            b"" if token_types[i] == _CONTROL else bytes(decoder.get(c, 0x3F) for c in text)
            for i, text in enumerate(tokens)
        ]
        self.end_ids = frozenset(
            {eos_id}
            | {vocab[t] for t in ("<|endoftext|>", "<|im_end|>", "<|eot_id|>") if t in vocab}
        )
        self.eos_text = tokens[eos_id]
        self.bos_text = tokens[bos_id] if bos_id is not None else ""

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> GgufTokenizer:
        if fields.get("tokenizer.ggml.model") != "gpt2":
            raise ValueError("only GPT-2 style BPE tokenizers are supported")
        return cls(
            fields["tokenizer.ggml.tokens"],
            fields["tokenizer.ggml.token_type"],
            fields["tokenizer.ggml.merges"],
            pre=str(fields.get("tokenizer.ggml.pre", "default")),
            eos_id=int(fields["tokenizer.ggml.eos_token_id"]),
            bos_id=fields.get("tokenizer.ggml.bos_token_id"),
        )

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; control tokens written in it are recognised."""
        ids: list[int] = self._tokenizer.encode(text, add_special_tokens=False).ids
        return ids

    def token_bytes(self, token: int) -> bytes:
        """The bytes a generated token prints (nothing for a control token)."""
        return self._bytes[token]

    def decode(self, ids: Sequence[int]) -> str:
        return b"".join(self._bytes[i] for i in ids).decode("utf-8", "replace")


def render_chat(template: str, messages: Sequence[Mapping[str, Any]], *, eos: str, bos: str) -> str:
    """The prompt for ``messages`` with the model's chat template (sandboxed Jinja2)."""
    rendered: str = _compile(template).render(
        messages=list(messages),
        eos_token=eos,
        bos_token=bos,
        add_generation_prompt=True,
    )
    return rendered


@lru_cache(maxsize=4)
def _compile(template: str) -> Any:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template)
