"""Target ordering strategies, as functions and through the router."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from polyrelay.errors import ServerError
from polyrelay.provider import CallContext
from polyrelay.strategies import LatencyStats, order_targets
from polyrelay.testing._fake import Reply, hang
from polyrelay.types.chat import ChatRequest

from .conftest import USER, Build, FakeClock, fake, route, t, until

ITEMS = ("a", "b", "c")


def order(
    strategy: str,
    *,
    weights: dict[str, float] | None = None,
    inflight: dict[str, int] | None = None,
    latency: dict[str, float | None] | None = None,
    turn: int = 0,
    seed: int = 1,
) -> list[str]:
    return list(
        order_targets(
            strategy,  # type: ignore[arg-type]
            ITEMS,
            weight=lambda x: (weights or {}).get(x, 1.0),
            in_flight=lambda x: (inflight or {}).get(x, 0),
            latency=lambda x: (latency or {}).get(x),
            rng=random.Random(seed),
            turn=turn,
        )
    )


def test_priority_keeps_the_configured_order() -> None:
    assert order("priority") == ["a", "b", "c"]


def test_round_robin_rotates() -> None:
    assert [order("round_robin", turn=n)[0] for n in range(4)] == ["a", "b", "c", "a"]
    assert order("round_robin", turn=1) == ["b", "c", "a"]


def test_least_inflight_prefers_the_idle_target_and_keeps_ties_in_order() -> None:
    assert order("least_inflight", inflight={"a": 3, "b": 1, "c": 1}) == ["b", "c", "a"]


def test_lowest_latency_explores_unmeasured_targets_first() -> None:
    assert order("lowest_latency", latency={"a": 0.9, "b": 0.2, "c": None}) == ["c", "b", "a"]
    assert order("lowest_latency", latency={"a": 0.9, "b": 0.2, "c": 0.5}) == ["b", "c", "a"]


def test_weighted_follows_the_weights_and_zero_weight_goes_last() -> None:
    firsts = Counter(order("weighted", weights={"a": 8, "b": 2, "c": 0}, seed=seed)[0] for seed in range(2000))
    assert firsts["c"] == 0
    assert 0.74 < firsts["a"] / 2000 < 0.86
    assert all(order("weighted", weights={"a": 1, "b": 1, "c": 0}, seed=s)[-1] == "c" for s in range(50))


def test_latency_average_is_exponentially_weighted() -> None:
    s = LatencyStats()
    s.observe(1.0, 0.5)
    s.observe(0.0, 0.5)
    s.observe(0.0, 0.5)
    assert s.ewma == 0.25 and s.samples == 3


async def test_round_robin_through_the_router(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"), t("c", "z"))], policy={"strategy": "round_robin"})
    served = []
    for _ in range(6):
        resp = await r.chat.completions.create(model="m", messages=USER)
        assert resp.meta is not None
        served.append(resp.meta.provider)
    assert served == ["a", "b", "c", "a", "b", "c"]


async def test_weighted_through_the_router_fails_over_along_the_permutation(make: Build) -> None:
    r = make([route("m", t("a", "x", weight=0), t("b", "y", weight=1))], policy={"strategy": "weighted"})
    fake(r, "b").push(ServerError("down", status=500, retryable=False))
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert resp.meta is not None
    assert [a.provider for a in resp.meta.attempts] == ["b", "a"]


async def test_per_call_strategy_override(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))])
    resp = await r.chat.completions.create(model="m", messages=USER, policy={"strategy": "round_robin"})
    resp2 = await r.chat.completions.create(model="m", messages=USER, policy={"strategy": "round_robin"})
    assert resp.meta is not None and resp2.meta is not None
    assert (resp.meta.provider, resp2.meta.provider) == ("a", "b")


async def test_least_inflight_through_the_router(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))], policy={"strategy": "least_inflight"})
    fake(r, "a").push(hang())
    stuck = asyncio.create_task(r.chat.completions.create(model="m", messages=USER))
    await until(lambda: r.in_flight("a/x") > 0)
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert resp.meta is not None and resp.meta.provider == "b"
    stuck.cancel()
    await asyncio.gather(stuck, return_exceptions=True)
    assert r.in_flight("a/x") == 0


async def test_lowest_latency_through_the_router(make: Build, clock: FakeClock) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))], policy={"strategy": "lowest_latency"}, clock=clock)

    def slow(seconds: float):  # type: ignore[no-untyped-def]
        def step(request: ChatRequest, ctx: CallContext) -> Reply:
            clock.advance(seconds)  # the fake clock measures this as the target's latency
            return Reply(content="ok")

        return step

    fake(r, "a").default = slow(2.0)
    fake(r, "b").default = slow(0.1)
    served = []
    for _ in range(4):
        resp = await r.chat.completions.create(model="m", messages=USER)
        assert resp.meta is not None
        served.append(resp.meta.provider)
    # a and b are unmeasured at first (a by configured order), then b stays the fastest
    assert served == ["a", "b", "b", "b"]
