"""Dify errors and run statuses → the polyrelay error tree / task states (wire-video-audio-workflow.md §5.2).

HTTP errors are ``{"code": "<snake_code>", "message", "status"}`` (the standard Dify service-API shape; not
confirmed against a live instance); a streamed run reports failures in-band as ``{"event": "error", "status",
"code", "message"}``. The code decides the class (:data:`CODE_CLASSES`), else the status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

from polyrelay.classify import error_for_status
from polyrelay.errors import (
    AuthenticationFailed,
    BadRequest,
    NotFound,
    QuotaExceeded,
    RateLimited,
    Secret,
    UpstreamStatusError,
    redact,
)
from polyrelay.transport import HttpResponse
from polyrelay.types.media import TaskErrorInfo, TaskStatus

#: Dify run status → task status. ``stopped`` (the stop endpoint) is a cancel; ``paused`` waits for human input
#: (not resumable through this API) and stays running; ``partial-succeeded`` finished with handled node errors.
STATUS_MAP: Mapping[str, TaskStatus] = {
    "running": "running",
    "succeeded": "succeeded",
    "partial-succeeded": "succeeded",
    "failed": "failed",
    "stopped": "canceled",
    "paused": "running",
}
#: Dify error codes (§5.2 and the ``/workflows/{id}/run`` variants).
CODE_CLASSES: Mapping[str, type[UpstreamStatusError]] = {
    "invalid_param": BadRequest,
    "app_unavailable": BadRequest,
    "provider_not_initialize": BadRequest,
    "model_currently_not_support": BadRequest,
    "workflow_request_error": BadRequest,
    "draft_workflow_error": BadRequest,
    "workflow_id_format_error": BadRequest,
    "workflow_not_found": NotFound,
    "not_found": NotFound,
    "provider_quota_exceeded": QuotaExceeded,
    "unauthorized": AuthenticationFailed,
    "too_many_requests": RateLimited,
}


def failure_info(code: str | None, message: str | None, secrets: tuple[Secret | str, ...]) -> TaskErrorInfo:
    text = redact((message or "the Dify workflow failed")[:1000], secrets)
    return TaskErrorInfo(code=code or "workflow_failed", message=text)


def classified(
    status: int | None,
    code: str | None,
    message: str,
    *,
    provider: str,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    model: str | None = None,
    body: Any = None,
    secrets: tuple[Secret | str, ...] = (),
) -> UpstreamStatusError:
    """The classified error of an HTTP error body or an in-band ``error`` event."""
    return error_for_status(
        status if status is not None and status >= 400 else 500,
        message or code or "Dify reported an error",
        provider=provider,
        code=code,
        cls=CODE_CLASSES.get(code or ""),
        headers=headers,
        request_id=request_id,
        model=model,
        body=body,
        secrets=secrets,
    )


async def raise_for_response(
    response: HttpResponse, *, provider: str, model: str | None, secrets: tuple[Secret | str, ...]
) -> NoReturn:
    """Read an error response and raise the classified error."""
    text = await response.text()
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    code = body.get("code") if isinstance(body, Mapping) else None
    message = body.get("message") if isinstance(body, Mapping) else None
    raise classified(
        response.status,
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else text[:300],
        provider=provider,
        headers=response.headers,
        request_id=response.request_id,
        model=model,
        body=body,
        secrets=secrets,
    )
