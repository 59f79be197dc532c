"""polyrelay provider plugin for the Anthropic Messages API (``type = "anthropic"``).

Importing this package is cheap: it defines :data:`SPEC` only; the provider code loads when the router builds an
instance. Registered as the entry point ``anthropic = "polyrelay_anthropic:SPEC"`` in the ``polyrelay.providers``
group. Config options are documented in :mod:`polyrelay_anthropic._provider`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.provider import ProviderSettings, ProviderSpec

if TYPE_CHECKING:
    from polyrelay.transport import Transport
    from polyrelay_anthropic._provider import AnthropicProvider

__all__ = ["SPEC"]


def _factory(settings: ProviderSettings, transport: Transport) -> AnthropicProvider:
    from polyrelay_anthropic._provider import create_provider

    return create_provider(settings, transport)


SPEC = ProviderSpec(
    name="anthropic",
    factory=_factory,
    capabilities=frozenset({"chat"}),
    description="Anthropic Messages API (Claude): chat, streaming, tools, vision, PDFs, extended thinking",
    default_base_url="https://api.anthropic.com/v1",
    api_key_env="ANTHROPIC_API_KEY",
    # Kept in step with polyrelay_anthropic._provider.OPTION_KEYS (a test checks it).
    option_keys=frozenset({"version", "beta", "auth", "default_max_tokens", "structured_output"}),
)
