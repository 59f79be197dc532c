"""Relay Runway envelopes, errors and task states → the polyrelay error tree / task states (§1.7).

Every answer is an envelope ``{"code", "msg" | "message", "data"}``; ``code`` ``200`` (classic relays) or
``"success"`` (CometAPI / new-api) means success, anything else is an error even inside an HTTP 200. The class
comes from the HTTP status when it is an error status; otherwise from the envelope code: a numeric code that is an
HTTP status (401, 403, 429, 5xx, ...) is used as one, a string code is looked up (:data:`CODE_CLASSES`, then the
core table in :mod:`polyrelay.classify`), and anything else is a :class:`~polyrelay.errors.BadRequest`. Message
text is never pattern-matched: a moderation refusal is a ContentPolicyViolation only when its code says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from polyrelay.classify import CODE_CLASSES as CORE_CODE_CLASSES
from polyrelay.classify import error_for_status
from polyrelay.errors import (
    AuthenticationFailed,
    BadRequest,
    ContentPolicyViolation,
    InvalidUpstreamResponse,
    NotFound,
    Overloaded,
    QuotaExceeded,
    RateLimited,
    Secret,
    UpstreamStatusError,
    redact,
)
from polyrelay.transport import HttpResponse
from polyrelay.types.media import TaskErrorInfo, TaskStatus

#: Classic ``/runway/feed`` status → task status ("0"/"1" split per §1.7: queued, running).
FEED_STATUS_MAP: Mapping[str, TaskStatus] = {"0": "queued", "1": "running", "2": "failed", "3": "succeeded"}
#: CometAPI (new-api task wrapper) status → task status.
WRAPPED_STATUS_MAP: Mapping[str, TaskStatus] = {
    "NOT_START": "queued",
    "SUBMITTED": "queued",
    "QUEUED": "queued",
    "IN_PROGRESS": "running",
    "SUCCESS": "succeeded",
    "FAILURE": "failed",
}
#: String envelope codes (new-api family) that decide the class, over the core table.
CODE_CLASSES: Mapping[str, type[UpstreamStatusError]] = {
    "task_not_exist": NotFound,
    "sensitive_words_detected": ContentPolicyViolation,
    "quota_not_enough": QuotaExceeded,
    "insufficient_user_quota": QuotaExceeded,
}
#: The envelope code a task that the relay has not stored yet answers with (right after submit on CometAPI).
TASK_NOT_EXIST = "task_not_exist"

# The status reported for a class chosen from a string code inside an HTTP 200.
_CLASS_STATUS: Mapping[type[UpstreamStatusError], int] = {
    AuthenticationFailed: 401,
    NotFound: 404,
    QuotaExceeded: 402,
    RateLimited: 429,
    Overloaded: 503,
}


def is_success(code: Any) -> bool:
    """``code`` 200 (int or ``"200"``) or ``"success"``."""
    return code in (200, "200", "success")


def envelope_error(
    body: Any,
    *,
    status: int,
    provider: str,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    model: str | None = None,
    secrets: tuple[Secret | str, ...] = (),
) -> UpstreamStatusError:
    """The classified error for an answer with HTTP ``status`` and (parsed) ``body`` that is not a success."""
    code: Any = body.get("code") if isinstance(body, Mapping) else None
    message = _message(body)
    numeric = _numeric(code)
    text_code = code if isinstance(code, str) and numeric is None else None
    cls: type[UpstreamStatusError] | None = CODE_CLASSES.get(text_code or "")
    if cls is None and text_code is not None:
        cls = CORE_CODE_CLASSES.get(text_code)
    if status < 400:  # an error envelope inside a 2xx: the envelope decides
        if numeric is not None and 400 <= numeric <= 599:
            status = numeric
        elif cls is not None:
            status = _CLASS_STATUS.get(cls, 400)
        else:
            status, cls = 400, BadRequest
    return error_for_status(
        status,
        redact(message or (str(code) if code is not None else "") or f"HTTP {status}", secrets),
        provider=provider,
        code=text_code if text_code is not None else (str(numeric) if numeric is not None else None),
        cls=cls,
        headers=headers,
        request_id=request_id,
        model=model,
        body=body,
        secrets=secrets,
    )


async def read_envelope(
    response: HttpResponse, *, provider: str, model: str | None, secrets: tuple[Secret | str, ...]
) -> Any:
    """The ``data`` of a successful envelope; the classified error otherwise (HTTP error or error envelope)."""
    text = await response.text()
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    ok = 200 <= response.status < 300
    if ok and isinstance(body, Mapping) and is_success(body.get("code")):
        return body.get("data")
    if ok and not isinstance(body, Mapping):
        raise InvalidUpstreamResponse(
            f"the Runway relay answered without an envelope: {redact(text[:200], secrets)!r}", provider=provider
        )
    raise envelope_error(
        body if body is not None else {"msg": text[:300]},
        status=response.status,
        provider=provider,
        headers=response.headers,
        request_id=response.request_id,
        model=model,
        secrets=secrets,
    )


def failure_info(reason: str | None, secrets: tuple[Secret | str, ...]) -> TaskErrorInfo:
    text = redact((reason or "the Runway relay reported the generation failed")[:1000], secrets)
    return TaskErrorInfo(code="generation_failed", message=text)


def _numeric(code: Any) -> int | None:
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    return int(code) if isinstance(code, str) and code.isdigit() else None


def _message(body: Any) -> str:
    if not isinstance(body, Mapping):
        return ""
    for name in ("msg", "message", "error", "detail"):
        value = body.get(name)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, Mapping) and isinstance(value.get("message"), str):
            return str(value["message"])
    return ""
