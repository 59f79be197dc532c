"""The simulated Anthropic upstream speaks the real wire format and enforces what the real API enforces."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from polyrelay.testing._anthropic import AnthropicReply, AnthropicUpstream, ReplyToolUse, simulated_signature
from polyrelay.testing._openai import ScriptedReply, ScriptedToolCall
from polyrelay.transport import Timeouts, Transport

HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport()
    yield t
    await t.aclose()


async def _post(
    transport: Transport,
    up: AnthropicUpstream,
    body: Any,
    headers: dict[str, str] | None = None,
    path: str = "/messages",
) -> tuple[int, bytes]:
    resp = await transport.request(
        "POST", up.base_url + path, provider="sim", timeouts=Timeouts(), headers=headers or HEADERS, json_body=body
    )
    return resp.status, await resp.read()


def _body(**kw: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 2000, "messages": [{"role": "user", "content": "Hi"}], **kw}


async def test_stream_framing_matches_the_real_api(transport: Transport) -> None:
    async with AnthropicUpstream(reply=ScriptedReply(content="Hello there", reasoning_content="Think")) as up:
        status, raw = await _post(transport, up, _body(stream=True))
    assert status == 200
    events = [e for e in raw.decode().split("\n\n") if e]
    names = [e.split("\n")[0] for e in events]
    assert names[:4] == [
        "event: message_start",
        "event: content_block_start",
        "event: ping",
        "event: content_block_delta",
    ]
    assert names[-2:] == ["event: message_delta", "event: message_stop"]
    for event in events:
        name, data = event.split("\n")
        payload = json.loads(data.removeprefix("data: "))  # trailing padding is valid JSON whitespace
        assert payload["type"] == name.removeprefix("event: ")
    thinking = [json.loads(e.split("data: ")[1]) for e in events if "signature_delta" in e]
    assert thinking[0]["delta"]["signature"] == simulated_signature("Think")


async def test_scripted_replies_map_to_anthropic_blocks(transport: Transport) -> None:
    reply = ScriptedReply(
        content=None, tool_calls=[ScriptedToolCall("f", '{"a": 1}', id="toolu_x")], finish_reason="length"
    )
    async with AnthropicUpstream(reply=reply) as up:
        up.push_reply(AnthropicReply(blocks=[ReplyToolUse("g")], input_tokens=7, output_tokens=3))
        _, first = await _post(transport, up, _body())
        _, second = await _post(transport, up, _body())
    one, two = json.loads(first), json.loads(second)
    assert one["content"][0]["name"] == "g" and one["stop_reason"] == "tool_use"
    assert (one["usage"]["input_tokens"], one["usage"]["output_tokens"]) == (7, 3)
    assert two["content"] == [{"type": "tool_use", "id": "toolu_x", "name": "f", "input": {"a": 1}}]
    assert two["stop_reason"] == "max_tokens"


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (_body(), {"x-api-key": "test-key"}, "anthropic-version: header is required"),
        ({"model": "m", "messages": []}, None, "max_tokens: Field required"),
        (
            _body(messages=[{"role": "system", "content": "x"}]),
            None,
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            _body(
                messages=[
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
                    {"role": "user", "content": "no result"},
                ]
            ),
            None,
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: t1.",
        ),
        (_body(thinking={"type": "enabled", "budget_tokens": 500}), None, "greater than or equal to 1024"),
        (
            _body(max_tokens=1024, thinking={"type": "enabled", "budget_tokens": 1024}),
            None,
            "`max_tokens` must be greater",
        ),
        (
            _body(thinking={"type": "enabled", "budget_tokens": 1024}, tool_choice={"type": "any"}),
            None,
            "Thinking may not be enabled when tool_choice forces tool use.",
        ),
    ],
)
async def test_requests_the_real_api_rejects(
    transport: Transport, body: dict[str, Any], headers: dict[str, str] | None, message: str
) -> None:
    async with AnthropicUpstream() as up:
        status, raw = await _post(transport, up, body, headers)
    error = json.loads(raw)
    assert status == 400 and error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert message in error["error"]["message"] and error["request_id"].startswith("req_")


async def test_outage_and_unknown_paths_use_the_envelope(transport: Transport) -> None:
    async with AnthropicUpstream() as up:
        status, raw = await _post(transport, up, _body(), path="/complete")
        assert (status, json.loads(raw)["error"]) == (404, {"type": "not_found_error", "message": "Not Found"})
        up.set_down(True)
        status, raw = await _post(transport, up, _body())
        assert status == 503 and json.loads(raw)["error"]["type"] == "overloaded_error"
