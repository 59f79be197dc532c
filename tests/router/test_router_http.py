"""The router over real HTTP on 127.0.0.1: the OpenAI provider against simulated OpenAI upstreams with faults.

Sleeps between retries go through the injected recorder (their values are what is checked, never wall-clock time);
timeouts are short real ones (0.3 s where a scenario is about that timeout, 2 s elsewhere).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest

from polyrelay.errors import (
    ContentPolicyViolation,
    DeadlineExceeded,
    FirstByteTimeout,
    IdleTimeout,
    InvalidUpstreamResponse,
    Secret,
    StreamInterrupted,
)
from polyrelay.policy import Policy
from polyrelay.provider import ProviderSettings
from polyrelay.registry import ProviderRegistry
from polyrelay.router import Router
from polyrelay.routes import ModelRoute
from polyrelay.stream import ChatStream, is_restart
from polyrelay.testing._faults import Fault
from polyrelay.testing._openai import OpenAIUpstream, ScriptedReply, openai_error
from polyrelay.transport import PoolLimits
from polyrelay.types.completion import ChatCompletionChunk

from .conftest import USER, FakeClock, SleepRecorder, route, t, until

polyrelay_openai = pytest.importorskip("polyrelay_openai")

ANSWER = "The quick brown fox jumps over the lazy dog."
# Real timeouts, short enough for a fast suite and long enough for a loaded machine; the scenarios about timeouts
# shorten the one they exercise (SHORT). A generous deadline so every call ends inside it.
SHORT = 0.3
POLICY: Mapping[str, Any] = {
    "timeouts": {"connect": 2.0, "first_byte": 2.0, "idle": 2.0, "total": 8.0},
    "deadline": 5.0,
    "retry": {"max_attempts": 3, "backoff_initial": 0.1, "backoff_max": 0.4},
}
# A guard so a broken router fails the test instead of hanging it (not a timing assertion).
GUARD = 10.0


class Env:
    """Two simulated OpenAI upstreams (``primary`` and ``backup``) and a router builder over them."""

    def __init__(self, primary: OpenAIUpstream, backup: OpenAIUpstream, sleeps: SleepRecorder) -> None:
        self.primary, self.backup, self.sleeps = primary, backup, sleeps
        self.routers: list[Router] = []

    def router(
        self,
        models: Sequence[ModelRoute] | None = None,
        *,
        policy: Mapping[str, Any] | None = None,
        prefill: bool = False,
        **kw: Any,
    ) -> Router:
        def settings(name: str, upstream: OpenAIUpstream, options: Mapping[str, Any]) -> ProviderSettings:
            return ProviderSettings(
                name=name, type="openai", base_url=upstream.base_url, api_key=Secret("test-key"), options=options
            )

        backup_opts = {"quirks": {"accepts_prefill": True}} if prefill else {}
        if models is None:
            models = [route("main", t("p", "gpt-4o-mini"), fallbacks=("spare",)), route("spare", t("q", "gpt-4o"))]
        kw.setdefault("sleep", self.sleeps)
        r = Router(
            providers={"p": settings("p", self.primary, {}), "q": settings("q", self.backup, backup_opts)},
            models=models,
            policy=Policy().merged(POLICY).merged(policy),
            registry=ProviderRegistry([polyrelay_openai.SPEC], entry_points=False),
            **kw,
        )
        self.routers.append(r)
        return r


@pytest.fixture
async def env(sleeps: SleepRecorder) -> AsyncIterator[Env]:
    async with (
        OpenAIUpstream(reply=ScriptedReply(content=ANSWER)) as primary,
        OpenAIUpstream(reply=ScriptedReply(content="Backup here.")) as backup,
    ):
        e = Env(primary, backup, sleeps)
        yield e
        for r in e.routers:
            await r.aclose()


async def ask(r: Router, model: str = "main", **kw: Any) -> Any:
    async with asyncio.timeout(GUARD):
        return await r.chat.completions.create(model=model, messages=USER, **kw)


async def read_stream(r: Router, model: str = "main", **kw: Any) -> tuple[ChatStream, list[ChatCompletionChunk]]:
    async with asyncio.timeout(GUARD):
        s = await r.chat.completions.create(model=model, messages=USER, stream=True, **kw)
        chunks = []
        async with s:
            async for c in s:
                chunks.append(c)
    return s, chunks


def text(chunks: Sequence[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def chat_requests(upstream: OpenAIUpstream) -> int:
    return sum(1 for r in upstream.requests if r.path == "/v1/chat/completions")


# -- retries -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "expected_sleep"),
    [(Fault.status_code(429, retry_after=2), 2.0), (Fault.status_code(429, retry_after_ms=1500), 1.5)],
    ids=["retry-after", "retry-after-ms"],
)
async def test_429_with_retry_after_waits_what_the_upstream_asked(
    env: Env, fault: Fault, expected_sleep: float
) -> None:
    env.primary.add_fault(fault)
    resp = await ask(env.router())
    assert env.sleeps.values == [expected_sleep]
    assert chat_requests(env.primary) == 2 and chat_requests(env.backup) == 0
    assert resp.choices[0].message.content == ANSWER
    assert resp.meta.attempts[0].status == 429


async def test_429_persistent_without_retry_after_is_bounded_then_fails_over(env: Env) -> None:
    env.primary.add_fault(Fault.status_code(429), times=None)
    resp = await ask(env.router())
    assert chat_requests(env.primary) == 3  # max_attempts
    # A 429 that names no delay waits at least rate_limit_min_wait (0.5 s), doubling: the second retry comes at
    # >= 1.5 s, so the rate-limited target sees at most two requests in its first second.
    assert len(env.sleeps.values) == 2
    assert env.sleeps.values[0] >= 0.5 and env.sleeps.values[1] >= 1.0
    assert env.sleeps.values[0] + env.sleeps.values[1] >= 1.0
    assert (resp.meta.provider, resp.meta.model, resp.meta.requested_model) == ("q", "gpt-4o", "main")
    assert resp.choices[0].message.content == "Backup here."
    assert resp.usage is not None and resp.usage.completion_tokens > 0  # the fallback's own usage
    assert [a.error_type for a in resp.meta.attempts] == ["RateLimited"] * 3 + [None]


async def test_500_once_then_healthy_is_retried_on_the_same_target(env: Env) -> None:
    env.primary.add_fault(Fault.status_code(500))
    resp = await ask(env.router())
    assert chat_requests(env.primary) == 2 and chat_requests(env.backup) == 0
    assert resp.meta.provider == "p" and len(env.sleeps.values) == 1


async def test_503_persistent_fails_over_within_the_budget(env: Env) -> None:
    env.primary.add_fault(Fault.status_code(503), times=None)
    resp = await ask(env.router())
    assert resp.meta.provider == "q"
    assert chat_requests(env.primary) == 3
    assert [a.status for a in resp.meta.attempts[:3]] == [503] * 3


async def test_a_billing_429_is_not_retried(env: Env) -> None:
    from polyrelay.testing._openai import INSUFFICIENT_QUOTA_BODY

    env.primary.add_fault(Fault.status_code(429, body=dict(INSUFFICIENT_QUOTA_BODY)), times=None)
    resp = await ask(env.router())
    assert chat_requests(env.primary) == 1 and resp.meta.provider == "q"
    assert resp.meta.attempts[0].error_type == "QuotaExceeded"


# -- transport failures ----------------------------------------------------------------------------------------------


async def test_connection_reset_before_headers_fails_over_at_once(env: Env) -> None:
    env.primary.add_fault(Fault.reset())
    resp = await ask(env.router())
    assert resp.meta.provider == "q"
    assert chat_requests(env.primary) == 1
    assert resp.meta.attempts[0].error_type == "ConnectionFailed"


async def test_connection_reset_on_the_only_target_is_retried(env: Env) -> None:
    env.primary.add_fault(Fault.reset())
    resp = await ask(env.router([route("solo", t("p", "gpt-4o-mini"))]), model="solo")
    assert resp.meta.provider == "p" and chat_requests(env.primary) == 2


async def test_connection_refused_fails_over_at_once(env: Env) -> None:
    gone = OpenAIUpstream()
    await gone.start()
    dead_url = gone.base_url
    await gone.close()  # nothing listens on that port any more
    r = Router(
        providers={
            "p": ProviderSettings(name="p", type="openai", base_url=dead_url, api_key=Secret("test-key")),
            "q": ProviderSettings(name="q", type="openai", base_url=env.backup.base_url, api_key=Secret("test-key")),
        },
        models=[route("main", t("p", "gpt-4o-mini"), t("q", "gpt-4o"))],
        policy=Policy().merged(POLICY),
        registry=ProviderRegistry([polyrelay_openai.SPEC], entry_points=False),
        sleep=env.sleeps,
    )
    env.routers.append(r)
    resp = await ask(r)
    assert resp.meta.provider == "q"
    assert [a.error_type for a in resp.meta.attempts] == ["ConnectionFailed", None]
    assert env.sleeps.values == []


async def test_a_wrong_key_fails_over_without_retry(env: Env) -> None:
    env.primary.api_key = "another-key"
    resp = await ask(env.router())
    assert resp.meta.provider == "q"
    assert chat_requests(env.primary) == 1
    assert resp.meta.attempts[0].error_type == "AuthenticationFailed"
    assert "test-key" not in (resp.meta.attempts[0].error or "")


async def test_no_response_fails_over_after_the_first_timeout(env: Env) -> None:
    env.primary.add_fault(Fault.no_response(), times=None)
    resp = await ask(env.router(policy={"timeouts": {"first_byte": SHORT}}))
    assert resp.meta.provider == "q"
    assert chat_requests(env.primary) == 1  # not retried after a timeout with no response
    assert resp.meta.attempts[0].error_type == "FirstByteTimeout"


async def test_no_response_on_the_only_target_ends_at_its_deadline(env: Env) -> None:
    env.primary.add_fault(Fault.no_response(), times=None)
    r = env.router([route("solo", t("p", "gpt-4o-mini"))], policy={"timeouts": {"first_byte": None}, "deadline": SHORT})
    with pytest.raises(DeadlineExceeded):
        await ask(r, model="solo")
    r2 = env.router([route("solo", t("p", "gpt-4o-mini"))], policy={"timeouts": {"first_byte": SHORT}})
    with pytest.raises(FirstByteTimeout):
        await ask(r2, model="solo")


async def test_meta_carries_the_rate_limit_and_request_id_headers_only(env: Env) -> None:
    resp = await ask(env.router())
    assert resp.meta is not None
    headers = dict(resp.meta.headers)
    assert resp.meta.headers["x-ratelimit-limit-requests"].isdigit()
    assert resp.meta.headers["x-request-id"] == resp.meta.request_id  # case-insensitive, like the response's
    assert "X-Request-ID" in headers
    assert "openai-version" in headers
    assert not any(k.lower() in ("content-type", "content-length", "date", "server") for k in headers)
    assert resp.meta.headers == headers and len(resp.meta.headers) == len(headers)
    assert repr(headers) in repr(resp.meta.headers)


async def test_the_transport_ends_a_hanging_attempt_at_the_calls_deadline(env: Env) -> None:
    """The OpenAI provider declares ``enforces_deadline``: the router arms no timer of its own, and the transport's
    deadline still ends the call as a DeadlineExceeded, with no budget left to fail over."""
    assert polyrelay_openai._provider.OpenAICompatProvider.enforces_deadline is True
    env.primary.add_fault(Fault.no_response(), times=None)
    r = env.router(policy={"timeouts": {"first_byte": None}, "deadline": SHORT})
    with pytest.raises(DeadlineExceeded):
        await ask(r)
    assert chat_requests(env.primary) == 1
    assert chat_requests(env.backup) == 0


# -- streams -----------------------------------------------------------------------------------------------------------


async def test_slow_first_token_fails_over_at_the_first_token_timeout(env: Env) -> None:
    env.primary.add_fault(Fault.slow_first_token(5.0))
    s, chunks = await read_stream(env.router(policy={"first_token_timeout": SHORT}))
    assert text(chunks) == "Backup here."
    assert s.provider == "q"
    assert s.attempts[0].error_type == "FirstTokenTimeout"


async def test_stream_cut_mid_answer_is_never_a_success(env: Env) -> None:
    env.primary.add_fault(Fault.truncate(after_chunks=2))
    got: list[ChatCompletionChunk] = []
    with pytest.raises(StreamInterrupted) as ei:
        async with asyncio.timeout(GUARD):
            s = await env.router().chat.completions.create(model="main", messages=USER, stream=True)
            async with s:
                async for c in s:
                    got.append(c)
    assert ei.value.partial == text(got) == ANSWER[:16]
    assert ei.value.provider == "p"
    assert chat_requests(env.backup) == 0


@pytest.mark.parametrize(
    "fault",
    [Fault.truncate(after_chunks=2), Fault.stall(after_chunks=2, delay=5.0), Fault.malformed(after_chunks=2)],
    ids=["cut", "stall", "malformed"],
)
async def test_with_continue_the_caller_gets_the_whole_answer(env: Env, fault: Fault) -> None:
    env.primary.add_fault(fault)
    rest = ANSWER[16:]
    env.backup.push_reply(ScriptedReply(content=rest))
    policy = {"stream_recovery": "continue", "timeouts": {"idle": SHORT}}
    s, chunks = await read_stream(env.router(policy=policy, prefill=True))
    assert text(chunks) == ANSWER
    assert not any(is_restart(c) for c in chunks)
    assert s.finished and s.provider == "q"
    sent = env.backup.requests[-1].json["messages"]
    assert sent[-1] == {"role": "assistant", "content": ANSWER[:16]}


async def test_stall_without_continue_raises_with_the_partial_text(env: Env) -> None:
    env.primary.add_fault(Fault.stall(after_chunks=1, delay=5.0))
    with pytest.raises(StreamInterrupted) as ei:
        await read_stream(env.router(policy={"timeouts": {"idle": SHORT}}))
    assert ei.value.partial == ANSWER[:8]
    assert isinstance(ei.value.__cause__, IdleTimeout)


async def test_continue_without_prefill_support_restarts_with_a_marker(env: Env) -> None:
    env.primary.add_fault(Fault.truncate(after_chunks=2))
    _, chunks = await read_stream(env.router(policy={"stream_recovery": "continue"}))
    marker = next(i for i, c in enumerate(chunks) if is_restart(c))
    assert text(chunks[:marker]) == ANSWER[:16]
    assert text(chunks[marker + 1 :]) == "Backup here."
    assert env.backup.requests[-1].json["messages"][-1]["role"] == "user"


async def test_a_malformed_first_chunk_is_retried_before_anything_is_yielded(env: Env) -> None:
    env.primary.add_fault(Fault.malformed(after_chunks=0))
    s, chunks = await read_stream(env.router())
    assert text(chunks) == ANSWER
    assert [a.error_type for a in s.attempts] == ["InvalidUpstreamResponse", None]
    assert chat_requests(env.primary) == 2


async def test_a_malformed_chunk_mid_answer_is_an_interruption(env: Env) -> None:
    env.primary.add_fault(Fault.malformed(after_chunks=3))
    with pytest.raises(StreamInterrupted) as ei:
        await read_stream(env.router())
    assert isinstance(ei.value.__cause__, InvalidUpstreamResponse)
    assert ei.value.partial == ANSWER[:24]


async def test_a_stream_without_done_is_finalised_at_once_with_usage(env: Env) -> None:
    env.primary.add_fault(Fault.no_done())
    # A long idle timeout: if anything waited for [DONE], the guard would fail this test.
    r = env.router(policy={"timeouts": {"idle": 60.0}, "deadline": 120.0})
    s, chunks = await read_stream(r, stream_options={"include_usage": True})
    assert text(chunks) == ANSWER
    assert s.finished and s.usage is not None and s.usage.total_tokens > 0
    assert [a.outcome for a in s.attempts] == ["success"]


# -- context window, content policy ------------------------------------------------------------------------------------


async def test_context_length_exceeded_goes_to_the_context_fallback_without_retry(sleeps: SleepRecorder) -> None:
    async with (
        OpenAIUpstream(context_window=20) as small,
        OpenAIUpstream(reply=ScriptedReply(content="I read it all.")) as large,
    ):
        e = Env(small, large, sleeps)
        r = e.router(
            [
                route("gpt", t("p", "gpt-4o-mini"), context_window_fallbacks=("gpt-long",)),
                route("gpt-long", t("q", "gpt-4o")),
            ]
        )
        try:
            async with asyncio.timeout(GUARD):
                resp = await r.chat.completions.create(
                    model="gpt", messages=[{"role": "user", "content": "long " * 100}]
                )
        finally:
            await r.aclose()
    assert chat_requests(small) == 1
    assert resp.meta is not None
    assert resp.meta.provider == "q" and resp.choices[0].message.content == "I read it all."
    assert resp.meta.attempts[0].error_type == "ContextWindowExceeded"
    assert sleeps.values == []


async def test_content_policy_rejection_is_not_retried_and_keeps_its_reason(env: Env) -> None:
    reason = "Your request was rejected as a result of our safety system."
    env.primary.add_fault(Fault.status_code(400, body=openai_error(reason, code="content_policy_violation")))
    with pytest.raises(ContentPolicyViolation) as ei:
        await ask(env.router())
    assert reason in str(ei.value)
    assert chat_requests(env.primary) == 1 and chat_requests(env.backup) == 0


# -- circuit breaking -------------------------------------------------------------------------------------------------


async def test_primary_down_then_recovering(env: Env, clock: FakeClock) -> None:
    r = env.router(
        policy={"retry": {"max_attempts": 1}, "circuit": {"consecutive_failures": 2, "cooldown": 30}}, clock=clock
    )
    env.primary.set_down(True)
    served = [(await ask(r)).meta.provider for _ in range(5)]
    assert served == ["q"] * 5
    assert chat_requests(env.primary) == 2  # opened after 2 failures; not probed on every request
    env.primary.set_down(False)
    clock.advance(15)
    assert (await ask(r)).meta.provider == "q"  # still cooling down
    clock.advance(15)
    assert [(await ask(r)).meta.provider for _ in range(3)] == ["p", "p", "p"]
    assert chat_requests(env.primary) == 5
    assert r.circuit("p/gpt-4o-mini").state == "closed"


async def test_rate_limits_count_against_the_circuit(env: Env, clock: FakeClock) -> None:
    r = env.router(policy={"circuit": {"consecutive_failures": 3}}, clock=clock)
    env.primary.add_fault(Fault.status_code(429), times=3)
    resp = await ask(r)
    assert resp.meta.provider == "q"
    assert r.circuit("p/gpt-4o-mini").state == "open"
    assert {a.error_type for a in resp.meta.attempts[:3]} == {"RateLimited"}


# -- connections are released ----------------------------------------------------------------------------------------


async def test_cancelling_a_call_releases_its_connection(env: Env) -> None:
    env.primary.add_fault(Fault.no_response())
    r = env.router(
        [route("solo", t("p", "gpt-4o-mini"))],
        limits=PoolLimits(max_connections=1),
        policy={"timeouts": {"first_byte": None}},
    )
    task = asyncio.create_task(r.chat.completions.create(model="solo", messages=USER))
    async with asyncio.timeout(GUARD):
        await until(lambda: chat_requests(env.primary) > 0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # With a pool of one connection, this call can only go out if the cancelled one gave its connection back.
    resp = await ask(r, model="solo")
    assert resp.choices[0].message.content == ANSWER
    assert r.in_flight("p/gpt-4o-mini") == 0


async def test_leaving_a_stream_early_closes_its_connection(env: Env) -> None:
    env.primary.chunk_delay = 0.02
    r = env.router([route("solo", t("p", "gpt-4o-mini"))], limits=PoolLimits(max_connections=1))
    async with asyncio.timeout(GUARD):
        s = await r.chat.completions.create(model="solo", messages=USER, stream=True)
        async with s:
            async for c in s:
                if c.choices and c.choices[0].delta.content:
                    break
    assert r.in_flight("p/gpt-4o-mini") == 0
    env.primary.chunk_delay = 0.0
    resp = await ask(r, model="solo")  # the one pooled connection is free again
    assert resp.choices[0].message.content == ANSWER
