"""The media simulators seen by a plain aiohttp client: the wire shapes the providers rely on (wire-images.md §3–5)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest

from polyrelay.testing._flux import FluxUpstream
from polyrelay.testing._openai_images import OpenAIImagesUpstream, tiny_png
from polyrelay.testing._replicate import ReplicateOutcome, ReplicateUpstream

BEARER = {"Authorization": "Bearer test-key"}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def call(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> tuple[int, Any, Mapping[str, str]]:
    async with session.request(method, url, **kw) as response:
        body = await response.json(content_type=None)
        return response.status, body, response.headers


def test_tiny_png_is_a_valid_png() -> None:
    data = tiny_png(3, 2, (1, 2, 3))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (kind, length) == (b"IHDR", 13)
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (3, 2)
    idat = data.index(b"IDAT")
    size = struct.unpack(">I", data[idat - 4 : idat])[0]
    assert zlib.decompress(data[idat + 4 : idat + 4 + size]) == (b"\x00" + bytes((1, 2, 3)) * 3) * 2


async def test_flux_validation_and_unknown_tasks(session: aiohttp.ClientSession) -> None:
    async with FluxUpstream() as flux:
        headers = {"x-key": "test-key"}
        status, body, _ = await call(session, "POST", flux.base_url + "/flux-pro-1.1", json={}, headers=headers)
        assert status == 422
        assert body == {"detail": [{"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"}]}
        status, body, _ = await call(session, "POST", flux.base_url + "/flux-9", json={"prompt": "x"}, headers=headers)
        assert (status, body) == (404, {"detail": "Not Found"})
        status, body, _ = await call(session, "GET", flux.base_url + "/get_result?id=nope")
        assert status == 403  # the key is checked on the primary API
        status, body, _ = await call(session, "GET", flux.base_url + "/get_result?id=nope", headers=headers)
        assert body["status"] == "Task not found" and set(body) == {
            "id",
            "status",
            "result",
            "progress",
            "details",
            "preview",
        }
        status, body, _ = await call(session, "GET", flux.base_url + "/credits", headers=headers)
        assert body == {"credits": 1000.0}


async def test_replicate_prefer_wait_that_expires_answers_202_with_location(session: aiohttp.ClientSession) -> None:
    async with ReplicateUpstream() as replicate:
        url = replicate.base_url + "/models/black-forest-labs/flux-schnell/predictions"
        status, body, headers = await call(
            session, "POST", url, json={"input": {"prompt": "x"}}, headers={**BEARER, "Prefer": "wait=5"}
        )
        assert status == 202 and body["status"] == "starting" and body["output"] is None
        assert headers["Preference-Applied"] == "wait=5"
        assert headers["Location"] == f"{replicate.base_url}/predictions/{body['id']}"
        assert len(body["id"]) == 26 and body["urls"]["get"] == headers["Location"]
        replicate.push_outcome(ReplicateOutcome(finishes_within_wait=True))
        status, body, _ = await call(
            session, "POST", url, json={"input": {"prompt": "x"}}, headers={**BEARER, "Prefer": "wait"}
        )
        assert status == 201 and body["status"] == "succeeded" and len(body["output"]) == 1


async def test_replicate_errors_are_problem_details(session: aiohttp.ClientSession) -> None:
    async with ReplicateUpstream() as replicate:
        url = replicate.base_url + "/predictions"
        async with session.post(url, json={"input": {}}, headers={"Authorization": "Bearer wrong"}) as response:
            assert response.status == 401
            assert await response.json() == {
                "title": "Unauthenticated",
                "detail": "You did not pass a valid authentication token",
                "status": 401,
            }
        async with session.post(url, json={"input": {}}, headers=BEARER) as response:
            assert response.status == 422
            assert response.headers["Content-Type"].startswith("application/problem+json")
            assert (await response.json(content_type=None))["title"] == "Invalid version or not permitted"


async def test_openai_gpt_image_rejects_response_format_like_the_real_api(session: aiohttp.ClientSession) -> None:
    async with OpenAIImagesUpstream() as openai:
        status, body, _ = await call(
            session,
            "POST",
            openai.base_url + "/images/generations",
            json={"model": "gpt-image-1", "prompt": "x", "response_format": "url"},
            headers=BEARER,
        )
        assert status == 400
        assert body == {
            "error": {
                "message": "Unknown parameter: 'response_format'.",
                "type": "invalid_request_error",
                "param": "response_format",
                "code": "unknown_parameter",
            }
        }
