"""Typed shapes that cross the core interface between the server and the adapters.

The canonical request is OpenAI's chat-completions request, validated once by the
server into a frozen :class:`ChatRequest`. Adapters translate it to their upstream
wire format and translate the answer back into :class:`ChatResult` (non-streaming)
or a sequence of :class:`StreamDelta` (streaming). The server alone renders OpenAI
JSON and SSE from those.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, Protocol, Required, TypedDict

from laneway.errors import UpstreamBadResponse

__all__ = [
    "CacheMarks",
    "ChatModel",
    "ChatRequest",
    "ChatResult",
    "ContentPart",
    "FunctionCall",
    "Message",
    "StreamDelta",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "token_count",
]


class ImageURL(TypedDict, total=False):
    url: Required[str]
    detail: str


class ContentPart(TypedDict, total=False):
    """One part of a multi-part message: ``{"type": "text", "text"}`` or ``image_url``."""

    type: Required[str]
    text: str
    image_url: ImageURL


class FunctionCall(TypedDict):
    name: str
    arguments: str


class ToolCall(TypedDict):
    id: str
    type: Literal["function"]
    function: FunctionCall


class Message(TypedDict, total=False):
    role: Required[str]
    content: str | list[ContentPart] | None
    name: str
    tool_calls: list[ToolCall]
    tool_call_id: str


class FunctionDef(TypedDict, total=False):
    name: Required[str]
    description: str
    parameters: dict[str, Any]
    strict: bool


class Tool(TypedDict):
    type: Literal["function"]
    function: FunctionDef


class FunctionDelta(TypedDict, total=False):
    name: str
    arguments: str


class ToolCallDelta(TypedDict):
    index: int
    id: NotRequired[str]
    type: NotRequired[Literal["function"]]
    function: NotRequired[FunctionDelta]


CacheMarks = Mapping[tuple[str | int, ...], Mapping[str, Any]]
"""Where an Anthropic Messages client put ``cache_control`` breakpoints, by position:
``("tools", i)`` a tool definition; ``("part", m, p)`` content part ``p`` of message
``m`` (system blocks included); ``("message", m)`` message ``m`` as one block (a ``tool``
message's ``tool_result``, an assistant's text); ``("call", m, c)`` tool call ``c`` of
assistant message ``m``. Kept beside the messages, never inside them, so that adapters
which know nothing of prompt caching send nothing of it."""


@dataclass(slots=True)  # treat as immutable; a frozen __init__ costs ~25k instructions
class ChatRequest:
    """A validated OpenAI chat-completions request (a value: never changed once built;
    use ``dataclasses.replace`` for a variant).

    ``stop`` is always a tuple, ``max_tokens`` merges ``max_completion_tokens``.
    ``tool_choice`` is ``"none" | "auto" | "required"`` or
    ``{"type": "function", "function": {"name": ...}}``. ``response_format`` is the
    OpenAI object (``{"type": "json_schema", "json_schema": {"name", "schema", ...}}``).
    ``options`` holds the remaining OpenAI parameters that only OpenAI-format upstreams
    accept (``presence_penalty``, ``logprobs`` …); other adapters reject them.
    ``cache_control``: Anthropic prompt-caching breakpoints (:data:`CacheMarks`); only
    the Anthropic adapter sends them, every other one drops them (they are a hint).
    ``object_arguments``: the client needs each tool call's arguments as a JSON object
    (Anthropic Messages' ``tool_use.input``); an upstream that sends other text fails the
    answer as malformed instead of passing it on (see ``_tool_arguments``).
    """

    model: str
    messages: tuple[Message, ...]
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    user: str | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: Mapping[str, Any] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    cache_control: CacheMarks = field(default_factory=dict)
    object_arguments: bool = False

    @property
    def json_schema(self) -> Mapping[str, Any] | None:
        """The JSON schema object asked for, or ``None``."""
        rf = self.response_format
        if rf is None or rf.get("type") != "json_schema":
            return None
        spec = rf.get("json_schema")
        return spec if isinstance(spec, Mapping) else None

    @property
    def has_images(self) -> bool:
        for message in self.messages:
            content = message.get("content")
            if isinstance(content, list) and any(p.get("type") == "image_url" for p in content):
                return True
        return False


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_creation_1h_tokens: int = 0  # of cache_creation_tokens, those kept for 1 hour

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


MAX_TOKEN_COUNT = 2**31 - 1
"""More tokens than any request can use: an upstream that reports more is not believed
(billed at such a count, a request would cost millions and overflow the ledger's
64-bit nano-dollars)."""


def token_count(value: Any, provider: str) -> int:
    """One token count from an upstream ``usage`` object: missing/``null`` is 0, an
    integral number is that integer (a negative one is returned as is, and one above
    :data:`MAX_TOKEN_COUNT` as -1: callers treat a usage with a negative count as
    unknown, ``None``), anything else (a string, a bool, a fraction, an object) raises
    :class:`~laneway.errors.UpstreamBadResponse`."""
    if type(value) is int:
        return value if value <= MAX_TOKEN_COUNT else -1
    if value is None:
        return 0
    if type(value) is float and value.is_integer():
        return int(value) if value <= MAX_TOKEN_COUNT else -1
    raise UpstreamBadResponse(
        f"{provider} sent a malformed usage count ({type(value).__name__})", upstream_status=200
    )


@dataclass(slots=True)
class ChatResult:
    """A complete (non-streaming) answer, already translated to OpenAI terms.

    ``finish_reason`` is one of ``stop``, ``length``, ``tool_calls``, ``content_filter``
    (or ``function_call`` from a legacy OpenAI-compatible upstream). ``logprobs`` is the
    OpenAI ``choices[0].logprobs`` object, passed through from OpenAI-format upstreams
    when the client asked for it (other adapters reject ``logprobs``).
    """

    content: str | None
    finish_reason: str
    model: str
    usage: Usage | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    refusal: str | None = None
    logprobs: dict[str, Any] | None = None
    system_fingerprint: str | None = None  # the upstream's backend configuration id


@dataclass(slots=True)
class StreamDelta:
    """One streamed increment. The last delta of a stream carries ``finish_reason``;
    ``usage`` may come on the last or on a separate final delta. ``logprobs`` is the
    chunk's OpenAI ``choices[0].logprobs`` object (OpenAI-format upstreams only)."""

    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    logprobs: dict[str, Any] | None = None
    system_fingerprint: str | None = None


class ChatModel(Protocol):
    """What every adapter and every wrapper (retry, fallback, routing) implements."""

    def check(self, request: ChatRequest) -> None:
        """Raise ``UnsupportedParameter`` for anything this model cannot honour."""

    async def complete(self, request: ChatRequest) -> ChatResult: ...

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        """An async iterator of deltas; errors before the first delta are raised
        from the first ``__anext__``."""
        ...
