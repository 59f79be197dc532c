"""One loop timer for many concurrent timeouts.

``asyncio.timeout`` arms a ``TimerHandle`` per wait and cancels it when the wait ends; with hundreds of requests in
flight that is a heap push, a cancellation and a heap clean-up per request, nearly always for a timeout that never
fires (a 120 s first-byte limit on a 5 ms answer). A :class:`Watchdog` keeps the waits in a set and one timer at the
earliest of their deadlines; a wait that ends early costs a set insert and removal, and the timer is re-armed only
when a new wait ends sooner than the armed one. When it fires, every expired wait's task is cancelled exactly as
``asyncio.timeout`` does (and :meth:`Watch.expired` converts the ``CancelledError`` the same way), the others stay.
"""

from __future__ import annotations

import asyncio
import math
import time

__all__ = ["Watch", "Watchdog"]

# A timer handle runs when its time is within the clock's resolution of now (BaseEventLoop._run_once does the same).
_RESOLUTION = time.get_clock_info("monotonic").resolution


class Watch:
    """One watched wait: its deadline (``loop.time()``), its task and whether the watchdog cancelled it."""

    __slots__ = ("cancelling", "fired", "task", "when")

    def __init__(self, task: asyncio.Task[object], when: float) -> None:
        self.task = task
        self.when = when
        self.fired = False
        self.cancelling = task.cancelling()

    def expired(self) -> bool:
        """Call on ``CancelledError``: True when the cancellation was this watch's timeout (then it is withdrawn
        from the task, like ``asyncio.timeout`` turns it into ``TimeoutError``), False when someone else cancelled
        the task too (let the ``CancelledError`` propagate)."""
        return self.fired and self.task.uncancel() <= self.cancelling


class Watchdog:
    """The waits of one event loop. Use :meth:`watch` before awaiting and :meth:`done` in a ``finally``."""

    __slots__ = ("_handle", "_waits", "_when", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._waits: set[Watch] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._when = math.inf

    def watch(self, task: asyncio.Task[object], when: float) -> Watch:
        """Cancel ``task`` at ``when`` unless :meth:`done` comes first."""
        w = Watch(task, when)
        self._waits.add(w)
        if when < self._when:
            self._arm(when)
        return w

    def done(self, w: Watch) -> None:
        """The wait ended (either way). If its timeout had fired and nobody saw it, the cancel stays requested."""
        self._waits.discard(w)

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._when = when
        self._handle = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._when = math.inf
        now = self.loop.time() + _RESOLUTION
        earliest = math.inf
        expired = [w for w in self._waits if w.when <= now]
        for w in expired:
            self._waits.discard(w)
            if not w.task.done():
                w.fired = True
                w.task.cancel()
        for w in self._waits:
            if w.when < earliest:
                earliest = w.when
        if earliest != math.inf:
            self._arm(earliest)

    def close(self) -> None:
        """Drop the loop timer (the transport is closing; any wait still watched ends with its session)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._when = math.inf

    @property
    def waiting(self) -> int:
        """Waits being watched (for tests and diagnostics)."""
        return len(self._waits)
