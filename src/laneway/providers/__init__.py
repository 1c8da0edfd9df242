"""Adapters (one per upstream wire format), the upstream HTTP client and the core types."""

from laneway.providers._anthropic import AnthropicAdapter
from laneway.providers._estimate import (
    IMAGE_TOKENS_MAX,
    estimate_completion_tokens,
    estimate_prompt_tokens,
    estimate_usage,
    prompt_upper_bound,
    text_tokens,
)
from laneway.providers._gemini import GeminiAdapter
from laneway.providers._http import (
    AiohttpUpstream,
    Timeouts,
    UpstreamClient,
    UpstreamResponse,
    UpstreamStream,
)
from laneway.providers._local import default_gguf_path
from laneway.providers._openai_chat import OpenAIChatAdapter
from laneway.providers._registry import build_adapter, vendor_for
from laneway.providers._responses_api import (
    RelayEvent,
    ResponsesRelay,
    parse_responses_usage,
    relay_for,
)
from laneway.providers._sse import SSEEvent, iter_sse
from laneway.providers._status import Endpoint, error_for_status, parse_retry_after
from laneway.providers._tei import TEIAdapter
from laneway.providers._types import (
    ChatModel,
    ChatRequest,
    ChatResult,
    ContentPart,
    FunctionCall,
    Message,
    StreamDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = [
    "IMAGE_TOKENS_MAX",
    "AiohttpUpstream",
    "AnthropicAdapter",
    "ChatModel",
    "ChatRequest",
    "ChatResult",
    "ContentPart",
    "Endpoint",
    "FunctionCall",
    "GeminiAdapter",
    "Message",
    "OpenAIChatAdapter",
    "RelayEvent",
    "ResponsesRelay",
    "SSEEvent",
    "StreamDelta",
    "TEIAdapter",
    "Timeouts",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "UpstreamClient",
    "UpstreamResponse",
    "UpstreamStream",
    "Usage",
    "build_adapter",
    "default_gguf_path",
    "error_for_status",
    "estimate_completion_tokens",
    "estimate_prompt_tokens",
    "estimate_usage",
    "iter_sse",
    "parse_responses_usage",
    "parse_retry_after",
    "prompt_upper_bound",
    "relay_for",
    "text_tokens",
    "vendor_for",
]
