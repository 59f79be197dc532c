"""Suno music through the relay formats in use (``type = "suno"``): new-api's ``/suno/*`` task API (default) or a
gcui-art/suno-api deployment (``format = "suno-api"``). Suno has no official public API.

Importing this package is cheap: the provider module (and aiohttp) load when the first request is routed to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.provider import ProviderSettings, ProviderSpec

if TYPE_CHECKING:
    from polyrelay.transport import Transport

__all__ = ["SPEC"]


def _factory(settings: ProviderSettings, transport: Transport) -> object:
    from polyrelay_suno._provider import build

    return build(settings, transport)


SPEC = ProviderSpec(
    name="suno",
    factory=_factory,
    capabilities=frozenset({"tasks"}),
    description="Suno songs and lyrics via new-api /suno/* relays or gcui-art/suno-api (/api/generate, /api/get)",
    default_base_url=None,
    api_key_env="SUNO_API_KEY",
    option_keys=frozenset({"format", "fetch", "cookie", "poll_interval"}),
)
