"""Luma Dream Machine (``type = "luma"``): video (ray) and image (photon) generations, keyframes, delete.

Importing this package is cheap: the provider module (and aiohttp) load when the first request is routed to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.provider import ProviderSettings, ProviderSpec

if TYPE_CHECKING:
    from polyrelay.transport import Transport

__all__ = ["SPEC"]


def _factory(settings: ProviderSettings, transport: Transport) -> object:
    from polyrelay_luma._provider import build

    return build(settings, transport)


SPEC = ProviderSpec(
    name="luma",
    factory=_factory,
    capabilities=frozenset({"tasks"}),
    description="Luma Dream Machine generations (ray video, photon images; also the relays' /luma/generations)",
    default_base_url="https://api.lumalabs.ai/dream-machine/v1",
    api_key_env="LUMAAI_API_KEY",
    option_keys=frozenset({"format", "poll_interval"}),
)
