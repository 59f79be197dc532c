"""midjourney-proxy failures → the polyrelay error tree (wire-images.md §2.5).

Proxies answer HTTP 200 and put the outcome in the envelope's ``code``: 1 submitted, 21 exists / waiting for the
modal, 22 queued are not errors; the rest are. Relays answer errors with HTTP 400/429 and the same envelope shape
(new-api: ``{"description", "type": "upstream_error", "code"}``), or OpenAI-style ``{"error": {...}}`` for a bad
token; novicezk answers a wrong secret with 401 and an empty body.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from polyrelay.classify import error_for_status
from polyrelay.errors import (
    BadRequest,
    ContentPolicyViolation,
    NotFound,
    QuotaExceeded,
    RateLimited,
    Secret,
    ServerError,
    UpstreamStatusError,
    redact,
)

__all__ = ["CODE_CLASSES", "CODE_EXISTS", "CODE_QUEUED", "CODE_SUBMITTED", "envelope_error", "http_error"]

CODE_SUBMITTED = 1
CODE_EXISTS = 21
CODE_QUEUED = 22
#: Envelope codes that are failures, by class (proxy source ``ReturnCode``); any other code is an
#: :class:`UpstreamStatusError` carrying it.
CODE_CLASSES: Mapping[int, type[UpstreamStatusError]] = {
    3: NotFound,  # referenced task missing or expired; plus/relays: no available account
    4: BadRequest,  # validation error
    9: ServerError,  # system failure
    23: RateLimited,  # queue full: retry later
    24: ContentPolicyViolation,  # banned prompt
}
#: new-api's local error codes travel in ``description`` (``{"code": 4, "description": "quota_not_enough"}``).
_RELAY_CODES: Mapping[str, type[UpstreamStatusError]] = {
    "quota_not_enough": QuotaExceeded,
    "task_not_found": NotFound,
    "task_no_found": NotFound,
}
_SNIPPET = 300


def envelope_error(
    code: int,
    description: str | None,
    properties: Mapping[str, Any] | None,
    *,
    status: int,
    provider: str,
    secrets: Iterable[Secret | str],
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    model: str | None = None,
    body: Any = None,
) -> UpstreamStatusError:
    """The error of a failure envelope (``code`` not 1/21/22), with ``code`` kept as ``error.code``."""
    message = (description or "").strip() or f"midjourney-proxy returned code {code}"
    props = properties or {}
    if code == 24 and props.get("bannedWord"):
        message = f"{message} (banned word: {props['bannedWord']!r})"
    cls = CODE_CLASSES.get(code)
    relay_code = message.split(" ", 1)[0].split(":", 1)[0]
    cls = _RELAY_CODES.get(relay_code, cls)
    if cls is None:
        cls = UpstreamStatusError if status < 400 else None
    return error_for_status(
        status,
        redact(message, tuple(secrets)),
        provider=provider,
        code=str(code),
        cls=cls,
        headers=headers,
        request_id=request_id,
        model=model,
        body=body,
        secrets=secrets,
    )


def http_error(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    provider: str,
    secrets: Iterable[Secret | str],
    request_id: str | None = None,
    model: str | None = None,
) -> UpstreamStatusError:
    """The error of a non-200 response (envelope, OpenAI-style or empty body)."""
    secrets = tuple(secrets)
    text = body.decode("utf-8", "replace").strip()
    data: Any = None
    if text:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
    if isinstance(data, Mapping) and isinstance(data.get("code"), int) and not isinstance(data.get("code"), bool):
        description = data.get("description")
        return envelope_error(
            data["code"],
            description if isinstance(description, str) else None,
            data.get("properties") if isinstance(data.get("properties"), Mapping) else None,
            status=status,
            provider=provider,
            secrets=secrets,
            headers=headers,
            request_id=request_id,
            model=model,
            body=data,
        )
    message: str | None = None
    if isinstance(data, Mapping):
        err = data.get("error")
        if isinstance(err, Mapping) and isinstance(err.get("message"), str):
            message = err["message"]
        elif isinstance(err, str):
            message = err
        elif isinstance(data.get("message"), str):
            message = data["message"]
    if message is None:
        message = text[:_SNIPPET] if text else _EMPTY_BODY_MESSAGES.get(status, f"HTTP {status} with an empty body")
    return error_for_status(
        status,
        redact(message, secrets),
        provider=provider,
        headers=headers,
        request_id=request_id,
        model=model,
        body=data,
        secrets=secrets,
    )


_EMPTY_BODY_MESSAGES: Mapping[int, str] = {
    401: "the midjourney-proxy rejected the credentials (HTTP 401, empty body): check api_key and the auth option",
    403: "the midjourney-proxy refused access (HTTP 403)",
    404: "not found on this midjourney-proxy (HTTP 404)",
}
