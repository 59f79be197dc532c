"""download_media: data: URIs, credentials only on the configured origin (also across redirects), limits."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from media_harness import TIMEOUTS, open_transport

from polyrelay.errors import InvalidRequest, InvalidUpstreamResponse, NotFound
from polyrelay.images import decode_data_uri, download_media, media_type_for_url, sniff_media_type, to_data_uri
from polyrelay.provider import CallContext
from polyrelay.testing._openai_images import tiny_png
from polyrelay.transport import Transport

PNG = tiny_png()
CTX = CallContext(model="m", timeouts=TIMEOUTS)
CREDENTIALS = {"x-key": "secret-key-0123456789"}


class Site:
    """A bare aiohttp server on 127.0.0.1 recording the headers it receives."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.redirect_to: str | None = None
        self.runner: web.AppRunner | None = None
        self.origin = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.path, dict(request.headers)))
        if request.path == "/redirect" and self.redirect_to:
            raise web.HTTPFound(self.redirect_to)
        if request.path == "/missing":
            return web.json_response({"detail": "gone"}, status=404)
        return web.Response(body=PNG, content_type="image/png")

    async def __aenter__(self) -> Site:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.origin = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    async with open_transport() as t:
        yield t


async def test_credentials_go_to_the_configured_origin_only_even_across_redirects(transport: Transport) -> None:
    async with Site() as home, Site() as elsewhere:
        home.redirect_to = f"{elsewhere.origin}/blob.png"
        data = await download_media(
            transport,
            f"{home.origin}/redirect",
            provider="p",
            ctx=CTX,
            credentials_origin=home.origin,
            credentials=CREDENTIALS,
        )
    assert data == PNG
    assert home.seen[0][1]["x-key"] == CREDENTIALS["x-key"]
    assert elsewhere.seen[0][0] == "/blob.png" and "x-key" not in elsewhere.seen[0][1]


async def test_foreign_urls_get_no_credentials(transport: Transport) -> None:
    async with Site() as home, Site() as elsewhere:
        await download_media(
            transport,
            f"{elsewhere.origin}/x.png",
            provider="p",
            ctx=CTX,
            credentials_origin=home.origin,
            credentials=CREDENTIALS,
        )
    assert "x-key" not in elsewhere.seen[0][1] and home.seen == []


async def test_errors_limits_and_schemes(transport: Transport) -> None:
    async with Site() as site:
        with pytest.raises(NotFound):
            await download_media(transport, f"{site.origin}/missing", provider="p", ctx=CTX)
        with pytest.raises(InvalidUpstreamResponse):
            await download_media(transport, f"{site.origin}/x.png", provider="p", ctx=CTX, max_bytes=10)
    with pytest.raises(InvalidRequest) as info:
        await download_media(transport, "file:///etc/passwd", provider="p", ctx=CTX)
    assert info.value.path == "url"


async def test_data_uris_are_decoded_without_a_request(transport: Transport) -> None:
    uri = to_data_uri(PNG)
    assert uri.startswith("data:image/png;base64,")
    assert await download_media(transport, uri, provider="p", ctx=CTX) == PNG
    assert not transport.is_open  # no session was even created
    with pytest.raises(InvalidUpstreamResponse):
        await download_media(transport, "data:image/png;base64,@@@", provider="p", ctx=CTX)


def test_media_type_helpers() -> None:
    assert decode_data_uri("data:text/plain,hello%20world") == (b"hello world", "text/plain")
    assert sniff_media_type(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_media_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_media_type(b"???") == "application/octet-stream"
    assert media_type_for_url("https://replicate.delivery/x/out-0.webp?sig=1") == "image/webp"
    assert media_type_for_url("https://cdn.example/video.MP4") == "video/mp4"
    assert media_type_for_url("https://cdn.example/file") is None
    assert base64.b64decode(to_data_uri(PNG).split(",", 1)[1]) == PNG
