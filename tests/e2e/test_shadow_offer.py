"""``ShadowMirror.offer``, the only shadow work on a request's own path: it queues what
the worker needs for sampled, matching client requests only, counts a full queue's drops,
and the worker builds the job (latency, tokens, cost of the primary) off the path."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from laneway.gateway import ShadowMirror
from laneway.providers import ChatRequest, ChatResult, Usage
from laneway.settings import ShadowSettings


def _mirror(rate: float, queue: int = 10) -> tuple[Any, Any]:
    rule = {"name": "r", "match": {"model": ["primary"]}, "sample_rate": rate,
            "candidates": ["cand"], "daily_budget_usd": "1"}  # fmt: skip
    settings = ShadowSettings.model_validate({"rules": [rule], "queue": queue})
    gateway = SimpleNamespace(metrics=SimpleNamespace(shadow=defaultdict(int)))
    mirror: Any = ShadowMirror(settings, engine=None, gateway=gateway)  # type: ignore[arg-type]
    mirror._queue = asyncio.Queue(queue)  # no workers: look at what was queued
    return mirror, gateway


def _ctx(model: str = "primary", source: str = "api", started: float = 0.0) -> Any:
    request = ChatRequest(model=model, messages=({"role": "user", "content": "hi"},))
    return SimpleNamespace(
        source=source, request=request, request_id="req-1", admission=None, key_id="k",
        task="t", trace=SimpleNamespace(served_by="prim-deploy"), started=started,
        estimated_usage=None, resolution=None, requested_model=model,
    )  # fmt: skip


RESULT = ChatResult(content="answer", finish_reason="stop", usage=Usage(3, 7), model="served-model")


def test_offer_queues_sampled_matching_client_requests_only() -> None:
    async def run() -> None:
        mirror, gateway = _mirror(rate=1.0, queue=1)
        mirror.offer(_ctx(model="other"), RESULT, "answer", None)
        mirror.offer(_ctx(source="shadow"), RESULT, "answer", None)
        assert mirror._queue.qsize() == 0
        mirror.offer(_ctx(), RESULT, "answer", Decimal("0.002"))
        assert mirror._queue.qsize() == 1
        mirror.offer(_ctx(), RESULT, "answer", None)  # the queue is full
        assert gateway.metrics.shadow["r", "dropped"] == 1
        job = mirror._job(mirror._queue.get_nowait())
        assert (job.request_id, job.primary_deployment, job.primary_model) == (
            "req-1",
            "prim-deploy",
            "served-model",
        )
        assert (job.primary_output, job.primary_tokens, job.primary_cost) == (
            "answer",
            7,
            Decimal("0.002"),
        )
        assert job.primary_latency_ms > 0  # answered after ``started`` (0.0)

    asyncio.run(run())


def test_an_unsampled_request_stops_at_the_draw() -> None:
    async def run() -> None:
        mirror, _ = _mirror(rate=0.1)
        mirror._random = lambda: 0.5  # above the rate: not sampled
        matched: list[object] = []
        mirror._matches = lambda rule, ctx: matched.append(ctx) or True
        mirror.offer(_ctx(), RESULT, "answer", None)
        assert mirror._queue.qsize() == 0
        assert matched == []  # the rule's match was never evaluated
        mirror._random = lambda: 0.05
        mirror.offer(_ctx(), RESULT, "answer", None)
        assert mirror._queue.qsize() == 1 and len(matched) == 1

    asyncio.run(run())
