"""Error bodies of OpenAI-compatible upstreams → the polyrelay error tree.

Shapes handled (wire-chat.md §1.8, §4, §5 and the recorded traffic):

- OpenAI: ``{"error": {"message", "type", "param", "code"}}`` (``code`` a string or null);
- OpenRouter: ``{"error": {"code": 429, "message", "metadata": {"provider_name", "raw", "reasons"...}}}`` — the code
  is the HTTP status as a number;
- Mistral / vLLM: ``{"object": "error", "message", "type", "param", "code"}`` (Mistral's ``message`` can be an
  object holding validation details);
- Groq in-stream: ``event: error`` + ``{"error": {..., "status_code": 400}}``;
- anything else (``{"detail": ...}``, an HTML page from an edge proxy): the status decides, the text is the message.

Classification goes by HTTP status and the parsed ``code`` / ``type``, through
:func:`polyrelay.classify.error_for_status`; never by matching message text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from polyrelay.classify import error_for_status
from polyrelay.errors import (
    AuthenticationFailed,
    BadRequest,
    ContentPolicyViolation,
    ContextWindowExceeded,
    NotFound,
    Overloaded,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    Secret,
    UpstreamStatusError,
    redact,
)

if TYPE_CHECKING:
    from polyrelay.transport import HttpResponse

__all__ = ["ErrorInfo", "error_from_body", "error_from_response", "inband_error", "is_inband_error", "parse_error"]

#: Vendor error codes the shared table in polyrelay.classify does not know (string codes, compared exactly).
VENDOR_CODE_CLASSES: Mapping[str, type[UpstreamStatusError]] = {
    "invalid_authentication": AuthenticationFailed,
    "authentication_error": AuthenticationFailed,
    "unsupported_country_region_territory": PermissionDenied,
    "content_filtered": ContentPolicyViolation,
    "moderation_blocked": ContentPolicyViolation,
    "data_inspection_failed": ContentPolicyViolation,  # DashScope: input/output failed content inspection
    "Arrearage": QuotaExceeded,  # DashScope: account in arrears
    "1301": ContentPolicyViolation,  # Zhipu: unsafe or sensitive content
    "1113": QuotaExceeded,  # Zhipu: account balance exhausted
    "tool_use_failed": BadRequest,  # Groq: the model produced an invalid tool call
}

#: Error ``type`` values that decide the class (checked after the code). Plain ``invalid_request_error`` is not
#: here on purpose: OpenAI uses it with 401 and 404 as well, so the status must decide.
TYPE_CLASSES: Mapping[str, type[UpstreamStatusError]] = {
    "insufficient_quota": QuotaExceeded,
    "exceeded_current_quota_error": QuotaExceeded,  # Moonshot
    "authentication_error": AuthenticationFailed,
    "invalid_authentication_error": AuthenticationFailed,  # Moonshot
    "permission_error": PermissionDenied,
    "not_found_error": NotFound,
    "rate_limit_error": RateLimited,
    "rate_limit_reached_error": RateLimited,  # Moonshot
    "overloaded_error": Overloaded,
    "engine_overloaded_error": Overloaded,  # Moonshot
    "content_filter": ContentPolicyViolation,
    "context_length_exceeded": ContextWindowExceeded,
}

#: For errors that arrive inside an HTTP 200 (stream events, 200 bodies): the status a ``type`` stands for, when
#: the error object carries no status of its own. Unknown in-band errors count as server errors (500).
TYPE_STATUS: Mapping[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "tokens": 429,
    "requests": 429,
    "insufficient_quota": 429,
    "overloaded_error": 529,
    "server_error": 500,
    "api_error": 500,
}

_MAX_MESSAGE = 1000
_MAX_RAW = 500


@attrs.frozen(kw_only=True)
class ErrorInfo:
    """What an error body says, in one shape."""

    message: str
    code: str | None = None
    type: str | None = None
    status: int | None = None
    """A status the body itself states (OpenRouter's numeric ``code``, Groq's ``status_code``)."""
    moderation: bool = False
    """OpenRouter moderation rejection (``metadata.reasons`` / ``flagged_input``)."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return str(value)


def _status_of(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return value
    if isinstance(value, str) and value.isdigit() and 100 <= int(value) <= 599:
        return int(value)
    return None


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_inband_error(data: Any) -> bool:
    """True when a 200 body or a stream event is an error object rather than a completion / chunk."""
    if data.__class__ is not dict and not isinstance(data, Mapping):  # (the ABC check is a Python-level call)
        return False
    return bool(data.get("error")) or data.get("object") == "error"


def parse_error(body: Any, text: str = "") -> ErrorInfo:
    """Read an error body of any of the shapes in the module docstring."""
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping):
            return _from_object(err)
        if isinstance(err, str) and err:
            return ErrorInfo(message=_clip(err, _MAX_MESSAGE), type=_opt_str(body.get("type")))
        if body.get("object") == "error" or "message" in body:
            return _from_object(body)
        if "detail" in body:
            return ErrorInfo(message=_clip(_text(body["detail"]), _MAX_MESSAGE))
    return ErrorInfo(message=_clip(text, 200))


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _from_object(err: Mapping[str, Any]) -> ErrorInfo:
    message = _text(err.get("message"))
    raw_code = err.get("code")
    status = _status_of(err.get("status_code")) or _status_of(err.get("status"))
    code: str | None
    if isinstance(raw_code, int) and not isinstance(raw_code, bool):
        code = str(raw_code)
        status = status or _status_of(raw_code)
    else:
        code = _opt_str(raw_code)
    moderation = False
    metadata = err.get("metadata")
    if isinstance(metadata, Mapping):
        # OpenRouter: what the routed provider said is in metadata.raw; moderation flags in reasons/flagged_input.
        raw = metadata.get("raw")
        who = metadata.get("provider_name")
        if raw:
            prefix = f"{who}: " if isinstance(who, str) and who else ""
            message = f"{message} ({prefix}{_clip(_text(raw), _MAX_RAW)})"
        moderation = bool(metadata.get("reasons") or metadata.get("flagged_input"))
    return ErrorInfo(
        message=_clip(message, _MAX_MESSAGE),
        code=code,
        type=_opt_str(err.get("type")),
        status=status,
        moderation=moderation,
    )


def _class_for(info: ErrorInfo) -> type[UpstreamStatusError] | None:
    if info.moderation:
        return ContentPolicyViolation
    if info.code is not None and info.code in VENDOR_CODE_CLASSES:
        return VENDOR_CODE_CLASSES[info.code]
    if info.type is not None and info.type in TYPE_CLASSES:
        from polyrelay.classify import CODE_CLASSES

        # A recognised code (polyrelay.classify) is more specific than the type: let it decide.
        if info.code is None or info.code not in CODE_CLASSES:
            return TYPE_CLASSES[info.type]
    return None


def _redacted_code(code: str | None, secrets: tuple[Secret | str, ...]) -> str | None:
    # The code is upstream text too: a relay may put the key it rejected there.
    return redact(code, secrets) if code and secrets else code


def _redacted_body(body: Any, secrets: tuple[Secret | str, ...]) -> Any:
    if body is None or not secrets:
        return body
    try:
        return json.loads(redact(json.dumps(body, ensure_ascii=False), secrets))
    except (TypeError, ValueError):
        return None


def error_from_body(
    status: int,
    body: Any,
    text: str = "",
    *,
    provider: str,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    model: str | None = None,
    secrets: Iterable[Secret | str] = (),
) -> UpstreamStatusError:
    """The classified error for an HTTP error response (``status`` is the HTTP status)."""
    info = parse_error(body, text)
    secrets_t = tuple(secrets)
    message = info.message or f"HTTP {status}"
    return error_for_status(
        status,
        message,
        provider=provider,
        code=_redacted_code(info.code, secrets_t),
        cls=_class_for(info),
        headers=headers,
        request_id=request_id,
        model=model,
        body=_redacted_body(body if body is not None else (text[:_MAX_RAW] or None), secrets_t),
        secrets=secrets_t,
    )


def inband_error(
    data: Any,
    *,
    provider: str,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    model: str | None = None,
    secrets: Iterable[Secret | str] = (),
) -> UpstreamStatusError:
    """The classified error for an error object sent with HTTP 200 (a stream event or a 200 body). Its status is
    the one the object states, else the one its ``type`` stands for, else 500."""
    info = parse_error(data)
    status = info.status or (TYPE_STATUS.get(info.type, 500) if info.type else 500)
    secrets_t = tuple(secrets)
    return error_for_status(
        status,
        info.message or "the upstream reported an error in its response",
        provider=provider,
        code=_redacted_code(info.code, secrets_t),
        cls=_class_for(info),
        headers=headers,
        request_id=request_id,
        model=model,
        body=_redacted_body(data, secrets_t),
        secrets=secrets_t,
    )


async def error_from_response(
    resp: HttpResponse, *, provider: str, model: str | None, secrets: tuple[Secret | str, ...]
) -> UpstreamStatusError:
    """Read an error response's body (whatever it is) and classify it."""
    raw = await resp.read()
    text = raw.decode("utf-8", "replace")
    body: Any = None
    if text.strip():
        try:
            body = json.loads(text)
        except ValueError:
            body = None
    return error_from_body(
        resp.status,
        body,
        text,
        provider=provider,
        headers=resp.headers,
        request_id=resp.request_id,
        model=model,
        secrets=secrets,
    )
