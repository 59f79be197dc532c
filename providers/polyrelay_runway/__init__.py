"""Runway's official API (``type = "runway"``): image/text/video-to-video, text-to-image, upscale, Act-Two, audio.

Importing this package is cheap: the provider module (and aiohttp) load when the first request is routed to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.provider import ProviderSettings, ProviderSpec

if TYPE_CHECKING:
    from polyrelay.transport import Transport

__all__ = ["SPEC"]


def _factory(settings: ProviderSettings, transport: Transport) -> object:
    from polyrelay_runway._provider import build

    return build(settings, transport)


SPEC = ProviderSpec(
    name="runway",
    factory=_factory,
    capabilities=frozenset({"tasks"}),
    description="Runway API tasks (video, image, audio; X-Runway-Version header, GET/DELETE /v1/tasks/{id})",
    default_base_url="https://api.dev.runwayml.com/v1",
    api_key_env="RUNWAYML_API_SECRET",
    option_keys=frozenset({"version", "poll_interval"}),
)
