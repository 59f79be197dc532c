"""Coze errors and run statuses → the polyrelay error tree / task states (wire-video-audio-workflow.md §5.3).

Coze answers errors mostly as HTTP 200 with ``{"code": <non-zero>, "msg", "detail": {"logid"}}``; streamed runs
send ``event: Error`` with ``error_code`` / ``error_message``. Documented codes: 4000 (bad parameters), 4200
(workflow not published). The other rows of :data:`CODE_CLASSES` follow Coze's general API code list and are not
confirmed here; unknown 4xxx codes are bad requests, 5xxx server errors, anything else goes by HTTP status.
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
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    Secret,
    ServerError,
    UpstreamStatusError,
    redact,
)
from polyrelay.transport import HttpResponse
from polyrelay.types.media import TaskErrorInfo, TaskStatus

#: ``run_histories`` ``execute_status`` → task status.
STATUS_MAP: Mapping[str, TaskStatus] = {"Running": "running", "Success": "succeeded", "Fail": "failed"}
#: Coze error codes → (class, HTTP status reported when the answer itself was a 200).
CODE_CLASSES: Mapping[int, tuple[type[UpstreamStatusError], int]] = {
    4000: (BadRequest, 400),
    4200: (NotFound, 404),
    4100: (AuthenticationFailed, 401),
    4101: (PermissionDenied, 403),
    4013: (RateLimited, 429),
    4019: (QuotaExceeded, 402),
    5000: (ServerError, 500),
}


def _row(code: int | None) -> tuple[type[UpstreamStatusError], int] | None:
    if code is None:
        return None
    row = CODE_CLASSES.get(code)
    if row is not None:
        return row
    if 4000 <= code < 5000:
        return BadRequest, 400
    if 5000 <= code < 6000:
        return ServerError, 500
    return None


def classified(
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
    """The classified error of a Coze error answer (``status`` is the HTTP status)."""
    row = _row(code)
    if status < 400:
        status = row[1] if row is not None else 500
    return error_for_status(
        status,
        message or f"Coze error {code}",
        provider=provider,
        code=str(code) if code is not None else None,
        cls=row[0] if row is not None else None,
        headers=headers,
        request_id=request_id,
        model=model,
        body=body,
        secrets=secrets,
    )


def failure_info(code: int | str | None, message: str | None, secrets: tuple[Secret | str, ...]) -> TaskErrorInfo:
    text = redact((message or "the Coze workflow failed")[:1000], secrets)
    return TaskErrorInfo(code=str(code) if code not in (None, "", 0) else "workflow_failed", message=text)


def code_of(body: Any) -> tuple[int | None, str, str | None]:
    """``(code, msg, logid)`` of an answer body."""
    if not isinstance(body, Mapping):
        return None, "", None
    code = body.get("code")
    msg = body.get("msg", body.get("message", ""))
    detail = body.get("detail")
    logid = detail.get("logid") if isinstance(detail, Mapping) else None
    return (
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        msg if isinstance(msg, str) else "",
        logid if isinstance(logid, str) else None,
    )


async def raise_for_response(
    response: HttpResponse, *, provider: str, model: str | None, secrets: tuple[Secret | str, ...]
) -> NoReturn:
    """Read an error answer (any status) and raise the classified error."""
    text = await response.text()
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    code, msg, logid = code_of(body)
    raise classified(
        code,
        msg or text[:300],
        status=response.status,
        provider=provider,
        headers=response.headers,
        request_id=logid or response.headers.get("x-tt-logid") or response.request_id,
        model=model,
        body=body,
        secrets=secrets,
    )
