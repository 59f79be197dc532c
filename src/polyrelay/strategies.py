"""Target ordering: in which order the targets of one model are tried.

``Policy.strategy`` picks one of:

=================  =================================================================================================
``priority``       the configured order (the default)
``weighted``       weighted random order (``Target.weight``; a weight of 0 is only tried after the others)
``round_robin``    the configured order rotated by one per call of the model
``least_inflight`` fewest calls in flight first (ties keep the configured order)
``lowest_latency`` lowest moving average of time to first byte first (``Policy.latency_alpha`` smooths it);
                   targets without a measurement yet come first, so each gets measured
=================  =================================================================================================

Whatever the order, the later targets are the failover candidates of the earlier ones.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeVar

from polyrelay.policy import Strategy

__all__ = ["LatencyStats", "order_targets"]

T = TypeVar("T")


class LatencyStats:
    """Exponentially weighted moving average of one target's time to first byte (seconds)."""

    __slots__ = ("ewma", "samples")

    def __init__(self) -> None:
        self.ewma: float | None = None
        self.samples = 0

    def observe(self, seconds: float, alpha: float) -> None:
        prev = self.ewma
        self.ewma = seconds if prev is None else prev + alpha * (seconds - prev)
        self.samples += 1


def order_targets(
    strategy: Strategy,
    items: Sequence[T],
    *,
    weight: Callable[[T], float],
    in_flight: Callable[[T], int],
    latency: Callable[[T], float | None],
    rng: random.Random,
    turn: int = 0,
) -> Sequence[T]:
    """``items`` in the order ``strategy`` tries them. ``turn`` counts the calls (round robin)."""
    n = len(items)
    if n < 2 or strategy == "priority":
        return items
    if strategy == "round_robin":
        start = turn % n
        return (*items[start:], *items[:start])
    if strategy == "least_inflight":
        return sorted(items, key=in_flight)
    if strategy == "lowest_latency":
        # Unmeasured targets sort first (exploration); sorted() is stable, so ties keep the configured order.
        return sorted(items, key=lambda t: latency(t) or 0.0)
    if strategy == "weighted":
        # Efraimidis-Spirakis: sorting by u ** (1 / w) gives a weighted random permutation (sampling without
        # replacement), so the first target follows the weights and the rest are its failover order.
        def key(t: T) -> float:
            w = weight(t)
            return rng.random() ** (1.0 / w) if w > 0 else -1.0

        return sorted(items, key=key, reverse=True)
    raise ValueError(f"unknown strategy {strategy!r}")
