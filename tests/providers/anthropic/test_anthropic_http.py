"""The provider over real HTTP on 127.0.0.1 against the simulated Anthropic upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from anthropic_kit import Collected, ctx, openai, provider

from polyrelay.errors import (
    AuthenticationFailed,
    BadRequest,
    ContextWindowExceeded,
    InvalidUpstreamResponse,
    NotFound,
    Overloaded,
    RateLimited,
    StreamInterrupted,
    UnsupportedFeature,
)
from polyrelay.testing._anthropic import (
    AnthropicReply,
    AnthropicUpstream,
    ReplyRedactedThinking,
    ReplyText,
    ReplyThinking,
    ReplyToolUse,
)
from polyrelay.testing._faults import Fault
from polyrelay.testing._openai import ScriptedReply, ScriptedToolCall
from polyrelay.transport import Transport

WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


@pytest.fixture
async def upstream() -> AsyncIterator[AnthropicUpstream]:
    async with AnthropicUpstream(reply=ScriptedReply(content="Paris is the capital.")) as up:
        yield up


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport()
    yield t
    await t.aclose()


async def _stream(p: Any, body: dict[str, Any], model: str = "claude-sonnet-4-5") -> Collected:
    got = Collected()
    async for chunk in p.stream_chat(openai(body), ctx(model)):
        got.add(chunk)
    return got


def _req(*messages: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"model": "claude", "messages": list(messages), **kw}


USER = {"role": "user", "content": "What is the capital of France?"}


async def test_chat_sends_anthropic_headers_and_body(upstream: AnthropicUpstream, transport: Transport) -> None:
    p = provider(upstream.base_url, transport, beta=["files-api-2025-04-14", "context-1m-2025-08-07"])
    body = _req({"role": "system", "content": "Be brief."}, USER, max_tokens=100, stop=["\n\n##"], user="u-1")
    completion = await p.chat(openai(body), ctx())
    assert completion.choices[0].message.content == "Paris is the capital."
    assert completion.choices[0].finish_reason == "stop" and completion.id.startswith("msg_01")
    assert completion.meta is not None and completion.meta.request_id is not None
    assert completion.meta.request_id.startswith("req_011C") and completion.meta.provider == "claude"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    sent = upstream.requests[-1]
    assert sent.path == "/v1/messages" and sent.headers["x-api-key"] == "test-key"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["anthropic-beta"] == "files-api-2025-04-14,context-1m-2025-08-07"
    assert "Authorization" not in sent.headers
    assert sent.json == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]}],
        "system": "Be brief.",
        "stop_sequences": ["\n\n##"],
        "stream": False,
        "metadata": {"user_id": "u-1"},
    }


async def test_stream_with_usage(upstream: AnthropicUpstream, transport: Transport) -> None:
    p = provider(upstream.base_url, transport)
    got = await _stream(p, _req(USER, stream=True, stream_options={"include_usage": True}))
    assert got.content == "Paris is the capital." and got.finish == ["stop"] and got.roles == ["assistant"]
    assert got.usage is not None and got.usage.prompt_tokens > 0 and got.chunks[-1].choices == ()
    assert len([c for c in got.chunks if c.choices and c.choices[0].delta.content]) > 1  # really streamed
    assert upstream.requests[-1].json["stream"] is True


async def test_tool_calling_two_rounds(upstream: AnthropicUpstream, transport: Transport) -> None:
    p = provider(upstream.base_url, transport)
    upstream.push_reply(ScriptedReply(content=None, tool_calls=[ScriptedToolCall("get_weather", '{"city": "Paris"}')]))
    upstream.push_reply(ScriptedReply(content="It is sunny in Paris."))
    question = {"role": "user", "content": "Weather in Paris?"}
    first = await p.chat(
        openai(_req(question, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)), ctx()
    )
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls" and message.tool_calls is not None
    call = message.tool_calls[0]
    assert call.function.name == "get_weather" and call.function.arguments == '{"city": "Paris"}'
    assert upstream.requests[-1].json["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    result = {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 24C"}
    second = await _stream(p, _req(question, message.to_dict(), result, tools=[WEATHER], stream=True))
    assert second.content == "It is sunny in Paris." and second.finish == ["stop"]
    sent = upstream.requests[-1].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"] == [
        {"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"city": "Paris"}}
    ]
    assert sent[2]["content"] == [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 24C"}]


async def test_thinking_round_trip_in_a_tool_loop(upstream: AnthropicUpstream, transport: Transport) -> None:
    p = provider(upstream.base_url, transport)
    upstream.push_reply(
        AnthropicReply(
            blocks=[
                ReplyThinking("I need the weather first."),
                ReplyRedactedThinking(),
                ReplyText("Let me check."),
                ReplyToolUse("get_weather", {"city": "Oslo"}, id="toolu_01abc"),
            ]
        )
    )
    upstream.push_reply(AnthropicReply.text("Rainy in Oslo."))
    question = {"role": "user", "content": "Weather in Oslo?"}
    options = {"tools": [WEATHER], "reasoning_effort": "medium", "max_tokens": 8000, "stream": True}
    first = await _stream(p, _req(question, **options))
    assert first.reasoning == "I need the weather first." and first.content == "Let me check."
    assert [b["type"] for b in first.thinking_blocks] == ["thinking", "redacted_thinking"]
    assert upstream.requests[-1].json["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    # The caller rebuilds the assistant turn from the stream, keeping the signed blocks in `extra`.
    assistant = {
        "role": "assistant",
        "content": first.content,
        "reasoning_content": first.reasoning,
        "thinking_blocks": first.thinking_blocks,
        "tool_calls": [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in first.tool_calls.values()
        ],
    }
    result = {"role": "tool", "tool_call_id": "toolu_01abc", "content": "Rain"}
    second = await p.chat(openai(_req(question, assistant, result, **{**options, "stream": False})), ctx())
    assert second.choices[0].message.content == "Rainy in Oslo."
    sent = upstream.requests[-1].json["messages"][1]["content"]
    assert [b["type"] for b in sent] == ["thinking", "redacted_thinking", "text", "tool_use"]
    # The simulator, like Anthropic, refuses a thinking block whose signature does not match.
    tampered = {**assistant, "thinking_blocks": [{**first.thinking_blocks[0], "thinking": "edited"}]}
    with pytest.raises(BadRequest) as info:
        await p.chat(openai(_req(question, tampered, result, tools=[WEATHER], reasoning_effort="medium")), ctx())
    assert "Invalid `signature`" in info.value.message and info.value.code == "invalid_request_error"


async def test_prefill_is_continued(upstream: AnthropicUpstream, transport: Transport) -> None:
    p = provider(upstream.base_url, transport)
    assert p.capabilities("claude-sonnet-4-5").accepts_prefill is True
    await p.chat(openai(_req(USER, {"role": "assistant", "content": "The answer is "})), ctx())
    assert upstream.requests[-1].json["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "The answer is"}],
    }


async def test_status_faults_in_anthropics_envelope(upstream: AnthropicUpstream, transport: Transport) -> None:
    p = provider(upstream.base_url, transport)
    upstream.add_fault(Fault.status_code(529))
    with pytest.raises(Overloaded) as overloaded:
        await p.chat(openai(_req(USER)), ctx())
    assert (overloaded.value.status, overloaded.value.code, overloaded.value.retryable) == (
        529,
        "overloaded_error",
        True,
    )
    upstream.add_fault(Fault.status_code(429, retry_after=3))
    with pytest.raises(RateLimited) as limited:
        await p.chat(openai(_req(USER, stream=True)), ctx())
    assert limited.value.retry_after == 3.0 and limited.value.code == "rate_limit_error"
    assert limited.value.request_id is not None and limited.value.request_id.startswith("req_")


async def test_stream_faults(upstream: AnthropicUpstream, transport: Transport) -> None:
    p = provider(upstream.base_url, transport)
    streaming = _req(USER, stream=True)
    upstream.add_fault(Fault.error_event(after_chunks=2))
    got = Collected()
    with pytest.raises(Overloaded):
        async for chunk in p.stream_chat(openai(streaming), ctx()):
            got.add(chunk)
    assert got.content == "Paris is the capital."[:16]  # two 8-character deltas arrived first
    upstream.add_fault(Fault.truncate(after_chunks=1))
    with pytest.raises(StreamInterrupted):
        await _stream(p, streaming)
    upstream.add_fault(Fault.malformed(after_chunks=1))
    with pytest.raises(InvalidUpstreamResponse) as info:
        await _stream(p, streaming)
    assert info.value.provider == "claude"
    upstream.add_fault(Fault.no_done())  # no message_stop, but the stop_reason arrived: complete
    done = await _stream(p, {**streaming, "stream_options": {"include_usage": True}})
    assert done.content == "Paris is the capital." and done.finish == ["stop"] and done.usage is not None


async def test_closing_a_stream_early_releases_the_connection(
    upstream: AnthropicUpstream, transport: Transport
) -> None:
    p = provider(upstream.base_url, transport)
    stream = p.stream_chat(openai(_req(USER, stream=True)), ctx())
    first = await anext(stream)
    assert first.choices[0].delta.role == "assistant"
    await stream.aclose()
    assert (await p.chat(openai(_req(USER)), ctx())).choices[0].message.content == "Paris is the capital."


async def test_auth_failures_and_bearer_relays(transport: Transport) -> None:
    async with AnthropicUpstream(accept_bearer=True) as up:
        with pytest.raises(AuthenticationFailed) as info:
            await provider(up.base_url, transport, key="wrong-key-123456").chat(openai(_req(USER)), ctx())
        assert info.value.message == "invalid x-api-key" and info.value.status == 401
        with pytest.raises(AuthenticationFailed) as missing:
            await provider(up.base_url, transport, key=None).chat(openai(_req(USER)), ctx())
        assert missing.value.message == "x-api-key header is required"
        relay = provider(up.base_url, transport, auth="bearer", version="2023-01-01")
        await relay.chat(openai(_req(USER)), ctx())
        sent = up.requests[-1].headers
        assert sent["Authorization"] == "Bearer test-key" and "x-api-key" not in sent
        assert sent["anthropic-version"] == "2023-01-01"


async def test_context_window_and_unknown_model(transport: Transport) -> None:
    async with AnthropicUpstream(context_window=20, models=["claude-sonnet-4-5"]) as up:
        p = provider(up.base_url, transport)
        with pytest.raises(ContextWindowExceeded) as info:
            await p.chat(openai(_req({"role": "user", "content": "x" * 400})), ctx())
        assert info.value.message.startswith("prompt is too long:")
        with pytest.raises(NotFound):
            await p.chat(openai(_req({"role": "user", "content": "hi"})), ctx("claude-nope"))


async def test_unsupported_features_fail_before_the_network(upstream: AnthropicUpstream, transport: Transport) -> None:
    p = provider(upstream.base_url, transport)
    with pytest.raises(UnsupportedFeature) as info:
        await p.chat(openai(_req(USER, n=3)), ctx())
    assert info.value.path == "n" and info.value.provider == "claude"
    audio = {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}
    with pytest.raises(UnsupportedFeature):
        async for _ in p.stream_chat(openai(_req(audio, stream=True)), ctx()):
            pass
    assert upstream.requests == []


async def test_warnings_reach_the_result(upstream: AnthropicUpstream, transport: Transport) -> None:
    p = provider(upstream.base_url, transport)
    completion = await p.chat(openai(_req(USER, seed=1, presence_penalty=0.2)), ctx())
    assert completion.meta is not None
    assert {w.setting for w in completion.meta.warnings} == {"seed", "presence_penalty"}
    got = await _stream(p, _req(USER, stream=True, logit_bias={"1": 2}))
    assert got.chunks[0].meta is not None and [w.setting for w in got.chunks[0].meta.warnings] == ["logit_bias"]
    assert "seed" not in upstream.requests[0].json
