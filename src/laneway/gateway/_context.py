"""What the core keeps about one request while it runs (:class:`RequestContext`) and what
it hands back when the request ends (:class:`CallOutcome`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from laneway.errors import LanewayError
from laneway.gateway._deployments import Resolution
from laneway.governance import Admission, KeyRecord, Reservation
from laneway.providers import ChatRequest, ChatResult, Usage
from laneway.resilience import Trace
from laneway.router import CascadeSpec

__all__ = ["CallOutcome", "RequestContext"]


@dataclass(slots=True)
class RequestContext:
    """Everything the core and the ledger need about one client request. The protocol
    layer creates it (request id, start time), fills in who asked (``key``) and what
    (``task``); the core fills in the rest."""

    request_id: str
    started: float
    requested_model: str
    key_id: str | None = None
    source: str = "api"
    stream: bool = False
    resolution: Resolution | None = None
    trace: Trace = field(default_factory=Trace)
    request: ChatRequest | None = None
    log_prompt: bool | None = None
    key: KeyRecord | None = None
    route_score: float | None = None
    admission: Admission | None = None
    reservation: Reservation | None = None
    estimated: bool = False  # the served call's usage is an estimate (upstream sent none)
    estimated_usage: Usage | None = None
    task: str | None = None  # x-laneway-task / metadata.laneway_task (per-task routing)
    served_model: str | None = None  # the model id the upstream said answered
    model_id: str = ""  # the model to name in the answer: the served deployment's model
    fingerprint: str | None = None  # its system_fingerprint, when it sent one
    cascade: CascadeSpec | None = None  # the router's cascade when this request cascades
    cascade_audit: dict[str, object] | None = None
    # Set by the protocol layer just before it cancels the request's task because the
    # client went away: the core then bills what was used and records a 499. Any other
    # cancellation is the server shutting down (the client gets an error it can read).
    client_gone: bool = False


@dataclass(slots=True)
class CallOutcome:
    """How a request ended: its status, usage and cost; ``result`` for a non-streamed
    answer, ``finish_reason`` for a stream's end, ``vectors`` for embeddings, ``error``
    (already made safe to show the client) for a failure."""

    status: int
    usage: Usage | None = None
    error: LanewayError | None = None
    partial: bool = False
    ttft: float | None = None
    cost: Decimal | None = None
    priced: bool = False  # ``cost`` is the request's cost, already computed
    result: ChatResult | None = None
    finish_reason: str | None = None
    vectors: list[list[float]] | None = None  # an embeddings request's answer
