"""``LedgerRow``: one request (``attempt == 0``) or one upstream attempt (``attempt >= 1``).

How the gateway fills rows (the contract the usage queries rely on):

* every request gets one **summary row** with ``attempt=0``: the status given to the client,
  the deployment that finally answered (``None`` when none did), end-to-end latency and TTFT,
  the number of fallbacks, the route reason/score, the audit data and, optionally, the totals
  of tokens and cost that were reported to the client;
* every upstream call gets an **attempt row** (``attempt=1..n``) with what that call actually
  consumed: its own deployment, hosting, tokens, cost, latency, upstream status and error kind
  — except when a request was answered in full by its first and only call: then the summary
  row already says everything about that call (the deployment, tokens and cost are the
  call's; the latency is end-to-end) and no attempt row is written. Retries, fallbacks,
  failed and cut-off calls always get their attempt rows. (One row instead of two on the
  common path: the ledger is the largest cost the gateway adds per request.)
* request-level fields (``key_id``, ``source``, ``requested_model``, ``tier``) are repeated on
  attempt rows; the queries take them from the summary row when it exists.

Usage figures count requests, errors and latency from summary rows and tokens and cost from
attempt rows (what really ran and what the providers bill), so nothing is counted twice; a
request with no attempt rows falls back to the tokens and cost of its summary row (and counts
as one attempt when its summary names a deployment).

Costs: ``cost_usd`` is ``None`` when the price is unknown, never 0. Self-hosted and embedded
deployments leave ``cost_usd`` ``None`` and set ``hourly_cost_usd``; the query layer amortises
it over the tokens the deployment served in that UTC hour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

__all__ = ["HOSTINGS", "SOURCES", "LedgerRow"]

SOURCES = ("api", "eval")
HOSTINGS = ("closed_api", "serverless", "self_hosted", "embedded")


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~10 µs for 26 fields, twice
class LedgerRow:  # a request; rows are built once by the gateway and never changed
    """One ledger row. ``ts`` is when the request (or attempt) started, timezone-aware UTC."""

    request_id: str
    attempt: int
    ts: datetime
    requested_model: str
    status: int
    key_id: str | None = None
    source: str = "api"
    tier: str | None = None
    deployment: str | None = None
    hosting: str | None = None
    model_id: str | None = None
    stream: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    cost_usd: Decimal | None = None
    hourly_cost_usd: Decimal | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    error_kind: str | None = None
    fallbacks: int = 0
    partial: bool = False
    route_reason: str | None = None
    route_score: float | None = None
    prompt: str | None = None
    audit: Mapping[str, Any] | None = None
    estimated: bool = False  # tokens (so cost) estimated: the upstream sent no usage
    task: str | None = None  # the request's task (router v2: per-task gains)
    served_model: str | None = None  # the model id the upstream reported
    fingerprint: str | None = None  # the upstream's system_fingerprint, when it sent one
    mirror_of: str | None = None  # a shadow copy: the id of the request it mirrors
    client: str | None = None  # client address (requests refused before routing)
    cache_write_tokens: int | None = None  # prompt tokens written to the provider's cache
