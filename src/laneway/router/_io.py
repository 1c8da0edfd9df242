"""Reading prompt and outcome files (JSON Lines, optionally gzip-compressed)."""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from laneway.errors import InvalidRequest
from laneway.router._conversation import (
    Conversation,
    conversation_from_messages,
    conversation_from_prompt,
)

__all__ = [
    "MAX_LINE_CHARS",
    "TASK_NAME",
    "conversation_of",
    "iter_jsonl",
    "open_text",
    "outcome_row",
    "read_outcomes",
]

# A line is read whole before it is parsed: one endless line (a file that is not JSON
# Lines, a corrupt export) must not take the machine's memory. The shared data's longest
# row (a prompt with 49 models' answers) is 156k characters.
MAX_LINE_CHARS = 32 * 1024 * 1024


def open_text(path: Path) -> TextIO:
    """The file as text; bytes that are not UTF-8 become U+FFFD (the line then fails to
    parse or is read with the replacement), never an exception halfway through a file.
    A byte-order mark at the start (files saved by Windows tools) is dropped."""
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace")
        return path.open(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror or exc}") from exc


def iter_jsonl(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, raw line) for every non-blank line.

    A missing or unreadable file, a corrupt or truncated ``.gz``, or a line longer than
    ``MAX_LINE_CHARS`` raises ``InvalidRequest`` naming the file and the line.
    """
    with open_text(path) as handle:
        number = 0
        try:
            while line := handle.readline(MAX_LINE_CHARS + 1):
                number += 1
                if len(line) > MAX_LINE_CHARS:
                    raise InvalidRequest(
                        f"{path}:{number}: line longer than {MAX_LINE_CHARS:,} characters"
                    )
                if line.strip():
                    yield number, line
        except (OSError, EOFError) as exc:
            raise InvalidRequest(f"cannot read {path} after line {number}: {exc}") from exc


def conversation_of(record: Any) -> Conversation:
    """The conversation in a record with ``prompt``, ``question`` or ``messages``."""
    if not isinstance(record, Mapping):
        raise InvalidRequest("line is not a JSON object")
    messages = record.get("messages")
    if messages is not None:
        if not isinstance(messages, list) or not messages:
            raise InvalidRequest("'messages' must be a non-empty list of messages")
        return conversation_from_messages(messages)
    for key in ("prompt", "question"):
        value = record.get(key)
        if isinstance(value, str):
            return conversation_from_prompt(value)
        if value is not None:
            raise InvalidRequest(f"'{key}' must be a string")
    raise InvalidRequest("line has no 'prompt', 'question' or 'messages'")


def _answers(record: Mapping[str, Any]) -> dict[str, str]:
    answers = record.get("answers")
    if answers is None:
        return {}
    if not isinstance(answers, Mapping):
        raise InvalidRequest("'answers' must map models to answer texts")
    return {str(k): v for k, v in answers.items() if isinstance(v, str)}


# The names a request can carry (x-laneway-task, metadata.laneway_task: the gateway
# refuses others with 400). A task learned under another name ("Customer Support")
# could never be selected: its per-task effects would be silently unused.
TASK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}")


def _task(record: Mapping[str, Any]) -> str | None:
    task = record.get("task")
    if task is None:
        return None
    if not isinstance(task, str) or TASK_NAME.fullmatch(task) is None:
        raise InvalidRequest(
            f"'task' {task!r} must be 1-64 letters, digits or _ . : / - starting with a "
            "letter or digit (the names a request can carry in x-laneway-task or "
            "metadata.laneway_task)"
        )
    return task


def outcome_row(record: Any) -> dict[str, Any]:
    """One outcome row from a parsed JSON line (eval exports, shadow outcomes and the
    shared data all use it): ``prompt``/``question``/``messages``, ``outcomes`` (or
    ``scores``: model → score in [0, 1]), and optionally ``id``, ``task``, ``weight``
    and ``answers`` (model → answer text, for the verifier)."""
    conv = conversation_of(record)
    outcomes = record.get("outcomes", record.get("scores"))
    if not isinstance(outcomes, Mapping):
        raise InvalidRequest("'outcomes' (or 'scores') must be an object of model scores")
    scores = {str(k): float(v) for k, v in outcomes.items() if v is not None}
    if any(not 0.0 <= v <= 1.0 for v in scores.values()):
        raise InvalidRequest("outcome scores must lie in [0, 1]")
    weight = float(record.get("weight", 1.0))
    if not 0.0 <= weight < math.inf:  # NaN and Infinity (json reads both) fail too
        raise InvalidRequest("'weight' must be a finite non-negative number")
    return {
        "id": record.get("id"),
        "conversation": conv,
        "outcomes": scores,
        "task": _task(record),
        "answers": _answers(record),
        "weight": weight,
    }


def read_outcomes(path: Path) -> list[dict[str, Any]]:
    """Outcome rows of a JSONL file (see ``outcome_row``)."""
    rows: list[dict[str, Any]] = []
    for number, line in iter_jsonl(path):
        try:
            rows.append(outcome_row(json.loads(line)))
        except (ValueError, KeyError, TypeError, InvalidRequest) as exc:
            raise InvalidRequest(f"{path}:{number}: {exc}") from exc
    return rows
