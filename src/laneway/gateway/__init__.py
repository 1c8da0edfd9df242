"""The gateway core: what happens to a request between the wire format and the upstreams."""

from laneway.gateway._shadow import SHADOW_PAIRS, ShadowMirror

__all__ = ["SHADOW_PAIRS", "ShadowMirror"]
