"""A prompt-injection heuristic for text that the user did not type.

It looks at tool results, assistant history and the later text parts of multi-part user
messages (retrieved documents are usually pasted there), never at the first user text
(a user asking about "ignore previous instructions" is not an injection) nor the system
prompt (the developer's own). Each rule that matches adds its weight; a total of 1.0 or
more is reported. The finding carries rule names, counts and positions, never the text.

Rules: ``ignore_instructions`` ("ignore all previous instructions", "disregard the
above"), ``new_instructions`` ("your new instructions are", "from now on you"),
``role_override`` ("you are now DAN", "developer mode", "pretend you are"),
``hidden_system`` (``<system>``, ``<|im_start|>system``, "system prompt:" inside data),
``reveal_prompt`` ("print your system prompt"), ``exfiltration`` (markdown images whose
URL carries a query, "send the conversation to https://…"), ``tool_hijack`` ("call the
delete tool", "run this command"), ``hidden_text`` (zero-width / tag characters).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache

from laneway.providers import ChatRequest

__all__ = ["InjectionFinding", "injection_score"]

_RULES: tuple[tuple[str, float, str], ...] = (
    ("ignore_instructions", 1.0,
     r"\b(?:ignore|disregard|forget|override|skip)\s+(?:all\s+|any\s+|the\s+|your\s+|every\s+)*"
     r"(?:previous|prior|above|earlier|preceding|system|original)\s+"
     r"(?:instructions?|prompts?|rules?|directions?|messages?|guidelines?|context)"),
    ("new_instructions", 0.6,
     r"\b(?:your\s+new\s+(?:instructions?|task|role|goal)|new\s+instructions?\s*:|"
     r"from\s+now\s+on,?\s+you|instead,?\s+you\s+(?:must|will|should))"),
    ("role_override", 0.6,
     r"\b(?:you\s+are\s+now\s+(?:a|an|the|in|DAN)\b|developer\s+mode|jailbreak|"
     r"pretend\s+(?:to\s+be|you\s+are)|act\s+as\s+(?:an?\s+)?(?:unrestricted|unfiltered|evil)|"
     r"do\s+anything\s+now)"),
    ("hidden_system", 0.8,
     r"(?:<\|?im_start\|?>\s*system|<\s*/?\s*system\s*>|\[/?system\]|\[INST\]|"
     r"^\s*#{1,3}\s*system\b|\bsystem\s+(?:prompt|message|override)\s*:|"
     r"BEGIN\s+SYSTEM\s+PROMPT)"),
    ("reveal_prompt", 0.6,
     r"\b(?:reveal|print|repeat|show|output|leak)\s+(?:me\s+)?(?:your|the)\s+"
     r"(?:system\s+prompt|hidden\s+prompt|initial\s+instructions|instructions\s+above)"),
    ("exfiltration", 0.8,
     r"(?:!\[[^\]]*\]\(\s*https?://[^)\s]*\?[^)\s]*=|"
     r"\b(?:send|post|upload|forward|exfiltrate|leak)\s+(?:it|this|them|all|the\s+\w+"
     r"(?:\s+\w+)?)\s+to\s+(?:https?://|\S+@\S+)|"
     r"https?://\S*(?:webhook|requestbin|ngrok|pipedream|burpcollaborator)\S*)"),
    ("tool_hijack", 0.5,
     r"\b(?:call|invoke|use|run)\s+the\s+\w+\s+(?:tool|function)\s+(?:with|to)\b|"
     r"\b(?:execute|run)\s+(?:the\s+following|this)\s+(?:command|code|script)"),
)  # fmt: skip
_HIDDEN = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\U000e0000-\U000e007f]")
_THRESHOLD = 1.0


@dataclass(frozen=True, slots=True)
class InjectionFinding:
    """Rule name -> matches, position (``tool_result``, ``assistant``, ``document``) ->
    matches, and the total weight (``score`` >= 1.0)."""

    score: float
    rules: Mapping[str, int]
    positions: Mapping[str, int]

    @property
    def reason(self) -> str:
        return ", ".join(sorted(self.rules))


def _untrusted_texts(request: ChatRequest) -> Iterator[tuple[str, str]]:
    for message in request.messages:
        role = message.get("role")
        content = message.get("content")
        texts: list[str] = []
        if isinstance(content, str):
            texts = [content]
        elif isinstance(content, list):
            texts = [p["text"] for p in content if isinstance(p.get("text"), str)]
        if role in ("tool", "function"):
            yield from (("tool_result", t) for t in texts)
        elif role == "assistant":
            yield from (("assistant", t) for t in texts)
        elif role == "user" and len(texts) > 1:
            yield from (("document", t) for t in texts[1:])


@cache
def _compiled_rules() -> tuple[tuple[str, float, re.Pattern[str]], ...]:
    return tuple(
        (name, weight, re.compile(p, re.IGNORECASE | re.MULTILINE)) for name, weight, p in _RULES
    )


def injection_score(request: ChatRequest) -> InjectionFinding | None:
    """The injection finding for ``request``, or ``None`` under the threshold."""
    texts = list(_untrusted_texts(request))
    if not texts:  # only a first user turn and system prompts: nothing untrusted to check
        return None
    rules = _compiled_rules()
    hits: Counter[str] = Counter()
    positions: Counter[str] = Counter()
    score = 0.0
    for position, text in texts:
        for name, weight, pattern in rules:
            n = len(pattern.findall(text))
            if n:
                score += weight if name not in hits else 0.0
                hits[name] += n
                positions[position] += n
        hidden = len(_HIDDEN.findall(text))
        if hidden:
            score += 0.5 if "hidden_text" not in hits else 0.0
            hits["hidden_text"] += hidden
            positions[position] += hidden
    if score < _THRESHOLD:
        return None
    return InjectionFinding(round(score, 2), dict(hits), dict(positions))
