"""What of an OpenAI-format conversation the router looks at.

The router reads the system (and developer) prompt, the last user turn and the
length and kind of the earlier context. Message content may be a string or a list
of parts (``{"type": "text", "text": ...}``, images, audio); non-text parts count
as context kinds, never as text. Anything malformed is skipped, never raised on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Conversation", "conversation_from_messages", "conversation_from_prompt"]


@dataclass(frozen=True, slots=True)
class Conversation:
    system: str
    last_user: str
    earlier_chars: int
    earlier_turns: int
    tool_messages: int
    non_text_parts: int

    @property
    def total_chars(self) -> int:
        return len(self.system) + len(self.last_user) + self.earlier_chars


def _text_of(content: Any) -> tuple[str, int]:
    """(text, number of non-text parts) of one message's ``content``."""
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, Sequence) or isinstance(content, bytes | bytearray):
        return "", 0
    texts: list[str] = []
    other = 0
    for part in content:
        if isinstance(part, Mapping) and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part, str):
            texts.append(part)
        else:
            other += 1
    return "\n".join(texts), other


def conversation_from_prompt(prompt: str) -> Conversation:
    return Conversation("", prompt, 0, 0, 0, 0)


def conversation_from_messages(messages: Sequence[Mapping[str, Any]]) -> Conversation:
    """Split ``messages`` into system prompt, last user turn and earlier context."""
    items = [m for m in messages if isinstance(m, Mapping)]
    last_user_at = -1
    for i in range(len(items) - 1, -1, -1):
        if items[i].get("role") == "user":
            last_user_at = i
            break
    system: list[str] = []
    last_user = ""
    earlier_chars = earlier_turns = tools = non_text = 0
    for i, message in enumerate(items):
        role = message.get("role")
        text, other = _text_of(message.get("content"))
        non_text += other
        if role in ("system", "developer"):
            system.append(text)
        elif i == last_user_at:
            last_user = text
        else:
            earlier_chars += len(text)
            earlier_turns += 1
            tools += role == "tool" or bool(message.get("tool_calls"))
    return Conversation("\n".join(system), last_user, earlier_chars, earlier_turns, tools, non_text)
