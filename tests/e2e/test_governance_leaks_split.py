"""A detected value split across two text parts of one message (the model reads the parts
as one text) stays off a closed upstream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from laneway.testing import FakeOpenAI
from tests.e2e.conftest import GatewayFactory
from tests.e2e.test_governance_leaks import _client, _two_lane


@pytest.fixture
def lanes() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    with (
        FakeOpenAI(api_key="sk-upstream-secret", model="gpt-4o") as closed,
        FakeOpenAI(model="in-house-7b") as private,
    ):
        yield closed, private


SPLITS = {
    "email": ("Write to dana.whitfield@", "example.org today"),
    "card": ("Charge card 4111 1111 ", "1111 1111 please"),
}


@pytest.mark.parametrize("kind", list(SPLITS))
def test_a_value_split_across_two_text_parts_stays_private(
    kind: str,
    lanes: tuple[FakeOpenAI, FakeOpenAI],
    start_gateway: GatewayFactory,
) -> None:
    closed, private = lanes
    first, second = SPLITS[kind]
    gw = start_gateway(_two_lane(closed, private))
    content: Any = [{"type": "text", "text": first}, {"type": "text", "text": second}]
    with _client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="tier:standard", messages=[{"role": "user", "content": content}]
        )
    assert raw.headers["x-laneway-deployment"] == "private"
    assert not closed.received and len(private.received) == 1


def test_redact_cannot_replace_a_split_value_so_it_fails_closed(
    lanes: tuple[FakeOpenAI, FakeOpenAI], start_gateway: GatewayFactory
) -> None:
    """Each part alone holds no finding to replace: the redacted copy still carries the
    value across the seam, the redaction fails and the request goes private only."""
    closed, private = lanes
    gw = start_gateway(_two_lane(closed, private, policies={"sensitive": {"action": "redact"}}))
    first, second = SPLITS["email"]
    content: Any = [{"type": "text", "text": first}, {"type": "text", "text": second}]
    with _client(gw) as client, pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(
            model="closed", messages=[{"role": "user", "content": content}]
        )
    assert info.value.code == "no_private_route"
    assert not closed.received
