"""The circuit breaker: opening, half-open probes, closing; and how the router uses it."""

from __future__ import annotations

import pytest

from polyrelay.circuit import CircuitBreaker, CircuitChange, CircuitRecord, CircuitStore, InMemoryCircuitStore
from polyrelay.errors import BadRequest, RateLimited, ServerError
from polyrelay.hooks import CircuitEvent, RouterHooks
from polyrelay.policy import CircuitPolicy

from .conftest import USER, Build, FakeClock, fake, route, t

POLICY = CircuitPolicy(
    consecutive_failures=3, failure_ratio=0.5, window=60, min_calls=10, cooldown=30, max_cooldown=100
)


def breaker(clock: FakeClock) -> tuple[CircuitBreaker, list[CircuitChange]]:
    changes: list[CircuitChange] = []
    return CircuitBreaker(InMemoryCircuitStore(), clock, changes.append), changes


def test_opens_after_consecutive_failures_and_a_success_resets_the_count(clock: FakeClock) -> None:
    b, changes = breaker(clock)
    for _ in range(2):
        b.record("t", POLICY, "failure")
    b.record("t", POLICY, "success")
    for _ in range(2):
        b.record("t", POLICY, "failure")
    assert b.admit("t", POLICY) == "allow"
    b.record("t", POLICY, "failure")
    assert b.admit("t", POLICY) == "open"
    assert [(c.old, c.new) for c in changes] == [("closed", "open")]
    assert b.open_until("t") == clock.now + 30


def test_opens_on_the_failure_ratio_within_the_window(clock: FakeClock) -> None:
    b, _ = breaker(clock)
    for i in range(10):  # alternate, never 3 in a row: 5 of 10 fail
        b.record("t", POLICY, "failure" if i % 2 else "success")
        clock.advance(1)
    assert b.admit("t", POLICY) == "open"
    snap = b.snapshot("t")
    assert snap.state == "open" and snap.failure_ratio == pytest.approx(0.5)


def test_old_calls_slide_out_of_the_window(clock: FakeClock) -> None:
    b, _ = breaker(clock)
    for i in range(9):
        b.record("t", POLICY, "failure" if i % 2 else "success")
    clock.advance(130)  # two windows later: forgotten
    b.record("t", POLICY, "failure")
    assert b.admit("t", POLICY) == "allow"


def test_client_errors_are_neutral(clock: FakeClock) -> None:
    b, _ = breaker(clock)
    for _ in range(10):
        b.record("t", POLICY, "neutral")
    assert b.admit("t", POLICY) == "allow"
    assert b.snapshot("t").consecutive_failures == 0


def test_half_open_lets_exactly_one_probe_through(clock: FakeClock) -> None:
    b, changes = breaker(clock)
    for _ in range(3):
        b.record("t", POLICY, "failure")
    clock.advance(29)
    assert b.admit("t", POLICY) == "open"
    clock.advance(1)
    assert b.admit("t", POLICY) == "probe"
    assert b.admit("t", POLICY) == "open"  # the probe is in flight
    b.record("t", POLICY, "success", probe=True)
    assert b.admit("t", POLICY) == "allow"
    assert [(c.old, c.new) for c in changes] == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_failed_probes_double_the_cooldown_up_to_the_maximum(clock: FakeClock) -> None:
    b, _ = breaker(clock)
    for _ in range(3):
        b.record("t", POLICY, "failure")
    cooldowns = []
    for _ in range(4):
        start = clock.now
        clock.now = b.open_until("t")
        cooldowns.append(clock.now - start)
        assert b.admit("t", POLICY) == "probe"
        b.record("t", POLICY, "failure", probe=True)
    assert cooldowns == [30, 60, 100, 100]


def test_a_probe_that_proved_nothing_lets_the_next_call_probe(clock: FakeClock) -> None:
    b, _ = breaker(clock)
    for _ in range(3):
        b.record("t", POLICY, "failure")
    clock.advance(30)
    assert b.admit("t", POLICY) == "probe"
    b.record("t", POLICY, "neutral", probe=True)  # e.g. a 400, or the caller cancelled
    assert b.admit("t", POLICY) == "probe"


def test_a_lost_probe_is_replaced_after_a_cooldown(clock: FakeClock) -> None:
    b, _ = breaker(clock)
    for _ in range(3):
        b.record("t", POLICY, "failure")
    clock.advance(30)
    assert b.admit("t", POLICY) == "probe"
    clock.advance(30)
    assert b.admit("t", POLICY) == "probe"


def test_disabled_breaker_never_opens(clock: FakeClock) -> None:
    b, _ = breaker(clock)
    off = CircuitPolicy(enabled=False, consecutive_failures=1)
    b.record("t", off, "failure")
    assert b.admit("t", off) == "allow"


def test_the_store_is_a_small_protocol(clock: FakeClock) -> None:
    class DictStore:
        def __init__(self) -> None:
            self.puts = 0
            self.data: dict[str, CircuitRecord] = {}

        def get(self, key: str) -> CircuitRecord | None:
            return self.data.get(key)

        def put(self, key: str, record: CircuitRecord) -> None:
            self.puts += 1
            self.data[key] = record

    store = DictStore()
    assert isinstance(store, CircuitStore)
    b = CircuitBreaker(store, clock)
    for _ in range(3):
        b.record("t", POLICY, "failure")
    assert store.data["t"].state == "open" and store.puts == 3


class Recorder(RouterHooks):
    def __init__(self) -> None:
        self.events: list[CircuitEvent] = []

    def on_circuit_change(self, event: CircuitEvent) -> None:
        self.events.append(event)


async def test_router_skips_an_open_target_then_probes_it_after_the_cooldown(make: Build, clock: FakeClock) -> None:
    hooks = Recorder()
    r = make(
        [route("m", t("a", "x"), t("b", "y"))],
        policy={"retry": {"max_attempts": 1}, "circuit": {"consecutive_failures": 2, "cooldown": 10}},
        clock=clock,
        hooks=[hooks],
    )
    a, b = fake(r, "a"), fake(r, "b")
    a.push(ServerError("down", status=500), ServerError("down", status=500))
    for _ in range(2):
        await r.chat.completions.create(model="m", messages=USER)
    assert r.circuit("a/x").state == "open"
    for _ in range(3):
        resp = await r.chat.completions.create(model="m", messages=USER)
        assert resp.meta is not None and resp.meta.provider == "b"
        assert resp.meta.attempts[0].outcome == "skipped"
    assert len(a.calls) == 2  # not probed on every request
    clock.advance(10)
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert resp.meta is not None and resp.meta.provider == "a"
    assert r.circuit("a/x").state == "closed"
    assert [(e.old, e.new) for e in hooks.events] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert len(b.calls) == 5


async def test_when_every_target_is_open_the_first_to_recover_is_tried(make: Build, clock: FakeClock) -> None:
    r = make(
        [route("m", t("a", "x"), t("b", "y"))],
        policy={"retry": {"max_attempts": 1}, "circuit": {"consecutive_failures": 1, "cooldown": 30}},
        clock=clock,
    )
    fake(r, "a").push(ServerError("down", status=500))
    await r.chat.completions.create(model="m", messages=USER)  # a opens until t+30, b answers
    clock.advance(5)
    fake(r, "b").push(ServerError("down", status=500))
    with pytest.raises(ServerError):  # a is skipped, b fails and opens until t+35
        await r.chat.completions.create(model="m", messages=USER)
    assert r.circuit("a/x").state == "open" and r.circuit("b/y").state == "open"
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert resp.meta is not None
    assert [(a.provider, a.outcome) for a in resp.meta.attempts] == [
        ("a", "skipped"),
        ("b", "skipped"),
        ("a", "success"),
    ]
    assert r.circuit("a/x").state == "closed"


async def test_client_errors_do_not_open_the_circuit(make: Build) -> None:
    r = make([route("m", t("a", "x"))], policy={"circuit": {"consecutive_failures": 1}})
    fake(r, "a").push(BadRequest("bad", status=400))
    with pytest.raises(BadRequest):
        await r.chat.completions.create(model="m", messages=USER)
    assert r.circuit("a/x").state == "closed"
    fake(r, "a").push(RateLimited("slow", status=429), RateLimited("slow", status=429), RateLimited("slow", status=429))
    with pytest.raises(RateLimited):
        await r.chat.completions.create(model="m", messages=USER)
    assert r.circuit("a/x").state == "open"
