from __future__ import annotations

import time

from laneway.router import conversation_from_messages, conversation_from_prompt
from laneway.router._features import (
    STRUCTURAL_NAMES,
    material_chars,
    split_material,
    structural_features,
)


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
    for name in (
        "log_conversation_chars_without_material",
        "log_system_chars",
        "log_earlier_turns",
    ):
        assert longer[names.index(name)] > alone[names.index(name)]


ARTICLE = "\n\n".join(
    (
        f"Paragraph {i}: the council met on Tuesday and discussed the bike lanes at length. " * 7
    ).strip()
    for i in range(6)
)


def test_pasted_material_is_measured_apart_from_the_instruction() -> None:
    before = material_chars("Summarize this article in two sentences:\n\n" + ARTICLE)
    after = material_chars(ARTICLE + "\n\nWrite a headline for the article above.")
    assert before == after == len(ARTICLE.replace("\n\n", ""))
    assert material_chars("One paragraph only, however long. " * 40) == 0
    assert material_chars("Why does this fail?\n\n```python\nx = 1\n```") == len(
        "```python\nx = 1\n```"
    )
    crlf = ("Summarize this article in two sentences:\n\n" + ARTICLE).replace("\n", "\r\n")
    assert 0 <= material_chars(crlf) - before <= ARTICLE.count("\n")  # same split, CRs kept
    # two long paragraphs: no short instruction at either end, no material
    assert material_chars(("a " * 400) + "\n\n" + ("b " * 400)) == 0
    # the conversation's own size excludes the material, which has its own signal
    pasted = "Summarize this article in two sentences:\n\n" + ARTICLE
    assert feature(pasted, "log_conversation_chars_without_material") < 4.0
    assert feature(pasted, "log_material_chars") > 7.0


def test_material_of_a_huge_text_is_bounded_in_time_and_value() -> None:
    text = "```" * 400_000
    started = time.perf_counter()
    assert 0 < material_chars(text) <= len(text)
    assert time.perf_counter() - started < 0.5


def test_transformation_tasks_are_recognised_at_either_end_only() -> None:
    name = "log_transform_task_chars"
    assert feature("Summarize this article:\n\n" + ARTICLE, name) > 7.0
    assert feature(ARTICLE + "\n\nTranslate the text above into French.", name) > 7.0
    assert feature("Prove that the sum of two odd numbers is even.", name) == 0.0
    buried = ARTICLE + "\n\nPlease summarize nothing. " + ARTICLE + "\n\nWhat is the main risk?"
    assert feature(buried, name) == 0.0


def test_the_instruction_around_material_is_what_words_are_counted_on() -> None:
    material, instruction = split_material(
        "Summarize this article in two sentences:\n\n" + ARTICLE + "\n\nKeep it neutral."
    )
    assert instruction == "Summarize this article in two sentences:\n\nKeep it neutral."
    assert material == len(ARTICLE) - 10  # the paragraph breaks inside it are not counted
    pasted = feature("Summarize this article in two sentences:\n\n" + ARTICLE, "log_user_words")
    assert pasted == feature("Summarize this article in two sentences:", "log_user_words")


def test_a_document_in_the_system_prompt_is_material_and_answering_from_it_a_transform() -> None:
    rag = conversation_from_messages(
        [
            {"role": "system", "content": "Answer using only these documents:\n\n" + ARTICLE},
            {"role": "user", "content": "When did the council meet?"},
        ]
    )
    values = dict(zip(STRUCTURAL_NAMES, structural_features(rag), strict=True))
    assert values["log_material_chars"] > 7.0
    assert values["log_system_chars"] < 4.0
    assert values["log_transform_task_chars"] > 7.0
    plain = conversation_from_messages(
        [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Why?"}]
    )
    assert structural_features(plain)[STRUCTURAL_NAMES.index("log_material_chars")] == 0.0
