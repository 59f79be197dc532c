"""Retries on one target: what is retried, how long the router sleeps, and the call's overall deadline."""

from __future__ import annotations

import asyncio

import pytest

from polyrelay.errors import (
    AllTargetsFailed,
    AuthenticationFailed,
    BadRequest,
    ConnectionFailed,
    ContentPolicyViolation,
    DeadlineExceeded,
    InvalidUpstreamResponse,
    NotFound,
    Overloaded,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    ServerError,
)
from polyrelay.testing._fake import Reply, hang

from .conftest import USER, Build, FakeClock, SleepRecorder, fake, route, t

FAST_RETRY = {"retry": {"backoff_initial": 0.5, "backoff_max": 4.0}}


async def test_retry_after_is_honoured_exactly(make: Build, sleeps: SleepRecorder) -> None:
    r = make([route("m", t("a", "x"))])
    fake(r, "a").push(RateLimited("slow down", status=429, retry_after=1.25), Overloaded("busy", retry_after=0.3))
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert sleeps.values == [1.25, 0.3]
    assert len(fake(r, "a").calls) == 3
    assert resp.meta is not None
    assert [a.outcome for a in resp.meta.attempts] == ["error", "error", "success"]
    assert [a.error_type for a in resp.meta.attempts[:2]] == ["RateLimited", "Overloaded"]


async def test_retry_after_beyond_the_maximum_fails_over_without_sleeping(make: Build, sleeps: SleepRecorder) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))], policy={"retry": {"max_retry_after": 10}})
    fake(r, "a").push(RateLimited("come back in a minute", status=429, retry_after=60))
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert sleeps.values == []
    assert resp.meta is not None and resp.meta.provider == "b"
    assert len(fake(r, "a").calls) == 1


async def test_backoff_is_exponential_with_full_jitter_and_a_cap(make: Build, sleeps: SleepRecorder) -> None:
    r = make(
        [route("m", t("a", "x"))],
        policy={
            "retry": {"max_attempts": 6, "backoff_initial": 1.0, "backoff_multiplier": 2.0, "backoff_max": 3.0},
            "circuit": {"enabled": False},
        },
    )
    fake(r, "a").default = ServerError("boom", status=500)
    with pytest.raises(ServerError):
        await r.chat.completions.create(model="m", messages=USER)
    assert len(fake(r, "a").calls) == 6
    assert len(sleeps.values) == 5
    for i, s in enumerate(sleeps.values):
        assert 0.0 <= s <= min(3.0, 1.0 * 2**i)
    assert len(set(sleeps.values)) == 5  # jittered, not a fixed ladder


async def test_a_rate_limit_without_a_delay_backs_off_at_least_the_floor(make: Build, sleeps: SleepRecorder) -> None:
    policy = {"retry": {"max_attempts": 4, "backoff_initial": 0.01, "backoff_max": 8.0}, "circuit": {"enabled": False}}
    r = make([route("m", t("a", "x"))], policy=policy)
    fake(r, "a").default = RateLimited("slow down", status=429)
    with pytest.raises(RateLimited):
        await r.chat.completions.create(model="m", messages=USER)
    assert len(sleeps.values) == 3
    assert [s >= floor for s, floor in zip(sleeps.values, (0.5, 1.0, 2.0), strict=True)] == [True] * 3
    # Other retryable errors keep the plain jittered backoff, and the floor can be switched off.
    sleeps.values.clear()
    r2 = make([route("m", t("a", "x"))], policy={**policy, "retry": {**policy["retry"], "rate_limit_min_wait": 0}})
    fake(r2, "a").default = RateLimited("slow down", status=429)
    with pytest.raises(RateLimited):
        await r2.chat.completions.create(model="m", messages=USER)
    assert len(sleeps.values) == 3 and all(s <= 0.04 for s in sleeps.values)


async def test_bad_request_is_neither_retried_nor_failed_over(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))])
    fake(r, "a").push(BadRequest("messages[0].content is too weird", status=400, retryable=True))
    with pytest.raises(BadRequest):
        await r.chat.completions.create(model="m", messages=USER)
    assert len(fake(r, "a").calls) == 1
    assert fake(r, "b").calls == []


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationFailed("bad key", status=401),
        PermissionDenied("region", status=403),
        NotFound("no such model", status=404),
        QuotaExceeded("insufficient_quota", status=429),
        ServerError("permanent", status=500, retryable=False),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_errors_retrying_cannot_fix_fail_over_at_once(
    make: Build, sleeps: SleepRecorder, error: Exception
) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))])
    fake(r, "a").push(error)
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert resp.meta is not None and resp.meta.provider == "b"
    assert len(fake(r, "a").calls) == 1
    assert sleeps.values == []


async def test_x_should_retry_cannot_make_an_auth_error_retryable(make: Build) -> None:
    r = make([route("m", t("a", "x"))])
    fake(r, "a").push(AuthenticationFailed("bad key", status=401, retryable=True))
    with pytest.raises(AuthenticationFailed):
        await r.chat.completions.create(model="m", messages=USER)
    assert len(fake(r, "a").calls) == 1


async def test_content_policy_rejection_is_raised_at_once_with_its_reason(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"), fallbacks=("n",)), route("n", t("c", "z"))])
    fake(r, "a").push(ContentPolicyViolation("flagged: violence", status=400, code="content_policy_violation"))
    with pytest.raises(ContentPolicyViolation) as ei:
        await r.chat.completions.create(model="m", messages=USER)
    assert "flagged: violence" in str(ei.value)
    assert len(fake(r, "a").calls) == 1
    assert fake(r, "b").calls == [] and fake(r, "c").calls == []


async def test_timeout_without_response_fails_over_without_retry(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))], policy={"timeouts": {"first_byte": 0.05}})
    fake(r, "a").default = hang()
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert resp.meta is not None and resp.meta.provider == "b"
    assert len(fake(r, "a").calls) == 1
    assert resp.meta.attempts[0].error_type == "FirstByteTimeout"


async def test_retry_on_timeout_retries_the_same_target(make: Build) -> None:
    r = make(
        [route("m", t("a", "x"), t("b", "y"))],
        policy={"timeouts": {"first_byte": 0.05}, "retry": {"retry_on_timeout": True}},
    )
    fake(r, "a").push(hang(), Reply(content="second time lucky"))
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert resp.meta is not None and resp.meta.provider == "a"
    assert resp.choices[0].message.content == "second time lucky"


async def test_connection_failure_fails_over_when_another_target_exists(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))])
    fake(r, "a").push(ConnectionFailed("connection refused"))
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert resp.meta is not None and resp.meta.provider == "b"
    assert len(fake(r, "a").calls) == 1


async def test_connection_failure_is_retried_on_the_last_target(make: Build, sleeps: SleepRecorder) -> None:
    r = make([route("m", t("a", "x"))])
    fake(r, "a").push(ConnectionFailed("connection reset by peer"))
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert resp.meta is not None and resp.meta.provider == "a"
    assert len(fake(r, "a").calls) == 2
    assert len(sleeps.values) == 1


async def test_unparsable_answer_is_retried(make: Build) -> None:
    r = make([route("m", t("a", "x"))])
    fake(r, "a").push(InvalidUpstreamResponse("not JSON"))
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert len(fake(r, "a").calls) == 2
    assert resp.meta is not None and [a.outcome for a in resp.meta.attempts] == ["error", "success"]


async def test_sleeps_never_cross_the_deadline(make: Build, sleeps: SleepRecorder, clock: FakeClock) -> None:
    r = make(
        [route("m", t("a", "x"))],
        policy={"deadline": 10, "retry": {"max_attempts": 10, "max_retry_after": 30}},
        clock=clock,
    )
    fake(r, "a").default = RateLimited("slow down", status=429, retry_after=4)
    with pytest.raises(RateLimited):
        await r.chat.completions.create(model="m", messages=USER)
    assert sleeps.values == [4, 4]  # a third sleep would end at 12 > 10
    assert len(fake(r, "a").calls) == 3


async def test_a_sleep_that_does_not_fit_fails_over_instead(
    make: Build, sleeps: SleepRecorder, clock: FakeClock
) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))], policy={"deadline": 5}, clock=clock)
    fake(r, "a").push(RateLimited("slow down", status=429, retry_after=6))
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert sleeps.values == []
    assert resp.meta is not None and resp.meta.provider == "b"


async def test_the_deadline_bounds_a_hanging_attempt_and_ends_the_call(make: Build) -> None:
    r = make(
        [route("m", t("a", "x"), fallbacks=("n",)), route("n", t("b", "y"))],
        policy={"deadline": 0.1, "timeouts": {"first_byte": None}},
    )
    fake(r, "a").default = hang()
    loop = asyncio.get_running_loop()
    with pytest.raises(DeadlineExceeded):
        await r.chat.completions.create(model="m", messages=USER)
    call = fake(r, "a").calls[0]
    assert call.ctx.deadline is not None and call.ctx.deadline <= call.started_at + 0.1
    assert loop.time() >= call.ctx.deadline  # it ended because the deadline came, not earlier
    assert fake(r, "b").calls == []  # no budget left to fail over
    assert call.released


async def test_the_deadline_is_enforced_even_if_a_provider_ignores_it(make: Build) -> None:
    r = make([route("m", t("a", "x"))], policy={"deadline": 0.05})

    async def deaf(request: object, ctx: object) -> Reply:
        await asyncio.sleep(3600)  # ignores ctx.deadline
        raise AssertionError("unreachable")

    fake(r, "a").chat = deaf  # type: ignore[assignment,method-assign]
    with pytest.raises(DeadlineExceeded):
        await r.chat.completions.create(model="m", messages=USER)


async def test_retries_stop_once_the_circuit_opens(make: Build) -> None:
    r = make(
        [route("m", t("a", "x"), t("b", "y"))],
        policy={"retry": {"max_attempts": 5}, "circuit": {"consecutive_failures": 2}},
    )
    fake(r, "a").default = ServerError("boom", status=500)
    resp = await r.chat.completions.create(model="m", messages=USER)
    assert len(fake(r, "a").calls) == 2
    assert resp.meta is not None and resp.meta.provider == "b"


async def test_every_attempt_error_is_kept(make: Build) -> None:
    r = make([route("m", t("a", "x"), t("b", "y"))], policy={"retry": {"max_attempts": 2}})
    fake(r, "a").default = ServerError("a down", status=500)
    fake(r, "b").default = Overloaded("b busy", status=503)
    with pytest.raises(AllTargetsFailed) as ei:
        await r.chat.completions.create(model="m", messages=USER)
    assert [type(e).__name__ for e in ei.value.errors] == ["ServerError"] * 2 + ["Overloaded"] * 2
    assert isinstance(ei.value.last, Overloaded) and ei.value.last.message == "b busy"
    assert "a/x: ServerError 500 x2; b/y: Overloaded 503 x2" in str(ei.value)
    assert isinstance(ei.value.__cause__, Overloaded)
