"""Generation tasks: submit with failover, poll with tenacity, cancel, follow-up actions.

:class:`TaskService` is what the router exposes as ``router.tasks``::

    task = await router.tasks.create(model="flux-pro-1.1", prompt="a lighthouse at dusk", size="1024x768")
    task = await router.tasks.wait(task.id, timeout=300, on_progress=print)
    async for task in router.tasks.watch(task.id, timeout=300):   # snapshots as they change
        ...

**Submitting.** The model resolves to targets in failover order; only targets whose provider implements
:class:`~polyrelay.provider.TaskProvider` are used. On each target, retryable upstream errors (429, 5xx,
connection failures) are retried with tenacity (exponential backoff with full jitter, ``Retry-After`` honoured up to
``policy.retry.max_retry_after``, timeouts only with ``retry_on_timeout``). After that, errors are handled as the
router handles them (see :func:`fails_over`): :class:`~polyrelay.errors.UnsupportedFeature` and other upstream
errors move on to the next target; :class:`~polyrelay.errors.InvalidRequest` (a size the model cannot make, say),
:class:`~polyrelay.errors.BadRequest` and :class:`~polyrelay.errors.ContentPolicyViolation` are raised at once.
When every target failed: the first :class:`UnsupportedFeature` if no target could take the request, the error
itself if only one target was tried, otherwise :class:`~polyrelay.errors.AllTargetsFailed`.

**Polling.** :meth:`TaskService.wait` and :meth:`TaskService.watch` poll with tenacity: ``retry_if_result(not
done)``, waiting the provider's :meth:`~polyrelay.provider.TaskProvider.poll_interval` plus up to 20% jitter, until
the overall ``timeout`` (→ :class:`~polyrelay.errors.TaskTimeout`). A retryable upstream error while polling is
retried with backoff and does not lose the task (at most ``max_poll_errors`` in a row). A failed task raises
:class:`~polyrelay.errors.TaskFailed` from ``wait``; with ``resubmit_on_failure`` the request is submitted again to
the next target instead (only for tasks this service created: it keeps their requests in memory).

**Task ids** are opaque: ``"task_"`` + unpadded urlsafe base64 of compact JSON
``{"v": 1, "p": provider instance, "m": upstream model, "u": upstream id, "k": kind, "t": created, "r": requested
model}``. Any process with the same config can poll a task another process created. A malformed id, an id of
another version, or one naming a provider instance this config does not have raises
:class:`~polyrelay.errors.InvalidRequest` with ``path="task_id"``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import json
import math
import random
import re
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping, Sequence
from contextlib import aclosing
from typing import Any, TypeVar, cast, get_args

import attrs
from tenacity import AsyncRetrying, RetryCallState, RetryError, retry_if_exception, retry_if_result, stop_after_attempt
from tenacity.stop import stop_base

from polyrelay._budget import Budget, StopAtBudget, bounded, start_budget
from polyrelay._media_guard import TargetGuard, guarded, stop_when_open
from polyrelay.concurrency import TargetBusy
from polyrelay.errors import (
    AllTargetsFailed,
    BadRequest,
    ConfigError,
    ContentPolicyViolation,
    DeadlineExceeded,
    InvalidRequest,
    NotFound,
    PluginError,
    PolyrelayError,
    TaskFailed,
    TaskTimeout,
    UnsupportedFeature,
    UpstreamError,
    UpstreamTimeout,
)
from polyrelay.policy import Policy, RetryPolicy, policy_of
from polyrelay.provider import CallContext, ChatProvider, TaskActionProvider, TaskProvider
from polyrelay.routes import ResolvedTarget
from polyrelay.types.media import Task, TaskKind, TaskRequest, TaskSnapshot

__all__ = [
    "TASK_ID_PREFIX",
    "ProgressCallback",
    "TaskRef",
    "TaskService",
    "TaskWaiter",
    "build_task_request",
    "check_task_request",
    "decode_task_id",
    "encode_task_id",
    "fails_over",
    "retry_on_target",
    "should_retry",
    "task_failed_error",
    "target_retry_policy",
    "with_failover",
]

T = TypeVar("T")
C = TypeVar("C")

TASK_ID_PREFIX = "task_"
_CODEC_VERSION = 1
# Ids longer than this are not ours (Flux ids embed a polling URL, so allow a few hundred bytes).
_MAX_TASK_ID_LENGTH = 4096
_KINDS: frozenset[str] = frozenset(get_args(TaskKind))
# Jitter added to the provider's poll cadence, as a share of the interval.
_POLL_JITTER = 0.2
# Tasks whose request is kept for resubmission (resubmit_on_failure); oldest forgotten first.
_MAX_REMEMBERED = 1024
_SIZE_RE = re.compile(r"^[1-9][0-9]{0,5}x[1-9][0-9]{0,5}$")
_RATIO_RE = re.compile(r"^[1-9][0-9]{0,3}:[1-9][0-9]{0,3}$")
_IMAGE_PREFIXES = ("http://", "https://", "data:")

ProgressCallback = Callable[[Task], Awaitable[None] | None]
"""``on_progress`` of :meth:`TaskService.wait`: a plain or async callable called with each changed snapshot."""

Resolve = Callable[[str], Sequence[ResolvedTarget]]
GetProvider = Callable[[str], object]
MakeCtx = Callable[[ResolvedTarget], CallContext]
Sleep = Callable[[float], Awaitable[None]]


# -- task id codec ------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TaskRef:
    """What a task id encodes."""

    provider: str
    """Provider instance name (``[providers.NAME]``)."""
    model: str
    """Upstream model id."""
    upstream_id: str
    kind: TaskKind
    created: float
    requested_model: str = ""
    """The public model name the task was created for (used to find the target's policy when polling)."""


def encode_task_id(ref: TaskRef) -> str:
    """The opaque id of a task (see the module docstring for the layout)."""
    payload = {
        "v": _CODEC_VERSION,
        "p": ref.provider,
        "m": ref.model,
        "u": ref.upstream_id,
        "k": ref.kind,
        "t": round(ref.created, 3),
        "r": ref.requested_model,
    }
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return TASK_ID_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _bad_id(why: str) -> InvalidRequest:
    return InvalidRequest(f"not a polyrelay task id: {why}", path="task_id")


def decode_task_id(task_id: object) -> TaskRef:
    """Parse a task id; :class:`InvalidRequest` (``path="task_id"``) when it is not one of ours."""
    if not isinstance(task_id, str):
        raise _bad_id(f"expected a string, got {type(task_id).__name__}")
    if not task_id.startswith(TASK_ID_PREFIX):
        raise _bad_id(f"it must start with {TASK_ID_PREFIX!r}")
    if len(task_id) > _MAX_TASK_ID_LENGTH:
        raise _bad_id(f"it is longer than {_MAX_TASK_ID_LENGTH} characters")
    body = task_id[len(TASK_ID_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise _bad_id("it is not valid base64-encoded JSON") from exc
    if not isinstance(data, dict):
        raise _bad_id("its payload is not an object")
    if data.get("v") != _CODEC_VERSION:
        raise _bad_id(f"unsupported version {data.get('v')!r} (this polyrelay reads version {_CODEC_VERSION})")
    fields: dict[str, str] = {}
    for key in ("p", "m", "u"):
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise _bad_id(f"field {key!r} is missing or not a string")
        fields[key] = value
    kind = data.get("k")
    if kind not in _KINDS:
        raise _bad_id(f"unknown task kind {kind!r}")
    created = data.get("t")
    if isinstance(created, bool) or not isinstance(created, int | float) or not math.isfinite(created):
        raise _bad_id("field 't' is not a timestamp")
    requested = data.get("r", "")
    if not isinstance(requested, str):
        raise _bad_id("field 'r' is not a string")
    return TaskRef(
        provider=fields["p"],
        model=fields["m"],
        upstream_id=fields["u"],
        kind=cast(TaskKind, kind),
        created=float(created),
        requested_model=requested,
    )


# -- retry and failover ---------------------------------------------------------------------------------------------


def target_retry_policy(target: ResolvedTarget) -> RetryPolicy:
    """The retry policy of a target (the default one when the target carries no :class:`Policy`)."""
    return policy_of(target).retry


def _retry_after(exc: BaseException | None) -> float | None:
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, int | float) else None


def should_retry(exc: BaseException, policy: RetryPolicy) -> bool:
    """Whether ``exc`` is worth another attempt on the same target under ``policy``.

    Only upstream errors the provider classified as retryable; timeouts only with ``retry_on_timeout``; a
    ``Retry-After`` longer than ``max_retry_after`` fails over instead of sleeping.
    """
    if not isinstance(exc, UpstreamError) or not exc.retryable:
        return False
    if isinstance(exc, UpstreamTimeout) and not policy.retry_on_timeout:
        return False
    after = _retry_after(exc)
    return after is None or after <= policy.max_retry_after


def _backoff(attempt: int, policy: RetryPolicy, rng: random.Random, exc: BaseException | None) -> float:
    """Exponential backoff with full jitter, capped; never shorter than the upstream's ``Retry-After``."""
    cap = min(policy.backoff_max, policy.backoff_initial * policy.backoff_multiplier ** max(0, attempt - 1))
    delay = rng.uniform(0.0, cap)
    after = _retry_after(exc)
    return max(delay, after) if after is not None else delay


async def retry_on_target(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Sleep,
    rng: random.Random,
    budget: Budget | None = None,
    stop_also: stop_base | None = None,
) -> T:
    """Call ``fn`` until it succeeds, retrying retryable errors per ``policy`` (tenacity, injected ``sleep``).

    With a ``budget``, no retry sleep ends at or past the call's deadline; ``stop_also`` is one more reason to
    stop (a circuit that opened). Either way the last error is raised."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        return _backoff(state.attempt_number, policy, rng, exc)

    stop: Any = stop_after_attempt(max(1, policy.max_attempts))
    if budget is not None:
        stop = stop | StopAtBudget(budget)
    if stop_also is not None:
        stop = stop | stop_also
    retrying = AsyncRetrying(
        sleep=sleep,
        stop=stop,
        wait=wait,
        retry=retry_if_exception(lambda exc: should_retry(exc, policy)),
        reraise=True,
    )
    # The iterator form: AsyncRetrying.__call__ would not await a lambda returning a coroutine.
    async for attempt in retrying:
        with attempt:
            return await fn()
    raise AssertionError("unreachable: tenacity either returns a result or raises")  # pragma: no cover


def fails_over(exc: BaseException) -> bool:
    """Whether the next target should be tried after ``exc`` (the router's rules, for media calls).

    Yes: :class:`UnsupportedFeature`, a target at its concurrency limit (:class:`TargetBusy`), any other upstream
    error, and a :class:`TaskFailed` task (another target may succeed). No: :class:`InvalidRequest` (the input is
    wrong), :class:`BadRequest` (the upstream says so) and content-policy rejections — a
    :class:`ContentPolicyViolation` or a task failed with ``content_policy_violation`` (the router sends those only
    to explicit ``content_policy_fallbacks``).
    """
    if isinstance(exc, UnsupportedFeature | TargetBusy):
        return True
    if isinstance(exc, InvalidRequest | BadRequest | ContentPolicyViolation):
        return False
    if isinstance(exc, TaskFailed):
        return exc.code != "content_policy_violation"
    return isinstance(exc, UpstreamError)


async def with_failover(
    model: str,
    candidates: Sequence[C],
    fn: Callable[[C], Awaitable[T]],
    *,
    budget: Budget | None = None,
    guard: TargetGuard | None = None,
    target_of: Callable[[C], ResolvedTarget] | None = None,
) -> T:
    """Try ``fn`` on each candidate in order until one succeeds, moving on after errors that :func:`fails_over`.

    When all fail: the first :class:`UnsupportedFeature` if every candidate refused the request, the only error if
    there was one candidate, else :class:`AllTargetsFailed` with every error in order. When the ``budget`` has run
    out before the next candidate: :class:`DeadlineExceeded`, caused by the last error. With a ``guard`` (and
    ``target_of`` giving each candidate's target), candidates whose circuit is open are skipped; when every one is,
    the one whose cooldown ends first is tried.
    """
    errors: list[BaseException] = []
    skipped: list[C] = []
    for candidate in candidates:
        if errors and budget is not None and budget.expired():
            summary = "; ".join(f"{type(e).__name__}: {e}" for e in errors)
            raise DeadlineExceeded(
                f"the call's deadline ({budget.seconds:g}s) ran out after {len(errors)} of {len(candidates)} "
                f"targets of {model!r}: {summary}",
                model=model,
            ) from errors[-1]
        if guard is not None and target_of is not None and not guard.admit(target_of(candidate)):
            skipped.append(candidate)
            continue
        try:
            return await fn(candidate)
        except (UpstreamError, InvalidRequest, TaskFailed, TargetBusy) as exc:
            if not fails_over(exc):
                raise
            errors.append(exc)
    if skipped and not errors and guard is not None and target_of is not None:
        targets = [target_of(c) for c in skipped]
        return await fn(skipped[targets.index(guard.soonest_to_close(targets))])
    if not errors:
        raise UnsupportedFeature(f"model {model!r} has no target for this call", path="model")
    if all(isinstance(e, UnsupportedFeature) for e in errors) or len(errors) == 1:
        raise errors[0]
    summary = "; ".join(f"{type(e).__name__}: {e}" for e in errors)
    raise AllTargetsFailed(
        f"all {len(errors)} targets of {model!r} failed: {summary}", model=model, errors=errors
    ) from (errors[-1])


# -- request validation -------------------------------------------------------------------------------------------


def check_task_request(request: TaskRequest) -> None:
    """Generic checks every task request must pass before any provider sees it (providers check the rest)."""
    if not isinstance(request.model, str) or not request.model:
        raise InvalidRequest("a model name is required", path="model")
    prompt = request.prompt
    if prompt is not None:
        if not isinstance(prompt, str):
            raise InvalidRequest(f"must be a string, got {type(prompt).__name__}", path="prompt")
        if not prompt.strip():
            raise InvalidRequest("must not be empty", path="prompt")
    elif not request.images and not request.params:
        raise InvalidRequest("is required (or give reference images)", path="prompt")
    if request.kind is not None and request.kind not in _KINDS:
        raise InvalidRequest(f"must be one of {sorted(_KINDS)}, got {request.kind!r}", path="kind")
    for i, image in enumerate(request.images):
        if not isinstance(image, str) or not image.startswith(_IMAGE_PREFIXES):
            raise InvalidRequest("must be an http(s) URL or a data: URI", path=f"images[{i}]")
    n = request.n
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InvalidRequest(f"must be a positive integer, got {n!r}", path="n")
    if request.size is not None and (not isinstance(request.size, str) or not _valid_size(request.size)):
        raise InvalidRequest(f"must look like '1024x1024' (or 'auto'), got {request.size!r}", path="size")
    ratio = request.aspect_ratio
    if ratio is not None and (not isinstance(ratio, str) or not _RATIO_RE.match(ratio)):
        raise InvalidRequest(f"must look like '16:9', got {ratio!r}", path="aspect_ratio")
    duration = request.duration
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float) or not 0 < duration < math.inf
    ):
        raise InvalidRequest(f"must be a positive number of seconds, got {duration!r}", path="duration")
    if request.negative_prompt is not None and not isinstance(request.negative_prompt, str):
        raise InvalidRequest("must be a string", path="negative_prompt")
    seed = request.seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidRequest(f"must be an integer, got {seed!r}", path="seed")


def _valid_size(size: str) -> bool:
    return size == "auto" or bool(_SIZE_RE.match(size))


def build_task_request(
    *,
    model: str,
    prompt: str | None,
    kind: TaskKind | None = None,
    images: str | Sequence[str] = (),
    n: int | None = None,
    size: str | None = None,
    aspect_ratio: str | None = None,
    duration: float | None = None,
    negative_prompt: str | None = None,
    seed: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> TaskRequest:
    """A :class:`TaskRequest` from keyword arguments (a single image may be given as a string)."""
    if isinstance(images, str):
        images = (images,)
    elif not isinstance(images, Sequence):
        raise InvalidRequest("must be a URL, a data: URI, or a list of them", path="images")
    return TaskRequest(
        model=model,
        prompt=prompt,
        kind=kind,
        images=tuple(images),
        n=n,
        size=size,
        aspect_ratio=aspect_ratio,
        duration=duration,
        negative_prompt=negative_prompt,
        seed=seed,
        params=dict(params or {}),
    )


# -- the service --------------------------------------------------------------------------------------------------


@attrs.define
class _Origin:
    """What resubmission needs: the request and the targets not tried yet."""

    request: TaskRequest
    remaining: tuple[tuple[ResolvedTarget, TaskProvider], ...]


@attrs.define
class _PollState:
    snapshot: TaskSnapshot | None = None
    errors_in_a_row: int = 0


async def _default_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def _changed(before: Task | None, after: Task) -> bool:
    if before is None:
        return True
    return (before.id, before.status, before.progress, before.outputs, before.raw_status, before.error) != (
        after.id,
        after.status,
        after.progress,
        after.outputs,
        after.raw_status,
        after.error,
    )


class TaskService:
    """Media generation tasks over the router's targets (``router.tasks``).

    ``resolve`` maps a public model name to targets in failover order, ``get_provider`` an instance name to the
    provider object, ``make_ctx`` a target to the per-call context. ``sleep``/``clock``/``rng`` are injectable so
    tests never wait; ``clock`` is wall time (``time.time``) and stamps ``Task.created_at``. ``guard`` (the
    router's) skips targets whose circuit is open at submission and holds a concurrency slot for each attempt.
    """

    def __init__(
        self,
        *,
        resolve: Resolve,
        get_provider: GetProvider,
        make_ctx: MakeCtx,
        sleep: Sleep | None = None,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
        resubmit_on_failure: bool = False,
        default_timeout: float = 600.0,
        max_poll_errors: int = 20,
        guard: TargetGuard | None = None,
    ) -> None:
        self._resolve = resolve
        self._guard = guard
        self._get_provider = get_provider
        self._make_ctx = make_ctx
        self._sleep: Sleep = sleep or _default_sleep
        self._clock = clock or time.time
        self._rng = rng or random.Random()
        self.resubmit_on_failure = resubmit_on_failure
        self.default_timeout = default_timeout
        self.max_poll_errors = max(1, max_poll_errors)
        self._origins: OrderedDict[str, _Origin] = OrderedDict()

    # -- public API ---------------------------------------------------------------------------------------------

    async def create(
        self,
        *,
        model: str,
        prompt: str | None = None,
        kind: TaskKind | None = None,
        images: str | Sequence[str] = (),
        n: int | None = None,
        size: str | None = None,
        aspect_ratio: str | None = None,
        duration: float | None = None,
        negative_prompt: str | None = None,
        seed: int | None = None,
        **params: Any,
    ) -> Task:
        """Submit a generation task and return it at once (usually ``queued``/``running``).

        Provider-specific parameters go in ``**params`` (e.g. ``safety_tolerance=2`` for Flux). Invalid input
        raises :class:`InvalidRequest` naming the field before any network call.
        """
        request = build_task_request(
            model=model,
            prompt=prompt,
            kind=kind,
            images=images,
            n=n,
            size=size,
            aspect_ratio=aspect_ratio,
            duration=duration,
            negative_prompt=negative_prompt,
            seed=seed,
            params=params,
        )
        return await self.submit(request)

    async def submit(self, request: TaskRequest) -> Task:
        """Submit a prepared :class:`TaskRequest` (failover across the model's task-capable targets)."""
        check_task_request(request)
        eligible = self.task_targets(request.model)
        return await self._submit_on(request, eligible)

    async def submit_to(self, target: ResolvedTarget, provider: TaskProvider, request: TaskRequest) -> Task:
        """Submit to one given target (retries there, no failover). Used by the images service."""
        check_task_request(request)
        return await self._submit_one(request, target, provider, (), start_budget(target, self._clock))

    async def get(self, task_id: str) -> Task:
        """The task's current state (one poll; transient errors retried per the target's retry policy)."""
        ref, target, provider = self._lookup(task_id)
        return await self._poll_once(task_id, ref, target, provider, retry=True)

    def wait(
        self,
        task_id: str,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        resubmit: bool | None = None,
    ) -> TaskWaiter:
        """Poll until the task is done: ``await`` it for the final task (see :meth:`wait_done`), or iterate it
        (``async for task in router.tasks.wait(id)``) for every changed snapshot, ending with the terminal one
        (as :meth:`watch`)."""
        return TaskWaiter(self, task_id, timeout=timeout, on_progress=on_progress, resubmit=resubmit)

    async def wait_done(
        self,
        task_id: str,
        *,
        # Not asyncio.timeout: the budget is measured on the injected clock and must end in TaskTimeout.
        timeout: float | None = None,  # noqa: ASYNC109
        on_progress: ProgressCallback | None = None,
        resubmit: bool | None = None,
    ) -> Task:
        """Poll until the task is done and return it.

        ``timeout`` (seconds, default :attr:`default_timeout`; ``math.inf`` waits forever) bounds the whole wait:
        past it :class:`TaskTimeout` (the task may still finish upstream; ``get`` it later). ``on_progress`` is
        called with each snapshot that changed. A failed task raises :class:`TaskFailed` unless it could be
        resubmitted (``resubmit``, default ``resubmit_on_failure``); then the returned task has a new id.
        """
        final: Task | None = None
        async with aclosing(self.watch(task_id, timeout=timeout, resubmit=resubmit)) as snapshots:
            async for task in snapshots:
                final = task
                if on_progress is not None:
                    result = on_progress(task)
                    if inspect.isawaitable(result):
                        await result
        assert final is not None  # watch always yields the terminal snapshot
        if final.status == "failed":
            raise task_failed_error(final)
        return final

    async def watch(
        self,
        task_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
        every_poll: bool = False,
        resubmit: bool | None = None,
    ) -> AsyncGenerator[Task, None]:
        """Snapshots of the task while polling: each one that changed (``every_poll=True``: every poll), ending
        with the terminal one (``failed`` is yielded, not raised). Raises :class:`TaskTimeout` past ``timeout``.
        When a failed task is resubmitted, the failed snapshot is followed by the new task's snapshots."""
        ref, target, provider = self._lookup(task_id)
        budget = self.default_timeout if timeout is None else timeout
        if budget <= 0 or math.isnan(budget):
            raise InvalidRequest(f"must be a positive number of seconds, got {timeout!r}", path="timeout")
        deadline = self._clock() + budget
        do_resubmit = self.resubmit_on_failure if resubmit is None else resubmit
        current_id = task_id
        last: Task | None = None
        while True:
            async with aclosing(self._poll_loop(current_id, ref, target, provider, deadline, budget)) as polls:
                async for task in polls:
                    if every_poll or _changed(last, task):
                        yield task
                    last = task
            assert last is not None
            if last.status != "failed" or not do_resubmit:
                return
            replacement = await self._resubmit(current_id, last)
            if replacement is None:
                return
            yield replacement
            last = replacement
            current_id = replacement.id
            ref, target, provider = self._lookup(current_id)
            if replacement.done:
                if replacement.status != "failed":
                    return
                continue

    async def cancel(self, task_id: str) -> Task:
        """Ask the upstream to cancel; returns the task as the upstream reports it afterwards.

        Upstreams without a cancel endpoint (Flux) raise :class:`UnsupportedFeature`."""
        ref, target, provider = self._lookup(task_id)
        budget = start_budget(target, self._clock)
        ctx = self._ctx(target, budget)
        snapshot = await retry_on_target(
            lambda: provider.cancel(ref.upstream_id, ctx),
            target_retry_policy(target),
            sleep=self._sleep,
            rng=self._rng,
            budget=budget,
        )
        return self._task(task_id, ref, snapshot)

    async def action(self, task_id: str, *, action: str, **params: Any) -> Task:
        """A follow-up action on a finished task (Midjourney ``upscale``/``variation``/... buttons); returns the
        new task it starts. Providers without actions raise :class:`UnsupportedFeature`."""
        if not isinstance(action, str) or not action:
            raise InvalidRequest("must be a non-empty string", path="action")
        ref, target, provider = self._lookup(task_id)
        if not isinstance(provider, TaskActionProvider):
            raise UnsupportedFeature(
                "this task's provider has no follow-up actions", path="action", provider=ref.provider
            )
        budget = start_budget(target, self._clock)
        ctx = self._ctx(target, budget)
        snapshot = await retry_on_target(
            lambda: provider.action(ref.upstream_id, action, ctx, params),
            target_retry_policy(target),
            sleep=self._sleep,
            rng=self._rng,
            budget=budget,
        )
        new_ref = attrs.evolve(ref, upstream_id=snapshot.upstream_id, kind=snapshot.kind, created=self._now_ms())
        return self._task(encode_task_id(new_ref), new_ref, snapshot)

    def task_targets(self, model: str) -> list[tuple[ResolvedTarget, TaskProvider]]:
        """The model's targets whose provider runs tasks, in failover order (UnsupportedFeature when none)."""
        eligible: list[tuple[ResolvedTarget, TaskProvider]] = []
        for target in self._resolve(model):
            provider = self._get_provider(target.provider)
            if isinstance(provider, TaskProvider):
                eligible.append((target, provider))
        if not eligible:
            raise UnsupportedFeature(f"model {model!r} has no target that runs generation tasks", path="model")
        return eligible

    def handles(self, model: str) -> bool:
        """True when ``model`` is a media model: some target runs tasks and none is a chat provider."""
        try:
            providers = [self._get_provider(t.provider) for t in self._resolve(model)]
        except (PolyrelayError, LookupError):
            return False
        return any(isinstance(p, TaskProvider) for p in providers) and not any(
            isinstance(p, ChatProvider) for p in providers
        )

    # -- internals ----------------------------------------------------------------------------------------------

    def _now_ms(self) -> float:
        # Task ids carry the creation time to the millisecond; keep Task.created_at equal to what ids decode to.
        return round(self._clock(), 3)

    def _lookup(self, task_id: str) -> tuple[TaskRef, ResolvedTarget, TaskProvider]:
        ref = decode_task_id(task_id)
        try:
            provider = self._get_provider(ref.provider)
        except (ConfigError, PluginError, InvalidRequest, LookupError) as exc:
            raise InvalidRequest(
                f"the task id names provider instance {ref.provider!r}, which this configuration does not have",
                path="task_id",
            ) from exc
        if not isinstance(provider, TaskProvider):
            raise InvalidRequest(
                f"the task id names provider instance {ref.provider!r}, which does not run tasks", path="task_id"
            )
        return ref, self._target_for(ref), provider

    def _target_for(self, ref: TaskRef) -> ResolvedTarget:
        """The target a task runs on, with the policy of the route it came from when that still exists."""
        if ref.requested_model:
            try:
                for target in self._resolve(ref.requested_model):
                    if target.provider == ref.provider and target.model == ref.model:
                        return target
            except (PolyrelayError, LookupError):
                pass  # the route is gone or renamed: poll with the default policy
        return ResolvedTarget(provider=ref.provider, model=ref.model, policy=Policy(), route=ref.requested_model)

    def _task(self, task_id: str, ref: TaskRef, snapshot: TaskSnapshot) -> Task:
        return Task(
            id=task_id,
            model=ref.model,
            provider=ref.provider,
            kind=ref.kind,
            status=snapshot.status,
            upstream_id=ref.upstream_id,
            progress=snapshot.progress,
            outputs=snapshot.outputs,
            error=snapshot.error,
            created_at=ref.created,
            updated_at=self._clock(),
            raw_status=snapshot.raw_status,
            actions=snapshot.actions,
            extra=snapshot.extra,
        )

    def _ctx(self, target: ResolvedTarget, budget: Budget | None) -> CallContext:
        return bounded(self._make_ctx(target), budget)

    async def _submit_on(self, request: TaskRequest, eligible: Sequence[tuple[ResolvedTarget, TaskProvider]]) -> Task:
        # One budget for the whole submission, every target's attempts and sleeps included.
        budget = start_budget(eligible[0][0], self._clock) if eligible else None

        async def attempt(index: int) -> Task:
            target, provider = eligible[index]
            return await self._submit_one(request, target, provider, tuple(eligible[index + 1 :]), budget)

        return await with_failover(
            request.model,
            range(len(eligible)),
            attempt,
            budget=budget,
            guard=self._guard,
            target_of=lambda index: eligible[index][0],
        )

    async def _submit_one(
        self,
        request: TaskRequest,
        target: ResolvedTarget,
        provider: TaskProvider,
        remaining: tuple[tuple[ResolvedTarget, TaskProvider], ...],
        budget: Budget | None,
    ) -> Task:
        ctx = self._ctx(target, budget)
        snapshot = await retry_on_target(
            guarded(self._guard, target, lambda: provider.submit(request, ctx), budget),
            target_retry_policy(target),
            sleep=self._sleep,
            rng=self._rng,
            budget=budget,
            stop_also=stop_when_open(self._guard, target),
        )
        ref = TaskRef(
            provider=target.provider,
            model=target.model,
            upstream_id=snapshot.upstream_id,
            kind=request.kind or snapshot.kind,
            created=self._now_ms(),
            requested_model=request.model,
        )
        task = self._task(encode_task_id(ref), ref, snapshot)
        if self.resubmit_on_failure:
            self._origins[task.id] = _Origin(request=request, remaining=remaining)
            while len(self._origins) > _MAX_REMEMBERED:
                self._origins.popitem(last=False)
        return task

    async def _resubmit(self, task_id: str, failed: Task) -> Task | None:
        origin = self._origins.pop(task_id, None)
        if origin is None or not origin.remaining:
            return None
        remaining = origin.remaining
        try:
            return await self._submit_on(origin.request, remaining)
        except (UpstreamError, InvalidRequest, AllTargetsFailed) as exc:
            raise task_failed_error(failed, note="; resubmitting to the remaining targets failed too") from exc

    async def _poll_once(
        self, task_id: str, ref: TaskRef, target: ResolvedTarget, provider: TaskProvider, *, retry: bool
    ) -> Task:
        budget = start_budget(target, self._clock) if retry else None
        ctx = self._ctx(target, budget)
        try:
            if retry:
                snapshot = await retry_on_target(
                    lambda: provider.poll(ref.upstream_id, ctx),
                    target_retry_policy(target),
                    sleep=self._sleep,
                    rng=self._rng,
                    budget=budget,
                )
            else:
                snapshot = await provider.poll(ref.upstream_id, ctx)
        except NotFound as exc:
            # A well-formed id the upstream no longer knows: expired (most upstreams keep tasks for hours to days)
            # or never created there. Say so plainly instead of surfacing a bare 404.
            age = max(0.0, self._clock() - ref.created)
            raise NotFound(
                f"task {ref.upstream_id!r} is not known to provider {ref.provider!r} any more: it expired upstream, "
                f"was deleted, or never existed (the id was issued {age / 3600:.1f} h ago); upstream said: "
                f"{exc.message}",
                provider=exc.provider,
                status=exc.status,
                code=exc.code,
                request_id=exc.request_id,
                model=exc.model,
            ) from exc
        return self._task(task_id, ref, snapshot)

    async def _poll_loop(
        self,
        task_id: str,
        ref: TaskRef,
        target: ResolvedTarget,
        provider: TaskProvider,
        deadline: float,
        budget: float,
    ) -> AsyncGenerator[Task, None]:
        """Every poll's task until a terminal one (tenacity: retry while not done, or on transient errors)."""
        state = _PollState()
        rp = target_retry_policy(target)
        # Transient poll errors are retried like any retryable error, except that timeouts are always retried:
        # the task lives on upstream, and losing it to one slow poll would be worse than polling again.
        poll_policy = attrs.evolve(rp, retry_on_timeout=True)

        def wait(rs: RetryCallState) -> float:
            now = self._clock()
            outcome = rs.outcome
            if outcome is not None and outcome.failed:
                delay = _backoff(state.errors_in_a_row, rp, self._rng, outcome.exception())
            else:
                snapshot = state.snapshot
                assert snapshot is not None
                interval = max(0.0, provider.poll_interval(snapshot, max(0.0, now - ref.created)))
                delay = interval * (1.0 + self._rng.uniform(0.0, _POLL_JITTER))
            # The last poll happens at the deadline, not after it.
            return max(0.0, min(delay, deadline - now))

        def stop(rs: RetryCallState) -> bool:
            return self._clock() >= deadline or state.errors_in_a_row >= self.max_poll_errors

        retrying = AsyncRetrying(
            sleep=self._sleep,
            retry=retry_if_result(lambda task: task is None or not task.done)
            | retry_if_exception(lambda exc: should_retry(exc, poll_policy)),
            wait=wait,
            stop=stop,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    task = await self._poll_once(task_id, ref, target, provider, retry=False)
                if attempt.retry_state.outcome is not None and attempt.retry_state.outcome.failed:
                    state.errors_in_a_row += 1
                    continue
                state.errors_in_a_row = 0
                state.snapshot = TaskSnapshot(
                    upstream_id=task.upstream_id,
                    status=task.status,
                    kind=task.kind,
                    progress=task.progress,
                    raw_status=task.raw_status,
                )
                attempt.retry_state.set_result(task)
                yield task
        except RetryError as exc:
            last = exc.last_attempt
            cause = last.exception() if last.failed else None
            if state.errors_in_a_row >= self.max_poll_errors and cause is not None:
                raise cause from None
            raise TaskTimeout(
                f"task {task_id} did not finish within {budget:g}s (it may still finish upstream)",
                task_id=task_id,
                provider=ref.provider,
            ) from cause


def task_failed_error(task: Task, note: str = "") -> TaskFailed:
    """The :class:`TaskFailed` for a task that ended ``failed`` (or ``canceled``), with the upstream's reason."""
    error = task.error
    default = "the task was canceled" if task.status == "canceled" else "the upstream reported the task failed"
    message = error.message if error is not None and error.message else default
    code = error.code if error is not None else None
    return TaskFailed(
        f"task {task.id} failed on {task.provider}: {message}{note}", task_id=task.id, provider=task.provider, code=code
    )


class TaskWaiter:
    """What :meth:`TaskService.wait` returns: awaitable (the finished task; ``TaskFailed`` / ``TaskTimeout``) and
    async-iterable (each changed snapshot, the terminal one last; ``on_progress`` is called for each as well)."""

    __slots__ = ("_kw", "_service", "_task_id")

    def __init__(self, service: TaskService, task_id: str, **kw: Any) -> None:
        self._service = service
        self._task_id = task_id
        self._kw = kw

    def __await__(self) -> Generator[Any, None, Task]:
        return self._service.wait_done(self._task_id, **self._kw).__await__()

    async def __aiter__(self) -> AsyncGenerator[Task, None]:
        on_progress = self._kw.get("on_progress")
        watch = self._service.watch(self._task_id, timeout=self._kw.get("timeout"), resubmit=self._kw.get("resubmit"))
        async with aclosing(watch) as snapshots:
            async for task in snapshots:
                if on_progress is not None:
                    result = on_progress(task)
                    if inspect.isawaitable(result):
                        await result
                yield task
