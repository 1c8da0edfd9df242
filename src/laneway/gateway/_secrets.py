"""Keeping the gateway's own upstream keys out of what a client is told: upstream error
messages may echo the key a deployment was called with (whole or cut off at the end)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from laneway.gateway._deployments import Deployment

__all__ = ["KeyScrubber", "deployment_secrets", "scrub_literals"]

_MIN_SECRET = 6  # shorter configured keys are not scrubbed (they would mangle messages)
_MIN_PREFIX = 8  # a cut-off key: at least this many of its first characters end the message


def deployment_secrets(deployments: Iterable[Deployment]) -> tuple[str, ...]:
    """The resolved upstream keys (and secret-looking extra header values) of every
    deployment, longest first. Held in memory only; never logged."""
    found: set[str] = set()
    for d in deployments:
        endpoint = getattr(d.adapter, "endpoint", None)
        key = getattr(endpoint, "api_key", None)
        if isinstance(key, str):
            found.add(key)
        headers = getattr(endpoint, "extra_headers", None) or {}
        for name, value in headers.items():
            if any(w in name.lower() for w in ("key", "auth", "token", "secret")):
                found.add(value.removeprefix("Bearer ").strip())
    return tuple(sorted((k for k in found if len(k) >= _MIN_SECRET), key=len, reverse=True))


def scrub_literals(message: str, secrets: tuple[str, ...]) -> str:
    """``message`` with every secret, and a secret's prefix that ends the message (the
    adapters cut upstream messages to a few hundred characters), replaced."""
    for secret in secrets:
        if secret in message:
            message = message.replace(secret, "[API_KEY]")
        for cut in range(len(secret) - 1, _MIN_PREFIX - 1, -1):
            if message.endswith(secret[:cut]):
                message = message[: len(message) - cut] + "[API_KEY]"
                break
    return message


class KeyScrubber:
    """Replaces key-shaped tokens (``sk-…`` and the like) in a message; the finder is
    built on first use (the first upstream error), not at start-up."""

    __slots__ = ("_finder",)

    def __init__(self) -> None:
        self._finder: Callable[[str], Iterable[tuple[int, int]]] | None = None

    def __call__(self, message: str) -> str:
        finder = self._finder
        if finder is None:
            from laneway.governance import secret_finder

            finder = self._finder = secret_finder()
        spans = sorted(finder(message))
        if not spans:
            return message
        out: list[str] = []
        pos = 0
        for start, end in spans:
            if start >= pos:
                out += [message[pos:start], "[API_KEY]"]
                pos = end
        out.append(message[pos:])
        return "".join(out)
