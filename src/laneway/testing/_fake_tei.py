"""A fake text-embeddings-inference server speaking TEI's native ``POST /embed``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from laneway.testing._fake_openai import _fake_vector as fake_vector
from laneway.testing._server import (
    FakeUpstreamServer,
    Fault,
    broken_json,
    count_tokens,
    json_response,
)

__all__ = ["FakeTEI"]

_ERROR_TYPES = {413: "validation", 422: "tokenizer", 424: "backend", 429: "overloaded"}


class FakeTEI(FakeUpstreamServer):
    """``POST /embed`` as TEI answers it: ``{"inputs": str | [str], "normalize"?,
    "truncate"?}`` → a bare array of vectors (``size`` floats each, the same numbers as
    the fake OpenAI's for the same text), the token count in ``x-compute-tokens``.

    Like the real server: more than ``max_batch`` inputs is 413 ``validation``, an empty
    input 400 ``empty``, an unknown field 422; errors are ``{"error", "error_type"}``.
    ``api_key``, when set, is required as ``Authorization: Bearer`` (401 otherwise).
    ``token_header=False`` leaves out ``x-compute-tokens``.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        max_batch: int = 32,
        size: int = 8,
        token_header: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("model", "BAAI/bge-m3")
        super().__init__(**kwargs)
        self.api_key = api_key
        self.max_batch = max_batch
        self.size = size
        self.token_header = token_header

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/embed", self._embed)]

    def error_body(self, fault: Fault, message: str | None = None) -> web.Response:
        kind = fault.error_code or _ERROR_TYPES.get(fault.status, "backend")
        payload = {"error": message or f"scripted error {fault.status}", "error_type": kind}
        headers = {}
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
        return json_response(payload, status=fault.status, headers=headers)

    def _refuse(self, status: int, kind: str, message: str) -> web.Response:
        return self.error_body(Fault("status", status=status, error_code=kind), message)

    async def _embed(self, request: web.Request) -> web.Response:
        body = await self.record(request)
        fault = self.take_fault()
        await self.before_answer(request, fault)
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return web.Response(status=401)  # TEI answers a bad key with a bare 401
        early = self.fault_response(fault)
        if early is not None:
            return early
        if not isinstance(body, dict):
            return self._refuse(422, "validation", "Failed to deserialize the JSON body")
        unknown = set(body) - {"inputs", "normalize", "truncate", "truncation_direction",
                               "prompt_name", "dimensions"}  # fmt: skip
        if unknown:
            return self._refuse(422, "validation", f"unknown field `{sorted(unknown)[0]}`")
        inputs = body.get("inputs")
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return self._refuse(422, "validation", "inputs: expected a string or strings")
        if not texts or any(not t for t in texts):
            return self._refuse(400, "empty", "Input validation error: `inputs` cannot be empty")
        if len(texts) > self.max_batch:
            return self._refuse(
                413,
                "validation",
                f"batch size {len(texts)} > maximum allowed batch size {self.max_batch}",
            )
        if fault is not None and fault.kind == "malformed":
            return broken_json(b"[[0.1, 0.2")
        headers = {"x-compute-type": "cpu"}
        if self.token_header:
            headers["x-compute-tokens"] = str(sum(count_tokens(t) + 2 for t in texts))
        return json_response([fake_vector(t, self.size) for t in texts], headers=headers)
