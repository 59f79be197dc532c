"""The attempt loop: retries on one target (tenacity), failover along the candidates, one deadline per call.

One call walks its **chain**: the requested model's targets (ordered by the model's strategy), then the models
named in ``fallbacks`` (depth first, each once). For every target:

- the circuit breaker may skip it (open); the concurrency limit may skip it (busy);
- the first attempt runs outside any retry machinery (the fast path); on a failure that retrying can fix on this
  target, tenacity drives the remaining attempts: ``stop_after_attempt`` and a stop at the call's deadline,
  ``wait_random_exponential`` (full jitter, capped) or exactly the upstream's ``retry_after``;
- when it is spent, the call moves to the next candidate.

What happens after an error (the error classes are the provider's classification):

=======================================  =====================================  ==================================
error                                    same target                            then
=======================================  =====================================  ==================================
RateLimited / Overloaded (retry_after)   retry after ``retry_after`` if it is   next target
                                         <= ``max_retry_after``, else no retry
RateLimited (no retry_after)             retry with backoff, at least           next target
                                         ``rate_limit_min_wait`` doubling
Overloaded / ServerError,                retry with backoff                     next target
InvalidUpstreamResponse, a stream that
broke before its first content
408, 409, 425 (classified retryable)     retry with backoff                     next target
QuotaExceeded, AuthenticationFailed,     never                                  next target
PermissionDenied, NotFound, other
non-retryable upstream errors
ConnectTimeout, FirstByteTimeout,        only with ``retry_on_timeout``         next target
FirstTokenTimeout, IdleTimeout
ConnectionFailed (refused, reset)        only when no other candidate is left   next target
UnsupportedFeature (before the network)  never                                  next target
ContextWindowExceeded                    never                                  ``context_window_fallbacks`` only
                                                                                (else raised at once)
ContentPolicyViolation                   never                                  ``content_policy_fallbacks`` only
                                                                                (else raised at once)
BadRequest, InvalidRequest               never                                  raised at once
the call's deadline ran out              —                                      DeadlineExceeded
=======================================  =====================================  ==================================

Retries on a target also stop when its circuit opens or when the next sleep would end past the deadline. A target
at its ``max_concurrency`` (:class:`~polyrelay.concurrency.TargetBusy`) is passed over for the next one.

Context-window and content-policy errors never go to the model's other targets or generic fallbacks: those serve
the same model (the same window, the same safety system), so only the opt-in maps lead anywhere.

When every target failed, :class:`AllTargetsFailed` lists every attempt's error, except when the call only ever
reached one target: then that target's last error is raised as is (``except RateLimited`` works with a single
deployment). When every target was skipped because its circuit is open, the one whose cooldown ends first is tried
anyway (a half-open probe) rather than failing without trying.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

import attrs
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base, wait_exponential, wait_random_exponential

from polyrelay._twins import maker
from polyrelay.circuit import CircuitBreaker, Outcome, outcome_of
from polyrelay.concurrency import Slots, TargetBusy
from polyrelay.errors import (
    AllTargetsFailed,
    AuthenticationFailed,
    BadRequest,
    ConnectionFailed,
    ContentPolicyViolation,
    ContextWindowExceeded,
    DeadlineExceeded,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Secret,
    UnsupportedFeature,
    UpstreamError,
    UpstreamTimeout,
    redact,
)
from polyrelay.hooks import AttemptEvent, FailoverEvent, FailoverReason, HookSet, RetryEvent
from polyrelay.policy import Policy, RetryPolicy
from polyrelay.provider import ENFORCES_DEADLINE, FRESH_RESULTS, CallContext, ChatProvider
from polyrelay.strategies import LatencyStats, order_targets
from polyrelay.types.chat import ChatRequest
from polyrelay.types.completion import Attempt, ChatCompletion, ResponseMeta, new_response_meta

__all__ = ["CallState", "Candidate", "Engine", "ResolvedRoute", "new_call"]

T = TypeVar("T")

# Errors retrying cannot fix on the same target, whatever ``retryable`` (or x-should-retry) says.
_NEVER_RETRY: tuple[type[BaseException], ...] = (
    BadRequest,
    ContentPolicyViolation,
    AuthenticationFailed,
    PermissionDenied,
    NotFound,
)
# A transport's deadline timer may fire a hair before the clock reads the deadline (loop clock resolution).
_DEADLINE_SLACK = 1e-3
# Errors a call may meet on one target and still be answered by another (the walk catches them).
_WALK_ERRORS: tuple[type[BaseException], ...] = (UpstreamError, InvalidRequest, TargetBusy)


@attrs.frozen(slots=True, kw_only=True)
class Candidate:
    """One target as one route serves it: its key, upstream model and fully merged policy."""

    key: str
    provider: str
    model: str
    weight: float
    policy: Policy
    route: str


@attrs.frozen(kw_only=True)
class ResolvedRoute:
    """A public model name resolved to its candidates, model-level policy and fallback names."""

    name: str
    candidates: tuple[Candidate, ...]
    policy: Policy
    fallbacks: tuple[str, ...] = ()
    context_window_fallbacks: tuple[str, ...] = ()
    content_policy_fallbacks: tuple[str, ...] = ()


@attrs.define(slots=True, kw_only=True, eq=False)
class CallState:
    """Everything one call accumulates while it walks its chain."""

    requested_model: str
    request: ChatRequest
    policy: Policy
    """The requested model's policy with the per-call overrides (deadline, strategy, stream recovery)."""
    overrides: Mapping[str, Any] | None = None
    deadline: float = math.inf
    """Clock time by which the call must end."""
    stream: bool = False
    extra_headers: Mapping[str, str] = attrs.field(factory=dict)
    # Tuples, grown by concatenation: a call usually makes one attempt and meets no error, and the empty tuple is
    # shared, so a call holds no container of its own for them while it waits (each one it held would be walked by
    # every collection of the garbage collector until the call ends).
    attempts: tuple[Attempt, ...] = ()
    errors: tuple[BaseException, ...] = ()
    tried: tuple[str, ...] = ()
    """Keys of the targets tried so far, in order (a handful: a tuple is searched faster than a set is made)."""
    visited: set[str] | None = None
    """The route names a context/content-policy fallback may not revisit (made when first needed)."""
    expired: bool = False
    prefill: str | None = None
    """Stream continuation: the text already delivered, sent as an assistant prefill where accepted."""
    _policies: dict[str, Policy] | None = None
    started: float = 0.0
    """Clock time the call was set up (its first attempt's start: the clock is not read again for it)."""
    # Where the walk is (read by Engine.has_alternative): the current candidate's route order, its index there,
    # and the routes still to walk after that one. Plain fields, so an attempt makes no object to carry them.
    walk_ordered: tuple[Candidate, ...] = ()
    walk_index: int = 0
    walk_routes: tuple[tuple[ResolvedRoute, Candidate | None], ...] = ()

    def policy_for(self, cand: Candidate) -> Policy:
        """The candidate's policy with the per-call overrides applied (cached for the call)."""
        if not self.overrides:
            return cand.policy
        cache = self._policies
        if cache is None:
            cache = self._policies = {}
        p = cache.get(cand.key)
        if p is None:
            p = cache[cand.key] = cand.policy.merged(self.overrides, key="policy", user=True)
        return p

    def model_policy(self, route: ResolvedRoute) -> Policy:
        if not self.overrides:
            return route.policy
        return route.policy.merged(self.overrides, key="policy", user=True)


_make_call = maker(
    CallState,
    (
        "requested_model",
        "request",
        "policy",
        "overrides",
        "deadline",
        "stream",
        "extra_headers",
        "attempts",
        "errors",
        "tried",
        "visited",
        "expired",
        "prefill",
        "_policies",
        "started",
        "walk_ordered",
        "walk_index",
        "walk_routes",
    ),
)


def new_call(
    requested_model: str,
    request: ChatRequest,
    policy: Policy,
    overrides: Mapping[str, Any] | None,
    deadline: float,
    stream: bool,
    extra_headers: Mapping[str, str],
    started: float,
) -> CallState:
    """``CallState(...)`` with these fields, positionally (a third of the keyword ``__init__``'s cost)."""
    return _make_call(
        requested_model,
        request,
        policy,
        overrides,
        deadline,
        stream,
        extra_headers,
        (),  # attempts
        (),  # errors
        (),  # tried
        None,  # visited
        False,  # expired
        None,  # prefill
        None,  # policies
        started,
        (),  # walk_ordered
        0,  # walk_index
        (),  # walk_routes
    )


_Start = tuple[ResolvedRoute, Candidate | None]
"""Where a walk goes next: a route, and the one candidate to try there (``None``: all of them)."""
_AttemptFn = Callable[[Candidate, Policy, CallState, bool, int], Awaitable[T]]
"""One attempt on one target: ``(candidate, policy, call, is_probe, attempt_number)``."""


class _FullJitter(wait_random_exponential):
    """``wait_random_exponential`` (full jitter) drawing from the router's ``random.Random``."""

    def __init__(self, *, multiplier: float, max: float, exp_base: float, rng: random.Random) -> None:
        super().__init__(multiplier=multiplier, max=max, exp_base=exp_base)
        self._rng = rng

    def __call__(self, retry_state: RetryCallState) -> float:
        high = wait_exponential.__call__(self, retry_state)
        return self._rng.uniform(self.min, high)


class _WaitRetryAfter(wait_base):
    """Exactly the delay the upstream asked for (``Retry-After``/``retry-after-ms``), else ``fallback``; a rate
    limit that named no delay waits at least ``rate_limit_min_wait * multiplier**(retry - 1)`` (no hammering)."""

    def __init__(self, fallback: wait_base, *, rate_limit_min_wait: float = 0.0, multiplier: float = 2.0) -> None:
        self.fallback = fallback
        self.rate_limit_min_wait = rate_limit_min_wait
        self.multiplier = multiplier

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        ra = getattr(exc, "retry_after", None)
        if isinstance(ra, int | float):
            return float(ra)
        wait = self.fallback(retry_state)
        if isinstance(exc, RateLimited) and self.rate_limit_min_wait > 0:
            floor = self.rate_limit_min_wait * self.multiplier ** max(0, retry_state.attempt_number - 1)
            wait = max(wait, floor)
        return wait


class _StopAtDeadline(stop_base):
    """Stop when the coming sleep would end at or past the call's deadline (sleeps never cross it)."""

    def __init__(self, call: CallState, clock: Callable[[], float]) -> None:
        self._call, self.clock = call, clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._call.expired or self.clock() + retry_state.upcoming_sleep >= self._call.deadline


_new = object.__new__
_COMPLETION_SLOTS = tuple(
    (getattr(ChatCompletion, a.name).__get__, getattr(ChatCompletion, a.name).__set__)
    for a in attrs.fields(ChatCompletion)
    if a.name != "meta"
)
_set_meta = getattr(ChatCompletion, "meta").__set__  # noqa: B009 - the slot descriptor, not an instance value
_set_attempts = getattr(ResponseMeta, "attempts").__set__  # noqa: B009 - the slot descriptor, not an instance value
# Positional constructors for the objects every call makes (polyrelay._twins: a third of the keyword __init__'s cost).
_make_context = maker(CallContext, ("model", "timeouts", "requested_model", "deadline", "extra_headers"))
_make_attempt = maker(
    Attempt, ("provider", "model", "outcome", "error", "error_type", "status", "latency", "first_byte")
)


class _TargetRuntime:
    __slots__ = ("latency", "slots")

    def __init__(self) -> None:
        self.slots = Slots()
        self.latency = LatencyStats()


class Engine:
    """Runs calls for one Router: the walk, the retries, the attempts and their bookkeeping."""

    def __init__(
        self,
        *,
        chain: Callable[[str], tuple[ResolvedRoute, ...]],
        expand: Callable[[tuple[str, ...], set[str]], list[ResolvedRoute]],
        chat_provider: Callable[[str], ChatProvider],
        secrets: Callable[[str], tuple[Secret | str, ...]],
        breaker: CircuitBreaker,
        hooks: HookSet,
        clock: Callable[[], float],
        clock_is_loop: bool,
        sleep: Callable[[float], Awaitable[None]],
        rng: random.Random,
    ) -> None:
        self._chain = chain
        self._expand = expand
        self.chat_provider = chat_provider
        self._secrets = secrets
        self.breaker = breaker
        self.hooks = hooks
        self.clock = clock
        self.clock_is_loop = clock_is_loop
        self._sleep = sleep
        self._rng = rng
        self._targets: dict[str, _TargetRuntime] = {}
        self._turns: dict[str, int] = {}
        self._waits: dict[RetryPolicy, wait_base] = {}
        self._stops: dict[int, stop_after_attempt] = {}
        # Each chain's walk start, (route, None) per route: made once, not per call.
        self._starts: dict[str, tuple[tuple[ResolvedRoute, ...], tuple[_Start, ...]]] = {}
        #: ``chat_attempt`` bound once, so a call does not make (and hold, while it waits) a bound method of its own.
        self.chat_attempt_fn: _AttemptFn[ChatCompletion] = self.chat_attempt

    # -- per-target runtime --------------------------------------------------------------------------------------
    def runtime(self, key: str) -> _TargetRuntime:
        rt = self._targets.get(key)
        if rt is None:
            rt = self._targets[key] = _TargetRuntime()
        return rt

    def in_flight(self, key: str) -> int:
        rt = self._targets.get(key)
        return rt.slots.in_flight if rt is not None else 0

    def latency(self, key: str) -> float | None:
        rt = self._targets.get(key)
        return rt.latency.ewma if rt is not None else None

    # -- the walk ------------------------------------------------------------------------------------------------
    async def run(self, call: CallState, attempt: _AttemptFn[T]) -> tuple[T, Candidate]:
        """Walk the chain until a target answers; raise the right error when none does."""
        chain = self._chain(call.requested_model)
        cached = self._starts.get(call.requested_model)
        if cached is None or cached[0] is not chain:  # the router made this chain anew: so does its start
            if len(self._starts) >= 4096:  # bounded like the router's own caches of resolved names
                self._starts.clear()
            cached = self._starts[call.requested_model] = (chain, tuple((r, None) for r in chain))
        # The routes still to walk are the end of a tuple (the cached start, at first): no queue of the call's own.
        routes: tuple[_Start, ...] = cached[1]
        next_route = 0
        # Made only when needed: what a call holds while it waits for its answer is walked by every collection of
        # the garbage collector until it ends, and with hundreds of calls in flight that cost shows.
        skipped: list[tuple[ResolvedRoute, Candidate]] | None = None
        forced: str | None = None
        breaker = self.breaker
        while True:
            while next_route < len(routes):
                route, only = routes[next_route]
                next_route += 1
                ordered = (only,) if only is not None else self._order(route, call)
                for i in range(len(ordered)):
                    cand = ordered[i]
                    if cand.key in call.tried:
                        continue
                    policy = call.policy_for(cand)
                    if cand.key == forced:
                        admission = "probe"
                    else:
                        admission = breaker.admit(cand.key, policy.circuit)
                        if admission == "open":
                            self._skipped(call, cand, f"circuit open for {cand.key}")
                            self.failover(call, cand, None, "circuit_open")
                            if skipped is None:
                                skipped = []
                            skipped.append((route, cand))
                            continue
                    call.tried += (cand.key,)
                    call.walk_ordered, call.walk_index = ordered, i
                    call.walk_routes = routes[next_route:]
                    probe = admission == "probe"
                    try:
                        try:
                            # The first attempt runs here, outside any retry machinery (the fast path; a frame
                            # fewer on every resume); retries on this target are _retry_target's.
                            return await attempt(cand, policy, call, probe, 1), cand
                        except UpstreamError as exc:
                            if policy.retry.max_attempts < 2 or not self._retry_here(exc, cand, policy, call):
                                raise
                            first: BaseException = exc
                        # Outside the except block, so later errors are not chained to the first one.
                        return await self._retry_target(call, cand, policy, attempt, first), cand
                    except _WALK_ERRORS as exc:
                        step = self._next_step(call, exc)
                        if step == "raise":
                            raise
                        if step == "deadline":
                            err = self._deadline_error(call, cand, exc)
                            if err is exc:
                                raise
                            raise err from exc
                        if step == "failover":
                            self.failover(call, cand, exc)
                            continue
                        names = route.context_window_fallbacks if step == "context" else route.content_policy_fallbacks
                        nxt = []
                        if names:
                            visited = call.visited
                            if visited is None:
                                visited = call.visited = set()
                            visited.update([r.name for r in chain])  # this chain's routes are not fallbacks
                            nxt = self._expand(names, visited)
                        if not nxt:
                            raise
                        self.failover(call, cand, exc, "context_window" if step == "context" else "content_policy")
                        # The rest of the chain serves the same model: only the opt-in fallbacks remain.
                        routes, next_route = tuple((r, None) for r in nxt), 0
                        break
            if call.errors or forced is not None or not skipped:
                break
            # Every target was open: try the one whose cooldown ends first instead of failing without trying.
            route, cand = self._soonest_to_close(skipped)
            forced = cand.key
            breaker.force_probe(cand.key)
            routes, next_route = ((route, cand),), 0
        raise self._final_error(call)

    def has_alternative(self, call: CallState) -> bool:
        """Is there another candidate left after the one being tried (not tried yet, circuit not open)?"""
        tried, is_open = call.tried, self.breaker.is_open
        for c in call.walk_ordered[call.walk_index + 1 :]:
            if c.key not in tried and not is_open(c.key):
                return True
        for route, only in call.walk_routes:
            for c in (only,) if only is not None else route.candidates:
                if c.key not in tried and not is_open(c.key):
                    return True
        return False

    def _soonest_to_close(self, skipped: list[tuple[ResolvedRoute, Candidate]]) -> tuple[ResolvedRoute, Candidate]:
        # Its own method: a lambda in run() would give every call a closure cell, made when run() starts.
        return min(skipped, key=lambda rc: self.breaker.open_until(rc[1].key))

    def _order(self, route: ResolvedRoute, call: CallState) -> tuple[Candidate, ...]:
        cands = route.candidates
        if len(cands) < 2:
            return cands
        strategy = call.model_policy(route).strategy
        if strategy == "priority":
            return cands
        turn = self._turns.get(route.name, 0)
        self._turns[route.name] = turn + 1
        return tuple(
            order_targets(
                strategy,
                cands,
                weight=lambda c: c.weight,
                in_flight=lambda c: self.in_flight(c.key),
                latency=lambda c: self.latency(c.key),
                rng=self._rng,
                turn=turn,
            )
        )

    def _next_step(self, call: CallState, exc: BaseException) -> str:
        if self.deadline_passed(call):
            return "deadline"
        if isinstance(exc, ContextWindowExceeded):
            return "context"
        if isinstance(exc, ContentPolicyViolation):
            return "content"
        if isinstance(exc, BadRequest) or (isinstance(exc, InvalidRequest) and not isinstance(exc, UnsupportedFeature)):
            return "raise"
        return "failover"

    def failover(
        self, call: CallState, cand: Candidate, exc: BaseException | None, reason: FailoverReason | None = None
    ) -> None:
        if reason is None:
            if isinstance(exc, TargetBusy):
                reason = "busy"
            elif isinstance(exc, UpstreamError) and exc.retryable and not isinstance(exc, UpstreamTimeout):
                reason = "retries_exhausted"
            else:
                reason = "not_retryable_here"
        self.hooks.failover(
            FailoverEvent(
                requested_model=call.requested_model, provider=cand.provider, model=cand.model, reason=reason, error=exc
            )
        )

    def _final_error(self, call: CallState) -> BaseException:
        errors = call.errors
        if not errors:
            return AllTargetsFailed(
                f"no target could serve model {call.requested_model!r}", model=call.requested_model, errors=()
            )
        if all(isinstance(e, UnsupportedFeature) for e in errors):
            return errors[0]
        if len(call.tried) == 1:
            return errors[-1]
        # "a/x: RateLimited 429 x3; b/y: ServerError 500": one entry per run of identical failures.
        runs: list[list[Any]] = []
        for a in call.attempts:
            if a.outcome == "success":
                continue
            label = f"{a.provider}/{a.model}: {a.error_type}" + (f" {a.status}" if a.status is not None else "")
            if runs and runs[-1][0] == label:
                runs[-1][1] += 1
            else:
                runs.append([label, 1])
        summary = "; ".join(label if n == 1 else f"{label} x{n}" for label, n in runs)
        err = AllTargetsFailed(
            f"all {len(call.tried)} targets failed for model {call.requested_model!r}: {summary}",
            model=call.requested_model,
            errors=errors,
        )
        err.__cause__ = errors[-1]
        return err

    def _deadline_error(self, call: CallState, cand: Candidate, exc: BaseException) -> DeadlineExceeded:
        if isinstance(exc, DeadlineExceeded) and len(call.tried) == 1 and len(call.errors) == 1:
            return exc
        budget = call.policy.deadline
        n = sum(1 for a in call.attempts if a.outcome != "skipped")
        return DeadlineExceeded(
            f"the call's deadline{f' of {budget:g}s' if budget else ''} ran out after {n} attempt(s); "
            f"last error: {type(exc).__name__}: {exc}",
            provider=cand.provider,
            model=cand.model,
        )

    def deadline_passed(self, call: CallState, *, slack: float = 0.0) -> bool:
        return call.expired or self.clock() >= call.deadline - slack

    # -- one target: after its first attempt failed, tenacity ---------------------------------------------------
    async def _retry_target(
        self,
        call: CallState,
        cand: Candidate,
        policy: Policy,
        attempt: _AttemptFn[T],
        first: BaseException,
    ) -> T:
        """The remaining attempts on ``cand`` (the first one, made by :meth:`run`, failed with ``first``)."""
        pending = [first]
        number = [1]

        async def again() -> T:
            if pending:
                raise pending.pop()
            number[0] += 1
            return await attempt(cand, policy, call, False, number[0])

        def should_retry(exc: BaseException) -> bool:
            return isinstance(exc, UpstreamError) and self._retry_here(exc, cand, policy, call)

        def before_sleep(rs: RetryCallState) -> None:
            outcome = rs.outcome
            err = outcome.exception() if outcome is not None else None
            ra = getattr(err, "retry_after", None)
            self.hooks.retry(
                RetryEvent(
                    requested_model=call.requested_model,
                    provider=cand.provider,
                    model=cand.model,
                    next_attempt=rs.attempt_number + 1,
                    sleep=rs.upcoming_sleep,
                    error=cast(BaseException, err),
                    retry_after=float(ra) if isinstance(ra, int | float) else None,
                )
            )

        retrying = AsyncRetrying(
            sleep=self._sleep,
            stop=self._stop_after(policy.retry.max_attempts) | _StopAtDeadline(call, self.clock),
            wait=self._wait_for(policy.retry),
            retry=retry_if_exception(should_retry),
            before_sleep=before_sleep,
            reraise=True,
        )
        result: T = await retrying(again)
        return result

    def _retry_here(self, exc: UpstreamError, cand: Candidate, policy: Policy, call: CallState) -> bool:
        """Is another attempt on this same target worth it?"""
        if not exc.retryable or isinstance(exc, _NEVER_RETRY):
            return False
        if self.deadline_passed(call):
            return False
        if isinstance(exc, UpstreamTimeout):
            return policy.retry.retry_on_timeout
        if isinstance(exc, ConnectionFailed):
            # Another candidate is a better bet than a refused or reset connection.
            return not self.has_alternative(call)
        ra = getattr(exc, "retry_after", None)
        if isinstance(ra, int | float) and ra > policy.retry.max_retry_after:
            return False  # the upstream asked for a longer pause than we wait: fail over instead
        return not (policy.circuit.enabled and self.breaker.is_open(cand.key))

    def _wait_for(self, rp: RetryPolicy) -> wait_base:
        w = self._waits.get(rp)
        if w is None:
            w = self._waits[rp] = _WaitRetryAfter(
                _FullJitter(
                    multiplier=rp.backoff_initial, max=rp.backoff_max, exp_base=rp.backoff_multiplier, rng=self._rng
                ),
                rate_limit_min_wait=rp.rate_limit_min_wait,
                multiplier=rp.backoff_multiplier,
            )
        return w

    def _stop_after(self, n: int) -> stop_after_attempt:
        s = self._stops.get(n)
        if s is None:
            s = self._stops[n] = stop_after_attempt(n)
        return s

    # -- attempts ------------------------------------------------------------------------------------------------
    def loop_deadline(self, call: CallState) -> float | None:
        """The call's deadline in ``loop.time()`` terms (what providers and the transport use)."""
        if call.deadline == math.inf:
            return None
        if self.clock_is_loop:
            return call.deadline
        return asyncio.get_running_loop().time() + (call.deadline - self.clock())

    async def take_slot(self, call: CallState, cand: Candidate, policy: Policy) -> Slots:
        slots = self.runtime(cand.key).slots
        limit = policy.max_concurrency
        if slots.try_acquire(limit):
            return slots
        left = call.deadline - self.clock()
        try:
            await slots.acquire(limit, mode=policy.queue, max_wait=min(policy.queue_timeout, left), target=cand.key)
        except TargetBusy as exc:
            self._skipped(call, cand, exc.message, "TargetBusy")
            call.errors += (exc,)
            raise
        return slots

    def context(self, call: CallState, cand: Candidate, policy: Policy, deadline: float | None) -> CallContext:
        return _make_context(cand.model, policy.timeouts, call.requested_model, deadline, call.extra_headers)

    async def chat_attempt(
        self, cand: Candidate, policy: Policy, call: CallState, probe: bool, number: int
    ) -> ChatCompletion:
        """One non-streamed attempt, with its bookkeeping (attempt record, circuit, latency, hooks)."""
        provider = self.chat_provider(cand.provider)
        # The call's first attempt starts when the call was set up, a few microseconds ago: no clock read for it.
        start = call.started if number == 1 and not call.attempts else self.clock()
        if call.expired or start >= call.deadline:
            raise DeadlineExceeded("the call's deadline ran out before the attempt", provider=cand.provider)
        slots = self.runtime(cand.key).slots
        if not slots.try_acquire(policy.max_concurrency):
            slots = await self.take_slot(call, cand, policy)
            start = self.clock()
        deadline = self.loop_deadline(call)
        try:
            ctx = self.context(call, cand, policy, deadline)
            if deadline is None or getattr(provider, ENFORCES_DEADLINE, False) is True:
                # The provider's transport waits end at the deadline: a second timer here would only cost.
                result = await provider.chat(call.request, ctx)
            else:
                try:
                    async with asyncio.timeout_at(deadline) as cm:
                        result = await provider.chat(call.request, ctx)
                except TimeoutError as exc:
                    raise self.timeout_error(call, cand, cm.expired(), exc) from exc
        except (UpstreamError, InvalidRequest) as exc:
            slots.release()
            if isinstance(exc, DeadlineExceeded) and self.deadline_passed(call, slack=_DEADLINE_SLACK):
                call.expired = True  # the transport's own deadline check: the call's budget is spent
            self.attempt_failed(call, cand, policy, exc, start, number, probe)
            raise
        except BaseException:
            slots.release()
            self.breaker.record(cand.key, policy.circuit, "neutral", probe=probe)
            raise
        slots.release()
        end = self.clock()
        self.breaker.record(cand.key, policy.circuit, "success", probe=probe, now=end)
        self.attempt_succeeded(call, cand, policy, end - start, None, number)
        return result

    def finish_completion(self, call: CallState, cand: Candidate, completion: ChatCompletion) -> ChatCompletion:
        """The provider's completion carrying the call's meta: the object itself when the provider declares
        :data:`~polyrelay.provider.FRESH_RESULTS` (its meta gets the attempts), else a copy (the provider's object
        is left as it is: a provider may hand out one object more than once)."""
        pm = completion.meta
        if (
            pm.__class__ is ResponseMeta
            and completion.__class__ is ChatCompletion
            and getattr(self.chat_provider(cand.provider), FRESH_RESULTS, False) is True
            and pm.provider == cand.provider
            and pm.model == cand.model
            and pm.requested_model == call.requested_model
            and not pm.attempts
        ):
            _set_attempts(pm, call.attempts)
            return completion
        meta = self.meta(call, cand, pm)
        if completion.__class__ is not ChatCompletion:
            return attrs.evolve(completion, meta=meta)
        # attrs.evolve rebuilds through __init__; copying the slots gives the same object at a third of the cost.
        new = _new(ChatCompletion)
        for get, set_ in _COMPLETION_SLOTS:
            set_(new, get(completion))
        _set_meta(new, meta)
        return new

    def meta(self, call: CallState, cand: Candidate, provider_meta: ResponseMeta | None, *extra: Any) -> ResponseMeta:
        pm = provider_meta
        warnings = pm.warnings if pm is not None else ()
        if extra:
            warnings = (*warnings, *extra)
        return new_response_meta(
            cand.provider,
            cand.model,
            call.requested_model,
            call.attempts,
            warnings,
            pm.request_id if pm is not None else None,
            pm.headers if pm is not None else {},
        )

    # -- bookkeeping ---------------------------------------------------------------------------------------------
    def timeout_error(self, call: CallState, cand: Candidate, ours: bool, exc: BaseException) -> UpstreamTimeout:
        if ours:
            call.expired = True
            return DeadlineExceeded("the call's deadline ran out during the attempt", provider=cand.provider)
        return UpstreamTimeout(f"the provider timed out: {exc}", provider=cand.provider)

    def message(self, exc: BaseException, cand: Candidate) -> str:
        return redact(str(exc), self._secrets(cand.provider))

    def circuit_outcome(self, call: CallState, exc: BaseException) -> Outcome:
        return outcome_of(exc, lambda: self.deadline_passed(call))

    def attempt_failed(
        self,
        call: CallState,
        cand: Candidate,
        policy: Policy,
        exc: BaseException,
        start: float,
        number: int,
        probe: bool,
    ) -> None:
        att = Attempt(
            provider=cand.provider,
            model=cand.model,
            outcome="error",
            error=self.message(exc, cand),
            error_type=type(exc).__name__,
            status=getattr(exc, "status", None),
            latency=self.clock() - start,
        )
        call.attempts += (att,)
        call.errors += (exc,)
        self.hooks.attempt(
            AttemptEvent(requested_model=call.requested_model, attempt=att, number=number, stream=call.stream)
        )
        self.breaker.record(cand.key, policy.circuit, self.circuit_outcome(call, exc), probe=probe)

    def attempt_succeeded(
        self,
        call: CallState,
        cand: Candidate,
        policy: Policy,
        latency: float,
        first_byte: float | None,
        number: int,
    ) -> None:
        self.runtime(cand.key).latency.observe(first_byte if first_byte is not None else latency, policy.latency_alpha)
        att = _make_attempt(cand.provider, cand.model, "success", None, None, None, latency, first_byte)
        call.attempts += (att,)
        if self.hooks.wants_successes():
            self.hooks.attempt(
                AttemptEvent(requested_model=call.requested_model, attempt=att, number=number, stream=call.stream)
            )

    def _skipped(self, call: CallState, cand: Candidate, why: str, error_type: str = "CircuitOpen") -> None:
        att = Attempt(provider=cand.provider, model=cand.model, outcome="skipped", error=why, error_type=error_type)
        call.attempts += (att,)
        self.hooks.attempt(
            AttemptEvent(requested_model=call.requested_model, attempt=att, number=0, stream=call.stream)
        )
