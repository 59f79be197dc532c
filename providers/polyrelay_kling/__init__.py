"""Kling AI's official API (``type = "kling"``): text/image to video and image generation, HS256 JWT auth.

Importing this package is cheap: the provider module (and aiohttp) load when the first request is routed to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.provider import ProviderSettings, ProviderSpec

if TYPE_CHECKING:
    from polyrelay.transport import Transport

__all__ = ["SPEC"]


def _factory(settings: ProviderSettings, transport: Transport) -> object:
    from polyrelay_kling._provider import build

    return build(settings, transport)


SPEC = ProviderSpec(
    name="kling",
    factory=_factory,
    capabilities=frozenset({"tasks"}),
    description="Kling AI video and image generation (JWT from access_key/secret_key; {code, data} envelope)",
    default_base_url="https://api-singapore.klingai.com",
    api_key_env=None,
    option_keys=frozenset({"access_key", "secret_key", "region", "poll_interval"}),
)
