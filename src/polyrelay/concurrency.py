"""Per-target concurrency: in-flight counts, a maximum, and a FIFO queue in front of it.

Every target has a :class:`Slots`. A call takes a slot for each attempt (a stream keeps it until the stream is
closed) and gives it back when done. With ``Policy.max_concurrency`` set, a call that finds the target full either
waits in a FIFO queue (``queue = "wait"``, bounded by ``queue_timeout`` and the call's deadline) or moves on at
once (``queue = "fail"``); both give :class:`TargetBusy` when no slot comes, and the router fails over.

The in-flight count is also what the ``least_inflight`` strategy reads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from polyrelay.errors import PolyrelayError
from polyrelay.policy import QueueMode

__all__ = ["Slots", "TargetBusy"]


class TargetBusy(PolyrelayError):
    """A target is at its ``max_concurrency`` and no slot came in time (or ``queue = "fail"``).

    It is the router's own condition, not an upstream answer: the router records it as a skipped attempt and
    fails over.
    """

    def __init__(self, message: str, *, target: str) -> None:
        self.target = target
        self.message = message
        super().__init__(message)


class Slots:
    """In-flight calls of one target and the queue of calls waiting for a slot."""

    __slots__ = ("_waiters", "in_flight")

    def __init__(self) -> None:
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    def try_acquire(self, limit: int | None) -> bool:
        """Take a slot if one is free and nobody is queued before us (FIFO)."""
        if limit is None or (self.in_flight < limit and not self._waiters):
            self.in_flight += 1
            return True
        return False

    async def acquire(self, limit: int | None, *, mode: QueueMode, max_wait: float | None, target: str) -> None:
        """Take a slot, waiting at most ``max_wait`` seconds in the queue (``mode="wait"``)."""
        if self.try_acquire(limit):
            return
        if mode == "fail" or (max_wait is not None and max_wait <= 0):
            raise TargetBusy(f"{target} is at its max_concurrency ({limit})", target=target)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            try:
                async with asyncio.timeout(max_wait):
                    await fut
            finally:
                if not fut.done() or fut.cancelled():
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(fut)
        except TimeoutError as exc:
            self._pass_on(fut)
            raise TargetBusy(
                f"{target} is at its max_concurrency ({limit}); no slot within {max_wait:.3g}s", target=target
            ) from exc
        except BaseException:
            self._pass_on(fut)
            raise

    def _pass_on(self, fut: asyncio.Future[None]) -> None:
        # The slot was handed to us just as we gave up (timeout or cancel): give it to the next in line.
        if fut.done() and not fut.cancelled():
            self.release()

    def release(self) -> None:
        """Give a slot back: to the first caller still queued, else to the pool."""
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot moves to it: in_flight is unchanged
                return
        self.in_flight -= 1
