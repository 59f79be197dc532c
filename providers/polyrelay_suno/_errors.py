"""Suno relay errors and task/clip statuses → the polyrelay error tree / task states (wire-video-audio-workflow.md
§4.1, §4.2, §4.4).

new-api / Suno-API errors are ``{"code": "<snake_code>", "message", "data": null}`` (success is the *string*
``"success"``, so an error may also arrive with HTTP 200): the code decides the class (:data:`CODE_CLASSES`), else
the HTTP status. gcui-art/suno-api errors are ``{"error": "..."}`` classified by status (402 out of credits →
QuotaExceeded, 503 Suno unreachable → Overloaded).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from polyrelay.classify import error_for_status
from polyrelay.errors import (
    AuthenticationFailed,
    BadRequest,
    NotFound,
    QuotaExceeded,
    RateLimited,
    Secret,
    ServerError,
    UpstreamStatusError,
    redact,
)
from polyrelay.transport import HttpResponse
from polyrelay.types.media import TaskErrorInfo, TaskStatus

#: new-api task status → task status (§4.4). UNKNOWN is terminal in new-api: a failure.
TASK_STATUS_MAP: Mapping[str, TaskStatus] = {
    "NOT_START": "queued",
    "SUBMITTED": "queued",
    "QUEUED": "queued",
    "IN_PROGRESS": "running",
    "SUCCESS": "succeeded",
    "FAILURE": "failed",
    "UNKNOWN": "failed",
}
#: Suno clip status → task status (gcui, and Suno-API backends that return only the clips).
CLIP_STATUS_MAP: Mapping[str, TaskStatus] = {
    "submitted": "queued",
    "queued": "queued",
    "streaming": "running",
    "complete": "succeeded",
    "error": "failed",
}
#: Synthesized progress per clip status (Suno reports none for clips): the task's progress is their mean.
CLIP_PROGRESS: Mapping[str, float] = {"submitted": 0.0, "queued": 0.1, "streaming": 0.5, "complete": 1.0, "error": 1.0}
#: new-api / Suno-API error codes.
CODE_CLASSES: Mapping[str, type[UpstreamStatusError]] = {
    "invalid_request": BadRequest,
    "invalid_api_key": AuthenticationFailed,
    "unauthorized": AuthenticationFailed,
    "quota_not_enough": QuotaExceeded,
    "insufficient_user_quota": QuotaExceeded,
    "too_many_requests": RateLimited,
    "task_not_exist": NotFound,
    "fail_to_fetch_task": ServerError,
    "internal_error": ServerError,
}

# The status new-api pairs with each class (quota_not_enough is a 403 there).
_CLASS_STATUS: Mapping[type[UpstreamStatusError], int] = {
    BadRequest: 400,
    AuthenticationFailed: 401,
    QuotaExceeded: 403,
    NotFound: 404,
    RateLimited: 429,
    ServerError: 500,
}


def clip_status(statuses: Sequence[str]) -> str:
    """The task-level clip status, as Suno-API derives it: equal statuses win; otherwise the first clip that is
    not complete decides (so a song is complete only when every clip is)."""
    if not statuses:
        return "submitted"
    if all(s == statuses[0] for s in statuses):
        return statuses[0]
    return next(s for s in statuses if s != "complete")


def failure_info(reason: str | None, secrets: tuple[Secret | str, ...]) -> TaskErrorInfo:
    text = redact((reason or "the Suno relay reported the task failed")[:1000], secrets)
    return TaskErrorInfo(code="generation_failed", message=text)


def envelope_error(
    code: str | None,
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
    """The classified error of a new-api envelope whose ``code`` is not ``"success"``."""
    cls = CODE_CLASSES.get(code or "")
    if status < 400:  # an error envelope inside an HTTP 200: report the status the class stands for
        status = _CLASS_STATUS.get(cls, 500) if cls is not None else 500
    return error_for_status(
        status,
        message or code or f"HTTP {status}",
        provider=provider,
        code=code,
        cls=cls,
        headers=headers,
        request_id=request_id,
        model=model,
        body=body,
        secrets=secrets,
    )


async def raise_for_response(
    response: HttpResponse, *, provider: str, model: str | None, secrets: tuple[Secret | str, ...]
) -> NoReturn:
    """Read an error response (either format) and raise the classified error."""
    text = await response.text()
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    code: str | None = None
    message = ""
    if isinstance(body, Mapping):
        raw_code = body.get("code")
        code = raw_code if isinstance(raw_code, str) else None
        raw_message = body.get("message", body.get("error", body.get("detail")))
        message = raw_message if isinstance(raw_message, str) else ""
    raise envelope_error(
        code,
        message or text[:300],
        status=response.status,
        provider=provider,
        headers=response.headers,
        request_id=response.request_id,
        model=model,
        body=body,
        secrets=secrets,
    )
