"""The five public articles the advisor's rules and figures come from, and how to cite them.

Output names an article by its publisher and month ("RTSN, Jun 2026") and, where there is
room (the HTML report, ``--json``, assumption sources), by its URL too. Code refers to an
article by its two- or three-digit id (``"003"``); the packaged YAML files by the marker
``{source:003}``, which ``expand`` replaces when the file is read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from laneway.errors import ConfigError

__all__ = ["SOURCES", "Source", "cite", "expand", "source"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class Source:
    """One article: ``date`` is ``YYYY-MM-DD``, or ``YYYY-MM`` where it gives only a month."""

    id: str
    name: str
    date: str
    url: str
    title: str | None = None

    @property
    def short(self) -> str:
        """``"Digital Applied, Apr 2026"``."""
        year, month = self.date.split("-")[:2]
        return f"{self.name}, {_MONTHS[int(month) - 1]} {year}"

    @property
    def long(self) -> str:
        """``"Digital Applied, Apr 2026 (https://…)"``."""
        return f"{self.short} ({self.url})"


SOURCES: Mapping[str, Source] = MappingProxyType(
    {
        s.id: s
        for s in (
            Source(
                "000",
                "Digital Applied",
                "2026-04-12",
                "https://www.digitalapplied.com/blog/open-weight-vs-closed-source-ai-models-q2-2026",
                "Open-Weight vs Closed-Source AI Models 2026: Gap Analysis",
            ),
            Source(
                "001",
                "sabaoon.dev",
                "2026-06-30",
                "https://www.sabaoon.dev/blog/open-weight-vs-closed-source-ai-2026",
                "Open-Weight vs. Closed-Source AI Models in 2026: The Honest Comparison",
            ),
            Source(
                "002",
                "AI Tech Connect",
                "2026-05",
                "https://aitechconnect-976.pages.dev/news/open-weight-models-closed-gap-kimi-k2-gpt-5-5",
            ),
            Source(
                "003",
                "RTSN",
                "2026-06",
                "https://rtsnstudios.com/insights-knowledge-open-vs-closed-models",
                "Open vs Closed Models",
            ),
            Source(
                "004",
                "novaaiops.com",
                "2026-08-17",
                "https://novaaiops.com/blog/open-vs-closed-weights-2026",
                "Open-Weight vs Closed: What Changed in 2026",
            ),
        )
    }
)


def source(ref: str) -> Source:
    """The article with id ``ref`` (``"3"``, ``"03"`` and ``"003"`` are the same)."""
    key = ref.strip().zfill(3)
    found = SOURCES.get(key)
    if found is None:
        raise ConfigError(f"unknown source {ref!r}: use one of {', '.join(SOURCES)}")
    return found


def cite(ref: str, *, url: bool = False) -> str:
    """``cite("003")`` → ``"RTSN, Jun 2026"``; with ``url`` the address follows in brackets."""
    found = source(ref)
    return found.long if url else found.short


_MARKER = re.compile(r"\{source:([0-9]{1,3})\}")


def expand(text: str, *, url: bool = False) -> str:
    """``text`` with every ``{source:NNN}`` marker replaced by ``cite(NNN, url=url)``."""
    return _MARKER.sub(lambda m: cite(m.group(1), url=url), text)
