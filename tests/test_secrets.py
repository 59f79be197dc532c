"""The API key never leaks: not in exception text (messages, bodies, reprs, chained causes, tracebacks), not in the
``polyrelay`` logger's output at DEBUG, not in reprs of the router, settings, providers and response metadata, and
not in the CLI's output.

Every error path is driven for real (simulated upstreams on 127.0.0.1) with a recognisable fake key. Upstreams that
echo the key back in full (some relays do, in error messages, codes and in-stream errors) are included: the client
must scrub what it re-raises. Besides the key itself, its first 12 and last 8 characters must not appear either.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import traceback
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from polyrelay.errors import (
    AllTargetsFailed,
    AuthenticationFailed,
    ConfigError,
    ConnectionFailed,
    InvalidUpstreamResponse,
    PermissionDenied,
    RateLimited,
    Secret,
    ServerError,
    StreamInterrupted,
    UpstreamTimeout,
)
from polyrelay.router import Router
from polyrelay.testing import Fault, OpenAIUpstream, ScriptedReply

KEY = "sk-FAKE-SECRET-0123456789abcdef"
FORBIDDEN = (KEY, KEY[:12], KEY[-8:])
USER = [{"role": "user", "content": "Say hello."}]
# Fast failure: one attempt per target, short timeouts, no circuit breaking in the way.
FAST_POLICY: dict[str, Any] = {
    "retry": {"max_attempts": 1},
    "circuit": {"enabled": False},
    "timeouts": {"connect": 2, "first_byte": 0.3, "idle": 0.3, "total": 5},
    "deadline": 5,
}
ECHO = f"Incorrect API key provided: {KEY}. Your key {KEY} is not valid."


def assert_clean(text: str, what: str) -> None:
    for fragment in FORBIDDEN:
        assert fragment not in text, f"{what} contains {fragment!r}:\n{text}"


def exception_text(exc: BaseException) -> str:
    """Everything a caller might print or log about ``exc``: the formatted traceback with its chain, and the
    str/repr/attributes of every exception in it (AllTargetsFailed's errors included)."""
    parts = ["".join(traceback.format_exception(exc))]
    stack: list[BaseException] = [exc]
    seen: set[int] = set()
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        parts += [str(e), repr(e), repr(e.args)]
        for attr in ("message", "body", "headers", "code", "partial", "request_id", "path", "key"):
            value = getattr(e, attr, None)
            if value is not None:
                parts.append(json.dumps(value, default=repr) if not isinstance(value, str) else value)
        if isinstance(e, AllTargetsFailed):
            stack.extend(e.errors)
        if isinstance(e, BaseExceptionGroup):
            stack.extend(e.exceptions)
        for linked in (e.__cause__, e.__context__):
            if linked is not None:
                stack.append(linked)
    return "\n".join(parts)


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(r) for r in caplog.records)


def config(*bases: str, policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """Providers p0, p1... (one per base URL, all with KEY) and model "m" over all of them in order."""
    providers = {
        f"p{i}": {"type": "openai", "base_url": base, "api_key": KEY, "headers": {"X-Org-Key": KEY}}
        for i, base in enumerate(bases)
    }
    return {
        "providers": providers,
        "models": {"m": {"targets": [f"p{i}/gpt-4o-mini" for i in range(len(bases))]}},
        "policy": policy or FAST_POLICY,
    }


@pytest.fixture
async def upstream() -> AsyncIterator[OpenAIUpstream]:
    async with OpenAIUpstream(api_key=KEY, reply=ScriptedReply(content="Hello there, how are you today?")) as up:
        yield up


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="polyrelay")
    return caplog


async def call(router: Router, stream: bool) -> Any:
    if not stream:
        return await router.chat.completions.create(model="m", messages=USER)
    s = await router.chat.completions.create(
        model="m", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    async with s:
        return [chunk async for chunk in s], s


async def expect_error(router: Router, stream: bool, cls: type[BaseException]) -> BaseException:
    with pytest.raises(cls) as info:
        await call(router, stream)
    return info.value


# -- upstream errors --------------------------------------------------------------------------------------------

Scenario = Callable[[OpenAIUpstream], None]


def _status(status: int, *, echo_code: bool = False) -> Scenario:
    body = {"error": {"message": ECHO, "type": "invalid_request_error", "code": KEY if echo_code else None}}

    def arrange(up: OpenAIUpstream) -> None:
        up.add_fault(Fault.status_code(status, body=body, retry_after=0), times=None)

    return arrange


SCENARIOS: list[Any] = [
    pytest.param(_status(403), False, PermissionDenied, id="403-echoing-the-key"),
    pytest.param(_status(429), False, RateLimited, id="429-echoing-the-key"),
    pytest.param(_status(500), False, ServerError, id="500-echoing-the-key"),
    pytest.param(_status(500, echo_code=True), True, ServerError, id="500-key-as-error-code-stream"),
    pytest.param(_status(429), True, RateLimited, id="429-stream"),
    pytest.param(lambda up: up.add_fault(Fault.reset(), times=None), False, ConnectionFailed, id="reset"),
    pytest.param(lambda up: up.add_fault(Fault.no_response(), times=None), False, UpstreamTimeout, id="no-response"),
    pytest.param(
        lambda up: up.add_fault(Fault.malformed(), times=None), False, InvalidUpstreamResponse, id="malformed"
    ),
    pytest.param(
        lambda up: up.add_fault(Fault.malformed(after_chunks=2), times=None),
        True,
        StreamInterrupted,
        id="malformed-event-mid-stream",
    ),
    pytest.param(
        lambda up: up.add_fault(Fault.truncate(after_chunks=2), times=None), True, StreamInterrupted, id="truncated"
    ),
    pytest.param(
        lambda up: up.add_fault(Fault.stall(after_chunks=2, delay=5), times=None),
        True,
        StreamInterrupted,
        id="stalled-stream",
    ),
    pytest.param(
        lambda up: up.add_fault(Fault.slow_first_token(5), times=None), True, UpstreamTimeout, id="no-first-token"
    ),
    pytest.param(
        lambda up: up.add_fault(
            Fault.error_event(after_chunks=1, body={"error": {"message": ECHO, "type": "server_error"}}), times=None
        ),
        True,
        StreamInterrupted,
        id="in-band-error-echoing-the-key",
    ),
    pytest.param(
        lambda up: up.add_fault(
            Fault.error_event(after_chunks=0, body={"error": {"message": ECHO, "type": "server_error"}}), times=None
        ),
        True,
        ServerError,
        id="in-band-error-before-content",
    ),
]


@pytest.mark.parametrize(("arrange", "stream", "cls"), SCENARIOS)
async def test_upstream_failures_never_show_the_key(
    upstream: OpenAIUpstream,
    logs: pytest.LogCaptureFixture,
    arrange: Scenario,
    stream: bool,
    cls: type[BaseException],
) -> None:
    arrange(upstream)
    async with Router.from_config(config(upstream.base_url)) as router:
        exc = await expect_error(router, stream, cls)
    assert upstream.requests, "the scenario never reached the upstream"
    assert upstream.requests[0].headers["Authorization"] == f"Bearer {KEY}"  # the key was really sent
    assert_clean(exception_text(exc), f"{type(exc).__name__} text")
    assert_clean(log_text(logs), "the polyrelay log")


async def test_a_rejected_key_is_not_shown(logs: pytest.LogCaptureFixture) -> None:
    """The upstream's 401 echoes a masked form of the key it got; the error must not add the real one."""
    async with (
        OpenAIUpstream(api_key="sk-the-right-key-000000000000") as up,
        Router.from_config(config(up.base_url)) as router,
    ):
        exc = await expect_error(router, False, AuthenticationFailed)
    assert isinstance(exc, AuthenticationFailed) and exc.status == 401
    assert "Incorrect API key provided" in exc.message
    assert_clean(exception_text(exc), "AuthenticationFailed text")
    assert_clean(log_text(logs), "the polyrelay log")


async def test_connection_refused(logs: pytest.LogCaptureFixture) -> None:
    up = OpenAIUpstream(api_key=KEY)
    await up.start()
    base = up.base_url
    await up.close()  # the port is closed now: connections are refused
    async with Router.from_config(config(base)) as router:
        exc = await expect_error(router, False, ConnectionFailed)
    assert_clean(exception_text(exc), "ConnectionFailed text")
    assert_clean(log_text(logs), "the polyrelay log")


async def test_deadline(upstream: OpenAIUpstream, logs: pytest.LogCaptureFixture) -> None:
    upstream.add_fault(Fault.slow_first_byte(5), times=None)
    policy = {**FAST_POLICY, "deadline": 0.2, "timeouts": {**FAST_POLICY["timeouts"], "first_byte": 10}}
    async with Router.from_config(config(upstream.base_url, policy=policy)) as router:
        exc = await expect_error(router, False, UpstreamTimeout)
    assert_clean(exception_text(exc), "DeadlineExceeded text")
    assert_clean(log_text(logs), "the polyrelay log")


async def test_all_targets_failed_lists_every_error_without_the_key(logs: pytest.LogCaptureFixture) -> None:
    async with OpenAIUpstream(api_key=KEY) as a, OpenAIUpstream(api_key="sk-another-key-1111111111111") as b:
        a.add_fault(Fault.status_code(500, body={"error": {"message": ECHO}}), times=None)
        async with Router.from_config(config(a.base_url, b.base_url)) as router:
            exc = await expect_error(router, False, AllTargetsFailed)
    assert isinstance(exc, AllTargetsFailed)
    assert [type(e) for e in exc.errors] == [ServerError, AuthenticationFailed]
    assert_clean(exception_text(exc), "AllTargetsFailed text")
    assert_clean(log_text(logs), "the polyrelay log")


# -- successes: reprs and metadata ------------------------------------------------------------------------------


async def test_reprs_of_router_settings_providers_and_results(
    upstream: OpenAIUpstream, logs: pytest.LogCaptureFixture
) -> None:
    async with Router.from_config(config(upstream.base_url)) as router:
        resp = await call(router, stream=False)
        chunks, stream = await call(router, stream=True)
        settings = router._providers["p0"]
        texts = {
            "Router": repr(router),
            "ProviderSettings": repr(settings) + str(settings),
            "Secret": repr(settings.api_key) + str(settings.api_key) + f"{settings.api_key}",
            "provider instance": repr(router.provider("p0")) + str(router.provider("p0")),
            "transport": repr(router.transport) + repr(router.transport.session),
            "ChatCompletion": repr(resp) + json.dumps(resp.to_dict()),
            "ChatCompletion.meta": repr(resp.meta) + str(resp.meta.headers if resp.meta else ""),
            "ChatStream": repr(stream) + repr(stream.meta) + repr(stream.attempts),
            "chunks": repr(chunks) + repr([c.meta for c in chunks]),
        }
    assert resp.choices[0].message.content == "Hello there, how are you today?"
    assert isinstance(settings.api_key, Secret) and settings.api_key.reveal() == KEY
    for what, text in texts.items():
        assert_clean(text, what)
    assert_clean(log_text(logs), "the polyrelay log")
    assert any(r.levelno == logging.DEBUG for r in logs.records), "nothing was logged at DEBUG"


# -- configuration ----------------------------------------------------------------------------------------------

BAD_CONFIGS: list[Any] = [
    pytest.param({"preset": "no-such-preset"}, id="unknown-preset"),
    pytest.param({"auth": "sometimes"}, id="bad-auth"),
    pytest.param({"tpyo": 1}, id="unknown-option"),
    pytest.param({"headers": {"X-Org-Key": 5}}, id="header-not-a-string"),
    pytest.param({"base_url": 12}, id="base-url-not-a-string"),
]


@pytest.mark.parametrize("change", BAD_CONFIGS)
async def test_config_errors_never_show_the_key(change: dict[str, Any], logs: pytest.LogCaptureFixture) -> None:
    cfg = config("http://127.0.0.1:9/v1")
    cfg["providers"]["p0"].update(change)
    with pytest.raises(ConfigError) as info:
        router = Router.from_config(cfg)
        try:
            router.provider("p0")  # provider options are validated when the provider is built
        finally:
            await router.aclose()
    assert_clean(exception_text(info.value), "ConfigError text")
    assert_clean(log_text(logs), "the polyrelay log")


async def test_a_key_in_the_environment_is_not_shown_when_a_later_key_is_wrong() -> None:
    cfg = config("http://127.0.0.1:9/v1")
    cfg["providers"]["p0"]["api_key"] = "${POLYRELAY_TEST_KEY}"
    cfg["models"]["m"]["targets"] = ["nope/gpt-4o"]
    with pytest.raises(ConfigError) as info:
        Router.from_config(cfg, env={"POLYRELAY_TEST_KEY": KEY})
    assert "nope" in str(info.value)
    assert_clean(exception_text(info.value), "ConfigError text")


# -- the CLI ----------------------------------------------------------------------------------------------------

TOML = f"""
[providers.relay]
type = "openai"
base_url = "https://relay.example.com/v1"
api_key = "{KEY}"
headers = {{ X-Org-Key = "{KEY}" }}

[models."gpt-4o"]
targets = ["relay/gpt-4o"]
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "polyrelay.cli", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_check_config_masks_the_key(tmp_path: Path) -> None:
    path = tmp_path / "polyrelay.toml"
    path.write_text(TOML)
    done = run_cli("check-config", str(path))
    assert done.returncode == 0, done.stderr
    assert "relay" in done.stdout and "gpt-4o" in done.stdout
    assert_clean(done.stdout + done.stderr, "check-config output")


def test_cli_check_config_error_masks_the_key(tmp_path: Path) -> None:
    path = tmp_path / "polyrelay.toml"
    path.write_text(TOML.replace('type = "openai"', 'type = "openai"\npreset = "nope"'))
    done = run_cli("check-config", str(path))
    assert done.returncode == 2
    assert "preset" in done.stderr
    assert_clean(done.stdout + done.stderr, "check-config error output")
