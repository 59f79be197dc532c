"""Replicate predictions (``type = "replicate"``): create by model or version, ``Prefer: wait``, poll, cancel.

Importing this package is cheap: the provider module loads when the first request is routed to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.provider import ProviderSettings, ProviderSpec

if TYPE_CHECKING:
    from polyrelay.transport import Transport

__all__ = ["SPEC"]


def _factory(settings: ProviderSettings, transport: Transport) -> object:
    from polyrelay_replicate._provider import build

    return build(settings, transport)


SPEC = ProviderSpec(
    name="replicate",
    factory=_factory,
    capabilities=frozenset({"tasks"}),
    description="Replicate predictions (any model: images, video, audio; Prefer: wait, then polling)",
    default_base_url="https://api.replicate.com/v1",
    api_key_env="REPLICATE_API_TOKEN",
    option_keys=frozenset({"wait", "image_key"}),
)
