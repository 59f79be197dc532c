"""Ideogram error responses → the polyrelay error tree.

The OpenAPI documents 400 invalid input, 401 not authorised (403 on remix / upscale), 422 safety failure with the
body ``{"error": "<string>"}``, 429 too many requests; other bodies are "any type" (relays send OpenAI-style
``{"error": {"message": ...}}``). A 422 is always a :class:`ContentPolicyViolation`; the rest go by status.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from polyrelay.classify import error_for_status
from polyrelay.errors import ContentPolicyViolation, Secret, UpstreamStatusError, redact

__all__ = ["SAFETY_STATUS", "error_from_response", "error_message"]

#: "Prompt failed the safety check." (every Ideogram endpoint).
SAFETY_STATUS = 422
_SNIPPET = 300


def error_message(body: bytes) -> tuple[str, Any]:
    """The human message in an error body, and the parsed body (``None`` when it is not JSON)."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data: Any = json.loads(text) if text else None
    except ValueError:
        return text[:_SNIPPET], None
    message: Any = None
    if isinstance(data, Mapping):
        err = data.get("error")
        if isinstance(err, Mapping):
            message = err.get("message")
        elif isinstance(err, str):
            message = err
        for key in ("detail", "message", "description"):
            if message is None and isinstance(data.get(key), str):
                message = data[key]
    elif isinstance(data, str):
        message = data
    return (str(message) if message else text[:_SNIPPET]), data


def error_from_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    provider: str,
    secrets: Iterable[Secret | str],
    request_id: str | None,
    model: str | None,
) -> UpstreamStatusError:
    """The classified error of an Ideogram error response (messages redacted)."""
    message, data = error_message(body)
    secrets = tuple(secrets)
    return error_for_status(
        status,
        redact(message, secrets) or f"HTTP {status}",
        provider=provider,
        cls=ContentPolicyViolation if status == SAFETY_STATUS else None,
        headers=headers,
        request_id=request_id,
        model=model,
        body=data,
        secrets=secrets,
    )
