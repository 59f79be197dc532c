"""Midjourney through the midjourney-proxy protocol (``type = "midjourney"``): relays and self-hosted proxies.

Importing this package is cheap: the provider module loads when the first instance is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.provider import ProviderSettings, ProviderSpec

if TYPE_CHECKING:
    from polyrelay.transport import Transport

__all__ = ["SPEC"]


def _factory(settings: ProviderSettings, transport: Transport) -> object:
    from polyrelay_midjourney._provider import create_provider

    return create_provider(settings, transport)


SPEC = ProviderSpec(
    name="midjourney",
    factory=_factory,
    capabilities=frozenset({"tasks"}),
    description="Midjourney via the midjourney-proxy protocol (/mj/submit/..., /mj/task/{id}/fetch) of relays and "
    "self-hosted proxies; tasks with button actions",
    default_base_url=None,
    api_key_env="MIDJOURNEY_API_KEY",
    option_keys=frozenset({"auth", "mode", "poll_interval", "cancel"}),
)
