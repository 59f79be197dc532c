"""Stream endings against a real HTTP server on 127.0.0.1 (aioresponses cannot hold a connection open):
a complete stream ends at once even if the upstream neither sends [DONE] nor closes, and a consumer that stops
early makes the provider drop the connection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from openai_support import assemble, chunk, ctx, make_provider

from polyrelay.transport import Transport
from polyrelay.types._converters import parse_request

# A hang guard only: the assertion is that the stream ends, not how fast. Idle timeouts below are far longer.
_GUARD_SECONDS = 10


class HoldingUpstream:
    """Streams the given events, then keeps the connection open until released (or the client goes away)."""

    def __init__(self, events: list[Any]) -> None:
        self.events = events
        self.release = asyncio.Event()
        self.client_gone = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def _handler(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for e in self.events:
            await resp.write(f"data: {json.dumps(e)}\n\n".encode())
        while not self.release.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                self.client_gone.set()
                return resp
            try:
                await asyncio.wait_for(self.release.wait(), 0.02)
            except TimeoutError:
                continue
        return resp

    async def __aenter__(self) -> HoldingUpstream:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handler)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport()
    yield t
    await t.aclose()


async def test_complete_stream_ends_without_waiting_for_done_or_close(transport: Transport) -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    events = [
        chunk({"role": "assistant", "content": "Paris"}),
        chunk(finish="stop"),
        {"id": "chatcmpl-1", "choices": [], "usage": usage},
    ]
    async with HoldingUpstream(events) as upstream:
        provider = make_provider(transport, base_url=upstream.base_url)
        request = parse_request(
            {
                "model": "m",
                "messages": [{"role": "user", "content": "?"}],
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        )
        async with asyncio.timeout(_GUARD_SECONDS):
            chunks = [c async for c in provider.stream_chat(request, ctx())]
        got = assemble(chunks)
        assert (got.content, got.finish_reason) == ("Paris", "stop")
        assert got.usage is not None and got.usage.total_tokens == 4
        # The connection was not kept half-read: the upstream sees the client go away.
        async with asyncio.timeout(_GUARD_SECONDS):
            await upstream.client_gone.wait()


async def test_consumer_stopping_early_drops_the_connection(transport: Transport) -> None:
    async with HoldingUpstream([chunk({"role": "assistant", "content": "a"})]) as upstream:
        provider = make_provider(transport, base_url=upstream.base_url)
        request = parse_request({"model": "m", "messages": [{"role": "user", "content": "?"}], "stream": True})
        stream = provider.stream_chat(request, ctx())
        first = await anext(stream)
        assert first.choices[0].delta.content == "a"
        await stream.aclose()
        async with asyncio.timeout(_GUARD_SECONDS):
            await upstream.client_gone.wait()
