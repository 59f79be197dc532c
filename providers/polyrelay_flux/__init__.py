"""Black Forest Labs Flux (``type = "flux"``): submit to ``/{model}``, poll the returned ``polling_url``.

Importing this package is cheap: the provider module loads when the first request is routed to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.provider import ProviderSettings, ProviderSpec

if TYPE_CHECKING:
    from polyrelay.transport import Transport

__all__ = ["SPEC"]


def _factory(settings: ProviderSettings, transport: Transport) -> object:
    from polyrelay_flux._provider import build

    return build(settings, transport)


SPEC = ProviderSpec(
    name="flux",
    factory=_factory,
    capabilities=frozenset({"tasks"}),
    description="Black Forest Labs Flux image generation (async tasks, polling_url)",
    default_base_url="https://api.bfl.ai/v1",
    api_key_env="BFL_API_KEY",
    option_keys=frozenset({"foreign_polling", "trusted_hosts"}),
)
