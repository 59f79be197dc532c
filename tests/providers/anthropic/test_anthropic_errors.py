"""Anthropic error envelopes → the polyrelay error tree."""

from __future__ import annotations

import json

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
    Secret,
    ServerError,
)
from polyrelay_anthropic._errors import error_from_detail, error_from_response
from polyrelay_anthropic._wire import ErrorDetail


def _body(kind: str, message: str = "boom", request_id: str | None = "req_011Cabc") -> bytes:
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}).encode()


@pytest.mark.parametrize(
    ("status", "kind", "cls", "retryable"),
    [
        (400, "invalid_request_error", BadRequest, False),
        (401, "authentication_error", AuthenticationFailed, False),
        (402, "billing_error", QuotaExceeded, False),
        (403, "permission_error", PermissionDenied, False),
        (404, "not_found_error", NotFound, False),
        (413, "request_too_large", BadRequest, False),
        (429, "rate_limit_error", RateLimited, True),
        (500, "api_error", ServerError, True),
        (504, "timeout_error", ServerError, True),
        (529, "overloaded_error", Overloaded, True),
    ],
)
def test_each_error_type(status: int, kind: str, cls: type[Exception], retryable: bool) -> None:
    error = error_from_response(status, _body(kind), {}, provider="claude", model="claude-x")
    assert type(error) is cls
    assert (error.status, error.code, error.message, error.retryable) == (status, kind, "boom", retryable)
    assert (error.provider, error.model, error.request_id) == ("claude", "claude-x", "req_011Cabc")


@pytest.mark.parametrize(
    "message",
    [
        "prompt is too long: 208310 tokens > 200000 maximum",
        "input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000, decrease input length or "
        "`max_tokens` and try again",
    ],
)
def test_context_window_messages(message: str) -> None:
    error = error_from_response(400, _body("invalid_request_error", message), {}, provider="claude")
    assert type(error) is ContextWindowExceeded and error.message == message


def test_other_invalid_requests_mentioning_prompts_stay_bad_requests() -> None:
    message = "messages.0: the prompt is too long for this cache breakpoint"
    assert type(error_from_response(400, _body("invalid_request_error", message), {}, provider="c")) is BadRequest


def test_rate_limit_takes_retry_after_from_headers() -> None:
    error = error_from_response(429, _body("rate_limit_error"), {"retry-after": "7"}, provider="claude")
    assert isinstance(error, RateLimited) and error.retry_after == 7.0
    overloaded = error_from_response(529, _body("overloaded_error"), {"retry-after": "2"}, provider="claude")
    assert isinstance(overloaded, Overloaded) and overloaded.retry_after == 2.0


def test_x_should_retry_overrides_the_default() -> None:
    error = error_from_response(500, _body("api_error"), {"x-should-retry": "false"}, provider="claude")
    assert error.retryable is False


def test_non_json_bodies_fall_back_to_the_status() -> None:
    html = b"<html><head><title>413 Request Entity Too Large</title></head><body>cloudflare</body></html>"
    error = error_from_response(413, html, {"request-id": "req_h"}, provider="claude")
    assert type(error) is BadRequest and error.status == 413 and error.code is None
    assert "413 Request Entity Too Large" in error.message and error.request_id == "req_h"
    assert type(error_from_response(502, b"Bad gateway", {}, provider="claude")) is ServerError
    assert type(error_from_response(529, b"", {}, provider="claude")) is Overloaded


def test_an_error_envelope_inside_a_200_uses_its_type() -> None:
    error = error_from_response(200, _body("overloaded_error", "Overloaded"), {}, provider="claude")
    assert type(error) is Overloaded and error.status == 529


def test_request_id_falls_back_to_the_header_and_keys_are_redacted() -> None:
    key = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"
    body = _body("authentication_error", f"invalid x-api-key {key}", request_id=None)
    error = error_from_response(
        401, body, {"request-id": "req_hdr", "x-api-key": key}, provider="c", secrets=[Secret(key)]
    )
    assert error.request_id == "req_hdr" and key not in str(error) and key not in repr(error)
    assert "x-api-key" not in {k.lower() for k in error.headers}


def test_in_stream_error_details() -> None:
    error = error_from_detail(
        ErrorDetail(type="overloaded_error", message="Overloaded"), provider="claude", request_id="r"
    )
    assert type(error) is Overloaded and (error.status, error.request_id, error.retryable) == (529, "r", True)
    unknown = error_from_detail(ErrorDetail(type="mystery_error", message="?"), provider="claude")
    assert type(unknown) is ServerError and unknown.code == "mystery_error"
