"""OpenAI Images (``type = "openai-images"``): dall-e-2, dall-e-3 and the GPT image models.

Importing this package is cheap: the provider module loads when the first request is routed to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.provider import ProviderSettings, ProviderSpec

if TYPE_CHECKING:
    from polyrelay.transport import Transport

__all__ = ["SPEC"]


def _factory(settings: ProviderSettings, transport: Transport) -> object:
    from polyrelay_openai_images._provider import build

    return build(settings, transport)


SPEC = ProviderSpec(
    name="openai-images",
    factory=_factory,
    capabilities=frozenset({"images"}),
    description="OpenAI Images API: generations, edits and variations (dall-e-2, dall-e-3, gpt-image-*)",
    default_base_url="https://api.openai.com/v1",
    api_key_env="OPENAI_API_KEY",
    option_keys=frozenset({"organization", "project"}),
)
