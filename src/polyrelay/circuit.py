"""Per-target circuit breaker, with its state behind a small :class:`CircuitStore` interface.

A target's circuit is **closed** (calls flow), **open** (the target is skipped) or **half-open** (the cooldown is
over and exactly one probe call is let through; its success closes the circuit, its failure opens it again with a
doubled cooldown, up to ``CircuitPolicy.max_cooldown``).

It opens after ``consecutive_failures`` failures in a row, or when ``failure_ratio`` of the calls in the last
``window`` seconds failed (counted only once there were at least ``min_calls``). The window is a sliding-window
counter: the current and the previous fixed window, the previous one weighted by how much of it still overlaps.

Only upstream faults count as failures (5xx, 429, timeouts, connection errors, unparsable answers, broken streams);
the router decides which and calls :meth:`CircuitBreaker.record` with ``"success"``, ``"failure"`` or
``"neutral"`` (a client error, a cancelled call: it says nothing about the target's health).

The breaker logic lives here; a :class:`CircuitStore` only keeps :class:`CircuitRecord` values by target key, so a
shared store (Redis, a database) can be plugged in without touching the logic. Its methods are synchronous because
they sit on every call's path: a shared implementation keeps a local view and synchronises in the background.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal, Protocol, runtime_checkable

import attrs

from polyrelay.errors import (
    DeadlineExceeded,
    InvalidUpstreamResponse,
    Overloaded,
    RateLimited,
    ServerError,
    StreamInterrupted,
    TransportError,
    UpstreamStatusError,
)
from polyrelay.policy import CircuitPolicy

__all__ = [
    "Admission",
    "CircuitBreaker",
    "CircuitChange",
    "CircuitRecord",
    "CircuitSnapshot",
    "CircuitState",
    "CircuitStore",
    "InMemoryCircuitStore",
    "Outcome",
    "outcome_of",
]

CircuitState = Literal["closed", "open", "half_open"]
Admission = Literal["allow", "probe", "open"]
"""``allow``: closed, go ahead. ``probe``: the one half-open probe (report its outcome!). ``open``: skip it."""
Outcome = Literal["success", "failure", "neutral"]

# Upstream faults: these count against a target's circuit. Client errors and cancellations do not.
_FAILURES: tuple[type[BaseException], ...] = (
    RateLimited,
    Overloaded,
    ServerError,
    InvalidUpstreamResponse,
    StreamInterrupted,
)


def outcome_of(exc: BaseException, own_deadline_passed: Callable[[], bool]) -> Outcome:
    """What an attempt that raised ``exc`` says about its target (``own_deadline_passed``: whether the call's own
    deadline has run out, asked only for a :class:`DeadlineExceeded`)."""
    if isinstance(exc, _FAILURES):
        return "failure"
    if isinstance(exc, TransportError):
        # The call's own budget running out says nothing about the target.
        return "neutral" if isinstance(exc, DeadlineExceeded) and own_deadline_passed() else "failure"
    if type(exc) is UpstreamStatusError and exc.status is not None and (exc.status >= 500 or exc.status == 408):
        return "failure"
    return "neutral"


# Failed probes double the cooldown at most this many times before max_cooldown caps it anyway.
_MAX_DOUBLINGS = 16


@attrs.define(slots=True, kw_only=True)
class CircuitRecord:
    """The mutable state of one target's breaker, as a store keeps it."""

    state: CircuitState = "closed"
    consecutive_failures: int = 0
    open_until: float = 0.0
    """While open: the clock time the cooldown ends."""
    reopened: int = 0
    """Failed probes since the circuit was last closed (each doubles the cooldown)."""
    probe_since: float | None = None
    """While half-open: when the probe in flight was let through (``None``: no probe in flight)."""
    window_start: float = 0.0
    calls: int = 0
    failures: int = 0
    prev_calls: int = 0
    prev_failures: int = 0


@runtime_checkable
class CircuitStore(Protocol):
    """Where breaker state lives, by target key (``provider/model``)."""

    def get(self, key: str) -> CircuitRecord | None:
        """The record of ``key``, ``None`` when there is none yet."""
        ...

    def put(self, key: str, record: CircuitRecord) -> None:
        """Save ``record`` (called after every change of it)."""
        ...


class InMemoryCircuitStore:
    """The default store: a dict, private to one Router."""

    __slots__ = ("_records",)

    def __init__(self) -> None:
        self._records: dict[str, CircuitRecord] = {}

    def get(self, key: str) -> CircuitRecord | None:
        return self._records.get(key)

    def put(self, key: str, record: CircuitRecord) -> None:
        self._records[key] = record

    def keys(self) -> Iterator[str]:
        return iter(tuple(self._records))


@attrs.frozen(kw_only=True)
class CircuitChange:
    """A state transition of one target's circuit."""

    target: str
    old: CircuitState
    new: CircuitState
    reason: str
    open_until: float | None = None


@attrs.frozen(kw_only=True)
class CircuitSnapshot:
    """A read-only view of one target's circuit (for status pages and tests)."""

    target: str
    state: CircuitState
    consecutive_failures: int
    open_until: float | None
    failure_ratio: float | None
    """Failures / calls in the sliding window (``None`` before any call)."""


class CircuitBreaker:
    """The breaker logic over a :class:`CircuitStore`; ``clock`` is monotonic seconds."""

    __slots__ = ("_clock", "_on_change", "_store")

    def __init__(
        self,
        store: CircuitStore,
        clock: Callable[[], float],
        on_change: Callable[[CircuitChange], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._on_change = on_change

    @property
    def store(self) -> CircuitStore:
        return self._store

    # -- queries -------------------------------------------------------------------------------------------------
    def admit(self, key: str, policy: CircuitPolicy) -> Admission:
        """May a call go to ``key`` now? Turns an open circuit whose cooldown is over into half-open (probe)."""
        if not policy.enabled:
            return "allow"
        rec = self._store.get(key)
        if rec is None or rec.state == "closed":
            return "allow"
        now = self._clock()
        if rec.state == "open":
            if now < rec.open_until:
                return "open"
            rec.state = "half_open"
            rec.probe_since = now
            self._store.put(key, rec)
            self._emit(key, "open", "half_open", "cooldown over: letting one probe through")
            return "probe"
        # half-open: one probe at a time. A probe that never reported back (its task was lost) is replaced after a
        # cooldown, so the target cannot stay stuck half-open.
        if rec.probe_since is not None and now - rec.probe_since < policy.cooldown:
            return "open"
        rec.probe_since = now
        self._store.put(key, rec)
        return "probe"

    def is_open(self, key: str) -> bool:
        """True when a call to ``key`` would be skipped now (no state change)."""
        rec = self._store.get(key)
        if rec is None or rec.state == "closed":
            return False
        if rec.state == "open":
            return self._clock() < rec.open_until
        return rec.probe_since is not None

    def open_until(self, key: str) -> float:
        """When ``key``'s cooldown ends (``0.0`` when it is not open)."""
        rec = self._store.get(key)
        return rec.open_until if rec is not None and rec.state != "closed" else 0.0

    def force_probe(self, key: str) -> None:
        """Use ``key`` as the probe now, cooldown or not (every target is open: try the one that recovers first)."""
        rec = self._store.get(key)
        if rec is None or rec.state == "closed":
            return
        old = rec.state
        rec.state = "half_open"
        rec.probe_since = self._clock()
        self._store.put(key, rec)
        if old != "half_open":
            self._emit(key, old, "half_open", "every target is open: probing the one whose cooldown ends first")

    def snapshot(self, key: str) -> CircuitSnapshot:
        rec = self._store.get(key)
        if rec is None:
            return CircuitSnapshot(
                target=key, state="closed", consecutive_failures=0, open_until=None, failure_ratio=None
            )
        calls, failures = self._estimate(rec, self._clock(), None)
        return CircuitSnapshot(
            target=key,
            state=rec.state,
            consecutive_failures=rec.consecutive_failures,
            open_until=rec.open_until if rec.state != "closed" else None,
            failure_ratio=failures / calls if calls > 0 else None,
        )

    # -- updates -------------------------------------------------------------------------------------------------
    def record(
        self, key: str, policy: CircuitPolicy, outcome: Outcome, *, probe: bool = False, now: float | None = None
    ) -> None:
        """Report the outcome of a call to ``key`` (``probe``: it was admitted as the half-open probe; ``now``: the
        clock's time, when the caller has just read it)."""
        if not policy.enabled:
            return
        rec = self._store.get(key)
        if rec is None:
            if outcome == "neutral":
                return
            rec = CircuitRecord()
        if now is None:
            now = self._clock()
        if outcome == "neutral":
            if probe and rec.state == "half_open":
                rec.probe_since = None  # the probe proved nothing: let the next call probe
                self._store.put(key, rec)
            return
        self._roll(rec, now, policy.window)
        rec.calls += 1
        if outcome == "success":
            rec.consecutive_failures = 0
            if rec.state != "closed":
                old = rec.state
                rec.state, rec.reopened, rec.probe_since, rec.open_until = "closed", 0, None, 0.0
                self._store.put(key, rec)
                self._emit(key, old, "closed", "a call succeeded")
                return
            self._store.put(key, rec)
            return
        rec.failures += 1
        rec.consecutive_failures += 1
        if rec.state == "half_open":
            rec.reopened += 1
            self._open(key, rec, policy, now, "the probe failed")
            return
        if rec.state == "closed":
            n = policy.consecutive_failures
            if n and rec.consecutive_failures >= n:
                self._open(key, rec, policy, now, f"{rec.consecutive_failures} consecutive failures")
                return
            calls, failures = self._estimate(rec, now, policy.window)
            if calls >= max(policy.min_calls, 1) and failures / calls >= policy.failure_ratio:
                self._open(key, rec, policy, now, f"{failures / calls:.0%} of {calls:.0f} calls failed")
                return
        self._store.put(key, rec)

    # -- internals -----------------------------------------------------------------------------------------------
    def _open(self, key: str, rec: CircuitRecord, policy: CircuitPolicy, now: float, reason: str) -> None:
        old = rec.state
        cap = max(policy.max_cooldown, policy.cooldown)
        cooldown = min(policy.cooldown * 2 ** min(rec.reopened, _MAX_DOUBLINGS), cap)
        rec.state, rec.open_until, rec.probe_since = "open", now + cooldown, None
        self._store.put(key, rec)
        self._emit(key, old, "open", reason, rec.open_until)

    @staticmethod
    def _roll(rec: CircuitRecord, now: float, window: float) -> None:
        elapsed = now - rec.window_start
        if elapsed < window:
            return
        if elapsed < 2 * window:
            rec.prev_calls, rec.prev_failures = rec.calls, rec.failures
            rec.window_start += window
        else:
            rec.prev_calls = rec.prev_failures = 0
            rec.window_start = now
        rec.calls = rec.failures = 0

    @staticmethod
    def _estimate(rec: CircuitRecord, now: float, window: float | None) -> tuple[float, float]:
        if window is None or window <= 0:
            return float(rec.calls), float(rec.failures)
        weight = max(0.0, 1.0 - (now - rec.window_start) / window)
        return rec.calls + rec.prev_calls * weight, rec.failures + rec.prev_failures * weight

    def _emit(self, key: str, old: CircuitState, new: CircuitState, reason: str, until: float | None = None) -> None:
        if self._on_change is not None:
            self._on_change(CircuitChange(target=key, old=old, new=new, reason=reason, open_until=until))
