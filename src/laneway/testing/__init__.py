"""Fake upstream servers speaking each provider's real wire protocol, for tests.

Each fake is a real HTTP server on a loopback port (aiohttp, in a background thread):
it records what it received (``.received``) and plays scripted faults
(``.fail_next(Fault("status", status=429, retry_after=1))``).
"""

from laneway.testing._fake_anthropic import FakeAnthropic
from laneway.testing._fake_gemini import FakeGemini
from laneway.testing._fake_openai import FakeOpenAI
from laneway.testing._fake_openai_responses import FakeOpenAIResponses
from laneway.testing._fake_tei import FakeTEI
from laneway.testing._gateway import RunningGateway
from laneway.testing._server import (
    FakeReply,
    FakeTurn,
    FakeUpstreamServer,
    Fault,
    ReceivedRequest,
    Responder,
    count_tokens,
    default_responder,
    running,
)

__all__ = [
    "FakeAnthropic",
    "FakeGemini",
    "FakeOpenAI",
    "FakeOpenAIResponses",
    "FakeReply",
    "FakeTEI",
    "FakeTurn",
    "FakeUpstreamServer",
    "Fault",
    "ReceivedRequest",
    "Responder",
    "RunningGateway",
    "count_tokens",
    "default_responder",
    "running",
]
