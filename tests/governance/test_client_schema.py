"""A client's JSON schema never reaches the network or the file system, is valid against its
metaschema, and its patterns run in linear time (issue 12, items 1 and 2)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from laneway.errors import InvalidOutput, InvalidRequest
from laneway.governance import ClientSchema, SchemaCheckedModel, _schema
from laneway.governance._schema import MAX_ANSWER_CHARS, MAX_EXPANDED, MAX_SUBSCHEMAS
from laneway.providers import ChatRequest, ChatResult
from tests._quiet_gc import session_heap_frozen

WHERE = "response_format.json_schema.schema"


def refused(schema: Any, where: str = WHERE) -> str:
    with pytest.raises(InvalidRequest) as info:
        ClientSchema.compile(schema, where)
    assert info.value.param == where
    assert info.value.status == 400 and info.value.code == "invalid_request"
    return str(info.value)


def check(schema: dict[str, Any], content: str | None) -> str | None:
    return asyncio.run(ClientSchema.compile(schema, WHERE).check(content))


@pytest.mark.parametrize(
    ("schema", "ref", "at"),
    [
        ({"$ref": "http://127.0.0.1:9/internal"}, "http://127.0.0.1:9/internal", "/$ref"),
        ({"$ref": "https://example.com/s.json#/a"}, "https://example.com/s.json#/a", "/$ref"),
        ({"properties": {"a": {"$ref": "file:///etc/passwd"}}}, "file:///etc/passwd",
         "/properties/a/$ref"),
        # relative to a remote $id: would resolve to http://127.0.0.1:9/x/y.json
        ({"$id": "http://127.0.0.1:9/x/", "items": {"$ref": "y.json"}}, "y.json", "/items/$ref"),
        ({"$dynamicRef": "https://example.com/meta#meta"}, "https://example.com/meta#meta",
         "/$dynamicRef"),
        ({"$schema": "https://json-schema.org/draft/2019-09/schema",
          "$recursiveRef": "http://127.0.0.1:9/r"}, "http://127.0.0.1:9/r", "/$recursiveRef"),
        # a property whose name is a data keyword still holds a schema
        ({"properties": {"default": {"$ref": "https://example.com/"}}}, "https://example.com/",
         "/properties/default/$ref"),
        ({"$defs": {"a~b/c": {"$ref": "urn:x"}}}, "urn:x", "/$defs/a~0b~1c/$ref"),
        ({"anyOf": [{"type": "null"}, {"$ref": "other.json"}]}, "other.json", "/anyOf/1/$ref"),
    ],
)  # fmt: skip
def test_non_local_references_are_refused_naming_the_ref_and_its_place(
    schema: dict[str, Any], ref: str, at: str
) -> None:
    message = refused(schema)
    assert repr(ref) in message
    assert f"at {at}:" in message
    assert "only local references" in message


@pytest.mark.parametrize(
    "schema",
    [
        {"$schema": "http://127.0.0.1:9/meta"},
        {"$schema": "https://json-schema.org/draft/2099-01/schema"},
        {"properties": {"a": {"$id": "https://x.example/a", "$schema": "file:///meta"}}},
    ],
)
def test_unknown_or_remote_schema_dialects_are_refused(schema: dict[str, Any]) -> None:
    assert "unknown $schema" in refused(schema)


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        ({"$defs": {"n": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/n"}}},
         {"a": 1}, {"a": "x"}),
        # JSON-pointer escapes: ~1 is '/', ~0 is '~', percent-encoding
        ({"$defs": {"a/b": {"type": "integer"}, "c~d": {"type": "string"}, "e f": {"const": 1}},
          "properties": {"x": {"$ref": "#/$defs/a~1b"}, "y": {"$ref": "#/$defs/c~0d"},
                         "z": {"$ref": "#/$defs/e%20f"}}},
         {"x": 1, "y": "s", "z": 1}, {"x": 1, "y": 2, "z": 1}),
        ({"$defs": {"n": {"$anchor": "num", "type": "integer"}}, "$ref": "#num"}, 3, "3"),
        # recursion through a local ref
        ({"type": "object", "properties": {"child": {"$ref": "#"}, "v": {"type": "integer"}}},
         {"v": 1, "child": {"v": 2, "child": {}}}, {"child": {"child": {"v": "x"}}}),
        # a local ref under a remote-looking $id is still local: nothing is fetched
        ({"$id": "http://127.0.0.1:9/x", "$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s"},
         "s", 1),
        ({"$schema": "http://json-schema.org/draft-07/schema#",
          "definitions": {"n": {"type": "integer"}}, "items": {"$ref": "#/definitions/n"}},
         [1], ["x"]),
        # data keywords may hold anything, a "$ref" string included
        ({"const": {"$ref": "http://127.0.0.1:9/"}}, {"$ref": "http://127.0.0.1:9/"}, {}),
    ],
)  # fmt: skip
def test_local_references_keep_working(schema: dict[str, Any], good: Any, bad: Any) -> None:
    compiled = ClientSchema.compile(schema, WHERE)
    assert compiled.problem(good) is None
    assert compiled.problem(bad) is not None


def test_a_dangling_local_reference_is_refused_with_its_place() -> None:
    message = refused({"properties": {"a": {"$ref": "#/$defs/missing"}}})
    assert "'#/$defs/missing' at /properties/a/$ref" in message
    assert "points to nothing" in message


def test_a_dangling_anchor_is_refused() -> None:
    assert "points to nothing" in refused({"$ref": "#nowhere"})


@pytest.mark.parametrize(
    ("schema", "at"),
    [
        ({"type": 5}, "/type"),
        ({"type": "strung"}, "/type"),
        ({"properties": {"a": {"minimum": "zero"}}}, "/properties/a/minimum"),
        ({"required": "name"}, "/required"),
    ],
)
def test_schemas_invalid_against_the_metaschema_are_refused(
    schema: dict[str, Any], at: str
) -> None:
    message = refused(schema, "tools[0].function.parameters")
    assert message.startswith("'tools[0].function.parameters' is not a valid JSON Schema")
    assert f"at {at}:" in message


def test_draft_04_rules_apply_when_declared() -> None:
    draft4 = {"$schema": "http://json-schema.org/draft-04/schema#", "exclusiveMinimum": True}
    ClientSchema.compile({**draft4, "minimum": 0}, WHERE)  # a boolean in draft 4
    refused({"exclusiveMinimum": True})  # a number in 2020-12, the default


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "pattern": "(?=a)b"},
        {"type": "string", "pattern": "(?<!a)b"},
        {"type": "string", "pattern": "(a)\\1"},
        {"patternProperties": {"^(?!x)": {}}},
        {"type": "string", "pattern": "("},
        {"type": "string", "pattern": "a{1000}{1000}"},
    ],
)
def test_patterns_the_linear_engine_cannot_run_are_refused(schema: dict[str, Any]) -> None:
    message = refused(schema)
    assert "pattern" in message and "linear-time regex engine" in message


HOSTILE = [
    ("^(a+)+$", "a" * 40 + "!"),
    ("^(a|a)*$", "a" * 40 + "!"),
    ("^(a|aa)+$", "a" * 60 + "!"),
    ("^(\\w+\\s?)*$", "word " * 30 + "!"),
    ("^([a-zA-Z0-9])(([\\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}(([a-z]{2,3})|([a-z]{2,3}[.]{1}[a-z]{2,3}))$",
     "a" * 50 + "!"),
]  # fmt: skip


@pytest.mark.parametrize(("pattern", "text"), HOSTILE)
def test_catastrophic_patterns_run_in_linear_time(pattern: str, text: str) -> None:
    schemas = [
        {"type": "string", "pattern": pattern},
        {"type": "object", "patternProperties": {pattern: {"type": "integer"}}},
        {"type": "object", "patternProperties": {pattern: {}}, "additionalProperties": False},
        {"type": "object", "patternProperties": {pattern: {}}, "unevaluatedProperties": False},
        {"type": "object", "propertyNames": {"pattern": pattern}},
    ]
    answers = [f'"{text}"', f'{{"{text}": "x"}}', f'{{"{text}": 1}}', f'{{"{text}": 1}}',
               f'{{"{text}": 1}}']  # fmt: skip
    started = time.process_time()  # CPU time: the work, not the other processes' turns
    results = [check(s, a) for s, a in zip(schemas, answers, strict=True)]
    assert time.process_time() - started < 0.5  # Python's re: minutes to years
    assert results[0] is not None and "pattern" in results[0]
    assert results[1] is None  # the key does not match: no constraint applies
    assert results[2] is not None and results[3] is not None and results[4] is not None


def test_matching_patterns_still_pass() -> None:
    schema = {
        "type": "object",
        "properties": {"id": {"type": "string", "pattern": "^[A-Z]{3}-\\d+$"}},
        "patternProperties": {"^x-": {"type": "integer"}},
    }
    assert check(schema, '{"id": "ABC-12", "x-n": 1}') is None
    assert check(schema, '{"id": "ABC-12", "x-n": "one"}') is not None
    assert check(schema, '{"id": "abc"}') is not None


def test_format_is_an_annotation_and_never_runs_a_client_regex() -> None:
    schema = {"type": "string", "format": "regex"}
    assert check(schema, '"(a+)+$"') is None
    assert check(schema, '"((("') is None  # formats are not asserted (the draft's default)


def test_answers_are_checked_for_json_and_content() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert check(schema, None) == "the answer has no content"
    assert check(schema, "not json") == "the answer is not valid JSON"
    assert check(schema, '{"n": "x"}') == "the answer does not match the schema at n: type failed"
    assert check(schema, "{}") is not None
    assert check(schema, '{"n": 1}') is None


def test_too_many_subschemas_are_refused() -> None:
    schema = {"anyOf": [{"type": "integer"} for _ in range(MAX_SUBSCHEMAS)]}
    assert f"more than {MAX_SUBSCHEMAS} subschemas" in refused(schema)


def test_references_that_multiply_are_refused_before_they_can_stall_a_check() -> None:
    defs: dict[str, Any] = {"l0": {"type": "string"}}
    for i in range(1, 25):  # each level refers twice to the one below: 2**24 evaluations
        below = {"$ref": f"#/$defs/l{i - 1}"}
        defs[f"l{i}"] = {"anyOf": [below, {"allOf": [below]}]}
    started = time.process_time()  # CPU time: the work, not the other processes' turns
    message = refused({"$defs": defs, "$ref": "#/$defs/l24"})
    assert time.process_time() - started < 0.5
    assert f"more than {MAX_EXPANDED} subschemas" in message


def test_a_deep_schema_is_a_clean_refusal() -> None:
    schema: dict[str, Any] = {}
    node = schema
    for _ in range(600):
        node["items"] = {}
        node = node["items"]
    assert "'" + WHERE + "'" in refused(schema)


def test_an_answer_over_the_size_cap_is_not_checked() -> None:
    problem = check({"type": "string"}, '"' + "x" * MAX_ANSWER_CHARS + '"')
    assert problem is not None and "too large to check" in problem


def test_a_costly_check_runs_in_a_child_process_and_gives_the_same_verdict() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "pad": {"type": "string"}}}
    pad = "x" * 4_000_000  # 4 MB x 4 subschemas is over the in-line budget
    assert check(schema, f'{{"n": 1, "pad": "{pad}"}}') is None
    assert check(schema, f'{{"n": "one", "pad": "{pad}"}}') == (
        "the answer does not match the schema at n: type failed"
    )
    assert check(schema, f'{{"n": 1, "pad": "{pad}"') == "the answer is not valid JSON"


def test_a_costly_check_leaves_the_event_loop_free(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "pad": {"type": "string"}}}
    compiled = ClientSchema.compile(schema, WHERE)
    content = '{"n": "one", "pad": "' + "x" * 4_000_000 + '"}'

    def not_here(*args: object) -> None:
        raise AssertionError("a costly check ran on the event loop")

    monkeypatch.setattr(_schema, "_check_text", not_here)

    async def run() -> tuple[str | None, float]:
        gaps: list[float] = []
        done = asyncio.Event()

        async def tick() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.002)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        problem = await compiled.check(content)
        done.set()
        await ticker
        return problem, max(gaps)

    with session_heap_frozen():  # a full collection of the session's heap is no stall of ours
        problem, worst = asyncio.run(run())
    assert problem == "the answer does not match the schema at n: type failed"
    assert worst < 0.1, worst


def test_a_check_that_runs_too_long_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_schema, "CHECK_SECONDS", 0.5)
    monkeypatch.setattr(_schema, "_CHILD", "import time; time.sleep(30)")
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "pad": {"type": "string"}}}
    compiled = ClientSchema.compile(schema, WHERE)
    started = time.perf_counter()
    problem = asyncio.run(compiled.check('{"pad": "' + "x" * 4_000_000 + '"}'))
    assert time.perf_counter() - started < 5
    assert problem == "the answer could not be checked against the schema within 0.5 s"


class _Scripted:
    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls = 0

    def check(self, request: ChatRequest) -> None:
        pass

    async def complete(self, request: ChatRequest) -> ChatResult:
        self.calls += 1
        return ChatResult(content=self.answers.pop(0), finish_reason="stop", model="m")

    def stream(self, request: ChatRequest) -> Any:
        raise NotImplementedError


def test_schema_checked_model_retries_then_fails_with_a_linear_time_check() -> None:
    schema = {"type": "string", "pattern": "^(a+)+$"}
    inner = _Scripted(f'"{"a" * 40}!"', f'"{"a" * 40}!"')
    model = SchemaCheckedModel(inner, schema)  # type: ignore[arg-type]
    request = ChatRequest(model="m", messages=({"role": "user", "content": "x"},))
    started = time.process_time()  # CPU time: the work, not the other processes' turns
    with pytest.raises(InvalidOutput, match="pattern failed"):
        asyncio.run(model.complete(request))
    assert time.process_time() - started < 0.5
    assert inner.calls == 2
    ok = _Scripted('"aaa"')
    assert asyncio.run(SchemaCheckedModel(ok, schema).complete(request)).content == '"aaa"'  # type: ignore[arg-type]


def test_tool_parameters_get_the_same_checks() -> None:
    where = "tools[2].function.parameters"
    ClientSchema.check_schema({"type": "object", "properties": {"q": {"type": "string"}}}, where)
    for schema, words in [
        ({"type": 5}, "not a valid JSON Schema at /type"),
        ({"properties": {"q": {"$ref": "http://127.0.0.1:9/x"}}}, "only local references"),
        ({"$ref": "#/$defs/none"}, "points to nothing"),
        ({"type": "string", "pattern": "(?=x)"}, "linear-time regex engine"),
    ]:
        with pytest.raises(InvalidRequest) as info:
            ClientSchema.check_schema(schema, where)
        assert info.value.param == where
        assert words in str(info.value)


@pytest.mark.parametrize("dialect", sorted(_schema.KNOWN_DIALECTS))
def test_every_known_dialect_compiles(dialect: str) -> None:
    compiled = ClientSchema.compile({"$schema": dialect, "type": "string"}, WHERE)
    assert compiled.problem("s") is None
    assert compiled.problem(1) is not None
