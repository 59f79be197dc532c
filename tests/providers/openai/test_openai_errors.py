"""Error bodies of every shape → ErrorInfo → the classified error (no HTTP here; see test_openai_aioresponses)."""

from __future__ import annotations

from typing import Any

import pytest

from polyrelay.errors import (
    AuthenticationFailed,
    BadRequest,
    ContentPolicyViolation,
    ContextWindowExceeded,
    NotFound,
    Overloaded,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    Secret,
    ServerError,
    UpstreamStatusError,
)
from polyrelay_openai._errors import ErrorInfo, error_from_body, inband_error, is_inband_error, parse_error

KEY = "sk-live-ABCDEFGHIJKLMNOPQRSTUVWX"


@pytest.mark.parametrize(
    ("body", "text", "info"),
    [
        (
            {"error": {"message": "Bad", "type": "invalid_request_error", "param": None, "code": "invalid_value"}},
            "",
            ErrorInfo(message="Bad", code="invalid_value", type="invalid_request_error"),
        ),
        (
            {
                "error": {
                    "code": 429,
                    "message": "Provider returned error",
                    "metadata": {"provider_name": "Google", "raw": "slow down"},
                }
            },
            "",
            ErrorInfo(message="Provider returned error (Google: slow down)", code="429", status=429),
        ),
        (
            {
                "object": "error",
                "message": {"detail": [{"msg": "bad"}]},
                "type": "invalid_request_message_error",
                "param": None,
                "code": "3051",
            },
            "",
            ErrorInfo(message='{"detail":[{"msg":"bad"}]}', code="3051", type="invalid_request_message_error"),
        ),
        (
            {"error": {"message": "x", "type": "invalid_request_error", "code": "tool_use_failed", "status_code": 400}},
            "",
            ErrorInfo(message="x", code="tool_use_failed", type="invalid_request_error", status=400),
        ),
        ({"error": "model not found"}, "", ErrorInfo(message="model not found")),
        ({"detail": "Not authenticated"}, "", ErrorInfo(message="Not authenticated")),
        (
            None,
            "<html>\n <h1>502   Bad Gateway</h1></html>",
            ErrorInfo(message="<html> <h1>502 Bad Gateway</h1></html>"),
        ),
        (
            {"error": {"code": 403, "message": "flagged", "metadata": {"reasons": ["hate"], "flagged_input": "..."}}},
            "",
            ErrorInfo(message="flagged", code="403", status=403, moderation=True),
        ),
    ],
)
def test_parse_error_shapes(body: Any, text: str, info: ErrorInfo) -> None:
    assert parse_error(body, text) == info


@pytest.mark.parametrize(
    ("status", "error", "cls"),
    [
        (400, {"code": "context_length_exceeded", "type": "invalid_request_error"}, ContextWindowExceeded),
        (400, {"code": "string_above_max_length"}, ContextWindowExceeded),
        (429, {"code": "insufficient_quota", "type": "insufficient_quota"}, QuotaExceeded),
        (429, {"code": None, "type": "insufficient_quota"}, QuotaExceeded),
        (429, {"type": "exceeded_current_quota_error"}, QuotaExceeded),  # Moonshot
        (400, {"code": "content_filter"}, ContentPolicyViolation),  # Azure
        (400, {"code": "data_inspection_failed"}, ContentPolicyViolation),  # DashScope
        (400, {"code": "1301"}, ContentPolicyViolation),  # Zhipu
        (401, {"code": "invalid_api_key", "type": "invalid_request_error"}, AuthenticationFailed),
        (401, {"type": "invalid_authentication_error"}, AuthenticationFailed),  # Moonshot
        (400, {"type": "authentication_error"}, AuthenticationFailed),
        (404, {"code": "model_not_found", "type": "invalid_request_error"}, NotFound),
        (403, {"code": "unsupported_country_region_territory"}, PermissionDenied),
        (429, {"type": "engine_overloaded_error"}, Overloaded),  # Moonshot
        (429, {"code": "rate_limit_exceeded", "type": "tokens"}, RateLimited),
        (400, {"code": "tool_use_failed"}, BadRequest),
        (500, {"type": "server_error"}, ServerError),
        (418, {"type": "whatever"}, UpstreamStatusError),
    ],
)
def test_classification_by_code_type_and_status(status: int, error: dict[str, Any], cls: type[Exception]) -> None:
    exc = error_from_body(status, {"error": {"message": "m", **error}}, provider="up")
    assert type(exc) is cls
    assert exc.status == status


@pytest.mark.parametrize(
    ("data", "cls", "status"),
    [
        ({"error": {"message": "boom", "type": "server_error"}}, ServerError, 500),
        ({"error": {"message": "boom"}}, ServerError, 500),  # unknown in-band errors count as server errors
        ({"error": {"message": "slow", "type": "requests", "code": "rate_limit_exceeded"}}, RateLimited, 429),
        ({"error": {"message": "busy", "type": "overloaded_error"}}, Overloaded, 529),
        ({"object": "error", "message": "too long", "type": "BadRequestError", "code": 400}, BadRequest, 400),
        ({"error": {"code": 502, "message": "Provider disconnected"}}, ServerError, 502),
    ],
)
def test_inband_errors_take_their_status_from_the_object(
    data: dict[str, Any], cls: type[Exception], status: int
) -> None:
    assert is_inband_error(data)
    exc = inband_error(data, provider="up")
    assert type(exc) is cls and exc.status == status


def test_is_inband_error() -> None:
    assert not is_inband_error({"id": "x", "choices": []})
    assert not is_inband_error({"error": None, "choices": []})
    assert not is_inband_error([1])


def test_secrets_are_redacted_from_message_and_body() -> None:
    body = {
        "error": {
            "message": f"Incorrect API key provided: {KEY}",
            "code": "invalid_api_key",
            "metadata": {"raw": f"key={KEY}"},
        }
    }
    exc = error_from_body(401, body, provider="up", secrets=(Secret(KEY),))
    assert KEY not in str(exc) and KEY not in repr(exc) and KEY not in str(exc.body)
    assert "Incorrect API key provided" in exc.message


def test_sensitive_request_headers_are_not_kept_on_the_error() -> None:
    exc = error_from_body(
        429, None, "slow down", provider="up", headers={"retry-after": "2", "api-key": KEY, "x-request-id": "r"}
    )
    assert isinstance(exc, RateLimited) and exc.retry_after == 2.0
    assert "api-key" not in {k.lower() for k in exc.headers}
