"""Kling's ``{code, message, request_id}`` errors and task statuses → the polyrelay error tree / task states.

Every answer is the envelope; ``code`` 0 is success, anything else is an error whatever the HTTP status (the
documented table, wire-video-audio-workflow.md §3.5, pairs each code with a status). The business code decides
the class (:data:`KLING_CODES`); codes not in the table fall back to their family (1000s auth, 1100s account,
1200s request, 1300s policy, 5000s server), then to the HTTP status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

import attrs

from polyrelay.classify import error_for_status
from polyrelay.errors import (
    AuthenticationFailed,
    BadRequest,
    ContentPolicyViolation,
    NotFound,
    Overloaded,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    Secret,
    ServerError,
    UpstreamStatusError,
    redact,
)
from polyrelay.types.media import TaskErrorInfo, TaskStatus

#: Kling task status → task status (note Kling's spelling ``succeed``).
STATUS_MAP: Mapping[str, TaskStatus] = {
    "submitted": "queued",
    "processing": "running",
    "succeed": "succeeded",
    "failed": "failed",
}


@attrs.frozen(kw_only=True)
class KlingCode:
    """One row of the error table: the documented HTTP status, our class, and whether to retry."""

    status: int
    error: type[UpstreamStatusError]
    retryable: bool
    meaning: str


#: The documented business codes (§3.5). 1000/1003/1004 are retryable because the provider re-signs its token
#: after them (clock skew or an expired cached token); billing and permission codes are never retried.
KLING_CODES: Mapping[int, KlingCode] = {
    1000: KlingCode(status=401, error=AuthenticationFailed, retryable=True, meaning="authentication failed"),
    1001: KlingCode(status=401, error=AuthenticationFailed, retryable=False, meaning="Authorization is empty"),
    1002: KlingCode(status=401, error=AuthenticationFailed, retryable=False, meaning="Authorization is invalid"),
    1003: KlingCode(status=401, error=AuthenticationFailed, retryable=True, meaning="token not yet valid"),
    1004: KlingCode(status=401, error=AuthenticationFailed, retryable=True, meaning="token expired"),
    1100: KlingCode(status=429, error=PermissionDenied, retryable=False, meaning="account abnormal"),
    1101: KlingCode(status=429, error=QuotaExceeded, retryable=False, meaning="account in arrears"),
    1102: KlingCode(status=429, error=QuotaExceeded, retryable=False, meaning="resource pack exhausted or expired"),
    1103: KlingCode(status=403, error=PermissionDenied, retryable=False, meaning="no permission for this resource"),
    1200: KlingCode(status=400, error=BadRequest, retryable=False, meaning="invalid request"),
    1201: KlingCode(status=400, error=BadRequest, retryable=False, meaning="invalid parameter"),
    1202: KlingCode(status=404, error=NotFound, retryable=False, meaning="invalid method"),
    1203: KlingCode(status=404, error=NotFound, retryable=False, meaning="resource (model) not found"),
    1300: KlingCode(status=400, error=ContentPolicyViolation, retryable=False, meaning="platform policy triggered"),
    1301: KlingCode(status=400, error=ContentPolicyViolation, retryable=False, meaning="content-safety policy"),
    1302: KlingCode(status=429, error=RateLimited, retryable=True, meaning="requests too fast"),
    1303: KlingCode(status=429, error=RateLimited, retryable=True, meaning="concurrency over the resource pack limit"),
    1304: KlingCode(status=429, error=PermissionDenied, retryable=False, meaning="IP whitelist policy"),
    5000: KlingCode(status=500, error=ServerError, retryable=True, meaning="internal error"),
    5001: KlingCode(status=503, error=Overloaded, retryable=True, meaning="service unavailable"),
    5002: KlingCode(status=504, error=ServerError, retryable=True, meaning="internal timeout"),
}
#: Families of codes not in the table: (first, last, class, retryable).
CODE_FAMILIES: tuple[tuple[int, int, type[UpstreamStatusError], bool], ...] = (
    (1000, 1099, AuthenticationFailed, False),
    (1100, 1199, PermissionDenied, False),
    (1200, 1299, BadRequest, False),
    (1300, 1399, ContentPolicyViolation, False),
    (5000, 5999, ServerError, True),
)
#: Codes after which the cached JWT must be re-signed.
RESIGN_CODES = frozenset({1000, 1003, 1004})


def lookup(code: int) -> KlingCode | None:
    """The table row (or family row) of a business code."""
    row = KLING_CODES.get(code)
    if row is not None:
        return row
    for first, last, error, retryable in CODE_FAMILIES:
        if first <= code <= last:
            return KlingCode(status=0, error=error, retryable=retryable, meaning="")
    return None


def error_for_code(
    code: int | None,
    message: str,
    *,
    status: int,
    provider: str,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    model: str | None = None,
    body: Any = None,
    secrets: tuple[Secret | str, ...] = (),
) -> UpstreamStatusError:
    """The classified error for a Kling error answer (``status`` is the HTTP status; a 200 carrying an error
    reports the code's documented status instead)."""
    row = lookup(code) if code is not None else None
    http_status = status
    if row is not None and status < 400 and row.status:
        http_status = row.status
    text = message or (row.meaning if row is not None else "") or f"HTTP {status}"
    exc = error_for_status(
        http_status if http_status >= 400 else 500,
        text,
        provider=provider,
        code=str(code) if code is not None else None,
        cls=row.error if row is not None else None,
        headers=headers,
        request_id=request_id,
        model=model,
        body=body,
        secrets=secrets,
    )
    if row is not None:
        exc.retryable = row.retryable
    return exc


def failure_info(message: str | None, secrets: tuple[Secret | str, ...]) -> TaskErrorInfo:
    text = redact((message or "Kling reported the task failed")[:1000], secrets)
    return TaskErrorInfo(code="task_failed", message=text)


def envelope_error(body: Any) -> tuple[int | None, str, str | None]:
    """``(code, message, request_id)`` of an error body (anything but a code-0 envelope)."""
    if not isinstance(body, Mapping):
        return None, "", None
    code = body.get("code")
    message = body.get("message", body.get("msg", ""))
    request_id = body.get("request_id")
    return (
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        message if isinstance(message, str) else "",
        request_id if isinstance(request_id, str) else None,
    )


def raise_for_body(
    text: str,
    *,
    status: int,
    provider: str,
    headers: Mapping[str, str],
    request_id: str | None,
    model: str | None,
    secrets: tuple[Secret | str, ...],
) -> NoReturn:
    """Raise the classified error of an error answer's text (envelope or not)."""
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    code, message, body_request_id = envelope_error(body)
    raise error_for_code(
        code,
        message or (text[:300] if body is None else ""),
        status=status,
        provider=provider,
        headers=headers,
        request_id=body_request_id or request_id,
        model=model,
        body=body,
        secrets=secrets,
    )
