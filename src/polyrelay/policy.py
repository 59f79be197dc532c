"""Routing policy values: retries, backoff, timeouts, circuit breaking, concurrency, strategy, stream recovery.

A :class:`Policy` is a frozen value. Every knob can be set globally, per model, per target and per call; each
level is a *partial* mapping of the same keys (``{"retry": {"max_attempts": 2}, "timeouts": {"idle": 5}}``)
applied with :meth:`Policy.merged`, later levels winning. Validation errors name the full key path
(``models."gpt-4o".policy.retry.max_attempts``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from polyrelay.errors import ConfigError, InvalidRequest
from polyrelay.transport import Timeouts

__all__ = ["CircuitPolicy", "Policy", "RetryPolicy", "Strategy", "StreamRecovery", "did_you_mean", "policy_of"]

Strategy = Literal["priority", "weighted", "round_robin", "least_inflight", "lowest_latency"]
StreamRecovery = Literal["error", "continue"]
QueueMode = Literal["wait", "fail"]


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Retries on one target, in tenacity's vocabulary (exponential backoff with full jitter, capped)."""

    max_attempts: int = 3
    """Attempts per target, the first included."""
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    backoff_multiplier: float = 2.0
    max_retry_after: float = 20.0
    """Honour ``Retry-After`` up to this many seconds; a longer demand fails over instead of sleeping."""
    rate_limit_min_wait: float = 0.5
    """A 429 without ``Retry-After`` waits at least this long before the retry, doubling per retry (0.5 s, 1 s,
    ...), so a rate-limited target gets at most two requests in its first second."""
    retry_on_timeout: bool = False
    """Retry the same target after a timeout with no response (default: fail over at once)."""


@attrs.frozen(kw_only=True)
class CircuitPolicy:
    """Per-target circuit breaker."""

    enabled: bool = True
    consecutive_failures: int = 5
    """Open after this many consecutive failures..."""
    failure_ratio: float = 0.5
    """...or when this share of the calls in ``window`` seconds failed (with at least ``min_calls`` calls)."""
    window: float = 60.0
    min_calls: int = 10
    cooldown: float = 30.0
    """Seconds open before one probe is let through (half-open)."""
    max_cooldown: float = 300.0
    """Each failed probe doubles the next cooldown, up to this many seconds (a success resets it)."""


@attrs.frozen(kw_only=True)
class Policy:
    retry: RetryPolicy = RetryPolicy()
    circuit: CircuitPolicy = CircuitPolicy()
    timeouts: Timeouts = Timeouts()
    deadline: float | None = 300.0
    """Overall budget of one call in seconds: every attempt and every sleep, on every target. Media calls: one
    submission (with its failover), one direct image generation, poll, cancel or action; not the wait for a task."""
    first_token_timeout: float | None = None
    """Streams: fail over when no content arrives this long after the request was sent (None: timeouts.first_byte)."""
    strategy: Strategy = "priority"
    max_concurrency: int | None = None
    """Per target: at most this many calls in flight."""
    queue: QueueMode = "wait"
    """When a target is at max_concurrency: wait for a slot (bounded by ``queue_timeout``) or fail over at once."""
    queue_timeout: float = 30.0
    stream_recovery: StreamRecovery = "error"
    """After content was yielded and the stream broke: raise StreamInterrupted, or ``continue`` on the next target."""
    resubmit_failed_tasks: bool = False
    """Media tasks: when a task fails upstream, resubmit it to the model's next target (global setting)."""
    task_timeout: float = 600.0
    """Media tasks: how long ``images.generate`` and the chat bridge wait for a task to finish."""
    latency_alpha: float = 0.2
    """Smoothing of the moving average of time to first byte (lowest_latency strategy)."""

    def merged(self, overrides: Mapping[str, Any] | None, *, key: str = "", user: bool = False) -> Policy:
        """A copy with ``overrides`` (a partial mapping of this class's keys) applied.

        Errors name ``key`` plus the sub-key; ``user=True`` raises :class:`InvalidRequest` (per-call overrides)
        instead of :class:`ConfigError`.
        """
        if not overrides:
            return self
        merged: Policy = _merge(self, overrides, key, user)
        return merged


_NESTED: Mapping[str, type[Any]] = {"retry": RetryPolicy, "circuit": CircuitPolicy, "timeouts": Timeouts}
_CHOICES: Mapping[str, frozenset[str]] = {
    "strategy": frozenset({"priority", "weighted", "round_robin", "least_inflight", "lowest_latency"}),
    "stream_recovery": frozenset({"error", "continue"}),
    "queue": frozenset({"wait", "fail"}),
}


def policy_of(target: Any) -> Policy:
    """A resolved target's :class:`Policy` (the defaults when it carries none, as hand-built targets may)."""
    policy = target.policy
    return policy if isinstance(policy, Policy) else Policy()


def did_you_mean(name: str, options: Any) -> str:
    """`` (did you mean 'x'?)`` or ``""``."""
    close = difflib.get_close_matches(name, sorted(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _err(msg: str, key: str, user: bool) -> Exception:
    return InvalidRequest(msg, path=key) if user else ConfigError(msg, key=key)


def _check_value(cls: type[Any], name: str, value: Any, key: str, user: bool) -> Any:
    field = attrs.fields_dict(cls)[name]
    default = field.default
    if name in _CHOICES:
        if value not in _CHOICES[name]:
            raise _err(f"must be one of {sorted(_CHOICES[name])}, got {value!r}", key, user)
        return value
    allows_none = default is None or "None" in str(field.type)
    if value is None:
        if not allows_none:
            raise _err("may not be null", key, user)
        return None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _err(f"must be true or false, got {value!r}", key, user)
        return value
    if isinstance(default, int) and not isinstance(default, bool) and "float" not in str(field.type):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _err(f"must be an integer, got {value!r}", key, user)
        if value < 0 or (name == "max_attempts" and value < 1):
            raise _err(f"must be {'at least 1' if name == 'max_attempts' else 'non-negative'}, got {value}", key, user)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _err(f"must be a number of seconds (or a count), got {value!r}", key, user)
    if value < 0:
        raise _err(f"must not be negative, got {value}", key, user)
    if name == "failure_ratio" and not 0 < value <= 1:
        raise _err(f"must be in (0, 1], got {value}", key, user)
    if name == "latency_alpha" and not 0 < value <= 1:
        raise _err(f"must be in (0, 1], got {value}", key, user)
    if isinstance(value, int) and name == "max_concurrency":
        if value < 1:
            raise _err("must be at least 1", key, user)
        return value
    return float(value) if name != "max_concurrency" else value


def _merge(obj: Any, overrides: Mapping[str, Any], key: str, user: bool) -> Any:
    if not isinstance(overrides, Mapping):
        raise _err(f"must be a table/object, got {type(overrides).__name__}", key, user)
    cls = type(obj)
    fields = attrs.fields_dict(cls)
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        sub = f"{key}.{name}" if key else str(name)
        if name not in fields:
            raise _err(f"unknown key{did_you_mean(str(name), fields)}", sub, user)
        if cls is Policy and name in _NESTED:
            changes[name] = _merge(getattr(obj, name), value, sub, user)
        else:
            changes[name] = _check_value(cls, name, value, sub, user)
    return attrs.evolve(obj, **changes)
