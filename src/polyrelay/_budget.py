"""The overall deadline of one media call (``Policy.deadline``): its attempts, its retry sleeps and its failover.

Chat calls keep theirs in the failover engine's call state; the media services (tasks and images) use a
:class:`Budget`, started when the call starts. Its clock is the service's injectable one (tests advance it from
their fake ``sleep``), and the same instant in ``loop.time()`` terms goes into every attempt's
:class:`~polyrelay.provider.CallContext`, so the transport stops waiting at the deadline too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import attrs
from tenacity import RetryCallState
from tenacity.stop import stop_base

from polyrelay.policy import policy_of
from polyrelay.provider import CallContext
from polyrelay.routes import ResolvedTarget

__all__ = ["Budget", "StopAtBudget", "bounded", "start_budget"]


@attrs.frozen
class Budget:
    """A call's deadline: ``at`` in the service clock's seconds, ``loop_at`` the same instant in ``loop.time()``."""

    seconds: float
    at: float
    loop_at: float
    clock: Callable[[], float] = attrs.field(repr=False)

    def expired(self) -> bool:
        return self.clock() >= self.at


def bounded(ctx: CallContext, budget: Budget | None) -> CallContext:
    """``ctx`` with the call's deadline (an earlier one it already has is kept; no budget: ``ctx`` as it is)."""
    if budget is None or (ctx.deadline is not None and ctx.deadline <= budget.loop_at):
        return ctx
    return attrs.evolve(ctx, deadline=budget.loop_at)


class StopAtBudget(stop_base):
    """Stop retrying when the coming sleep would end at or past the budget's deadline (sleeps never cross it)."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.budget.clock() + retry_state.upcoming_sleep >= self.budget.at


def start_budget(target: ResolvedTarget, clock: Callable[[], float]) -> Budget | None:
    """The budget of a call starting now, from ``Policy.deadline`` of its first target (``None``: no deadline)."""
    seconds = policy_of(target).deadline
    if seconds is None:
        return None
    return Budget(
        seconds=seconds,
        at=clock() + seconds,
        loop_at=asyncio.get_running_loop().time() + seconds,
        clock=clock,
    )
