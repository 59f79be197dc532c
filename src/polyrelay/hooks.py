"""Router hooks (for metrics and tracing) and the built-in log lines.

Subclass :class:`RouterHooks`, override the methods you need and pass instances as ``Router(hooks=[...])``. Hooks
are called synchronously on the event loop, in order, right where the event happens: keep them fast (increment a
counter, record a span event); start a task yourself for anything slow. An exception raised by a hook is logged
and swallowed; it never fails the call.

The router logs through the ``polyrelay.router`` logger (a child of ``polyrelay``): one line per attempt outcome
(DEBUG for successes, WARNING for failures), one per retry and failover (INFO) and one per circuit change (WARNING
when a circuit opens, INFO otherwise). Lines carry provider, model, error class, status and timings; never request
bodies or headers, and error messages have passed through the provider's key redaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import attrs

from polyrelay.circuit import CircuitState
from polyrelay.types.completion import Attempt

__all__ = [
    "AttemptEvent",
    "CircuitEvent",
    "FailoverEvent",
    "FailoverReason",
    "LoggingHooks",
    "RetryEvent",
    "RouterHooks",
    "logger",
]

logger = logging.getLogger("polyrelay.router")
# A library never prints on its own: without this, Python's last-resort handler would print WARNING lines to stderr
# in applications that did not configure logging. Handlers the application sets up still receive everything.
logger.addHandler(logging.NullHandler())

FailoverReason = Literal[
    "retries_exhausted",
    "not_retryable_here",
    "circuit_open",
    "busy",
    "context_window",
    "content_policy",
    "stream_interrupted",
]


@attrs.frozen(kw_only=True)
class AttemptEvent:
    """An attempt ended (``attempt.outcome`` is ``success``, ``error`` or ``skipped``)."""

    requested_model: str
    attempt: Attempt
    number: int
    """1 for the first attempt on this target in this call, 2 for its first retry, ..."""
    stream: bool


@attrs.frozen(kw_only=True)
class RetryEvent:
    """The router is about to sleep ``sleep`` seconds and retry the same target."""

    requested_model: str
    provider: str
    model: str
    next_attempt: int
    sleep: float
    error: BaseException
    retry_after: float | None
    """The delay the upstream asked for, when it did (``sleep`` honours it)."""


@attrs.frozen(kw_only=True)
class FailoverEvent:
    """The router leaves a target for the next candidate."""

    requested_model: str
    provider: str
    model: str
    reason: FailoverReason
    error: BaseException | None


@attrs.frozen(kw_only=True)
class CircuitEvent:
    """A target's circuit changed state."""

    target: str
    old: CircuitState
    new: CircuitState
    reason: str
    open_until: float | None = None


class RouterHooks:
    """Base class of router hooks; every method does nothing unless overridden."""

    def on_attempt(self, event: AttemptEvent) -> None:
        """An attempt ended (success, error, or skipped because the target was open or busy)."""

    def on_retry(self, event: RetryEvent) -> None:
        """A retry on the same target is about to happen after a sleep."""

    def on_failover(self, event: FailoverEvent) -> None:
        """The call moves on from a target."""

    def on_circuit_change(self, event: CircuitEvent) -> None:
        """A circuit opened, went half-open or closed."""


class LoggingHooks(RouterHooks):
    """The router's own log lines (always installed, first)."""

    def on_attempt(self, event: AttemptEvent) -> None:
        a = event.attempt
        if a.outcome == "success":
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "attempt ok: requested=%s provider=%s model=%s try=%d latency=%.3fs%s",
                    event.requested_model,
                    a.provider,
                    a.model,
                    event.number,
                    a.latency,
                    f" first_byte={a.first_byte:.3f}s" if a.first_byte is not None else "",
                )
            return
        if logger.isEnabledFor(logging.WARNING):
            logger.warning(
                "attempt %s: requested=%s provider=%s model=%s try=%d error=%s%s latency=%.3fs: %s",
                "skipped" if a.outcome == "skipped" else "failed",
                event.requested_model,
                a.provider,
                a.model,
                event.number,
                a.error_type,
                f" status={a.status}" if a.status is not None else "",
                a.latency,
                a.error,
            )

    def on_retry(self, event: RetryEvent) -> None:
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "retry: requested=%s provider=%s model=%s try=%d after %.3fs%s (error=%s)",
                event.requested_model,
                event.provider,
                event.model,
                event.next_attempt,
                event.sleep,
                f" (retry-after {event.retry_after:g}s)" if event.retry_after is not None else "",
                type(event.error).__name__,
            )

    def on_failover(self, event: FailoverEvent) -> None:
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "failover: requested=%s from provider=%s model=%s reason=%s error=%s",
                event.requested_model,
                event.provider,
                event.model,
                event.reason,
                type(event.error).__name__ if event.error is not None else None,
            )

    def on_circuit_change(self, event: CircuitEvent) -> None:
        level = logging.WARNING if event.new == "open" else logging.INFO
        if logger.isEnabledFor(level):
            logger.log(level, "circuit %s -> %s: target=%s (%s)", event.old, event.new, event.target, event.reason)


class HookSet:
    """Calls every hook in order; a failing hook is logged and skipped."""

    __slots__ = ("_hooks", "_user")

    def __init__(self, hooks: Sequence[RouterHooks]) -> None:
        self._user = tuple(hooks)
        self._hooks: tuple[RouterHooks, ...] = (LoggingHooks(), *self._user)

    @property
    def user_hooks(self) -> tuple[RouterHooks, ...]:
        return self._user

    def wants_successes(self) -> bool:
        """Is anyone listening for successful attempts? (Saves building an event per call when not.)"""
        return bool(self._user) or logger.isEnabledFor(logging.DEBUG)

    def attempt(self, event: AttemptEvent) -> None:
        for h in self._hooks:
            try:
                h.on_attempt(event)
            except Exception:  # a metrics hook must never fail a call
                logger.exception("router hook %r failed in on_attempt", h)

    def retry(self, event: RetryEvent) -> None:
        for h in self._hooks:
            try:
                h.on_retry(event)
            except Exception:
                logger.exception("router hook %r failed in on_retry", h)

    def failover(self, event: FailoverEvent) -> None:
        for h in self._hooks:
            try:
                h.on_failover(event)
            except Exception:
                logger.exception("router hook %r failed in on_failover", h)

    def circuit(self, event: CircuitEvent) -> None:
        for h in self._hooks:
            try:
                h.on_circuit_change(event)
            except Exception:
                logger.exception("router hook %r failed in on_circuit_change", h)
