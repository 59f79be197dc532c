"""The transport's first-byte and deadline waits (one shared watchdog timer) and its timeout classification.

Real HTTP on loopback against a small aiohttp server whose handlers answer at once, after a delay, or never.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from polyrelay._connector import READ_SIZE
from polyrelay._watchdog import Watchdog
from polyrelay.errors import ConnectTimeout, DeadlineExceeded, FirstByteTimeout, InvalidUpstreamResponse
from polyrelay.transport import Timeouts, Transport

# A guard so a broken transport fails the test instead of hanging it (not a timing assertion).
GUARD = 10.0


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def ok(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("s", "30")))
        return web.json_response({"ok": "late"})

    async def raw(request: web.Request) -> web.Response:
        bodies = {
            "bom": b"\xef\xbb\xbf" + b'{"ok": "bom"}',
            "utf16": '{"ok": "utf16"}'.encode("utf-16"),
            "deep": b"[" * 100_000 + b"]" * 100_000,
            "text": b"<html>502 Bad Gateway</html>",
            "spaced": b' \n {"ok": "spaced"}\n',
        }
        return web.Response(body=bodies[request.query["kind"]], content_type="application/json")

    async def big(_request: web.Request) -> web.Response:
        return web.json_response({"blob": "x" * 1_000_000})

    app = web.Application()
    app.router.add_post("/big", big)
    app.router.add_post("/raw", raw)
    app.router.add_post("/ok", ok)
    app.router.add_post("/slow", slow)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport()
    yield t
    await t.aclose()


def waiting(t: Transport) -> int:
    dog = t._watchdog
    return 0 if dog is None else dog.waiting


async def test_answers_within_the_first_byte_limit(server: str, transport: Transport) -> None:
    async with asyncio.timeout(GUARD):
        resp = await transport.request("POST", server + "/ok", provider="p", timeouts=Timeouts(first_byte=5.0))
        assert await resp.json() == {"ok": True}
    assert waiting(transport) == 0  # the wait left the watchdog when the headers came


async def test_plain_tcp_connections_read_in_120_kib_pieces(server: str, transport: Transport) -> None:
    # asyncio's 256 KiB read size costs a mapping of fresh memory per read (see polyrelay._connector).
    assert READ_SIZE == 120 * 1024
    async with asyncio.timeout(GUARD):
        resp = await transport.request("POST", server + "/big", provider="p", timeouts=Timeouts())
        conn = resp._raw.connection
        assert conn is not None and conn.transport is not None
        sock = conn.transport
        assert sock.max_size == READ_SIZE  # type: ignore[attr-defined]
        assert type(sock).max_size > READ_SIZE  # type: ignore[attr-defined]  # set per connection, not globally
        assert await resp.json() == {"blob": "x" * 1_000_000}  # a body many reads long arrives whole


async def test_a_body_that_must_be_waited_for_is_read_in_large_pieces(server: str, transport: Transport) -> None:
    # Waiting for the rest of a large body: asyncio's 256 KiB reads again (fewer trips round the loop), and the
    # connection's small reads are restored when it goes back to the pool. A stream keeps the small reads.
    for bulk, wide in ((True, 256 * 1024), (False, READ_SIZE)):
        async with asyncio.timeout(GUARD):
            resp = await transport.request("POST", server + "/big", provider="p", timeouts=Timeouts())
            conn = resp._raw.connection
            assert conn is not None and conn.transport is not None
            sock = conn.transport
            sizes, body = set(), b""
            async for chunk in resp.iter_bytes(bulk=bulk):
                sizes.add(sock.max_size)  # type: ignore[attr-defined]
                body += chunk
        assert body == b'{"blob": "' + b"x" * 1_000_000 + b'"}'
        assert max(sizes) == wide
        assert sock.max_size == READ_SIZE  # type: ignore[attr-defined]
    async with asyncio.timeout(GUARD):
        resp = await transport.request("POST", server + "/big", provider="p", timeouts=Timeouts())
        conn = resp._raw.connection
        assert conn is not None and conn.transport is not None
        sock = conn.transport
        assert await resp.json() == {"blob": "x" * 1_000_000}
    assert sock.max_size == READ_SIZE  # type: ignore[attr-defined]


async def test_a_session_closed_behind_its_back_is_replaced(server: str, transport: Transport) -> None:
    async with asyncio.timeout(GUARD):
        first = transport.session
        await first.close()  # e.g. by code that reached for router.transport.session
        resp = await transport.request("POST", server + "/ok", provider="p", timeouts=Timeouts(), json_body={"a": 1})
        assert await resp.json() == {"ok": True}
    assert transport.session is not first and not transport.session.closed


async def test_no_headers_in_time_is_a_first_byte_timeout(server: str, transport: Transport) -> None:
    async with asyncio.timeout(GUARD):
        with pytest.raises(FirstByteTimeout):
            await transport.request("POST", server + "/slow", provider="p", timeouts=Timeouts(first_byte=0.05))
    assert waiting(transport) == 0
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # the timeout's cancel was withdrawn, nothing leaks


async def test_the_deadline_wins_when_it_comes_first(server: str, transport: Transport) -> None:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(GUARD):
        with pytest.raises(DeadlineExceeded):
            await transport.request(
                "POST",
                server + "/slow",
                provider="p",
                timeouts=Timeouts(first_byte=30.0),
                deadline=loop.time() + 0.05,
            )


async def test_concurrent_waits_expire_each_at_its_own_time(server: str, transport: Transport) -> None:
    """One timer serves every wait: the short ones expire, the long ones get their answers."""

    async def call(path: str, first_byte: float) -> str:
        try:
            resp = await transport.request(
                "POST", server + path, provider="p", timeouts=Timeouts(first_byte=first_byte)
            )
            return str((await resp.json())["ok"])
        except FirstByteTimeout:
            return "timeout"

    async with asyncio.timeout(GUARD):
        got = await asyncio.gather(
            call("/slow?s=0.3", 30.0),  # armed first, with the latest deadline
            call("/slow?s=30", 0.05),  # an earlier deadline re-arms the timer
            call("/ok", 0.1),
            call("/slow?s=30", 0.15),
            call("/slow?s=0.3", 20.0),
        )
    assert got == ["late", "timeout", "True", "timeout", "late"]
    assert waiting(transport) == 0


async def test_cancelling_the_caller_is_not_a_timeout(server: str, transport: Transport) -> None:
    started = asyncio.Event()

    async def call() -> None:
        started.set()
        await transport.request("POST", server + "/slow", provider="p", timeouts=Timeouts(first_byte=30.0))

    task = asyncio.create_task(call())
    await started.wait()
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert waiting(transport) == 0


async def test_cancelled_by_the_caller_as_the_timeout_fires_stays_cancelled(server: str, transport: Transport) -> None:
    """Both cancels land on the same wait: the caller's cancellation wins (CancelledError, not a timeout)."""

    async def call() -> None:
        await transport.request("POST", server + "/slow", provider="p", timeouts=Timeouts(first_byte=0.05))

    task = asyncio.create_task(call())
    await asyncio.sleep(0.01)
    dog = transport._watchdog
    assert dog is not None and dog.waiting == 1
    task.cancel()  # the caller's cancel...
    for w in list(dog._waits):  # ...and the watchdog's, in the same loop iteration
        w.when = 0.0
    dog._fire()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_aiohttp_connect_timeout_is_a_connect_timeout(transport: Transport) -> None:
    """aiohttp's connect timeout is a TimeoutError subclass too; it must not read as a first-byte timeout."""

    class Refusing(aiohttp.TCPConnector):
        async def connect(self, *args: object, **kwargs: object) -> aiohttp.connector.Connection:
            raise aiohttp.ConnectionTimeoutError("Connection timeout to host")

    transport._session = aiohttp.ClientSession(connector=Refusing())
    with pytest.raises(ConnectTimeout):
        await transport.request("POST", "http://127.0.0.1:9/x", provider="p", timeouts=Timeouts(connect=0.5))


async def test_watchdog_rearms_for_the_earliest_wait_only() -> None:
    loop = asyncio.get_running_loop()
    dog = Watchdog(loop)
    task = asyncio.current_task()
    assert task is not None
    now = loop.time()
    late = dog.watch(task, now + 100)
    handle = dog._handle
    later = dog.watch(task, now + 200)
    assert dog._handle is handle  # a later deadline does not touch the armed timer
    sooner = dog.watch(task, now + 50)
    assert dog._handle is not handle and dog._when == now + 50
    for w in (late, later, sooner):
        dog.done(w)
    assert dog.waiting == 0
    assert not any(w.fired for w in (late, later, sooner))


@pytest.mark.parametrize("kind", ["bom", "utf16", "spaced"])
async def test_json_bodies_in_any_encoding_json_loads_reads(server: str, transport: Transport, kind: str) -> None:
    async with asyncio.timeout(GUARD):
        resp = await transport.request("POST", f"{server}/raw?kind={kind}", provider="p", timeouts=Timeouts())
        assert await resp.json() == {"ok": kind}


@pytest.mark.parametrize("kind", ["deep", "text"])
async def test_bodies_that_are_not_json_are_invalid_upstream_responses(
    server: str, transport: Transport, kind: str
) -> None:
    async with asyncio.timeout(GUARD):
        resp = await transport.request("POST", f"{server}/raw?kind={kind}", provider="p", timeouts=Timeouts())
        with pytest.raises(InvalidUpstreamResponse):
            await resp.json()


async def test_closing_the_transport_drops_the_watchdog_timer(server: str) -> None:
    t = Transport()
    resp = await t.request("POST", server + "/ok", provider="p", timeouts=Timeouts(first_byte=120.0))
    await resp.json()
    dog = t._watchdog
    assert dog is not None and dog._handle is not None  # armed for the 120 s limit, which never fired
    await t.aclose()
    assert dog._handle is None
