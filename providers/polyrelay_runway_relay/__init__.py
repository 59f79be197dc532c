"""Runway through Chinese relays (``type = "runway-relay"``): the reverse-engineered Runway web API
(``/runway/pro/generate``, ``/runway/feed``; wire-video-audio-workflow.md §1.7), not api.dev.runwayml.com.

Importing this package is cheap: the provider module (and aiohttp) load when the first request is routed to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.provider import ProviderSettings, ProviderSpec

if TYPE_CHECKING:
    from polyrelay.transport import Transport

__all__ = ["SPEC"]


def _factory(settings: ProviderSettings, transport: Transport) -> object:
    from polyrelay_runway_relay._provider import build

    return build(settings, transport)


SPEC = ProviderSpec(
    name="runway-relay",
    factory=_factory,
    capabilities=frozenset({"tasks"}),
    description="Runway gen2/gen3 video via relays' reverse-engineered web API (/runway/pro/generate, /runway/feed)",
    default_base_url=None,
    api_key_env="RUNWAY_RELAY_API_KEY",
    option_keys=frozenset({"poll_interval"}),
)
