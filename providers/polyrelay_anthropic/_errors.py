"""Anthropic error envelopes → the polyrelay error tree.

Body: ``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": "req_..."}``, sent with an error
status, inside a 200 body (relays), or as an in-stream ``error`` event after a 200. The class comes from
``error.type`` (:data:`ERROR_TYPES`), falling back to the HTTP status when the body is not an envelope (Cloudflare's
HTML 413 / 5xx pages). An ``invalid_request_error`` whose message has the documented context-length form
("prompt is too long: N tokens > M maximum", "input length and `max_tokens` exceed context limit: …") is
:class:`ContextWindowExceeded`. ``retry-after`` and ``x-should-retry`` headers are honoured by
:func:`polyrelay.classify.error_for_status`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from polyrelay.classify import error_for_status
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
    UpstreamStatusError,
)
from polyrelay_anthropic._wire import ErrorDetail, parse_error_envelope

__all__ = ["CONTEXT_WINDOW_MESSAGES", "ERROR_TYPES", "error_from_detail", "error_from_response"]

#: ``error.type`` → (the status Anthropic sends it with, our class).
ERROR_TYPES: Final[Mapping[str, tuple[int, type[UpstreamStatusError]]]] = {
    "invalid_request_error": (400, BadRequest),
    "authentication_error": (401, AuthenticationFailed),
    "billing_error": (402, QuotaExceeded),
    "permission_error": (403, PermissionDenied),
    "not_found_error": (404, NotFound),
    "request_too_large": (413, BadRequest),
    "rate_limit_error": (429, RateLimited),
    "api_error": (500, ServerError),
    "timeout_error": (504, ServerError),
    "overloaded_error": (529, Overloaded),
}
#: Message prefixes Anthropic documents for prompts that do not fit the context window.
CONTEXT_WINDOW_MESSAGES: Final = ("prompt is too long", "input length and `max_tokens` exceed context limit")
_SNIPPET_CHARS: Final = 200


def _class_for(kind: str | None, message: str) -> type[UpstreamStatusError] | None:
    if kind is None:
        return None
    if kind == "invalid_request_error" and message.lower().startswith(CONTEXT_WINDOW_MESSAGES):
        return ContextWindowExceeded
    known = ERROR_TYPES.get(kind)
    return known[1] if known is not None else None


def error_from_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    provider: str,
    model: str | None = None,
    secrets: Iterable[Secret | str] = (),
) -> UpstreamStatusError:
    """Classify an HTTP error response (or a 200 whose body is an error envelope)."""
    data: Any
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    envelope = parse_error_envelope(data)
    header_id = headers.get("request-id") or headers.get("x-request-id")
    if envelope is None:
        text = " ".join(body[:_SNIPPET_CHARS].decode("utf-8", "replace").split())
        message = f"HTTP {status} with a body that is not an Anthropic error" + (f": {text}" if text else "")
        return error_for_status(
            status,
            message,
            provider=provider,
            headers=headers,
            request_id=header_id,
            model=model,
            body=data if data is not None else text,
            secrets=secrets,
        )
    detail = envelope.error
    if status < 400:  # an error envelope inside a 200: use the status the error type comes with
        status = ERROR_TYPES.get(detail.type, (500, ServerError))[0]
    return error_for_status(
        status,
        detail.message or detail.type,
        provider=provider,
        code=detail.type,
        cls=_class_for(detail.type, detail.message),
        headers=headers,
        request_id=envelope.request_id or header_id,
        model=model,
        body=data,
        secrets=secrets,
    )


def error_from_detail(
    detail: ErrorDetail,
    *,
    provider: str,
    model: str | None = None,
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[Secret | str] = (),
) -> UpstreamStatusError:
    """Classify an in-stream ``error`` event (the HTTP status was already 200)."""
    status = ERROR_TYPES.get(detail.type, (500, ServerError))[0]
    return error_for_status(
        status,
        detail.message or detail.type,
        provider=provider,
        code=detail.type,
        cls=_class_for(detail.type, detail.message),
        headers=headers,
        request_id=request_id,
        model=model,
        body={"type": "error", "error": {"type": detail.type, "message": detail.message}},
        secrets=secrets,
    )
