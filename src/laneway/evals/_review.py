"""``laneway eval review RUN`` and ``laneway shadow review``: a local web page where a
person picks A / B / tie.

The page only ever sees the request and two answers labelled A and B (sides shuffled per
item, model names never sent); each choice goes to the server's sink: for an eval run it
is saved with the run as a ``human`` pairwise verdict, for shadow pairs on the pair's row
(:func:`shadow_review_items` draws the sample). The server is the standard library's,
on 127.0.0.1 with a random port, in a background thread. It keeps serving after the last
choice until the page has fetched the "all pairs reviewed" state (or ``grace_s`` later if
the page is gone). Identical answers are never shown (they are a tie without anyone's
verdict).
Keyboard: ``A``/``1``/``←`` = A, ``B``/``2``/``→`` = B, ``T``/``3``/``↓`` = tie.
"""

from __future__ import annotations

import itertools
import os
import random
import secrets
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Self

import orjson

from laneway.evals._checks import normalize_answer
from laneway.evals._store import PairVerdict, RunRecord

__all__ = [
    "ReviewItem",
    "ReviewServer",
    "VerdictSink",
    "can_open_browser",
    "review_items",
    "shadow_review_items",
]


@dataclass(frozen=True, slots=True)
class ReviewItem:
    token: str
    case_id: str
    model_a: str  # the pair's first model (as stored)
    model_b: str
    swapped: bool  # True: model_b is shown as "A"
    prompt: str
    answer_a: str
    answer_b: str

    def shown(self) -> tuple[str, str]:
        return (self.answer_b, self.answer_a) if self.swapped else (self.answer_a, self.answer_b)

    def winner(self, choice: str) -> str:
        """The stored winner ("a" = model_a) for the side the person chose."""
        if choice == "tie" or not self.swapped:
            return choice
        return "b" if choice == "a" else "a"


def _prompt_text(case: dict[str, Any]) -> str:
    parts = [f"[system] {case['system']}"] if case.get("system") else []
    parts += [f"[{m['role']}] {m['content']}" for m in case.get("messages", [])]
    if case.get("prompt") is not None:
        parts.append(case["prompt"])
    return "\n\n".join(parts)


def review_items(record: RunRecord, seed: int | None = None) -> list[ReviewItem]:
    """Pairs still to review: repeat 0 of each case, every pair of candidates."""
    info = record.info()
    prompts = {c["id"]: _prompt_text(c) for c in info.suite.get("cases", [])}
    outputs: dict[tuple[str, str], str] = {}
    for row in record.results():
        if row.repeat == 0 and row.output is not None:
            outputs[(row.case_id, row.model)] = row.output
    done = {(p.case_id, p.model_a, p.model_b) for p in record.pairs("human")}
    rng = random.Random(seed)
    items = [
        ReviewItem(
            token=secrets.token_urlsafe(9),
            case_id=case_id,
            model_a=a,
            model_b=b,
            swapped=rng.random() < 0.5,
            prompt=prompt,
            answer_a=outputs[(case_id, a)],
            answer_b=outputs[(case_id, b)],
        )
        for case_id, prompt in prompts.items()
        for a, b in itertools.combinations(info.models, 2)
        if (case_id, a) in outputs
        and (case_id, b) in outputs
        and (case_id, a, b) not in done
        and normalize_answer(outputs[(case_id, a)]) != normalize_answer(outputs[(case_id, b)])
    ]
    rng.shuffle(items)
    return items


def _messages_text(messages: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):  # content parts: the text ones
            content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        parts.append(f"[{message.get('role', 'user')}] {content or ''}")
    return "\n\n".join(parts)


def shadow_review_items(
    rows: Sequence[Mapping[str, Any]], sample: int, seed: int | None = None
) -> list[ReviewItem]:
    """A random sample of at most ``sample`` shadow pairs for blind review: rows of
    ``shadow_pairs`` (``id``, ``prompt``, both outputs, ``candidate_error``,
    ``human_verdict``). Pairs already reviewed, failed calls and identical answers are
    never shown. ``model_a`` is the candidate, ``model_b`` the primary (never sent to the
    page); the item's ``case_id`` is the row id."""
    eligible = [
        row
        for row in rows
        if row.get("human_verdict") is None
        and row.get("candidate_error") is None
        and row.get("candidate_output") is not None
        and row.get("primary_output") is not None
        and normalize_answer(row["candidate_output"]) != normalize_answer(row["primary_output"])
    ]
    rng = random.Random(seed)
    chosen = rng.sample(eligible, min(sample, len(eligible)))
    return [
        ReviewItem(
            token=secrets.token_urlsafe(9),
            case_id=str(row["id"]),
            model_a="candidate",
            model_b="primary",
            swapped=rng.random() < 0.5,
            prompt=_messages_text(row["prompt"]),
            answer_a=row["candidate_output"],
            answer_b=row["primary_output"],
        )
        for row in chosen
    ]


VerdictSink = Callable[[ReviewItem, str], None]
"""Stores one person's choice: the item and its winner (``a`` = ``model_a``, ``b``, ``tie``)."""


def _run_sink(record: RunRecord) -> VerdictSink:
    def save(item: ReviewItem, winner: str) -> None:
        record.save_pair(
            PairVerdict(
                item.case_id,
                item.model_a,
                item.model_b,
                "human",
                winner,
                {"shown_as": "b" if item.swapped else "a"},
            )
        )

    return save


class ReviewServer:
    """Serves the review page for ``items`` until :meth:`stop`; each choice goes to
    ``sink`` (a run record: saved with the run as a ``human`` verdict)."""

    def __init__(self, sink: RunRecord | VerdictSink, items: list[ReviewItem]) -> None:
        self._save = _run_sink(sink) if isinstance(sink, RunRecord) else sink
        self.items = items
        self.total = len(items)
        self.saved = 0
        self._lock = threading.Lock()
        self._by_token = {item.token: item for item in items}
        self._pending = list(items)
        self._page = resources.files("laneway.evals").joinpath("templates/review.html").read_bytes()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.finished = threading.Event()  # the page was told every pair is reviewed
        self._all_saved_at: float | None = None
        if not items:
            self.finished.set()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def next_item(self) -> dict[str, Any]:
        with self._lock:
            if not self._pending:
                self.finished.set()
                return {"done": True, "saved": self.saved, "total": self.total}
            item = self._pending[0]
            left, right = item.shown()
            return {
                "done": False,
                "token": item.token,
                "prompt": item.prompt,
                "a": left,
                "b": right,
                "position": self.total - len(self._pending) + 1,
                "total": self.total,
            }

    def choose(self, token: str, choice: str) -> bool:
        if choice not in ("a", "b", "tie"):
            return False
        with self._lock:
            item = self._by_token.get(token)
            if item is None or item not in self._pending:
                return False
            self._save(item, item.winner(choice))
            self._pending.remove(item)
            self.saved += 1
            if not self._pending:
                self._all_saved_at = time.monotonic()
        return True

    def done(self, grace_s: float = 10.0) -> bool:
        """True once the page has shown "all pairs reviewed", or ``grace_s`` seconds
        after the last verdict when the page never asked (closed meanwhile)."""
        if self.finished.is_set():
            return True
        saved_at = self._all_saved_at
        return saved_at is not None and time.monotonic() - saved_at >= grace_s

    def start(self) -> Self:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _content_length(value: str | None, limit: int = 65536) -> int | None:
    """A request body's length, at most ``limit``; ``None`` when it is not a number of
    bytes (``abc`` raised in the handler: a traceback on the reviewer's terminal; ``-1``
    read until the client hung up)."""
    text = (value or "0").strip()
    return min(int(text), limit) if text.isascii() and text.isdigit() else None


def _handler_for(review: ReviewServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.send_header("cache-control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, review._page, "text/html; charset=utf-8")
            elif self.path == "/api/next":
                self._send(HTTPStatus.OK, orjson.dumps(review.next_item()), "application/json")
            else:
                self._send(HTTPStatus.NOT_FOUND, b'{"error": "not found"}', "application/json")

        def do_POST(self) -> None:
            if self.path != "/api/choice":
                self._send(HTTPStatus.NOT_FOUND, b'{"error": "not found"}', "application/json")
                return
            length = _content_length(self.headers.get("content-length"))
            ok = False
            if length is not None:  # not a number, or negative: a read that never ends
                try:
                    body = orjson.loads(self.rfile.read(length))
                    ok = review.choose(str(body["token"]), str(body["choice"]))
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    pass
            status = HTTPStatus.OK if ok else HTTPStatus.BAD_REQUEST
            self._send(status, orjson.dumps({"ok": ok}), "application/json")

    return Handler


def can_open_browser(env: dict[str, str] | None = None) -> bool:
    """False under CI or without a display (never try to open a browser there)."""
    env = dict(os.environ) if env is None else env
    if env.get("CI"):
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
