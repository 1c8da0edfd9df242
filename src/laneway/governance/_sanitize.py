"""Replacing detected values in free text (error messages, logged prompts, answers)."""

from __future__ import annotations

from typing import Any

__all__ = ["redact_text"]


def redact_text(text: str, scanner: Any) -> str:
    """``text`` with every detected span replaced by ``[KIND]``."""
    findings = scanner.scan_text(text)
    if not findings:
        return text
    out: list[str] = []
    last = 0
    for finding in findings:
        out.append(text[last : finding.start])
        out.append(f"[{finding.kind.upper()}]")
        last = finding.end
    out.append(text[last:])
    return "".join(out)
