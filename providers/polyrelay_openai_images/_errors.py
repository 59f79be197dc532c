"""OpenAI Images error envelopes → the polyrelay error tree (wire-images.md §5.5).

Classified by status and the parsed ``code``/``type`` (never by message text):

- ``content_policy_violation`` (dall-e safety system, 400) and ``moderation_blocked`` (GPT image moderation,
  ``type: image_generation_user_error``), and Azure's ``inner_error.code == "ResponsibleAIPolicyViolation"``
  → :class:`~polyrelay.errors.ContentPolicyViolation`;
- ``insufficient_quota`` → QuotaExceeded, ``rate_limit_exceeded`` → RateLimited, ``invalid_api_key`` →
  AuthenticationFailed, ``unknown_parameter`` and other 400s → BadRequest; 5xx → ServerError / Overloaded
  (through :func:`polyrelay.classify.error_for_status`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

from polyrelay.classify import error_for_status
from polyrelay.errors import ContentPolicyViolation, Secret, UpstreamStatusError, redact
from polyrelay.transport import HttpResponse
from polyrelay_openai_images._wire import ErrorEnvelope, parse

#: Error codes that mean a safety/moderation refusal.
MODERATION_CODES = frozenset({"content_policy_violation", "moderation_blocked", "ResponsibleAIPolicyViolation"})


def _class_for(envelope: ErrorEnvelope) -> type[UpstreamStatusError] | None:
    code = envelope.error.code
    if isinstance(code, str) and code in MODERATION_CODES:
        return ContentPolicyViolation
    inner = envelope.error.extra.get("inner_error") or envelope.extra.get("inner_error")
    if isinstance(inner, Mapping) and inner.get("code") in MODERATION_CODES:
        return ContentPolicyViolation
    return None


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
    message = text[:300] or f"HTTP {response.status}"
    code: str | None = None
    cls: type[UpstreamStatusError] | None = None
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        envelope = parse(body, ErrorEnvelope, provider=provider, what="error body")
        message = envelope.error.message or message
        raw_code = envelope.error.code
        code = str(raw_code) if raw_code is not None else None
        cls = _class_for(envelope)
    raise error_for_status(
        response.status,
        message,
        provider=provider,
        code=code,
        cls=cls,
        headers=response.headers,
        request_id=response.request_id,
        model=model,
        body=body,
        secrets=secrets,
    )
