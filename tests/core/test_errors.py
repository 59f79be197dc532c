"""Error tree, secret masking and status classification."""

from __future__ import annotations

import email.utils
import logging

import pytest

from polyrelay.classify import error_for_status
from polyrelay.errors import (
    AuthenticationFailed,
    BadRequest,
    ContentPolicyViolation,
    ContextWindowExceeded,
    NotFound,
    Overloaded,
    PermissionDenied,
    PolyrelayError,
    QuotaExceeded,
    RateLimited,
    Secret,
    ServerError,
    UpstreamError,
    UpstreamStatusError,
    redact,
)
from polyrelay.transport import parse_retry_after, same_origin

KEY = "sk-FAKE-polyrelay-test-key-0123456789abcdef"


def test_secret_masks_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    s = Secret(KEY)
    for text in (str(s), repr(s), f"{s}", f"{s!r}", "%s" % s):  # noqa: UP031
        assert KEY not in text and KEY[:12] not in text
    assert s.reveal() == KEY
    with caplog.at_level(logging.INFO):
        logging.getLogger("polyrelay").info("key=%s", s)
    assert KEY not in caplog.text
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(s)


def test_redact_full_and_partial_echoes() -> None:
    msg = f"Incorrect API key provided: {KEY}. Also {KEY[:12]}***{KEY[-8:]}"
    out = redact(msg, [Secret(KEY)])
    assert KEY not in out and KEY[:12] not in out and KEY[-8:] not in out


@pytest.mark.parametrize(
    ("status", "code", "cls", "retryable"),
    [
        (400, None, BadRequest, False),
        (400, "context_length_exceeded", ContextWindowExceeded, False),
        (400, "content_policy_violation", ContentPolicyViolation, False),
        (401, None, AuthenticationFailed, False),
        (402, None, QuotaExceeded, False),
        (403, None, PermissionDenied, False),
        (404, None, NotFound, False),
        (408, None, UpstreamStatusError, True),
        (409, None, UpstreamStatusError, True),
        (422, None, BadRequest, False),
        (429, None, RateLimited, True),
        (429, "insufficient_quota", QuotaExceeded, False),
        (500, None, ServerError, True),
        (502, None, ServerError, True),
        (503, None, Overloaded, True),
        (529, None, Overloaded, True),
    ],
)
def test_error_for_status(status: int, code: str | None, cls: type[UpstreamError], retryable: bool) -> None:
    err = error_for_status(
        status,
        f"boom {KEY}",
        provider="p",
        code=code,
        secrets=[Secret(KEY)],
        headers={"authorization": f"Bearer {KEY}", "x-request-id": "req-1"},
    )
    assert type(err) is cls
    assert err.retryable is retryable
    assert err.status == status and err.provider == "p"
    assert isinstance(err, PolyrelayError)
    for text in (str(err), repr(err), str(err.headers)):
        assert KEY not in text


def test_x_should_retry_overrides() -> None:
    assert error_for_status(400, "x", provider="p", headers={"x-should-retry": "true"}).retryable is True
    assert error_for_status(500, "x", provider="p", headers={"x-should-retry": "false"}).retryable is False


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=1_000_000) == pytest.approx(30.0)
    assert parse_retry_after({"retry-after": "-4"}) == 0.0
    err = error_for_status(429, "slow down", provider="p", headers={"retry-after": "7"})
    assert isinstance(err, RateLimited) and err.retry_after == 7.0


def test_same_origin() -> None:
    assert same_origin("https://api.bfl.ai/v1/get_result?id=1", "https://api.bfl.ai/v1")
    assert same_origin("https://API.bfl.ai:443/x", "https://api.bfl.ai")
    assert not same_origin("https://eu.api.bfl.ai/v1/x", "https://api.bfl.ai/v1")
    assert not same_origin("http://api.bfl.ai/v1", "https://api.bfl.ai/v1")
    assert not same_origin("https://api.bfl.ai.evil.com/", "https://api.bfl.ai")


def test_error_code_is_redacted_too() -> None:
    err = error_for_status(401, "bad key", provider="p", code=KEY, secrets=[Secret(KEY)])
    assert err.code is not None and KEY not in err.code and KEY not in str(err) and KEY not in repr(err)
