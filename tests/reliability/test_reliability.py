"""Reliability under faults: many calls through the Router, against real HTTP upstreams on 127.0.0.1.

The primary deployment answers about 10% of its requests with a fault — 429 with a short ``Retry-After``, 500,
503, a connection reset, a stall (a body or stream that goes quiet for longer than the idle timeout) — drawn from
a seeded plan; the fallback deployment is healthy. A quarter of the calls stream. Every call must end in success
or a typed polyrelay error, at least 99.9% must succeed, and none may run past its deadline (plus a small slack:
this bounds correctness, it is not a speed claim). Afterwards the router holds no connection, no task is left
pending, no resource warning is raised, and the process's RSS is flat over three repetitions.

Then a cancellation storm: 1,000 calls in flight (half of them streams, mid-answer), all cancelled at once; every
connection must be released and the upstream must see every one of them closed.

Default size (CI): 1,000 calls at concurrency 64 per repetition. ``--full``: 10,000 at concurrency 256.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import random
import resource
import time
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import attrs
import pytest

from polyrelay.errors import PolyrelayError
from polyrelay.router import Router
from polyrelay.stream import is_restart
from polyrelay.testing import Fault, OpenAIUpstream, ScriptedReply

KEY = "sk-reliability-0000000000000000"
ANSWER = "Reliability is answering every single time, whatever happens."
USER = [{"role": "user", "content": "Say something reliable."}]
DEADLINE = 4.0
# Slack over the deadline for a call's measured duration: loop scheduling and closing the last connection.
SLACK = 0.5
FAULT_RATE = 0.10
REPETITIONS = 3
STREAM_SHARE = 0.25
RSS_GROWTH_LIMIT = 0.05

# The faults of the primary deployment, in equal shares.
FAULTS: tuple[Fault, ...] = (
    Fault.status_code(429, retry_after=0.01),
    Fault.status_code(500),
    Fault.status_code(503),
    Fault.reset(),
    Fault.stall(after_chunks=1, delay=2.0),
)
# A queue entry that changes nothing (a zero-second delay before a normal answer): the plan is one entry per
# request, so the faults land at their planned positions.
PASS = Fault.slow_first_byte(0)

POLICY: dict[str, Any] = {
    "deadline": DEADLINE,
    "retry": {"max_attempts": 2, "backoff_initial": 0.01, "backoff_max": 0.05, "max_retry_after": 1},
    "timeouts": {"connect": 1, "first_byte": 1, "idle": 0.25, "total": DEADLINE},
    "stream_recovery": "continue",
    # A circuit that opens stays open only briefly, so the faulty primary keeps taking traffic in every repetition.
    "circuit": {"cooldown": 0.2, "max_cooldown": 1},
}


@attrs.define
class Tally:
    """What one repetition's calls ended with."""

    ok: int = 0
    typed_errors: dict[str, int] = attrs.field(factory=dict)
    durations: list[float] = attrs.field(factory=list)

    @property
    def calls(self) -> int:
        return self.ok + sum(self.typed_errors.values())


def rss_bytes() -> int:
    """Resident memory of this process. Freed heap memory is handed back to the OS first (glibc's malloc_trim)
    so the figure follows the memory in use rather than the allocator's high-water mark."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):  # not glibc: RSS is read as it is
        return None
    return libc


_LIBC = _libc()


def established(port: int) -> int:
    """TCP connections in ESTABLISHED state whose local port is ``port`` (the server side of an upstream)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                count += 1
    return count


def acquired(router: Router) -> int:
    """Connections the router's pool has handed out and not got back (aiohttp has no public counter)."""
    connector = router.transport.session.connector
    assert connector is not None
    return len(connector._acquired)


def plan_faults(upstream: OpenAIUpstream, n: int, rng: random.Random) -> int:
    """Queue one entry per expected request on ``upstream``: a fault with probability FAULT_RATE. Returns the
    number of faults queued."""
    faults = 0
    for _ in range(n):
        if rng.random() < FAULT_RATE:
            upstream.add_fault(rng.choice(FAULTS), times=1)
            faults += 1
        else:
            upstream.add_fault(PASS, times=1)
    return faults


async def wait_for(condition: Callable[[], bool], limit: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``limit`` seconds pass (an eventual-state check, not a speed claim)."""
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.01)
    return True


def server_side(task: asyncio.Task[Any]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    filename = code.co_filename if code is not None else ""
    return "aiohttp" in filename and ("web_protocol" in filename or "web_server" in filename)


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[OpenAIUpstream, OpenAIUpstream]]:
    reply = ScriptedReply(content=ANSWER, chunk_size=12)
    async with OpenAIUpstream(api_key=KEY, reply=reply) as a, OpenAIUpstream(api_key=KEY, reply=reply) as b:
        yield a, b


def make_router(primary: OpenAIUpstream, fallback: OpenAIUpstream) -> Router:
    return Router.from_config(
        {
            "providers": {
                "primary": {"type": "openai", "base_url": primary.base_url, "api_key": KEY},
                "fallback": {"type": "openai", "base_url": fallback.base_url, "api_key": KEY},
            },
            "models": {"m": {"targets": ["primary/gpt-4o-mini", "fallback/gpt-4o-mini"]}},
            "policy": POLICY,
        }
    )


async def one_call(router: Router, stream: bool) -> str:
    if not stream:
        resp = await router.chat.completions.create(model="m", messages=USER)
        return resp.choices[0].message.content or ""
    s = await router.chat.completions.create(model="m", messages=USER, stream=True)
    parts: list[str] = []
    async with s:
        async for chunk in s:
            if is_restart(chunk):
                parts.clear()  # the answer starts over on another target
            for choice in chunk.choices:
                parts.append(choice.delta.content or "")
    return "".join(parts)


async def run_load(router: Router, n: int, concurrency: int, rng: random.Random) -> Tally:
    tally = Tally()
    kinds = [rng.random() < STREAM_SHARE for _ in range(n)]
    queue = iter(kinds)

    async def worker() -> None:
        for stream in queue:
            start = time.monotonic()
            try:
                text = await one_call(router, stream)
            except PolyrelayError as exc:
                name = type(exc).__name__
                tally.typed_errors[name] = tally.typed_errors.get(name, 0) + 1
            else:
                assert text == ANSWER, f"a call succeeded with the wrong answer: {text!r}"
                tally.ok += 1
            tally.durations.append(time.monotonic() - start)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tally


async def test_calls_under_faults_succeed_within_their_deadline_and_leak_nothing(
    upstreams: tuple[OpenAIUpstream, OpenAIUpstream], full: bool, caplog: pytest.LogCaptureFixture
) -> None:
    primary, fallback = upstreams
    n, concurrency = (10_000, 256) if full else (1_000, 64)
    # Each injected fault logs a warning; pytest would keep every record in memory, which is not the client's.
    caplog.set_level(logging.ERROR, logger="polyrelay")
    rng = random.Random(20261129)
    me = asyncio.current_task()
    rss: list[int] = []
    faults_planned = 0
    tallies: list[Tally] = []
    served: list[tuple[int, int]] = []  # (primary, fallback) requests per repetition
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        router = make_router(primary, fallback)
        try:
            # Unmeasured warm-up: both connection pools filled to the concurrency at once (a pool grows to its
            # working size, it does not leak), then one whole repetition for caches and the allocator's arenas.
            for target in ("primary/gpt-4o-mini", "fallback/gpt-4o-mini"):
                # Hundreds of connects at once overflow the listen backlog: a dropped SYN is retried after 1s.
                patient = {"timeouts": {"connect": 10, "first_byte": 10}, "deadline": 30}
                await asyncio.gather(
                    *(
                        router.chat.completions.create(model=target, messages=USER, policy=patient)
                        for _ in range(concurrency)
                    )
                )
            for rep in range(REPETITIONS + 1):
                primary.clear_faults()
                # Retries and the stall's recovery add primary requests beyond n: plan for them too.
                faults_planned += plan_faults(primary, int(n * 1.3), rng)
                tally = await run_load(router, n, concurrency, rng)
                # After every repetition: the router holds no connection and no task of its own.
                assert acquired(router) == 0
                leftover = [t for t in asyncio.all_tasks() if t is not me and not t.done() and not server_side(t)]
                assert leftover == [], f"tasks left pending: {leftover}"
                if rep:
                    tallies.append(tally)
                    served.append((len(primary.requests), len(fallback.requests)))
                primary.requests.clear()  # the simulator's own request log is not the client's memory
                fallback.requests.clear()
                gc.collect()
                rss.append(rss_bytes())
        finally:
            await router.aclose()
        gc.collect()
    resource_warnings = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert resource_warnings == [], [str(w.message) for w in resource_warnings]

    calls = sum(t.calls for t in tallies)
    ok = sum(t.ok for t in tallies)
    assert calls == n * REPETITIONS  # every call ended, in a result or a typed error
    assert ok / calls >= 0.999, f"only {ok}/{calls} succeeded: {[t.typed_errors for t in tallies]}"
    longest = max(max(t.durations) for t in tallies)
    assert longest <= DEADLINE + SLACK, f"a call took {longest:.3f}s, past its {DEADLINE}s deadline"
    # The faults really happened: in every repetition the primary took traffic and calls failed over.
    assert faults_planned > 0
    assert all(p > 0 and f > 0 for p, f in served), served
    growth = (max(rss[1:]) - rss[0]) / rss[0]
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew {growth:.1%} over the repetitions: {rss}"
    # Once the router is closed the upstreams see every connection closed.
    assert await wait_for(lambda: established(int(primary.origin.rsplit(":", 1)[1])) == 0)
    assert await wait_for(lambda: established(int(fallback.origin.rsplit(":", 1)[1])) == 0)
    print(  # the figures for the record (pytest -s shows them)
        f"\nreliability: {calls} calls, {ok} ok ({ok / calls:.4%}), errors {[t.typed_errors for t in tallies]}, "
        f"longest {longest:.3f}s (deadline {DEADLINE}s), RSS MB after warm-up and each repetition "
        f"{[round(r / 2**20, 1) for r in rss]}, requests (primary, fallback) per repetition {served}"
    )


async def test_a_cancellation_storm_releases_every_connection(
    upstreams: tuple[OpenAIUpstream, OpenAIUpstream],
) -> None:
    primary, fallback = upstreams
    n = 1_000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * n:  # a client and a server socket per call, plus the test's own
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8 * n), hard))
    # Plain calls wait for their first byte; streams get their first content, then the upstream goes quiet.
    primary.add_fault(Fault.slow_first_byte(60), times=None, model="slow")
    primary.add_fault(Fault.stall(after_chunks=1, delay=60), times=None, model="stall")
    router = Router.from_config(
        {
            "providers": {"primary": {"type": "openai", "base_url": primary.base_url, "api_key": KEY}},
            "policy": {"deadline": 120, "timeouts": {"first_byte": 120, "idle": 120, "total": 120}},
            "pool": {"max_connections": 2 * n},
        }
    )
    first_content = 0

    async def plain() -> None:
        await router.chat.completions.create(model="primary/slow", messages=USER)

    async def streaming() -> None:
        nonlocal first_content
        s = await router.chat.completions.create(model="primary/stall", messages=USER, stream=True)
        async with s:
            async for chunk in s:
                if any(c.delta.content for c in chunk.choices):
                    first_content += 1
                    await asyncio.sleep(120)  # never reached in time: the test cancels before

    port = int(primary.origin.rsplit(":", 1)[1])
    try:
        calls: list[Callable[[], Coroutine[Any, Any, None]]] = [plain, streaming] * (n // 2)
        tasks = [asyncio.create_task(c()) for c in calls]
        assert await wait_for(lambda: len(primary.requests) == n and first_content == n // 2, limit=60)
        assert acquired(router) == n
        assert established(port) == n
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        assert acquired(router) == 0, "a cancelled call kept its connection"
        # Cancelled calls drop their connections (never back to the pool half-read): the upstream sees them close.
        assert await wait_for(lambda: established(port) == 0), f"{established(port)} connections still open"
        assert router.in_flight("primary/slow") == 0 and router.in_flight("primary/stall") == 0
    finally:
        await router.aclose()
    assert fallback.requests == []
