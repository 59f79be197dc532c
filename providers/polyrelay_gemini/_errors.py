"""google.rpc ``Status`` error bodies → the polyrelay error tree.

Gemini answers errors with ``{"error": {"code", "message", "status", "details": [...]}}`` (sometimes wrapped in a
one-element list), both as HTTP error bodies and as in-stream ``data:`` events. The class is chosen from the
canonical ``status`` and the typed ``details`` (``ErrorInfo.reason``, ``RetryInfo.retryDelay``), not from free
text; the one message test is for the documented context-length shape of an ``INVALID_ARGUMENT``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from polyrelay.classify import error_for_status
from polyrelay.errors import (
    AuthenticationFailed,
    BadRequest,
    ContextWindowExceeded,
    NotFound,
    Overloaded,
    PermissionDenied,
    RateLimited,
    Secret,
    ServerError,
    UpstreamStatusError,
)

__all__ = ["classify_error", "error_status", "is_error_payload", "parse_retry_delay"]

_TYPE_PREFIX: Final = "type.googleapis.com/google.rpc."

#: Canonical google.rpc status → class (the HTTP status decides when the body has none).
STATUS_CLASSES: Final[Mapping[str, type[UpstreamStatusError]]] = {
    "INVALID_ARGUMENT": BadRequest,
    "FAILED_PRECONDITION": BadRequest,
    "OUT_OF_RANGE": BadRequest,
    "UNAUTHENTICATED": AuthenticationFailed,
    "PERMISSION_DENIED": PermissionDenied,
    "NOT_FOUND": NotFound,
    "RESOURCE_EXHAUSTED": RateLimited,
    "INTERNAL": ServerError,
    "UNKNOWN": ServerError,
    "DATA_LOSS": ServerError,
    "UNAVAILABLE": Overloaded,
    "DEADLINE_EXCEEDED": ServerError,
}

#: ``ErrorInfo.reason`` values that mean the credential itself is bad (Gemini sends them with 400, not 401).
AUTH_REASONS: Final = frozenset(
    {"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED", "ACCESS_TOKEN_EXPIRED", "CREDENTIALS_MISSING"}
)

#: The documented context-length rejection: "The input token count (1234567) exceeds the maximum number of
#: tokens allowed (1048576)." (400 INVALID_ARGUMENT).
_CONTEXT_MESSAGE: Final = re.compile(
    r"\binput token count \(?\d+\)? exceeds the maximum number of tokens allowed\b", re.IGNORECASE
)
#: proto3 JSON Duration: "27s", "34.4s", "0.5s".
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def is_error_payload(data: Any) -> bool:
    """True for ``{"error": {...}}`` or ``[{"error": {...}}]``."""
    return _status_object(data) is not None


def _status_object(data: Any) -> Mapping[str, Any] | None:
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if isinstance(data, Mapping):
        err = data.get("error")
        if isinstance(err, Mapping):
            return err
    return None


def error_status(data: Any) -> int | None:
    """The numeric ``error.code`` of an error payload (used for in-stream errors, which arrive with HTTP 200)."""
    err = _status_object(data)
    code = err.get("code") if err is not None else None
    return code if isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599 else None


def parse_retry_delay(value: Any) -> float | None:
    """``RetryInfo.retryDelay`` (``"27s"``, or ``{"seconds": 27, "nanos": 0}``) in seconds."""
    if isinstance(value, str):
        m = _DURATION.match(value)
        return float(m.group(1)) if m else None
    if isinstance(value, Mapping):
        seconds, nanos = value.get("seconds", 0), value.get("nanos", 0)
        try:
            return max(0.0, float(seconds) + float(nanos) / 1e9)
        except (TypeError, ValueError):
            return None
    return None


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _details(err: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Detail objects by short type name (``ErrorInfo``, ``RetryInfo``, ``QuotaFailure`` ...)."""
    out: dict[str, Mapping[str, Any]] = {}
    details = err.get("details")
    if isinstance(details, list):
        for d in details:
            if isinstance(d, Mapping):
                t = d.get("@type")
                if isinstance(t, str):
                    out.setdefault(t.removeprefix(_TYPE_PREFIX), d)
    return out


def classify_error(
    status: int,
    body: Any,
    *,
    provider: str,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    model: str | None = None,
    secrets: Iterable[Secret | str] = (),
    text: str | None = None,
) -> UpstreamStatusError:
    """The error for an HTTP error response (or an in-stream error event, with its ``error.code`` as ``status``).

    ``body`` is the parsed JSON (``None`` when the body was not JSON; ``text`` then holds a snippet of it).
    """
    err = _status_object(body)
    if err is None:
        message = (text or "").strip()[:300] or f"HTTP {status}"
        return error_for_status(
            status,
            message,
            provider=provider,
            headers=headers,
            request_id=request_id,
            model=model,
            body=body,
            secrets=secrets,
        )
    rpc_status = _string(err.get("status"))
    message = _string(err.get("message")) or ""
    details = _details(err)
    reason = _string(details.get("ErrorInfo", {}).get("reason"))

    cls: type[UpstreamStatusError] | None = None
    if reason in AUTH_REASONS:
        cls = AuthenticationFailed
    elif rpc_status == "INVALID_ARGUMENT" and _CONTEXT_MESSAGE.search(message):
        cls = ContextWindowExceeded
    elif rpc_status is not None:
        cls = STATUS_CLASSES.get(rpc_status)
    error = error_for_status(
        status,
        message or (rpc_status or f"HTTP {status}"),
        provider=provider,
        code=reason or rpc_status,
        cls=cls,
        headers=headers,
        request_id=request_id,
        model=model,
        body=body,
        secrets=secrets,
    )
    if isinstance(error, RateLimited | Overloaded):
        # RetryInfo is how Gemini says when to come back; a Retry-After header is not reliably sent.
        delay = parse_retry_delay(details.get("RetryInfo", {}).get("retryDelay"))
        if delay is not None:
            error.retry_after = delay
    return error
