"""Dify workflow apps (``type = "dify"``) as ``kind = "workflow"`` tasks: ``POST /v1/workflows/run`` (streamed
node progress or blocking), ``GET /v1/workflows/run/{id}``, stop.

Importing this package is cheap: the provider module (and aiohttp) load when the first request is routed to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.provider import ProviderSettings, ProviderSpec

if TYPE_CHECKING:
    from polyrelay.transport import Transport

__all__ = ["SPEC"]


def _factory(settings: ProviderSettings, transport: Transport) -> object:
    from polyrelay_dify._provider import build

    return build(settings, transport)


SPEC = ProviderSpec(
    name="dify",
    factory=_factory,
    capabilities=frozenset({"tasks"}),
    description="Dify workflow apps as tasks (streamed node progress, structured outputs, stop)",
    default_base_url="https://api.dify.ai/v1",
    api_key_env="DIFY_API_KEY",
    option_keys=frozenset({"response_mode", "user", "prompt_input", "send_model", "poll_interval", "live_poll_wait"}),
)
