"""BFL error bodies and task statuses → the polyrelay error tree / task states.

HTTP errors (wire-images.md §3.6): 402 insufficient credits, 403 key lacks permission, 422 FastAPI validation
``{"detail": [{"loc", "msg", "type"}]}`` (``detail`` may also be a string), 429 too many active tasks (24 per
account, 6 for flux-kontext-max), 5xx. Statuses (§3.5): ``Pending``, ``Ready``, ``Request Moderated``,
``Content Moderated``, ``Error``, ``Failed``, ``Task not found``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

from polyrelay.classify import error_for_status
from polyrelay.errors import InvalidUpstreamResponse, Secret, redact
from polyrelay.transport import HttpResponse
from polyrelay.types.media import TaskErrorInfo, TaskStatus

#: BFL status → task status. Anything else (a status BFL adds later) counts as still running.
STATUS_MAP: Mapping[str, TaskStatus] = {
    "Pending": "running",
    "Queued": "queued",
    "Ready": "succeeded",
    "Request Moderated": "failed",
    "Content Moderated": "failed",
    "Error": "failed",
    "Failed": "failed",
    "Task not found": "failed",
}

#: Terminal failure statuses → (error code, message).
FAILURES: Mapping[str, tuple[str, str]] = {
    "Request Moderated": (
        "content_policy_violation",
        "the prompt or input image was flagged by BFL's moderation (Request Moderated)",
    ),
    "Content Moderated": (
        "content_policy_violation",
        "the generated image was flagged by BFL's moderation (Content Moderated)",
    ),
    "Error": ("upstream_error", "BFL reported a processing error"),
    "Failed": ("upstream_error", "BFL reported the task failed"),
    "Task not found": (
        "task_not_found",
        "BFL does not know this task (unknown or expired id, or polled on the wrong host)",
    ),
}


def failure_info(status: str, details: Any, secrets: tuple[Secret | str, ...]) -> TaskErrorInfo:
    code, message = FAILURES[status]
    if details:
        text = details if isinstance(details, str) else json.dumps(details, separators=(",", ":"))
        message = f"{message}: {redact(text[:500], secrets)}"
    return TaskErrorInfo(code=code, message=message)


def _detail_message(body: Any) -> str:
    if not isinstance(body, Mapping):
        return ""
    detail = body.get("detail", body.get("message"))
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, Mapping):
                loc = ".".join(str(x) for x in item.get("loc", ()) if x != "body")
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
        return "; ".join(parts)
    return ""


async def raise_for_response(
    response: HttpResponse, *, provider: str, model: str | None, secrets: tuple[Secret | str, ...]
) -> NoReturn:
    """Read an error response and raise the classified error."""
    # Redact first: upstreams echo keys, and the parsed body is kept on the error.
    text = redact(await response.text(), secrets)
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    message = _detail_message(body) or text[:300] or f"HTTP {response.status}"
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


def foreign_origin_error(url: str, *, provider: str) -> InvalidUpstreamResponse:
    return InvalidUpstreamResponse(
        f"refusing to poll {url.split('?', 1)[0]!r}: it is not on the configured origin "
        "(set foreign_polling = 'anonymous' or 'rewrite', or list the host in trusted_hosts)",
        provider=provider,
        code="foreign_polling_url",
        retryable=False,
    )
