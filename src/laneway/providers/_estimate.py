"""One estimate of a request's size in tokens, used wherever the upstream's own count is
missing or not yet known: billing a call that sent no ``usage`` (or was cut off), budget
reservations (an upper bound) and tokens-per-minute limits.

About 4 characters a token for text (``prompt_upper_bound`` uses 3, to stay above the
real count for code and non-English text), OpenAI's per-message overhead (3 a message,
3 to prime the answer), and for each image a fixed count: images are billed by their
pixels, which the gateway does not decode, so the estimate takes the most a provider
charges for one image (``IMAGE_TOKENS_MAX``) — a base64 ``data:`` URL's characters are
never counted as text.
"""

from __future__ import annotations

from laneway.providers._types import ChatRequest, ChatResult, Usage

__all__ = [
    "IMAGE_TOKENS_MAX",
    "estimate_completion_tokens",
    "estimate_prompt_tokens",
    "estimate_usage",
    "prompt_upper_bound",
    "text_tokens",
]

# The most one image costs at the providers Laneway speaks to, rounded up: OpenAI
# high detail 1,445 (gpt-4o: 85 + 170 × 8 tiles) and 2,488 on patch-billed models
# (1,536 patches × 1.62); Anthropic ~1,600 (1.15 MP / 750); Gemini 258 per 768-px
# tile (16 tiles for a 3,000-px image: 4,128).
IMAGE_TOKENS_MAX = 4_200
_LOW_DETAIL = 85  # OpenAI's fixed price of a "detail": "low" image
_PER_MESSAGE = 3
_PRIME = 3


def text_tokens(chars: int, chars_per_token: int = 4) -> int:
    """Tokens for ``chars`` characters of text (rounded up)."""
    return (chars + chars_per_token - 1) // chars_per_token


def _sizes(request: ChatRequest) -> tuple[int, int]:
    """(characters of text, image tokens) of every message, tool definition and schema."""
    chars = 0
    images = 0
    for message in request.messages:
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                text = part.get("text")
                if isinstance(text, str):
                    chars += len(text)
                elif part.get("type") == "image_url":
                    image = part.get("image_url")
                    detail = image.get("detail") if image is not None else None
                    images += _LOW_DETAIL if detail == "low" else IMAGE_TOKENS_MAX
        for call in message.get("tool_calls") or ():
            chars += len(call["function"]["arguments"]) + len(call["function"]["name"])
        name = message.get("name")
        if isinstance(name, str):
            chars += len(name)
    for tool in request.tools:
        function = tool["function"]
        chars += len(function["name"]) + len(function.get("description") or "")
        parameters = function.get("parameters")
        if parameters:
            chars += len(repr(parameters))
    schema = request.json_schema
    if schema is not None:
        chars += len(repr(schema.get("schema") or {}))
    return chars, images


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """The prompt's tokens, as well as they can be told without the model's tokenizer."""
    chars, images = _sizes(request)
    return text_tokens(chars) + images + _PER_MESSAGE * len(request.messages) + _PRIME


def prompt_upper_bound(request: ChatRequest) -> int:
    """A prompt size the real count should not exceed (3 characters a token)."""
    chars, images = _sizes(request)
    return text_tokens(chars, 3) + images + 2 * _PER_MESSAGE * len(request.messages) + _PRIME


def estimate_completion_tokens(result: ChatResult) -> int:
    """An answer's tokens from its text and tool calls (at least 1)."""
    chars = len(result.content or "")
    for call in result.tool_calls:
        chars += len(call["function"]["arguments"]) + len(call["function"]["name"])
    return max(1, text_tokens(chars))


def estimate_usage(request: ChatRequest, completion_tokens: int) -> Usage:
    """A stand-in ``Usage`` for a call whose upstream did not say."""
    return Usage(prompt_tokens=estimate_prompt_tokens(request), completion_tokens=completion_tokens)
