"""Coze workflows (``type = "coze"``) as ``kind = "workflow"`` tasks: ``/v1/workflow/stream_run`` (node messages
as progress), ``/v1/workflow/run`` (sync, or ``is_async`` polled through ``run_histories``). The model name is the
workflow id (``coze/<workflow_id>``).

Importing this package is cheap: the provider module (and aiohttp) load when the first request is routed to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.provider import ProviderSettings, ProviderSpec

if TYPE_CHECKING:
    from polyrelay.transport import Transport

__all__ = ["SPEC"]


def _factory(settings: ProviderSettings, transport: Transport) -> object:
    from polyrelay_coze._provider import build

    return build(settings, transport)


SPEC = ProviderSpec(
    name="coze",
    factory=_factory,
    capabilities=frozenset({"tasks"}),
    description="Coze workflows as tasks (stream_run messages as progress, sync or async runs, decoded outputs)",
    default_base_url="https://api.coze.com",
    api_key_env="COZE_API_TOKEN",
    option_keys=frozenset({"mode", "bot_id", "app_id", "prompt_input", "poll_interval", "live_poll_wait"}),
)
