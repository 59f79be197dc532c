"""Hooks for metrics and the log lines: what is reported, and that secrets and bodies never are."""

from __future__ import annotations

import logging

import pytest

from polyrelay.errors import AuthenticationFailed, RateLimited, Secret, ServerError
from polyrelay.hooks import AttemptEvent, CircuitEvent, FailoverEvent, RetryEvent, RouterHooks
from polyrelay.provider import ProviderSettings
from polyrelay.registry import ProviderRegistry
from polyrelay.router import Router
from polyrelay.testing._fake import Reply, fake_spec

from .conftest import USER, Build, SleepRecorder, fake, route, t

KEY = "sk-live-0123456789abcdefSECRET"


class Recorder(RouterHooks):
    def __init__(self) -> None:
        self.events: list[object] = []

    def on_attempt(self, event: AttemptEvent) -> None:
        self.events.append(event)

    def on_retry(self, event: RetryEvent) -> None:
        self.events.append(event)

    def on_failover(self, event: FailoverEvent) -> None:
        self.events.append(event)

    def on_circuit_change(self, event: CircuitEvent) -> None:
        self.events.append(event)


async def test_hooks_see_attempts_retries_failovers_and_circuit_changes(make: Build) -> None:
    rec = Recorder()
    r = make(
        [route("m", t("a", "x"), t("b", "y"))],
        policy={"retry": {"max_attempts": 2}, "circuit": {"consecutive_failures": 2}},
        hooks=[rec],
    )
    fake(r, "a").default = RateLimited("slow", status=429, retry_after=0.5)
    await r.chat.completions.create(model="m", messages=USER)
    kinds = [type(e).__name__ for e in rec.events]
    assert kinds == ["AttemptEvent", "RetryEvent", "AttemptEvent", "CircuitEvent", "FailoverEvent", "AttemptEvent"]
    retry = rec.events[1]
    assert isinstance(retry, RetryEvent)
    assert (retry.provider, retry.next_attempt, retry.sleep, retry.retry_after) == ("a", 2, 0.5, 0.5)
    failover = rec.events[4]
    assert isinstance(failover, FailoverEvent) and failover.reason == "retries_exhausted"
    last = rec.events[-1]
    assert isinstance(last, AttemptEvent) and last.attempt.outcome == "success" and last.attempt.provider == "b"
    rec.events.clear()
    await r.chat.completions.create(model="m", messages=USER)  # a is open now: skipped
    assert [type(e).__name__ for e in rec.events] == ["AttemptEvent", "FailoverEvent", "AttemptEvent"]
    skipped = rec.events[1]
    assert isinstance(skipped, FailoverEvent) and skipped.reason == "circuit_open" and skipped.error is None


async def test_a_stream_recovery_is_reported_as_a_failover(make: Build) -> None:
    rec = Recorder()
    r = make([route("m", t("a", "x"), t("b", "y"))], policy={"stream_recovery": "continue"}, hooks=[rec])
    fake(r, "a").push(Reply(chunks=["partial ", ServerError("died")]))
    s = await r.chat.completions.create(model="m", messages=USER, stream=True)
    async with s:
        async for _ in s:
            pass
    reasons = [e.reason for e in rec.events if isinstance(e, FailoverEvent)]
    assert reasons == ["stream_interrupted"]


async def test_a_failing_hook_never_fails_the_call(make: Build, caplog: pytest.LogCaptureFixture) -> None:
    class Broken(RouterHooks):
        def on_attempt(self, event: AttemptEvent) -> None:
            raise RuntimeError("metrics backend down")

    r = make([route("m", t("a", "x"))], hooks=[Broken()])
    with caplog.at_level(logging.ERROR, logger="polyrelay"):
        resp = await r.chat.completions.create(model="m", messages=USER)
    assert resp.choices[0].message.content
    assert "failed in on_attempt" in caplog.text


async def test_one_log_line_per_attempt_without_secrets_or_bodies(
    caplog: pytest.LogCaptureFixture, sleeps: SleepRecorder
) -> None:
    settings = {
        "a": ProviderSettings(name="a", type="fake", api_key=Secret(KEY)),
        "b": ProviderSettings(name="b", type="fake", headers={"X-Api-Token": "tok-ABCDEFGHIJKLMNOP"}),
    }
    async with Router(
        providers=settings,
        models=[route("m", t("a", "x"), t("b", "y"))],
        registry=ProviderRegistry([fake_spec()], entry_points=False),
        sleep=sleeps,
    ) as r:
        # An upstream that echoes the key back in its error message.
        fake(r, "a").push(AuthenticationFailed(f"Incorrect API key provided: {KEY}", status=401))
        fake(r, "b").push(ServerError("oops tok-ABCDEFGHIJKLMNOP", status=500))
        with caplog.at_level(logging.DEBUG, logger="polyrelay"):
            resp = await r.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "my secret prompt"}]
            )
    lines = [rec for rec in caplog.records if rec.getMessage().startswith("attempt")]
    assert [rec.levelname for rec in lines] == ["WARNING", "WARNING", "DEBUG"]
    assert all(rec.name == "polyrelay.router" for rec in lines)
    assert KEY not in caplog.text and "ABCDEFGHIJKLMNOP" not in caplog.text
    assert "my secret prompt" not in caplog.text
    assert resp.meta is not None
    assert all(KEY not in (a.error or "") for a in resp.meta.attempts)
    assert "provider=a model=x" in lines[0].getMessage() and "status=401" in lines[0].getMessage()
