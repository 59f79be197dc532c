"""Streamed runs followed in the background: a consumer task reads the run's event stream and keeps its latest
:class:`~polyrelay.types.media.TaskSnapshot`; ``poll`` answers from it.

Why: a workflow's node progress exists only in its event stream (polling the run gives status and outputs, not
which node is running). Submitting opens the stream, reads it up to the run's id, and hands the rest to a consumer
task; each ``poll`` then waits (up to ``wait`` seconds) for the state to change since the snapshot it last
returned, so a poller sees node after node as they happen without busy-polling. A stream that ends without its
terminal event leaves the run ``ended`` but not ``done``: the provider then falls back to polling over HTTP.
Consumers are cancelled by :meth:`LiveRuns.aclose` (the router calls the provider's ``aclose``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Coroutine
from typing import Any

from polyrelay.types.media import TaskSnapshot

__all__ = ["LiveRun", "LiveRuns"]


class LiveRun:
    """The live state of one streamed run."""

    __slots__ = ("_changed", "done", "ended", "error", "returned", "snapshot", "task", "upstream_id", "version")

    def __init__(self, snapshot: TaskSnapshot) -> None:
        self.upstream_id = snapshot.upstream_id
        self.snapshot = snapshot
        self.version = 0
        #: The version the last ``poll`` returned.
        self.returned = 0
        #: The terminal event arrived (``snapshot`` is final).
        self.done = False
        #: The consumer stopped (after the terminal event, or because the stream broke).
        self.ended = False
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return f"LiveRun({self.upstream_id!r}, status={self.snapshot.status!r}, done={self.done})"

    def update(self, snapshot: TaskSnapshot, *, done: bool = False) -> None:
        self.snapshot = snapshot
        self.version += 1
        self.done = self.done or done
        self._changed.set()

    def end(self, error: BaseException | None = None) -> None:
        self.ended = True
        self.error = error
        self._changed.set()

    async def next_snapshot(self, wait: float) -> TaskSnapshot:
        """The latest snapshot, after waiting up to ``wait`` seconds for one newer than the last returned."""
        if self.version == self.returned and not self.ended:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._changed.wait()
        self.returned = self.version
        return self.snapshot


class LiveRuns:
    """The live runs of one provider instance (the oldest finished ones are forgotten past ``max_runs``)."""

    def __init__(self, *, max_runs: int = 256) -> None:
        self.max_runs = max_runs
        self._runs: OrderedDict[str, LiveRun] = OrderedDict()

    def get(self, upstream_id: str) -> LiveRun | None:
        return self._runs.get(upstream_id)

    def is_following(self, upstream_id: str) -> bool:
        """True while a consumer still feeds the run (its snapshots are fresh without an HTTP poll)."""
        run = self._runs.get(upstream_id)
        return run is not None and not run.ended

    def start(self, run: LiveRun, consume: Coroutine[Any, Any, None]) -> None:
        """Follow ``run``: ``consume`` reads its stream and calls ``run.update``; errors end the run quietly."""
        self._runs[run.upstream_id] = run
        run.task = asyncio.get_running_loop().create_task(self._guard(run, consume))
        self._forget_old()

    def remember(self, run: LiveRun) -> None:
        """Keep a run that is already finished (answered from memory)."""
        run.end()
        self._runs[run.upstream_id] = run
        self._forget_old()

    async def aclose(self) -> None:
        """Stop every consumer (their connections close)."""
        tasks = [run.task for run in self._runs.values() if run.task is not None and not run.task.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @staticmethod
    async def _guard(run: LiveRun, consume: Coroutine[Any, Any, None]) -> None:
        try:
            await consume
        except asyncio.CancelledError:
            run.end()
            raise
        except Exception as exc:  # noqa: BLE001 - whatever broke the stream, polls fall back to HTTP
            run.end(exc)
        else:
            run.end()

    def _forget_old(self) -> None:
        excess = len(self._runs) - self.max_runs
        if excess <= 0:
            return
        for key in [k for k, r in self._runs.items() if r.ended][:excess]:
            del self._runs[key]
