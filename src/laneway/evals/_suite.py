"""Eval suites: a YAML file of cases (plus an optional JSONL file of more cases).

A malformed suite fails with :class:`~laneway.errors.ConfigError` naming the file, the
line and what is wrong (``suite.yaml:14: cases[2].regex: not a valid regular expression``).

Limits (a suite is user input; each is checked while reading, so a huge or endless file
costs no more than its limit): a YAML suite file of at most 4 MiB, a JSONL cases file of at
most 256 MiB and 16 MiB a line (read a line at a time, parsed by orjson), and at most
100,000 cases in a suite. YAML is the expensive one: 4 MiB of the smallest cases
(``- {id: c1, prompt: b}``) took 42 s and 590 MB to parse on a 2-core machine (PyYAML's
pure-Python loader; its libyaml loader is 4x faster but crashes the process on deeply
nested input), so large suites belong in a JSONL ``cases_file``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from laneway.errors import ConfigError, InvalidRequest
from laneway.evals._files import MIB, limited_lines
from laneway.governance import ClientSchema
from laneway.settings import read_user_text, yaml_line, yaml_problem

__all__ = [
    "Case",
    "Instructions",
    "NumericAnswer",
    "Suite",
    "load_suite",
    "packaged_suites",
    "suite_from_dict",
]

MAX_SUITE_BYTES = 4 * MIB  # a YAML suite file
MAX_CASES_BYTES = 256 * MIB  # a JSONL file of cases
MAX_CASE_LINE_BYTES = 16 * MIB  # one line (one case) of it
MAX_CASES = 100_000  # in one suite (`eval from-ledger --sample` takes at most as many)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Instructions(_Spec):
    """Constraints a checker can verify on the answer (instruction following)."""

    max_words: int | None = Field(default=None, ge=0)
    min_words: int | None = Field(default=None, ge=0)
    max_chars: int | None = Field(default=None, ge=0)
    max_lines: int | None = Field(default=None, ge=1)
    required_words: tuple[str, ...] = ()
    forbidden_words: tuple[str, ...] = ()
    language: Literal["en", "fr", "de", "es"] | None = None
    format: Literal["json", "bullets", "numbered", "one_line", "no_markdown"] | None = None
    starts_with: str | None = None
    ends_with: str | None = None
    case: Literal["lower", "upper"] | None = None

    def is_empty(self) -> bool:
        return self == Instructions()


class NumericAnswer(_Spec):
    value: float
    tolerance: float = Field(default=0.0, ge=0)


class Message(_Spec):
    role: Literal["system", "user", "assistant"]
    content: str


class Case(_Spec):
    """One case: the input and any checks on the answer (all must pass)."""

    id: str
    prompt: str | None = None
    messages: tuple[Message, ...] = ()
    system: str | None = None
    expected: str | None = None
    match: Literal["exact", "contains", "startswith"] = "exact"
    regex: str | None = None
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    numeric: NumericAnswer | None = None
    json_schema: dict[str, Any] | None = None
    response_format: Literal["text", "json"] = "text"
    rubric: str | None = None
    scorer: str | None = None
    instructions: Instructions = Instructions()
    tags: tuple[str, ...] = ()
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("an id uses letters, digits and . _ : / - (at most 128)")
        return value

    @field_validator("regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @field_validator("numeric", mode="before")
    @classmethod
    def _numeric(cls, value: Any) -> Any:
        return {"value": value} if isinstance(value, int | float) else value

    @field_validator("scorer")
    @classmethod
    def _scorer(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$", value):
            raise ValueError("a scorer is a dotted path, 'package.module:function'")
        return value

    @field_validator("json_schema")
    @classmethod
    def _schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:  # the same checks as a client's schema: local references only …
                ClientSchema.compile(value, "json_schema")
            except InvalidRequest as exc:
                raise ValueError(f"not a valid JSON Schema: {exc}") from None
        return value

    def chat_messages(self) -> list[dict[str, str]]:
        """The messages sent to a candidate."""
        out = [{"role": "system", "content": self.system}] if self.system else []
        out += [{"role": m.role, "content": m.content} for m in self.messages]
        if self.prompt is not None:
            out.append({"role": "user", "content": self.prompt})
        return out

    def wants_json(self) -> bool:
        return self.response_format == "json" or self.json_schema is not None


class _SuiteSpec(_Spec):
    name: str
    description: str = ""
    version: int = Field(default=1, ge=1)
    defaults: dict[str, Any] = Field(default_factory=dict)
    cases_file: str | None = None
    cases: tuple[dict[str, Any], ...] = ()


_DEFAULTABLE = frozenset(
    {"system", "max_tokens", "temperature", "rubric", "tags", "match", "response_format"}
)


@dataclass(frozen=True, slots=True)
class Suite:
    name: str
    description: str
    version: int
    cases: tuple[Case, ...]
    source: str

    @property
    def digest(self) -> str:
        """A short hash of the cases (two runs of the same digest are comparable)."""
        blob = orjson.dumps([c.model_dump(mode="json") for c in self.cases])
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "cases": [c.model_dump(mode="json", exclude_defaults=True) for c in self.cases],
        }


def _loc_text(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _where(path: Path, line: int | None, loc: Sequence[int | str] = ()) -> str:
    """``file:line: field`` (the parts that are known)."""
    where = f"{path}:{line}" if line else str(path)
    field = _loc_text(loc)
    return f"{where}: {field}" if field else where


def _fail(path: Path, line: int | None, loc: Sequence[int | str], message: str) -> ConfigError:
    return ConfigError(f"{_where(path, line, loc)}: {message}")


def _case(
    raw: Any, defaults: Mapping[str, Any], path: Path, line_of: Any, loc: list[int | str]
) -> Case:
    if not isinstance(raw, dict):
        raise _fail(path, line_of(loc), loc, "a case must be a mapping")
    merged = {k: v for k, v in defaults.items() if k not in raw} | raw
    try:
        case = Case.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        sub = [p for p in err["loc"] if isinstance(p, int | str)]
        full = loc + sub
        return_msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            return_msg = "unknown field"
        raise _fail(path, line_of(full), full, return_msg) from None
    if case.prompt is None and not case.messages:
        raise _fail(path, line_of(loc), loc, "a case needs 'prompt' or 'messages'")
    return case


def _too_many(where: str | Path) -> ConfigError:
    return ConfigError(f"{where}: the suite has more than {MAX_CASES} cases, its limit")


def _jsonl_cases(
    path: Path, defaults: Mapping[str, Any], what: str = "cases file", room: int | None = None
) -> list[tuple[Case, str]]:
    """The cases of a JSONL file, each with where it is (``file:line``); more than
    ``room`` cases (default ``MAX_CASES``) is an error."""
    room = MAX_CASES if room is None else room
    cases: list[tuple[Case, str]] = []
    lines = limited_lines(path, what, MAX_CASES_BYTES, MAX_CASE_LINE_BYTES)
    for number, text in lines:
        if not text.strip():
            continue
        if len(cases) >= room:
            raise _too_many(path)
        try:
            raw = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{number}: not valid JSON ({exc})") from None
        case = _case(raw, defaults, path, lambda _loc, n=number: n, [])
        cases.append((case, _where(path, number, ["id"])))
    return cases


def _checked(cases: Sequence[tuple[Case, str]], empty: str) -> tuple[Case, ...]:
    """The cases, refused when there are none (``empty`` says where) or when two share an
    id (the second one's place is named: results are stored per case id)."""
    if not cases:
        raise ConfigError(f"{empty}: the suite has no cases")
    seen: set[str] = set()
    for case, where in cases:
        if case.id in seen:
            raise ConfigError(f"{where}: duplicate id {case.id!r}")
        seen.add(case.id)
    return tuple(case for case, _ in cases)


def suite_from_dict(data: Any, path: Path, root: yaml.Node | None = None) -> Suite:
    """Validate a parsed suite (``root`` gives line numbers for errors)."""

    def line_of(loc: Sequence[int | str]) -> int | None:
        return None if root is None else yaml_line(root, loc)

    if not isinstance(data, dict):
        raise _fail(path, line_of([]), [], "a suite must be a mapping with 'name' and 'cases'")
    try:
        spec = _SuiteSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [p for p in err["loc"] if isinstance(p, int | str)]
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        raise _fail(path, line_of(loc), loc, msg) from None
    unknown = sorted(set(spec.defaults) - _DEFAULTABLE)
    if unknown:
        raise _fail(
            path,
            line_of(["defaults", unknown[0]]),
            ["defaults", unknown[0]],
            f"not a default a case can take (allowed: {', '.join(sorted(_DEFAULTABLE))})",
        )
    if len(spec.cases) > MAX_CASES:
        raise _too_many(path)
    cases = [
        (
            _case(raw, spec.defaults, path, line_of, ["cases", i]),
            _where(path, line_of(["cases", i, "id"]), ["cases", i, "id"]),
        )
        for i, raw in enumerate(spec.cases)
    ]
    if spec.cases_file:
        room = MAX_CASES - len(cases)
        cases += _jsonl_cases(path.parent / spec.cases_file, spec.defaults, room=room)
    empty = _where(path, line_of([]))
    return Suite(spec.name, spec.description, spec.version, _checked(cases, empty), str(path))


def _parse_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """The YAML's nodes (for line numbers) and the data built from them, parsed once."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        return root, None if root is None else loader.construct_document(root)
    finally:
        loader.dispose()


def load_suite(path: str | Path) -> Suite:
    """Load and validate a suite file (YAML, or a JSONL file of cases on its own)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        cases = _checked(_jsonl_cases(path, {}, "suite file"), str(path))
        return Suite(path.stem, "", 1, cases, str(path))
    text = read_user_text(path, "suite file", MAX_SUITE_BYTES)
    try:
        root, data = _parse_yaml(text)
    except yaml.YAMLError as exc:
        line, problem = yaml_problem(exc)
        raise _fail(path, line, [], f"not valid YAML: {problem}") from None
    except RecursionError:
        raise _fail(path, None, [], "not valid YAML: nested too deeply") from None
    return suite_from_dict(data, path, root)


def packaged_suites() -> dict[str, Path]:
    """The example suites shipped with Laneway, by name."""
    from importlib import resources

    folder = resources.files("laneway.evals").joinpath("suites")
    return {
        Path(str(p)).stem: Path(str(p))
        for p in folder.iterdir()
        if str(p).endswith(".yaml") and not Path(str(p)).name.startswith("_")
    }
