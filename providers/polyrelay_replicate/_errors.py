"""Replicate errors and prediction statuses → the polyrelay error tree / task states.

HTTP errors are RFC 7807 problem details (``application/problem+json``): ``{"title", "detail", "status"}``, e.g.
the recorded 401 ``{"title":"Unauthenticated","detail":"You did not pass a valid authentication token",
"status":401}``; 429 ``{"detail":"Request was throttled. Expected available in 1 second."}`` with Retry-After;
422 input validation. Model failures are not HTTP errors: the prediction ends ``failed`` with ``error``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

from polyrelay.classify import error_for_status
from polyrelay.errors import Secret, redact
from polyrelay.transport import HttpResponse
from polyrelay.types.media import TaskErrorInfo, TaskStatus

#: Replicate status → task status (``aborted``: the Cancel-After deadline passed before the prediction started).
STATUS_MAP: Mapping[str, TaskStatus] = {
    "starting": "queued",
    "processing": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
    "aborted": "failed",
}


def failure_info(status: str, error: Any, secrets: tuple[Secret | str, ...]) -> TaskErrorInfo:
    if status == "aborted":
        return TaskErrorInfo(code="aborted", message="the prediction's deadline passed before it started")
    if isinstance(error, Mapping):
        error = error.get("detail", error.get("message", error))
    text = error if isinstance(error, str) else json.dumps(error, separators=(",", ":")) if error else ""
    return TaskErrorInfo(
        code="prediction_failed", message=redact(text[:1000], secrets) or "the prediction failed without an error"
    )


def _problem_message(body: Any) -> str:
    if not isinstance(body, Mapping):
        return ""
    detail = body.get("detail")
    title = body.get("title")
    if isinstance(detail, str) and detail:
        return f"{title}: {detail}" if isinstance(title, str) and title and title not in detail else detail
    if isinstance(detail, list):
        return "; ".join(str(item.get("msg", item)) if isinstance(item, Mapping) else str(item) for item in detail)
    return title if isinstance(title, str) else ""


async def raise_for_response(
    response: HttpResponse, *, provider: str, model: str | None, secrets: tuple[Secret | str, ...]
) -> NoReturn:
    """Read an error response (problem details, or anything else) and raise the classified error."""
    # Redact first: upstreams echo keys, and the parsed body is kept on the error.
    text = redact(await response.text(), secrets)
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    message = _problem_message(body) or text[:300] or f"HTTP {response.status}"
    raise error_for_status(
        response.status,
        message,
        provider=provider,
        headers=response.headers,
        request_id=response.request_id,
        model=model,
        body=body,
        secrets=secrets,
    )
