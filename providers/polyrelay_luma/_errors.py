"""Luma errors and generation states → the polyrelay error tree / task states.

HTTP errors carry ``{"detail": "<message>"}`` (the OpenAPI ``Error`` schema, e.g. ``"Invalid API key is
provided"``; FastAPI validation errors send ``detail`` as a list of ``{loc, msg}``); classified by status. A
generation that fails is not an HTTP error: it ends ``failed`` with ``failure_reason`` (and is refunded).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

from polyrelay.classify import error_for_status
from polyrelay.errors import Secret, redact
from polyrelay.transport import HttpResponse
from polyrelay.types.media import TaskErrorInfo, TaskStatus

#: Official generation state → task status (§2.4, §2.7).
STATUS_MAP: Mapping[str, TaskStatus] = {
    "queued": "queued",
    "dreaming": "running",
    "completed": "succeeded",
    "failed": "failed",
}
#: Relay generation state → task status (§2.6).
RELAY_STATUS_MAP: Mapping[str, TaskStatus] = {
    "pending": "queued",
    "processing": "running",
    "completed": "succeeded",
    "failed": "failed",
}


def failure_info(reason: str | None, secrets: tuple[Secret | str, ...]) -> TaskErrorInfo:
    text = redact((reason or "Luma reported the generation failed")[:1000], secrets)
    return TaskErrorInfo(code="generation_failed", message=text)


def _detail_message(body: Any) -> str:
    if not isinstance(body, Mapping):
        return ""
    detail = body.get("detail", body.get("message", body.get("error")))
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
    text = await response.text()
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
