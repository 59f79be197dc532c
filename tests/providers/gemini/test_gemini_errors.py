"""google.rpc Status error bodies → the polyrelay error tree."""

from __future__ import annotations

from typing import Any

import pytest

from polyrelay.errors import (
    AuthenticationFailed,
    BadRequest,
    ContextWindowExceeded,
    NotFound,
    Overloaded,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    ServerError,
    UpstreamStatusError,
)
from polyrelay_gemini._errors import classify_error, parse_retry_delay

RPC = "type.googleapis.com/google.rpc."


def body(code: int, status: str, message: str = "msg", details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        err["details"] = details
    return {"error": err}


BAD_KEY = body(
    400,
    "INVALID_ARGUMENT",
    "API key not valid. Please pass a valid API key.",
    [
        {
            "@type": RPC + "ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        },
        {
            "@type": RPC + "LocalizedMessage",
            "locale": "en-US",
            "message": "API key not valid. Please pass a valid API key.",
        },
    ],
)
QUOTA_DAILY = body(
    429,
    "RESOURCE_EXHAUSTED",
    "You exceeded your current quota, please check your plan and billing details.",
    [
        {
            "@type": RPC + "QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                    "quotaValue": "250",
                }
            ],
        },
        {
            "@type": RPC + "Help",
            "links": [{"description": "Learn more", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}],
        },
        {"@type": RPC + "RetryInfo", "retryDelay": "27s"},
    ],
)


@pytest.mark.parametrize(
    ("status", "payload", "cls", "code", "retryable"),
    [
        (400, BAD_KEY, AuthenticationFailed, "API_KEY_INVALID", False),
        (
            400,
            body(400, "INVALID_ARGUMENT", "Invalid value at 'contents[0].role'"),
            BadRequest,
            "INVALID_ARGUMENT",
            False,
        ),
        (
            400,
            body(400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
            BadRequest,
            "FAILED_PRECONDITION",
            False,
        ),
        (
            400,
            body(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            ),
            ContextWindowExceeded,
            "INVALID_ARGUMENT",
            False,
        ),
        (
            401,
            body(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
            AuthenticationFailed,
            "UNAUTHENTICATED",
            False,
        ),
        (
            403,
            body(403, "PERMISSION_DENIED", "The caller does not have permission"),
            PermissionDenied,
            "PERMISSION_DENIED",
            False,
        ),
        (404, body(404, "NOT_FOUND", "models/nope is not found for API version v1beta"), NotFound, "NOT_FOUND", False),
        (429, QUOTA_DAILY, RateLimited, "RESOURCE_EXHAUSTED", True),
        (500, body(500, "INTERNAL", "An internal error has occurred."), ServerError, "INTERNAL", True),
        (
            503,
            body(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
            Overloaded,
            "UNAVAILABLE",
            True,
        ),
        (
            504,
            body(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
            ServerError,
            "DEADLINE_EXCEEDED",
            True,
        ),
    ],
)
def test_status_bodies(status: int, payload: Any, cls: type[Exception], code: str, retryable: bool) -> None:
    err = classify_error(status, payload, provider="gem", model="gemini-2.5-flash")
    assert type(err) is cls
    assert (err.status, err.code, err.retryable, err.provider) == (status, code, retryable, "gem")
    assert err.message == payload["error"]["message"]
    assert err.body == payload


def test_rate_limit_delay_comes_from_retry_info() -> None:
    err = classify_error(429, QUOTA_DAILY, provider="gem")
    # A daily free-tier quota is still a 429 rate limit (the router decides what to do with 27 s).
    assert isinstance(err, RateLimited) and not isinstance(err, QuotaExceeded)
    assert err.retry_after == 27.0
    no_info = classify_error(429, body(429, "RESOURCE_EXHAUSTED"), provider="gem", headers={"retry-after": "4"})
    assert isinstance(no_info, RateLimited) and no_info.retry_after == 4.0
    overloaded = classify_error(
        503, body(503, "UNAVAILABLE", details=[{"@type": RPC + "RetryInfo", "retryDelay": "0.5s"}]), provider="gem"
    )
    assert isinstance(overloaded, Overloaded) and overloaded.retry_after == 0.5


def test_context_length_needs_the_documented_shape() -> None:
    """Only INVALID_ARGUMENT with the documented message is a context-window error, not any text with 'exceeds'."""
    other = classify_error(400, body(400, "INVALID_ARGUMENT", "Request payload size exceeds the limit"), provider="g")
    assert type(other) is BadRequest
    wrong_status = body(500, "INTERNAL", "The input token count (5) exceeds the maximum number of tokens allowed (4).")
    assert type(classify_error(500, wrong_status, provider="g")) is ServerError


def test_list_wrapped_and_non_json_bodies() -> None:
    wrapped = [body(503, "UNAVAILABLE", "overloaded")]
    assert type(classify_error(503, wrapped, provider="g")) is Overloaded
    html = classify_error(502, None, provider="g", text="<html><body>Bad Gateway</body></html>")
    assert type(html) is ServerError and html.retryable and "Bad Gateway" in html.message
    empty = classify_error(400, None, provider="g")
    assert type(empty) is BadRequest and empty.message == "HTTP 400"
    unknown_status = classify_error(409, body(409, "ABORTED", "conflict"), provider="g")
    assert type(unknown_status) is UpstreamStatusError and unknown_status.retryable


def test_secrets_are_redacted_from_messages() -> None:
    key = "AIzaSyTHISISAFAKEKEY0123456789abcdef"
    err = classify_error(400, body(400, "INVALID_ARGUMENT", f"bad request for key {key}"), provider="g", secrets=[key])
    assert key not in str(err) and key not in repr(err)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("27s", 27.0),
        ("34.4s", 34.4),
        ("0s", 0.0),
        ({"seconds": 2, "nanos": 500_000_000}, 2.5),
        ("soon", None),
        (None, None),
        ("12", None),
    ],
)
def test_retry_delay_parsing(value: Any, seconds: float | None) -> None:
    assert parse_retry_delay(value) == seconds
