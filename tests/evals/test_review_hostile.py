"""The review page's server answers a POST whose Content-Length is not a number of bytes
with 400: ``abc`` raised in the handler (a traceback on the reviewer's terminal, no
answer) and ``-1`` read the socket until the client hung up."""

from __future__ import annotations

import http.client
from typing import Any

import pytest

from laneway.evals._review import ReviewItem, ReviewServer


def _post(url: str, length: str) -> int:
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.putrequest("POST", "/api/choice")
    conn.putheader("Content-Length", length)
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "\xb2"])
def test_a_bad_content_length_is_400(length: str, capsys: Any) -> None:
    item = ReviewItem("tok", "c1", "m1", "m2", False, "q", "a1", "a2")
    saved: list[Any] = []
    with ReviewServer(lambda *a: saved.append(a), [item]) as server:
        assert _post(server.url, length) == 400
        assert server.next_item()["token"] == "tok"  # still waiting for its verdict
    assert saved == []
    assert "Traceback" not in capsys.readouterr().err
