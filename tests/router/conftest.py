"""Fixtures for the router tests: a router over FakeProviders, a sleep recorder and a fake clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import pytest

from polyrelay.policy import Policy
from polyrelay.provider import ProviderSettings
from polyrelay.registry import ProviderRegistry
from polyrelay.router import Router
from polyrelay.routes import ModelRoute, Target
from polyrelay.testing._fake import FakeProvider, fake_spec

USER = [{"role": "user", "content": "Say hello."}]


class FakeClock:
    """A monotonic clock the test moves by hand (and the sleep recorder moves by each sleep)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SleepRecorder:
    """The injected tenacity sleep: records each delay and returns at once (advancing a fake clock if given)."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.clock: FakeClock | None = None

    async def __call__(self, seconds: float) -> None:
        self.values.append(seconds)
        if self.clock is not None:
            self.clock.advance(seconds)


def t(provider: str, model: str, **kw: Any) -> Target:
    return Target(provider=provider, model=model, **kw)


def route(name: str, *targets: Target, **kw: Any) -> ModelRoute:
    return ModelRoute(name=name, targets=tuple(targets), **kw)


async def until(condition: Callable[[], bool]) -> None:
    """Let other tasks run until ``condition()`` holds (callers bound it with a timeout when needed)."""
    while not condition():  # noqa: ASYNC110 - polling router state, there is no event to wait on
        await asyncio.sleep(0)


def fake(router: Router, name: str) -> FakeProvider:
    p = router.provider(name)
    assert isinstance(p, FakeProvider)
    return p


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def clock(sleeps: SleepRecorder) -> FakeClock:
    c = FakeClock()
    sleeps.clock = c
    return c


Build = Callable[..., Router]


@pytest.fixture
async def make(sleeps: SleepRecorder) -> AsyncIterator[Build]:
    """``make(models, providers=("a", "b", "c"), policy={...} | Policy, **router_kw)`` builds a closed-at-teardown
    Router whose providers are FakeProviders (``options`` per provider via ``options={"a": {...}}``)."""
    routers: list[Router] = []

    def build(
        models: Sequence[ModelRoute] = (),
        *,
        providers: Sequence[str] = ("a", "b", "c", "d"),
        policy: Policy | Mapping[str, Any] | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        **kw: Any,
    ) -> Router:
        pol = policy if isinstance(policy, Policy) else Policy().merged(policy)
        settings = {
            p: ProviderSettings(name=p, type="fake", options=(options or {}).get(p, {}), config_path=f"providers.{p}")
            for p in providers
        }
        kw.setdefault("sleep", sleeps)
        kw.setdefault("rng", random.Random(7))
        r = Router(
            providers=settings,
            models=models,
            policy=pol,
            registry=ProviderRegistry([fake_spec()], entry_points=False),
            **kw,
        )
        routers.append(r)
        return r

    yield build
    for r in routers:
        await r.aclose()
