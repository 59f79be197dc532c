"""The simulated OpenAI upstream, driven by a plain aiohttp client: what a client sees on the wire."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from polyrelay.testing._faults import Fault
from polyrelay.testing._openai import (
    INSUFFICIENT_QUOTA_BODY,
    OpenAIUpstream,
    ScriptedReply,
    ScriptedToolCall,
    estimate_prompt_tokens,
)

AUTH = {"Authorization": "Bearer test-key"}
CHAT: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello."}]}
STREAM: dict[str, Any] = {**CHAT, "stream": True}
STREAM_USAGE: dict[str, Any] = {**STREAM, "stream_options": {"include_usage": True}}
DEFAULT_TEXT = ScriptedReply().content


@pytest.fixture
async def upstream() -> AsyncIterator[OpenAIUpstream]:
    async with OpenAIUpstream() as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def chat_url(server: OpenAIUpstream) -> str:
    return server.base_url + "/chat/completions"


async def post(
    session: aiohttp.ClientSession, server: OpenAIUpstream, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, CIMultiDictProxy[str], bytes]:
    async with session.post(chat_url(server), json=body, headers=AUTH if headers is None else headers) as response:
        return response.status, response.headers, await response.read()


def events_of(raw: bytes) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order (OpenAI sends one ``data:`` line per event)."""
    blocks = [block for block in raw.decode().split("\n\n") if block]
    assert all(block.startswith("data: ") for block in blocks), blocks
    return [block.removeprefix("data: ") for block in blocks]


def chunks_of(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(data) for data in events_of(raw) if data != "[DONE]"]


def text_of(chunks: list[dict[str, Any]], field: str = "content") -> str:
    return "".join(c["choices"][0]["delta"].get(field) or "" for c in chunks if c["choices"])


async def read_event(response: aiohttp.ClientResponse) -> str:
    return (await response.content.readuntil(b"\n\n")).decode().removeprefix("data: ").rstrip("\n")


# ------------------------------------------------------------------------------------------------ normal answers


async def test_non_stream_completion_has_the_real_body_and_headers(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    status, headers, raw = await post(session, upstream, CHAT)
    body = json.loads(raw)

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["x-request-id"].startswith("req_")
    assert headers["openai-processing-ms"].isdigit()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-4o-mini"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": DEFAULT_TEXT, "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    usage = body["usage"]
    assert usage["prompt_tokens"] == estimate_prompt_tokens(CHAT)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0


async def test_every_response_gets_its_own_request_id(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    _, first, _ = await post(session, upstream, CHAT)
    _, second, _ = await post(session, upstream, CHAT)

    assert first["x-request-id"] != second["x-request-id"]


async def test_stream_sends_role_chunk_content_deltas_finish_chunk_then_done(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.push_reply(ScriptedReply(content="abcdefghij", chunk_size=4))

    status, headers, raw = await post(session, upstream, STREAM)
    events = events_of(raw)
    chunks = chunks_of(raw)

    assert status == 200
    assert headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert events[-1] == "[DONE]"
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "abcd"},
        {"content": "efgh"},
        {"content": "ij"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, None, "stop"]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert all("usage" not in c for c in chunks)


async def test_stream_with_include_usage_ends_with_a_usage_only_chunk(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    _, _, raw = await post(session, upstream, STREAM_USAGE)
    chunks = chunks_of(raw)

    assert events_of(raw)[-1] == "[DONE]"
    assert chunks[-1]["choices"] == []
    usage = chunks[-1]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert text_of(chunks) == DEFAULT_TEXT


async def test_reasoning_content_streams_before_content(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.push_reply(ScriptedReply(content="42", reasoning_content="Think it through."))

    _, _, raw = await post(session, upstream, STREAM_USAGE)
    chunks = chunks_of(raw)
    kinds = [next(iter(c["choices"][0]["delta"]), None) for c in chunks if c["choices"]]

    assert text_of(chunks, "reasoning_content") == "Think it through."
    assert text_of(chunks) == "42"
    assert kinds.index("content") > max(i for i, k in enumerate(kinds) if k == "reasoning_content")
    assert chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


async def test_parallel_tool_calls_stream_as_indexed_fragments(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    calls = [
        ScriptedToolCall("get_weather", '{"city":"Paris"}', id="call_a"),
        ScriptedToolCall("get_time", '{"tz":"Europe/Paris"}'),
    ]
    upstream.push_reply(ScriptedReply(content=None, tool_calls=calls, chunk_size=5))

    _, _, raw = await post(session, upstream, STREAM)
    chunks = chunks_of(raw)
    fragments = [f for c in chunks for f in c["choices"][0]["delta"].get("tool_calls", [])]
    firsts = [f for f in fragments if "id" in f]

    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None, "refusal": None}
    assert [(f["index"], f["type"], f["function"]) for f in firsts] == [
        (0, "function", {"name": "get_weather", "arguments": ""}),
        (1, "function", {"name": "get_time", "arguments": ""}),
    ]
    assert firsts[0]["id"] == "call_a"
    assert firsts[1]["id"].startswith("call_")
    for index, call in enumerate(calls):
        arguments = "".join(f["function"].get("arguments", "") for f in fragments if f["index"] == index)
        assert json.loads(arguments) == json.loads(call.arguments)
    assert all(set(f) == {"index", "function"} for f in fragments if "id" not in f)
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}


async def test_non_stream_tool_calls(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    upstream.push_reply(ScriptedReply(content=None, tool_calls=[ScriptedToolCall("f", '{"x":1}', id="call_1")]))

    _, _, raw = await post(session, upstream, CHAT)
    choice = json.loads(raw)["choices"][0]

    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}
    ]


async def test_n_choices_non_stream_and_interleaved_stream(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    _, _, raw = await post(session, upstream, {**CHAT, "n": 2})
    body = json.loads(raw)
    _, _, streamed = await post(session, upstream, {**STREAM, "n": 2})
    chunks = chunks_of(streamed)

    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert body["usage"]["completion_tokens"] % 2 == 0
    assert [c["choices"][0]["index"] for c in chunks[:4]] == [0, 1, 0, 1]
    for index in (0, 1):
        mine = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == index]
        assert "".join(ch["delta"].get("content") or "" for ch in mine) == DEFAULT_TEXT
        assert mine[-1]["finish_reason"] == "stop"


async def test_refusal_has_null_content(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    upstream.push_reply(ScriptedReply(refusal="I can't help with that."))
    upstream.push_reply(ScriptedReply(refusal="I can't help with that."))

    _, _, raw = await post(session, upstream, CHAT)
    message = json.loads(raw)["choices"][0]["message"]
    _, _, streamed = await post(session, upstream, STREAM)

    assert message["content"] is None
    assert message["refusal"] == "I can't help with that."
    assert text_of(chunks_of(streamed), "refusal") == "I can't help with that."
    assert text_of(chunks_of(streamed)) == ""


async def test_pushed_replies_come_first_then_the_callable_default(session: aiohttp.ClientSession) -> None:
    seen: list[Any] = []

    def answer(body: Any) -> ScriptedReply:
        seen.append(body)
        return ScriptedReply(content=f"echo {body['messages'][-1]['content']}", finish_reason="length")

    async with OpenAIUpstream(reply=answer) as server:
        server.push_reply(ScriptedReply(content="one-off"))
        replies = [json.loads((await post(session, server, CHAT))[2])["choices"][0] for _ in range(2)]

    assert replies[0]["message"]["content"] == "one-off"
    assert replies[1]["message"]["content"] == "echo Say hello."
    assert replies[1]["finish_reason"] == "length"
    assert seen == [CHAT]


async def test_scripted_token_counts_are_reported(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    upstream.push_reply(ScriptedReply(prompt_tokens=100, completion_tokens=7))

    usage = json.loads((await post(session, upstream, CHAT))[2])["usage"]

    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (100, 7, 107)


async def test_models_endpoint_lists_models(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    async with session.get(upstream.base_url + "/models", headers=AUTH) as response:
        body = await response.json()

    assert body["object"] == "list"
    assert {m["id"] for m in body["data"]} >= {"gpt-4o-mini"}
    assert {m["object"] for m in body["data"]} == {"model"}


async def test_unknown_path_is_a_404_invalid_url(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    async with session.post(upstream.base_url + "/nope", json={}, headers=AUTH) as response:
        status, body = response.status, await response.json()

    assert status == 404
    assert body["error"]["message"] == "Invalid URL (POST /v1/nope)"
    assert upstream.requests[-1].path == "/v1/nope"


# ------------------------------------------------------------------------------------------------ auth and 400s


async def test_missing_key_is_401_without_code(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    status, _, raw = await post(session, upstream, CHAT, headers={})
    error = json.loads(raw)["error"]

    assert status == 401
    assert error["message"].startswith("You didn't provide an API key.")
    assert (error["type"], error["code"]) == ("invalid_request_error", None)


async def test_wrong_key_is_401_invalid_api_key_and_masked(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    status, _, raw = await post(session, upstream, CHAT, headers={"Authorization": "Bearer sk-wrong-0123456789abcd"})
    error = json.loads(raw)["error"]

    assert status == 401
    assert error["message"].startswith("Incorrect API key provided: ")
    assert "sk-wrong-0123456789abcd" not in error["message"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")


async def test_raw_key_is_accepted_only_when_enabled(session: aiohttp.ClientSession) -> None:
    raw_key = {"Authorization": "test-key"}
    async with OpenAIUpstream() as strict, OpenAIUpstream(accept_raw_key=True) as lenient:
        strict_status = (await post(session, strict, CHAT, headers=raw_key))[0]
        lenient_status = (await post(session, lenient, CHAT, headers=raw_key))[0]

    assert (strict_status, lenient_status) == (401, 200)


async def test_api_key_none_accepts_any_caller(session: aiohttp.ClientSession) -> None:
    async with OpenAIUpstream(api_key=None) as server:
        status = (await post(session, server, CHAT, headers={}))[0]

    assert status == 200


@pytest.mark.parametrize(
    ("body", "message_start", "param"),
    [
        ({"messages": CHAT["messages"]}, "you must provide a model parameter", None),
        ({"model": "gpt-4o-mini"}, "Missing required parameter: 'messages'.", "messages"),
        ({"model": "gpt-4o-mini", "messages": []}, "Invalid 'messages': empty array.", "messages"),
        ({**CHAT, "stream_options": {"include_usage": True}}, "The 'stream_options' parameter", "stream_options"),
    ],
)
async def test_invalid_requests_are_400_invalid_request_error(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession, body: Any, message_start: str, param: str | None
) -> None:
    status, _, raw = await post(session, upstream, body)
    error = json.loads(raw)["error"]

    assert status == 400
    assert error["message"].startswith(message_start)
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


async def test_non_json_body_is_400(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    async with session.post(chat_url(upstream), data=b"{not json", headers=AUTH) as response:
        status, error = response.status, (await response.json())["error"]

    assert status == 400
    assert error["message"].startswith("We could not parse the JSON body of your request.")


async def test_prompt_over_the_context_window_is_context_length_exceeded(session: aiohttp.ClientSession) -> None:
    long_chat = {**CHAT, "messages": [{"role": "user", "content": "word " * 200}]}
    async with OpenAIUpstream(context_window=100) as server:
        short_status = (await post(session, server, CHAT))[0]
        status, _, raw = await post(session, server, long_chat)
    error = json.loads(raw)["error"]

    assert short_status == 200
    assert status == 400
    assert error["code"] == "context_length_exceeded"
    assert error["param"] == "messages"
    assert error["message"] == (
        f"This model's maximum context length is 100 tokens. However, your messages resulted in "
        f"{estimate_prompt_tokens(long_chat)} tokens. Please reduce the length of the messages."
    )


# ------------------------------------------------------------------------------------------------ status faults


async def test_status_fault_uses_the_openai_error_envelope(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.add_fault(Fault.status_code(500))

    status, headers, raw = await post(session, upstream, CHAT)

    assert status == 500
    assert headers["x-request-id"].startswith("req_")
    assert json.loads(raw) == {
        "error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    assert (await post(session, upstream, CHAT))[0] == 200


async def test_401_fault_is_an_invalid_api_key_error(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    upstream.add_fault(Fault.status_code(401))

    status, _, raw = await post(session, upstream, CHAT)
    error = json.loads(raw)["error"]

    assert status == 401
    assert error["code"] == "invalid_api_key"
    assert "test-key" not in error["message"]


async def test_429_has_rate_limit_envelope_headers_and_retry_after(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.add_fault(Fault.status_code(429, retry_after=2, retry_after_ms=1500, headers={"x-extra": "yes"}))

    status, headers, raw = await post(session, upstream, CHAT)
    error = json.loads(raw)["error"]

    assert status == 429
    assert (error["type"], error["code"]) == ("tokens", "rate_limit_exceeded")
    assert error["message"].startswith("Rate limit reached for gpt-4o-mini in organization ")
    assert headers["Retry-After"] == "2"
    assert headers["retry-after-ms"] == "1500"
    assert headers["x-ratelimit-remaining-tokens"] == "0"
    assert headers["x-ratelimit-limit-requests"].isdigit()
    assert headers["x-ratelimit-reset-tokens"] == "1.5s"
    assert headers["x-extra"] == "yes"


async def test_retry_after_http_date_and_body_overrides(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    upstream.add_fault(Fault.status_code(429, body=INSUFFICIENT_QUOTA_BODY, retry_after=date))
    upstream.add_fault(Fault.status_code(502, body="<html><body>502 Bad Gateway</body></html>"))

    quota_status, quota_headers, quota_raw = await post(session, upstream, CHAT)
    html_status, html_headers, html_raw = await post(session, upstream, CHAT)

    assert quota_status == 429
    assert quota_headers["Retry-After"] == date
    assert json.loads(quota_raw)["error"]["code"] == "insufficient_quota"
    assert html_status == 502
    assert html_headers["Content-Type"].startswith("text/html")
    assert html_raw == b"<html><body>502 Bad Gateway</body></html>"


async def test_set_down_answers_503_until_back_up(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    upstream.add_fault(Fault.status_code(500))
    upstream.set_down(True)
    down = [await post(session, upstream, CHAT) for _ in range(2)]
    upstream.set_down(False)

    assert [d[0] for d in down] == [503, 503]
    assert json.loads(down[0][2])["error"]["message"] == "The server is overloaded or not ready yet."
    assert (await post(session, upstream, CHAT))[0] == 500  # the queued fault waited out the outage
    assert (await post(session, upstream, CHAT))[0] == 200
    assert len(upstream.requests) == 4


# ------------------------------------------------------------------------------------------------ connection faults


async def test_reset_drops_the_connection_before_any_status(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.add_fault(Fault.reset())

    with pytest.raises(aiohttp.ClientConnectionError):
        await post(session, upstream, CHAT)
    assert (await post(session, upstream, CHAT))[0] == 200
    assert len(upstream.requests) == 2


async def test_no_response_holds_until_the_client_gives_up(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.add_fault(Fault.no_response())

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await post(session, upstream, CHAT)
    assert (await post(session, upstream, CHAT))[0] == 200


async def test_close_is_prompt_and_clean_while_requests_are_held(session: aiohttp.ClientSession) -> None:
    server = OpenAIUpstream()
    await server.start()
    server.add_fault(Fault.no_response(), model="gpt-4o")
    server.add_fault(Fault.stall(after_chunks=1, delay=3600), model="gpt-4o-mini")
    held = asyncio.ensure_future(post(session, server, {**CHAT, "model": "gpt-4o"}))
    async with session.post(chat_url(server), json=STREAM, headers=AUTH) as stalled:
        assert await read_event(stalled)  # role chunk
        assert json.loads(await read_event(stalled))["choices"][0]["delta"]["content"]
        while len(server.requests) < 2:  # noqa: ASYNC110 - the held request arrives on its own connection
            await asyncio.sleep(0.01)

        await asyncio.wait_for(server.close(), timeout=10)  # a hang detector, not a speed check

        with pytest.raises(aiohttp.ClientPayloadError):
            await stalled.read()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await held
    await server.close()  # idempotent


async def test_slow_first_byte_delays_the_status_line(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    upstream.add_fault(Fault.slow_first_byte(1.0))
    upstream.add_fault(Fault.slow_first_byte(0.05))

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await post(session, upstream, CHAT)
    status, _, raw = await post(session, upstream, CHAT)

    assert status == 200
    assert json.loads(raw)["choices"][0]["message"]["content"] == DEFAULT_TEXT


async def test_slow_first_token_sends_headers_and_role_then_waits(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.add_fault(Fault.slow_first_token(0.3))

    async with session.post(chat_url(upstream), json=STREAM, headers=AUTH) as response:
        assert response.status == 200
        assert json.loads(await read_event(response))["choices"][0]["delta"]["role"] == "assistant"
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await read_event(response)
        rest = await response.read()

    assert text_of(chunks_of(rest)) == DEFAULT_TEXT
    assert events_of(rest)[-1] == "[DONE]"


async def test_stall_pauses_after_n_chunks_then_continues(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.push_reply(ScriptedReply(content="aabbccdd", chunk_size=2))
    upstream.add_fault(Fault.stall(after_chunks=2, delay=0.3))

    async with session.post(chat_url(upstream), json=STREAM, headers=AUTH) as response:
        before = [json.loads(await read_event(response)) for _ in range(3)]
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await read_event(response)
        rest = await response.read()

    assert text_of(before) == "aabb"
    assert text_of(chunks_of(rest)) == "ccdd"
    assert events_of(rest)[-1] == "[DONE]"


async def test_truncate_drops_the_stream_after_n_chunks(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.push_reply(ScriptedReply(content="aabbccdd", chunk_size=2))
    upstream.add_fault(Fault.truncate(after_chunks=2))

    async with session.post(chat_url(upstream), json=STREAM_USAGE, headers=AUTH) as response:
        received = [json.loads(await read_event(response)) for _ in range(3)]
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()

    assert text_of(received) == "aabb"


async def test_truncate_non_stream_drops_mid_body(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    upstream.add_fault(Fault.truncate())

    with pytest.raises(aiohttp.ClientPayloadError):
        await post(session, upstream, CHAT)


async def test_no_done_completes_the_stream_without_the_sentinel(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.add_fault(Fault.no_done())

    status, _, raw = await post(session, upstream, STREAM_USAGE)
    events = events_of(raw)
    chunks = chunks_of(raw)

    assert status == 200
    assert "[DONE]" not in events
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert text_of(chunks) == DEFAULT_TEXT


async def test_malformed_stream_event_after_n_chunks(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    upstream.add_fault(Fault.malformed(after_chunks=1))

    _, _, raw = await post(session, upstream, STREAM)
    events = events_of(raw)

    assert json.loads(events[1])["choices"][0]["delta"]["content"]
    assert events[2].startswith('{"id":"chatcmpl-')
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[2])
    assert len(events) == 3


async def test_malformed_non_stream_body_is_not_json(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    upstream.add_fault(Fault.malformed())

    status, headers, raw = await post(session, upstream, CHAT)

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)


async def test_error_event_in_a_200_stream(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    upstream.push_reply(ScriptedReply(content="aabbccdd", chunk_size=2))
    upstream.add_fault(Fault.error_event(after_chunks=2))

    status, _, raw = await post(session, upstream, STREAM)
    events = events_of(raw)

    assert status == 200
    assert text_of([json.loads(e) for e in events[:-1]]) == "aabb"
    assert json.loads(events[-1])["error"]["type"] == "server_error"
    assert "[DONE]" not in events


async def test_error_event_custom_body_and_non_stream(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    custom = {"error": {"message": "overloaded", "type": "server_error", "param": None, "code": "overloaded"}}
    upstream.add_fault(Fault.error_event(body=custom))
    upstream.add_fault(Fault.error_event())

    _, _, streamed = await post(session, upstream, STREAM)
    status, _, raw = await post(session, upstream, CHAT)

    assert json.loads(events_of(streamed)[-1]) == custom
    assert status == 200
    assert json.loads(raw)["error"]["type"] == "server_error"


# ------------------------------------------------------------------------------------------------ matching, records


async def test_times_limits_how_many_requests_get_a_fault(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.add_fault(Fault.status_code(500), times=2)

    statuses = [(await post(session, upstream, CHAT))[0] for _ in range(3)]

    assert statuses == [500, 500, 200]


async def test_times_none_repeats_until_cleared(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    upstream.add_fault(Fault.status_code(503), times=None)
    statuses = [(await post(session, upstream, CHAT))[0] for _ in range(3)]
    upstream.clear_faults()

    assert statuses == [503, 503, 503]
    assert (await post(session, upstream, CHAT))[0] == 200


async def test_faults_are_fifo_and_match_model_and_path(
    upstream: OpenAIUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.add_fault(Fault.status_code(500), model="gpt-4o")
    upstream.add_fault(Fault.status_code(502), path="/v1/models")
    upstream.add_fault(Fault.status_code(503))
    upstream.add_fault(Fault.status_code(504))

    mini = [(await post(session, upstream, CHAT))[0] for _ in range(3)]
    big = (await post(session, upstream, {**CHAT, "model": "gpt-4o"}))[0]
    async with session.get(upstream.base_url + "/models", headers=AUTH) as response:
        models = response.status

    assert mini == [503, 504, 200]
    assert big == 500
    assert models == 502


async def test_requests_are_recorded_in_order(upstream: OpenAIUpstream, session: aiohttp.ClientSession) -> None:
    upstream.add_fault(Fault.status_code(500))
    await post(session, upstream, CHAT, headers={**AUTH, "X-Trace": "t1"})
    async with session.get(upstream.base_url + "/models?limit=5", headers=AUTH):
        pass

    first, second = upstream.requests
    assert (first.method, first.path, first.json) == ("POST", "/v1/chat/completions", CHAT)
    assert json.loads(first.body) == CHAT
    assert first.headers["x-trace"] == "t1"
    assert first.headers["authorization"] == "Bearer test-key"
    assert (second.method, second.path, dict(second.query), second.json) == ("GET", "/v1/models", {"limit": "5"}, None)
    assert second.received_at >= first.received_at
    assert "test-key" not in repr(first)
    assert "'x-trace': 't1'" in repr(first).lower()


async def test_urls_and_lifecycle_errors() -> None:
    server = OpenAIUpstream()
    with pytest.raises(RuntimeError):
        _ = server.base_url
    async with server:
        assert server.origin.startswith("http://127.0.0.1:")
        assert server.base_url == server.origin + "/v1"
        with pytest.raises(RuntimeError):
            await server.start()


def test_fault_constructors_and_validation() -> None:
    assert Fault.status_code(429, retry_after=1).status == 429
    assert Fault.stall(after_chunks=3, delay=30) == Fault(kind="stall", after_chunks=3, delay=30)
    assert Fault.error_event(after_chunks=2).kind == "error_event"
    with pytest.raises(ValueError):
        Fault.status_code(99)
    with pytest.raises(ValueError):
        Fault.slow_first_byte(-1)
    with pytest.raises(ValueError):
        Fault(kind="status", retry_after=-1)
    with pytest.raises(ValueError):
        ScriptedReply(chunk_size=0)
