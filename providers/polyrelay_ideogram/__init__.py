"""Ideogram image generation (``type = "ideogram"``): the legacy ``/generate`` API and the Ideogram 3.0 endpoints.

Importing this package is cheap: the provider module loads when the first instance is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.provider import ProviderSettings, ProviderSpec

if TYPE_CHECKING:
    from polyrelay.transport import Transport

__all__ = ["SPEC"]


def _factory(settings: ProviderSettings, transport: Transport) -> object:
    from polyrelay_ideogram._provider import create_provider

    return create_provider(settings, transport)


SPEC = ProviderSpec(
    name="ideogram",
    factory=_factory,
    capabilities=frozenset({"images", "tasks"}),
    description="Ideogram image generation (legacy /generate and the Ideogram 3.0 API); answers synchronously",
    default_base_url="https://api.ideogram.ai",
    api_key_env="IDEOGRAM_API_KEY",
    option_keys=frozenset({"auth"}),
)
