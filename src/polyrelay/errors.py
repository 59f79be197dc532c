"""The polyrelay exception tree.

Every error polyrelay raises is a :class:`PolyrelayError`. User mistakes are kept apart from upstream
failures, so a caller can tell "fix your request or config" from "the provider misbehaved"::

    PolyrelayError
    ├── InvalidRequest                  bad call arguments; raised before any network call; .path names the field
    │   └── UnsupportedFeature          valid OpenAI input the chosen upstream cannot represent
    ├── ConfigError                     bad router config; .key names the config key, .env_var a missing secret
    ├── PluginError                     a provider plugin cannot be found, loaded or has the wrong API version
    ├── UpstreamError                   a provider failed; .provider .status .code .message .request_id .retryable
    │   ├── UpstreamStatusError         the upstream answered with an error status or error body
    │   │   ├── BadRequest              400, 422
    │   │   │   └── ContextWindowExceeded
    │   │   ├── ContentPolicyViolation  a safety/moderation rejection (any status, also a blocked 200)
    │   │   ├── AuthenticationFailed    401 (and key-invalid bodies sent with other statuses)
    │   │   ├── PermissionDenied        403
    │   │   ├── NotFound                404
    │   │   ├── RateLimited             429; .retry_after in seconds when the upstream said
    │   │   │   └── QuotaExceeded       billing / insufficient quota: not worth retrying
    │   │   ├── Overloaded              503, 529
    │   │   └── ServerError             other 5xx
    │   ├── TransportError              no usable HTTP answer
    │   │   ├── ConnectionFailed        refused, reset, DNS, TLS
    │   │   └── UpstreamTimeout         .kind says which timeout fired
    │   │       ├── ConnectTimeout
    │   │       ├── FirstByteTimeout    no response headers in time
    │   │       ├── FirstTokenTimeout   headers arrived, no content in time
    │   │       ├── IdleTimeout         a stream went quiet between chunks
    │   │       └── DeadlineExceeded    the call's overall budget ran out
    │   ├── InvalidUpstreamResponse     a body or stream event we could not parse
    │   └── StreamInterrupted           a stream broke after content was delivered; .partial has what arrived
    ├── TaskError                       media generation tasks
    │   ├── TaskFailed                  the upstream reported the task failed
    │   └── TaskTimeout                 waiting for a task exceeded its timeout
    └── AllTargetsFailed                every target of a call failed; .errors lists them in order

Providers *classify* (they choose the class and fill in ``retryable`` from the status and the parsed body);
only the router decides whether to retry or fail over. Messages never contain API keys: providers pass the
secrets they hold through :func:`redact` before building an error, and :class:`Secret` masks itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "AllTargetsFailed",
    "AuthenticationFailed",
    "BadRequest",
    "ConfigError",
    "ConnectTimeout",
    "ConnectionFailed",
    "ContentPolicyViolation",
    "ContextWindowExceeded",
    "DeadlineExceeded",
    "FirstByteTimeout",
    "FirstTokenTimeout",
    "IdleTimeout",
    "InvalidRequest",
    "InvalidUpstreamResponse",
    "NotFound",
    "Overloaded",
    "PermissionDenied",
    "PluginError",
    "PolyrelayError",
    "QuotaExceeded",
    "RateLimited",
    "Secret",
    "ServerError",
    "StreamInterrupted",
    "TaskError",
    "TaskFailed",
    "TaskTimeout",
    "TransportError",
    "UnsupportedFeature",
    "UpstreamError",
    "UpstreamStatusError",
    "UpstreamTimeout",
    "redact",
]


class Secret:
    """A credential that never shows itself: ``str()``, ``repr()`` and f-strings give a mask.

    Call :meth:`reveal` at the single place the value goes onto the wire.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    @property
    def masked(self) -> str:
        return mask(self._value)

    def __repr__(self) -> str:
        return f"Secret({self.masked!r})"

    def __str__(self) -> str:
        return self.masked

    def __format__(self, spec: str) -> str:
        return self.masked

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:  # pickling must not be a side door either
        raise TypeError("Secret values cannot be pickled")


def mask(value: str) -> str:
    """``sk-abcdef…`` → ``sk-…(24 chars)``: enough to tell keys apart, never enough to use one."""
    if not value:
        return ""
    head = value[:3] if len(value) >= 12 else ""
    return f"{head}…({len(value)} chars)"


def redact(text: str, secrets: Iterable[Secret | str | None]) -> str:
    """Replace every occurrence of each secret (and of its longer prefixes/suffixes) in ``text``."""
    for s in secrets:
        if s is None:
            continue
        raw = s.reveal() if isinstance(s, Secret) else s
        if len(raw) < 6:
            continue
        if raw in text:
            text = text.replace(raw, mask(raw))
        # Upstreams echo keys partially ("Incorrect API key provided: sk-abc***wxyz"); scrub long fragments.
        for frag in (raw[:12], raw[-8:]):
            if len(frag) >= 8 and frag in text:
                text = text.replace(frag, "…")
    return text


class PolyrelayError(Exception):
    """Base class of every error polyrelay raises."""


class InvalidRequest(PolyrelayError, ValueError):
    """The call's arguments are invalid. Raised before any network call.

    ``path`` names the offending field, e.g. ``messages[2].content[0].image_url``.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class UnsupportedFeature(InvalidRequest):
    """Valid OpenAI input that the chosen upstream cannot represent (raised before the network call)."""

    def __init__(self, message: str, *, path: str = "", provider: str = "") -> None:
        self.provider = provider
        super().__init__(f"{message} (provider {provider!r})" if provider else message, path=path)


class ConfigError(PolyrelayError, ValueError):
    """The router configuration is wrong. ``key`` is the dotted path of the config key."""

    def __init__(self, message: str, *, key: str = "", env_var: str | None = None) -> None:
        self.key = key
        self.env_var = env_var
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


class PluginError(PolyrelayError):
    """A provider plugin could not be discovered or loaded, or declares an incompatible API version."""


class UpstreamError(PolyrelayError):
    """A provider failed to produce an answer.

    Attributes are facts the provider established; ``retryable`` is the provider's classification (true for
    transient faults such as 429 and 5xx). Whether to retry, and where to fail over, is the router's decision.
    """

    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
        model: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message
        self.provider = provider
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retryable = self.default_retryable if retryable is None else retryable
        self.model = model
        self.body = body
        self.headers: Mapping[str, str] = dict(headers or {})
        super().__init__(message)

    def __str__(self) -> str:
        bits = [f"[{self.provider}]" if self.provider else "", self.message]
        meta = []
        if self.status is not None:
            meta.append(f"status={self.status}")
        if self.code:
            meta.append(f"code={self.code}")
        if self.request_id:
            meta.append(f"request_id={self.request_id}")
        if meta:
            bits.append("(" + ", ".join(meta) + ")")
        return " ".join(b for b in bits if b)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, status={self.status!r}, code={self.code!r}, "
            f"retryable={self.retryable!r}, message={self.message!r})"
        )


class UpstreamStatusError(UpstreamError):
    """The upstream answered with an error (an HTTP error status, or an error object in a 200 body/stream)."""


class BadRequest(UpstreamStatusError):
    """400/422: the upstream rejected the request as invalid."""


class ContextWindowExceeded(BadRequest):
    """The prompt (plus requested output) does not fit the model's context window."""


class ContentPolicyViolation(UpstreamStatusError):
    """The upstream refused the prompt or output on safety/moderation grounds. ``message`` carries the reason."""


class AuthenticationFailed(UpstreamStatusError):
    """401, or a body saying the key is invalid."""


class PermissionDenied(UpstreamStatusError):
    """403: the key may not use this model, region or feature."""


class NotFound(UpstreamStatusError):
    """404: unknown model or endpoint."""


class RateLimited(UpstreamStatusError):
    """429. ``retry_after`` is the delay in seconds the upstream asked for, when it said."""

    default_retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class QuotaExceeded(RateLimited):
    """Quota or billing exhausted (``insufficient_quota``, 402): retrying the same target will not help."""

    default_retryable = False


class Overloaded(UpstreamStatusError):
    """503/529: the upstream is temporarily over capacity."""

    default_retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class ServerError(UpstreamStatusError):
    """Any other 5xx."""

    default_retryable = True


class TransportError(UpstreamError):
    """No usable HTTP answer: the connection failed or a timeout fired."""

    default_retryable = True


class ConnectionFailed(TransportError):
    """Connection refused or reset, DNS or TLS failure, or the server closed without answering."""


class UpstreamTimeout(TransportError):
    """A timeout fired. ``kind`` is one of connect, first_byte, first_token, idle, deadline."""

    kind = "timeout"


class ConnectTimeout(UpstreamTimeout):
    kind = "connect"


class FirstByteTimeout(UpstreamTimeout):
    kind = "first_byte"


class FirstTokenTimeout(UpstreamTimeout):
    kind = "first_token"


class IdleTimeout(UpstreamTimeout):
    kind = "idle"


class DeadlineExceeded(UpstreamTimeout):
    """The call's overall deadline ran out (across every attempt and sleep)."""

    kind = "deadline"
    default_retryable = False


class InvalidUpstreamResponse(UpstreamError):
    """The upstream's body or stream could not be parsed into its wire type."""

    default_retryable = True


class StreamInterrupted(UpstreamError):
    """A stream broke after content had been delivered to the caller.

    ``partial`` is the assistant text received so far; ``partial_reasoning`` likewise for reasoning text.
    """

    default_retryable = True

    def __init__(self, message: str, *, partial: str = "", partial_reasoning: str = "", **kw: Any) -> None:
        self.partial = partial
        self.partial_reasoning = partial_reasoning
        super().__init__(message, **kw)


class TaskError(PolyrelayError):
    """Base class for media-generation task failures."""

    def __init__(self, message: str, *, task_id: str = "", provider: str = "", code: str | None = None) -> None:
        self.task_id = task_id
        self.provider = provider
        self.code = code
        self.message = message
        super().__init__(message)


class TaskFailed(TaskError):
    """The upstream reported that the task failed."""


class TaskTimeout(TaskError):
    """Waiting for the task exceeded its timeout; the task may still finish upstream."""


class AllTargetsFailed(PolyrelayError):
    """Every target tried for a call failed. ``errors`` holds each attempt's error in order; ``last`` the final one."""

    def __init__(self, message: str, *, model: str, errors: Sequence[BaseException]) -> None:
        self.model = model
        self.errors = tuple(errors)
        super().__init__(message)

    @property
    def last(self) -> BaseException | None:
        return self.errors[-1] if self.errors else None
