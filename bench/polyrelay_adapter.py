"""Benchmark adapter: polyrelay's Router for the shared client-overhead harness (``bench/run.py``).

The adapter protocol is documented in the harness's ``targets/raw.py``. The client is a :class:`polyrelay.Router`
with two deployments of one model (``cfg.base_url`` and ``cfg.fallback_base_url``), like the harness's LiteLLM
Router target; the router's defaults apply (``priority`` strategy: the second deployment is the failover target).
Streams go through the public :class:`~polyrelay.stream.ChatStream` and the typed
:class:`~polyrelay.types.completion.ChatCompletionChunk` objects it yields.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

# What the harness times in a fresh interpreter: the name an application imports (like LiteLLM's target times
# "from litellm import Router"). polyrelay loads aiohttp and the provider on first use, so that cost shows in the
# harness's "cold 1st" column instead.
IMPORT = "from polyrelay import Router"

from polyrelay import Policy, Router  # noqa: E402 - IMPORT above is what the harness times
from polyrelay.errors import Secret  # noqa: E402
from polyrelay.provider import ProviderSettings  # noqa: E402
from polyrelay.routes import ModelRoute, Target  # noqa: E402
from polyrelay.transport import PoolLimits  # noqa: E402

__all__ = ["IMPORT", "PolyrelayClient", "create", "version"]

_MODEL = "bench"


class _Config(Protocol):
    """The fields of the harness's ``common.ClientConfig`` this adapter reads."""

    base_url: str
    model: str
    api_key: str
    fallback_base_url: str | None
    max_retries: int | None
    timeout_s: float | None
    max_connections: int


def version() -> str:
    from importlib.metadata import version as dist_version

    return f"polyrelay {dist_version('polyrelay')} Router"


def _policy(cfg: _Config) -> Policy:
    overrides: dict[str, Any] = {}
    if cfg.max_retries is not None:
        # The harness counts retries; polyrelay counts attempts per target, the first included.
        overrides["retry"] = {"max_attempts": cfg.max_retries + 1}
    if cfg.timeout_s is not None:
        overrides["deadline"] = cfg.timeout_s  # "seconds for the whole request": the call's overall budget
    return Policy().merged(overrides)


class PolyrelayClient:
    """One Router, two deployments of ``cfg.model``."""

    def __init__(self, cfg: _Config) -> None:
        bases = {"primary": cfg.base_url, "fallback": cfg.fallback_base_url or cfg.base_url}
        providers = {
            name: ProviderSettings(
                name=name, type="openai", base_url=url, api_key=Secret(cfg.api_key), config_path=f"providers.{name}"
            )
            for name, url in bases.items()
        }
        route = ModelRoute(name=_MODEL, targets=tuple(Target(provider=p, model=cfg.model) for p in bases))
        self.router = Router(
            providers=providers,
            models=[route],
            policy=_policy(cfg),
            limits=PoolLimits(max_connections=cfg.max_connections),
        )
        self._create = self.router.chat.completions.create

    async def complete(self, messages: Sequence[Mapping[str, Any]]) -> str | None:
        resp = await self._create(model=_MODEL, messages=messages)
        return resp.choices[0].message.content

    async def stream(self, messages: Sequence[Mapping[str, Any]]) -> AsyncIterator[str]:
        stream = await self._create(
            model=_MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
        )
        async with stream:
            async for chunk in stream:
                for choice in chunk.choices:
                    content = choice.delta.content
                    if content and choice.index == 0:
                        yield content

    async def aclose(self) -> None:
        await self.router.aclose()


async def create(cfg: _Config) -> PolyrelayClient:
    return PolyrelayClient(cfg)
