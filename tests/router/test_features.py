from __future__ import annotations

from laneway.router import conversation_from_messages, conversation_from_prompt
from laneway.router._features import STRUCTURAL_NAMES, structural_features


def feature(conv_text: str, name: str) -> float:
    values = structural_features(conversation_from_prompt(conv_text))
    return values[STRUCTURAL_NAMES.index(name)]


def test_conversation_split_reads_system_last_user_and_earlier_context() -> None:
    conv = conversation_from_messages(
        [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an answer", "tool_calls": [{"id": "x"}]},
            {"role": "tool", "content": "tool output"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look at this"},
                    {"type": "image_url", "image_url": {"url": "data:,"}},
                ],
            },
            "not a message",  # type: ignore[list-item]
        ]
    )
    assert conv.system == "Be terse."
    assert conv.last_user == "look at this"
    assert conv.earlier_turns == 3
    assert conv.earlier_chars == len("first question") + len("an answer") + len("tool output")
    assert conv.tool_messages == 2
    assert conv.non_text_parts == 1


def test_malformed_content_is_skipped_not_raised() -> None:
    conv = conversation_from_messages([{"role": "user", "content": 42}, {"content": None}])
    assert conv.last_user == ""
    assert len(structural_features(conv)) == len(STRUCTURAL_NAMES)


def test_structural_signals_fire_on_their_kind_of_prompt() -> None:
    code = "```python\ndef add(a, b):\n    return a + b\n```\nWhy does this fail?"
    assert feature(code, "log_code") > 0
    assert feature("hello there", "log_code") == 0
    assert feature("Solve $x^2 = 4$ and compute x.", "latex") == 1.0
    assert feature("A 3 kg mass at 4 m/s", "log_units") > 0
    constrained = "Write a poem. It must be exactly 4 lines, in JSON format."
    assert feature(constrained, "log_constraints") > feature("Write a poem.", "log_constraints")
    assert feature("First derive it, then calculate the value step by step.", "log_multi_step") > 1


def test_features_are_bounded_for_huge_prompts() -> None:
    values = structural_features(conversation_from_prompt("x = 1;\n" * 200_000))
    assert all(abs(v) < 20 for v in values)


def test_earlier_context_and_system_prompt_change_the_features() -> None:
    alone = structural_features(conversation_from_prompt("Summarise the thread."))
    longer = structural_features(
        conversation_from_messages(
            [
                {"role": "system", "content": "You must answer in JSON."},
                {"role": "user", "content": "a" * 5000},
                {"role": "assistant", "content": "b" * 5000},
                {"role": "user", "content": "Summarise the thread."},
            ]
        )
    )
    names = list(STRUCTURAL_NAMES)
    for name in ("log_conversation_chars", "log_system_chars", "log_earlier_turns"):
        assert longer[names.index(name)] > alone[names.index(name)]
