"""Shared helpers providers use to classify an upstream error response into the error tree.

Classification is by HTTP status and the parsed error body (a provider passes the code it parsed), never by
regular expressions over message text. ``x-should-retry`` (OpenAI convention) overrides the default
retryability.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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
    ServerError,
    UpstreamStatusError,
    redact,
)
from polyrelay.transport import parse_retry_after

__all__ = ["error_for_status", "STATUS_CLASSES"]

#: Default class per HTTP status; anything else >= 500 is ServerError, other 4xx BadRequest.
STATUS_CLASSES: Mapping[int, type[UpstreamStatusError]] = {
    400: BadRequest,
    401: AuthenticationFailed,
    402: QuotaExceeded,
    403: PermissionDenied,
    404: NotFound,
    413: BadRequest,
    422: BadRequest,
    429: RateLimited,
    503: Overloaded,
    529: Overloaded,
}

#: Error codes (from bodies) that decide the class whatever the status.
CODE_CLASSES: Mapping[str, type[UpstreamStatusError]] = {
    "context_length_exceeded": ContextWindowExceeded,
    "string_above_max_length": ContextWindowExceeded,
    "insufficient_quota": QuotaExceeded,
    "billing_error": QuotaExceeded,
    "invalid_api_key": AuthenticationFailed,
    "content_filter": ContentPolicyViolation,
    "content_policy_violation": ContentPolicyViolation,
    "model_not_found": NotFound,
    "rate_limit_exceeded": RateLimited,
    "overloaded": Overloaded,
}

_RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})


def error_for_status(
    status: int,
    message: str,
    *,
    provider: str,
    code: str | None = None,
    cls: type[UpstreamStatusError] | None = None,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    model: str | None = None,
    body: Any = None,
    secrets: Iterable[Secret | str] = (),
) -> UpstreamStatusError:
    """Build the right :class:`UpstreamStatusError` subclass for an error response.

    ``cls`` forces a class (a provider that recognised e.g. a context-length error from its body); otherwise the
    parsed ``code`` is consulted, then the status.
    """
    hdrs: Mapping[str, str] = headers or {}
    if cls is None and code is not None:
        cls = CODE_CLASSES.get(code)
    if cls is None:
        cls = STATUS_CLASSES.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else UpstreamStatusError
    retryable: bool | None = None
    if cls is UpstreamStatusError:
        retryable = status in _RETRYABLE_STATUSES
    should = hdrs.get("x-should-retry")
    if should == "true":
        retryable = True
    elif should == "false":
        retryable = False
    secrets = tuple(secrets)
    if code is not None:
        code = redact(code, secrets)  # some relays echo the key back as the error code
    kw: dict[str, Any] = {
        "provider": provider,
        "status": status,
        "code": code,
        "request_id": request_id,
        "retryable": retryable,
        "model": model,
        "body": body,
        "headers": {k: v for k, v in hdrs.items() if k.lower() not in _SENSITIVE_HEADERS},
    }
    if issubclass(cls, RateLimited | Overloaded):
        kw["retry_after"] = parse_retry_after(hdrs)
    return cls(redact(message, secrets) or f"HTTP {status}", **kw)


_SENSITIVE_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key", "set-cookie", "x-key"})
