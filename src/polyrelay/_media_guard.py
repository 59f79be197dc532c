"""The router's circuit breaker and concurrency slots, for media calls.

Chat calls go through the failover engine, which admits each target through the circuit breaker and takes a
concurrency slot for every attempt. Media calls (task submission, direct image generation) fail over in
:func:`polyrelay.tasks.with_failover`; a :class:`TargetGuard` gives them the same two checks over the same breaker
and the same slots, so a target that keeps failing chat calls is skipped by media calls too, and the other way
round:

- a target whose circuit is open is skipped; when every target is open, the one whose cooldown ends first is tried
  as the probe (as chat calls do);
- each attempt takes a slot under ``Policy.max_concurrency`` (waiting per ``queue`` and ``queue_timeout``, within
  the call's deadline; :class:`~polyrelay.concurrency.TargetBusy` moves the call to the next target) and reports
  its outcome to the breaker (:func:`polyrelay.circuit.outcome_of`);
- retries on a target stop when its circuit opens (:func:`stop_when_open`), and the call moves on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import RetryCallState
from tenacity.stop import stop_base

from polyrelay._budget import Budget
from polyrelay.circuit import Admission, CircuitBreaker, outcome_of
from polyrelay.concurrency import Slots
from polyrelay.policy import policy_of
from polyrelay.routes import ResolvedTarget

__all__ = ["TargetGuard", "guarded", "stop_when_open"]

T = TypeVar("T")


class TargetGuard:
    """Circuit admission and concurrency slots per target; ``slots`` gives a target key's :class:`Slots`."""

    def __init__(self, breaker: CircuitBreaker, slots: Callable[[str], Slots]) -> None:
        self._breaker = breaker
        self._slots = slots
        self._probes: set[str] = set()  # targets admitted as their circuit's probe whose attempt has not run yet

    def admit(self, target: ResolvedTarget) -> bool:
        """False when the target's circuit is open (skip it). A half-open circuit admits one probe at a time: the
        next attempt on it reports as the probe."""
        admission: Admission = self._breaker.admit(target.key, policy_of(target).circuit)
        if admission == "probe":
            self._probes.add(target.key)
        return admission != "open"

    def is_open(self, target: ResolvedTarget) -> bool:
        """True when a call to ``target`` would be skipped now (no state change)."""
        return policy_of(target).circuit.enabled and self._breaker.is_open(target.key)

    def soonest_to_close(self, targets: list[ResolvedTarget]) -> ResolvedTarget:
        """Of targets that are all open, the one whose cooldown ends first, made the probe."""
        target = min(targets, key=lambda t: self._breaker.open_until(t.key))
        self._breaker.force_probe(target.key)
        self._probes.add(target.key)
        return target

    async def attempt(self, target: ResolvedTarget, fn: Callable[[], Awaitable[T]], *, budget: Budget | None) -> T:
        """One attempt on ``target`` holding one of its slots; its outcome goes to the target's circuit."""
        key, policy = target.key, policy_of(target)
        probe = key in self._probes
        self._probes.discard(key)
        slots = self._slots(key)
        limit = policy.max_concurrency
        if not slots.try_acquire(limit):
            wait = policy.queue_timeout if budget is None else min(policy.queue_timeout, budget.at - budget.clock())
            await slots.acquire(limit, mode=policy.queue, max_wait=wait, target=key)
        try:
            result = await fn()
        except BaseException as exc:
            self._breaker.record(
                key,
                policy.circuit,
                outcome_of(exc, lambda: budget is not None and budget.expired()),
                probe=probe,
            )
            raise
        finally:
            slots.release()
        self._breaker.record(key, policy.circuit, "success", probe=probe)
        return result


def guarded(
    guard: TargetGuard | None, target: ResolvedTarget, fn: Callable[[], Awaitable[T]], budget: Budget | None
) -> Callable[[], Awaitable[T]]:
    """``fn`` as one guarded attempt on ``target`` (``fn`` itself without a guard)."""
    if guard is None:
        return fn
    return lambda: guard.attempt(target, fn, budget=budget)


class _StopWhenOpen(stop_base):
    def __init__(self, guard: TargetGuard, target: ResolvedTarget) -> None:
        self.guard, self.target = guard, target

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.guard.is_open(self.target)


def stop_when_open(guard: TargetGuard | None, target: ResolvedTarget) -> stop_base | None:
    """A tenacity stop for retries on ``target``: true once its circuit is open (``None`` without a guard)."""
    return None if guard is None else _StopWhenOpen(guard, target)
