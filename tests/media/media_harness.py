"""What the media tests share: providers built from their specs over one Transport, a small routing table standing
in for the Router (resolve / get_provider / make_ctx), and a fake clock whose sleep advances it at once."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import attrs

from polyrelay.bridge import MediaChatBridge
from polyrelay.errors import InvalidRequest, Secret
from polyrelay.images import ImagesService
from polyrelay.policy import Policy, RetryPolicy
from polyrelay.provider import CallContext, ProviderSettings, ProviderSpec
from polyrelay.routes import ResolvedTarget
from polyrelay.tasks import TaskService
from polyrelay.transport import Timeouts, Transport

API_KEY = "test-key"
POLICY = Policy(retry=RetryPolicy(max_attempts=3, backoff_initial=0.5, backoff_max=4.0))
TIMEOUTS = Timeouts(connect=5.0, first_byte=30.0, idle=30.0, total=60.0)


class FakeClock:
    """Wall clock for the services; ``sleep`` records the delay and advances the clock without waiting."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def settings(name: str, type_: str, base_url: str, *, key: str | None = API_KEY, **options: Any) -> ProviderSettings:
    return ProviderSettings(
        name=name,
        type=type_,
        base_url=base_url,
        api_key=Secret(key) if key else None,
        options=options,
        config_path=f"providers.{name}",
    )


@attrs.define
class Media:
    """The three media services over a fixed routing table."""

    transport: Transport
    clock: FakeClock
    providers: dict[str, object]
    routes: Mapping[str, Sequence[tuple[str, str]]]
    tasks: TaskService = attrs.field(init=False)
    images: ImagesService = attrs.field(init=False)
    bridge: MediaChatBridge = attrs.field(init=False)
    resubmit: bool = False
    policy: Policy = POLICY

    def __attrs_post_init__(self) -> None:
        rng = random.Random(7)
        self.tasks = TaskService(
            resolve=self.resolve,
            get_provider=self.get_provider,
            make_ctx=self.make_ctx,
            sleep=self.clock.sleep,
            clock=self.clock,
            rng=rng,
            resubmit_on_failure=self.resubmit,
        )
        self.images = ImagesService(
            self.tasks,
            self.resolve,
            self.get_provider,
            self.make_ctx,
            sleep=self.clock.sleep,
            clock=self.clock,
            rng=rng,
        )
        self.bridge = MediaChatBridge(self.tasks, clock=self.clock, keepalive=1.0)

    def resolve(self, model: str) -> list[ResolvedTarget]:
        if model in self.routes:
            return [ResolvedTarget(provider=p, model=m, policy=self.policy, route=model) for p, m in self.routes[model]]
        provider, sep, upstream = model.partition("/")
        if sep and provider in self.providers:
            return [ResolvedTarget(provider=provider, model=upstream, policy=self.policy, route=model)]
        raise InvalidRequest(f"unknown model {model!r}", path="model")

    def get_provider(self, name: str) -> object:
        return self.providers[name]

    def make_ctx(self, target: ResolvedTarget) -> CallContext:
        return CallContext(model=target.model, timeouts=TIMEOUTS, requested_model=target.route)


def build_media(
    transport: Transport,
    clock: FakeClock,
    providers: Mapping[str, tuple[ProviderSpec, ProviderSettings]],
    routes: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    *,
    resubmit: bool = False,
    policy: Policy = POLICY,
) -> Media:
    built = {name: spec.factory(cfg, transport) for name, (spec, cfg) in providers.items()}
    return Media(
        transport=transport,
        clock=clock,
        providers=built,
        routes=dict(routes or {}),
        resubmit=resubmit,
        policy=policy,
    )


@contextlib.asynccontextmanager
async def open_transport() -> AsyncIterator[Transport]:
    """A Transport closed on exit (pytest runs with filterwarnings=error: an unclosed session fails the test)."""
    t = Transport()
    try:
        yield t
    finally:
        await t.aclose()
