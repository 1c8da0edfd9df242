"""The gateway core: what happens to a request between the wire format and the upstreams.

A protocol (``laneway.server``) parses its wire format into a neutral
:class:`~laneway.providers.ChatRequest`, creates a :class:`RequestContext` and calls the
core once: :meth:`Gateway.complete` returns a :class:`CallOutcome`;
:meth:`Gateway.stream` yields the deltas worth sending and then one final
:class:`CallOutcome`. Inside: admit (key limits, budget reservation, sensitive-data scan),
route, policy filter, candidate chain, call with retries and fallbacks, account (costs,
estimates, partial billing) and record (ledger, metrics) in one ``finally``. Evals and
benchmarks call it in-process with :func:`run_request`.
"""

from laneway.gateway._build import build_gateway
from laneway.gateway._context import CallOutcome, RequestContext
from laneway.gateway._core import OFFLOAD_SCAN_FROM, Gateway
from laneway.gateway._deployments import Deployment, Prices, Resolution, Resolver
from laneway.gateway._direct import CallReport, run_request
from laneway.gateway._embed import EmbedRequest
from laneway.gateway._life import close_stream
from laneway.gateway._metrics import Metrics
from laneway.gateway._relay import RelayOutcome, RelayRequest
from laneway.gateway._shadow import SHADOW_PAIRS, ShadowMirror

__all__ = [
    "OFFLOAD_SCAN_FROM",
    "SHADOW_PAIRS",
    "CallOutcome",
    "CallReport",
    "Deployment",
    "EmbedRequest",
    "Gateway",
    "Metrics",
    "Prices",
    "RelayOutcome",
    "RelayRequest",
    "RequestContext",
    "Resolution",
    "Resolver",
    "ShadowMirror",
    "build_gateway",
    "close_stream",
    "run_request",
]
