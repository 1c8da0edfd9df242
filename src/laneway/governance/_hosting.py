"""Whether an upstream's address is on this machine or a private network: what decides
the hosting of an OpenAI-compatible deployment whose config names no vendor and no
``hosting`` (a server of one's own, or an API of a vendor Laneway does not know)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["on_private_network"]

# names that only resolve inside a machine, a LAN or a cluster (RFC 6762, 8375; ICANN's
# .internal; Kubernetes service names)
_PRIVATE_SUFFIXES = (".local", ".internal", ".lan", ".home.arpa", ".localhost", ".svc")


def on_private_network(url: str) -> bool:
    """True for a loopback, private or link-local address, ``localhost``, a name of one
    label (a container or service name: ``http://vllm:8000``) or a name under a suffix
    that only resolves privately (``.internal``, ``.local``, ``.svc.cluster.local`` …);
    False for any other name (it may be anyone's server on the internet)."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host or host == "localhost" or host.endswith(_PRIVATE_SUFFIXES)
    return address.is_private or address.is_loopback or address.is_link_local
