"""Streaming: the commit point, transparent failover before it, StreamInterrupted after it, opt-in recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from polyrelay.errors import (
    DeadlineExceeded,
    IdleTimeout,
    InvalidUpstreamResponse,
    Overloaded,
    ServerError,
    StreamInterrupted,
)
from polyrelay.provider import CallContext
from polyrelay.stream import ChatStream, is_restart
from polyrelay.testing._fake import Reply
from polyrelay.types.chat import ChatRequest, FunctionCall, ToolCall
from polyrelay.types.completion import ChatCompletionChunk, ChoiceDelta, ChunkChoice, ToolCallDelta, Usage

from .conftest import USER, Build, fake, route, t

CONTINUE = {"stream_recovery": "continue"}


async def collect(stream: ChatStream) -> list[ChatCompletionChunk]:
    out = []
    async with stream:
        async for chunk in stream:
            out.append(chunk)
    return out


def text(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


async def open_stream(r: object, model: str = "m", **kw: object) -> ChatStream:
    s = await r.chat.completions.create(model=model, messages=USER, stream=True, **kw)  # type: ignore[attr-defined]
    assert isinstance(s, ChatStream)
    return s


async def test_stream_is_returned_before_any_network_call_and_reports_who_answered(make: Build) -> None:
    r = make([route("m", t("a", "x"))])
    s = await open_stream(r, stream_options={"include_usage": True})
    before = s.meta
    assert fake(r, "a").calls == [] and before is None
    chunks = await collect(s)
    assert text(chunks) == "Hello from FakeProvider."
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].meta is not None and chunks[0].meta.provider == "a"
    assert chunks[-1].choices == () and chunks[-1].usage is not None
    assert s.finished and s.usage == chunks[-1].usage
    assert s.meta is not None and (s.meta.provider, s.meta.model, s.meta.requested_model) == ("a", "x", "m")
    assert [a.outcome for a in s.attempts] == ["success"]
    assert s.attempts[0].first_byte is not None
    assert fake(r, "a").calls[0].released and r.in_flight("a/x") == 0


async def test_failure_before_the_first_content_fails_over_invisibly(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))], policy={"retry": {"max_attempts": 1}})
    fake(r, "a").push(Reply(chunks=[Overloaded("overloaded_error", status=529)]))  # after the role chunk
    usage = Usage(prompt_tokens=4, completion_tokens=2, total_tokens=6)
    fake(r, "b").push(Reply(content="from b", usage=usage))
    s = await open_stream(r, stream_options={"include_usage": True})
    chunks = await collect(s)
    assert text(chunks) == "from b"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.role) == 1  # a's role chunk was never sent
    assert s.provider == "b" and s.usage == usage
    assert [(a.provider, a.outcome) for a in s.attempts] == [("a", "error"), ("b", "success")]
    assert fake(r, "a").calls[0].released


async def test_in_band_error_before_content_is_retried_on_the_same_target(make: Build) -> None:
    r = make([route("m", t("a", "x"))])
    fake(r, "a").push(Reply(chunks=[ServerError("in-band server_error")]))
    s = await open_stream(r)
    assert text(await collect(s)) == "Hello from FakeProvider."
    assert [a.outcome for a in s.attempts] == ["error", "success"]


async def test_first_token_timeout_fails_over_when_a_fallback_exists(make: Build) -> None:
    r = make(
        [route("m", t("a", "x"), fallbacks=("n",)), route("n", t("b", "y"))],
        policy={"first_token_timeout": 0.05},
    )
    fake(r, "a").push(Reply(chunks=[5.0, "too late"]))
    s = await open_stream(r)
    assert text(await collect(s)) == "Hello from FakeProvider."
    assert s.provider == "b"
    assert s.attempts[0].error_type == "FirstTokenTimeout"
    assert len(fake(r, "a").calls) == 1 and fake(r, "a").calls[0].released


async def test_first_token_timeout_waits_on_when_there_is_nowhere_to_go(make: Build) -> None:
    r = make([route("m", t("a", "x"))], policy={"first_token_timeout": 0.01})
    fake(r, "a").push(Reply(chunks=[0.05, "slow but sure"]))
    s = await open_stream(r)
    assert text(await collect(s)) == "slow but sure"


async def test_a_stream_cut_after_content_raises_with_the_partial_text(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))])
    fake(r, "a").push(Reply(chunks=["Hel", "lo, wor", StreamInterrupted("connection lost")]))
    s = await open_stream(r)
    got: list[str] = []
    with pytest.raises(StreamInterrupted) as ei:
        async with s:
            async for c in s:
                got.append(c.choices[0].delta.content or "")
    assert "".join(got) == "Hello, wor"
    assert ei.value.partial == "Hello, wor"
    assert ei.value.provider == "a"
    assert isinstance(ei.value.__cause__, StreamInterrupted)
    assert fake(r, "b").calls == []  # the default is to raise, not to continue
    assert [(a.provider, a.outcome, a.error_type) for a in s.attempts] == [("a", "error", "StreamInterrupted")]
    assert not s.finished and r.in_flight("a/x") == 0


async def test_a_stall_after_content_is_an_interruption_never_a_success(make: Build) -> None:
    r = make([route("m", t("a", "x"))], policy={"timeouts": {"idle": 0.05}})
    fake(r, "a").push(Reply(chunks=["The answer ", 5.0, "is 42."]))
    with pytest.raises(StreamInterrupted) as ei:
        await collect(await open_stream(r))
    assert ei.value.partial == "The answer "
    assert isinstance(ei.value.__cause__, IdleTimeout)


async def test_a_stream_that_ends_without_a_finish_reason_is_not_a_success(make: Build) -> None:
    r = make([route("m", t("a", "x"))])
    fake(r, "a").push(Reply(chunks=["Half an ans"], finish=False))
    with pytest.raises(StreamInterrupted) as ei:
        await collect(await open_stream(r))
    assert ei.value.partial == "Half an ans"


async def test_a_malformed_chunk_after_content_is_an_interruption(make: Build) -> None:
    r = make([route("m", t("a", "x"))])
    fake(r, "a").push(Reply(chunks=["Hi", InvalidUpstreamResponse("bad JSON in event")]))
    with pytest.raises(StreamInterrupted) as ei:
        await collect(await open_stream(r))
    assert isinstance(ei.value.__cause__, InvalidUpstreamResponse)


async def test_continue_with_prefill_gives_one_coherent_answer(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))], policy=CONTINUE, options={"b": {"accepts_prefill": True}})
    fake(r, "a").push(Reply(chunks=["The capital ", "of France ", ServerError("upstream died")]))
    fake(r, "b").push(Reply(content="is Paris."))
    s = await open_stream(r)
    chunks = await collect(s)
    assert text(chunks) == "The capital of France is Paris."
    assert len({c.id for c in chunks}) == 1  # the continuation reads as one stream
    assert not any(is_restart(c) for c in chunks)
    sent = fake(r, "b").calls[0].request.messages
    assert (sent[-1].role, sent[-1].content) == ("assistant", "The capital of France ")
    assert s.finished and s.provider == "b"
    assert s.meta is not None and s.meta.warnings[0].setting == "stream_recovery"
    assert [(a.provider, a.outcome) for a in s.attempts] == [("a", "error"), ("b", "success")]


async def test_continue_without_prefill_restarts_with_a_marker(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))], policy=CONTINUE)
    fake(r, "a").push(Reply(chunks=["The capital ", IdleTimeout("quiet")]))
    fake(r, "b").push(Reply(content="Paris is the capital."))
    s = await open_stream(r)
    chunks = await collect(s)
    markers = [i for i, c in enumerate(chunks) if is_restart(c)]
    assert len(markers) == 1 and s.restarts == 1
    info = chunks[markers[0]].extra["polyrelay"]
    assert info == {"event": "restart", "provider": "b", "model": "y", "reason": "IdleTimeout", "discard": 12}
    assert text(chunks[: markers[0]]) == "The capital "
    assert text(chunks[markers[0] + 1 :]) == "Paris is the capital."
    assert s.text == "Paris is the capital."
    assert fake(r, "b").calls[0].request.messages[-1].role == "user"  # no prefill


async def test_tool_call_streams_restart_even_where_prefill_is_accepted(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))], policy=CONTINUE, options={"b": {"accepts_prefill": True}})
    partial_tool = ChatCompletionChunk(
        id="s",
        choices=(ChunkChoice(delta=ChoiceDelta(tool_calls=(ToolCallDelta(index=0, id="call_1", type="function"),))),),
    )
    fake(r, "a").push(Reply(chunks=[partial_tool, ServerError("died")]))
    call = ToolCall(id="call_2", function=FunctionCall(name="lookup", arguments='{"q": "x"}'))
    fake(r, "b").push(Reply(content=None, tool_calls=(call,)))
    chunks = await collect(await open_stream(r))
    assert sum(1 for c in chunks if is_restart(c)) == 1
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_continue_with_nowhere_left_raises_stream_interrupted(make: Build) -> None:
    r = make([route("m", t("a", "x"))], policy=CONTINUE)
    fake(r, "a").push(Reply(chunks=["partial", ServerError("died")]))
    with pytest.raises(StreamInterrupted) as ei:
        await collect(await open_stream(r))
    assert ei.value.partial == "partial"


async def test_leaving_the_context_manager_early_closes_the_upstream(make: Build) -> None:
    r = make([route("m", t("a", "x"))])
    fake(r, "a").push(Reply(content="a long answer " * 20))
    s = await open_stream(r)
    async with s:
        async for _ in s:
            break
        assert r.in_flight("a/x") == 1
    call = fake(r, "a").calls[0]
    assert (call.outcome, call.released) == ("closed", True)
    assert r.in_flight("a/x") == 0
    assert r.circuit("a/x").consecutive_failures == 0
    assert [c async for c in s] == []  # a closed stream yields nothing more


async def test_cancelling_the_consumer_releases_the_connection(make: Build) -> None:
    r = make([route("m", t("a", "x"))], policy={"timeouts": {"idle": None}})
    fake(r, "a").push(Reply(chunks=["first", 3600.0, "never"]))
    s = await open_stream(r)
    got = asyncio.Event()

    async def consume() -> None:
        async with s:
            async for _ in s:
                got.set()

    task = asyncio.create_task(consume())
    await got.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    call = fake(r, "a").calls[0]
    assert call.released and call.outcome in ("cancelled", "closed")
    assert r.in_flight("a/x") == 0


async def test_the_deadline_ends_a_stream_even_if_the_provider_ignores_it(make: Build) -> None:
    r = make([route("m", t("a", "x"))], policy={"deadline": 0.1, "timeouts": {"idle": None}})

    async def deaf(request: ChatRequest, ctx: CallContext) -> AsyncIterator[ChatCompletionChunk]:
        yield ChatCompletionChunk(id="d", choices=(ChunkChoice(delta=ChoiceDelta(content="tick")),))
        await asyncio.sleep(3600)
        yield ChatCompletionChunk(id="d")

    fake(r, "a").stream_chat = deaf  # type: ignore[method-assign,assignment]
    with pytest.raises(StreamInterrupted) as ei:
        await collect(await open_stream(r))
    assert isinstance(ei.value.__cause__, DeadlineExceeded)
    assert ei.value.partial == "tick"


async def test_router_aclose_closes_open_streams(make: Build) -> None:
    r = make([route("m", t("a", "x"))])
    fake(r, "a").push(Reply(content="x" * 100))
    s = await open_stream(r)
    await s.__anext__()
    await r.aclose()
    assert fake(r, "a").calls[0].released
    assert r.in_flight("a/x") == 0
