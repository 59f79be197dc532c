"""The public stream: :class:`ChatStream`, returned by ``create(..., stream=True)``.

``create`` returns it at once, without touching the network; the first iteration starts the call. Use it as an
async iterator of :class:`~polyrelay.types.ChatCompletionChunk`, ideally inside ``async with`` so that leaving the
block early closes the upstream connection::

    stream = await router.chat.completions.create(model="fast", messages=msgs, stream=True)
    async with stream:
        async for chunk in stream:
            ...
    stream.meta.provider  # who answered; stream.attempts: every attempt made

**Failover and the commit point.** Chunks are held back until the first one with content (text, reasoning, a tool
call, a finish reason or usage). Until then a failure, including the first-token timeout
(``Policy.first_token_timeout``), moves to the next target without the caller noticing. After that chunk was
yielded, a broken stream (cut connection, idle timeout, in-band error, malformed chunk, or an end without a finish
reason) raises :class:`~polyrelay.errors.StreamInterrupted` with the text received so far in ``partial``: a
truncated answer is never reported as a success.

**Recovery** (``Policy.stream_recovery = "continue"``, opt-in): instead of raising, the next target is asked to
continue. A target whose ``capabilities(model).accepts_prefill`` gets the text delivered so far as an assistant
prefill and its chunks simply continue the answer (same chunk ``id``). Any other target answers from scratch: the
stream first yields a **restart marker**, a chunk with ``choices == ()`` and
``extra == {"polyrelay": {"event": "restart", "provider": ..., "model": ..., "reason": <error class>,
"discard": <characters of content delivered so far>}}`` (test it with :func:`is_restart`), and the caller must
discard what it received before. Tool-call and multi-choice streams always restart. ``meta.warnings`` records every
recovery. If no target can continue, :class:`~polyrelay.errors.StreamInterrupted` is raised as without recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import attrs

from polyrelay._failover import CallState, Candidate, Engine
from polyrelay.circuit import Outcome
from polyrelay.concurrency import Slots
from polyrelay.errors import (
    AllTargetsFailed,
    DeadlineExceeded,
    FirstTokenTimeout,
    IdleTimeout,
    InvalidRequest,
    StreamInterrupted,
    UpstreamError,
    UpstreamTimeout,
)
from polyrelay.hooks import AttemptEvent
from polyrelay.policy import Policy
from polyrelay.provider import ChatProvider
from polyrelay.types.chat import ChatRequest, Message
from polyrelay.types.completion import Attempt, CallWarning, ChatCompletionChunk, ResponseMeta, Usage

__all__ = ["RESTART_KEY", "ChatStream", "is_restart"]

T = TypeVar("T")

#: Key in ``chunk.extra`` of the restart marker chunk.
RESTART_KEY = "polyrelay"


class _Empty:
    """The iterator of a stream closed before it started."""

    def __aiter__(self) -> _Empty:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        raise StopAsyncIteration


_EMPTY = _Empty()


def is_restart(chunk: ChatCompletionChunk) -> bool:
    """True for the marker chunk announcing that the answer restarts from scratch (discard what came before)."""
    info = chunk.extra.get(RESTART_KEY) if chunk.extra else None
    return isinstance(info, Mapping) and info.get("event") == "restart"


# -- opening a stream: one attempt up to the commit point, and its accounting at the end ---------------------------


@attrs.define(slots=True, kw_only=True, eq=False)
class OpenedStream:
    """A stream that delivered its first content: the live iterator and the chunks read so far."""

    cand: Candidate
    policy: Policy
    agen: AsyncIterator[ChatCompletionChunk]
    buffered: list[ChatCompletionChunk]
    slots: Slots
    probe: bool
    started: float
    index: int
    """Position of this attempt in ``CallState.attempts``."""
    number: int
    loop_deadline: float | None
    prefilled: bool = False
    finished: bool = False
    """Accounted for (:func:`finish_stream` ran): the slot is back and the iterator closed."""


def has_content(chunk: ChatCompletionChunk) -> bool:
    """True for a chunk that commits a stream: model output, a finish reason or usage (not the role prelude)."""
    if chunk.usage is not None:
        return True
    for ch in chunk.choices:
        if ch.finish_reason is not None:
            return True
        d = ch.delta
        if d.content or d.reasoning_content or d.refusal or d.tool_calls:
            return True
    return False


async def stream_attempt(
    engine: Engine, cand: Candidate, policy: Policy, call: CallState, probe: bool, number: int
) -> OpenedStream:
    """Open a stream and read up to its first content (the commit point), under the first-token timeout."""
    provider = engine.chat_provider(cand.provider)
    if engine.deadline_passed(call):
        raise DeadlineExceeded("the call's deadline ran out before the attempt", provider=cand.provider)
    request, prefilled = stream_request(call, cand, provider)
    slots = await engine.take_slot(call, cand, policy)
    start = engine.clock()
    loop = asyncio.get_running_loop()
    deadline = engine.loop_deadline(call)
    # The first-token timeout is a failover trigger: it only fires when there is somewhere better to go (another
    # candidate, or a retry here when retry_on_timeout allows it); otherwise waiting on is the best chance.
    ftt = policy.first_token_timeout if policy.first_token_timeout is not None else policy.timeouts.first_byte
    ftt_at: float | None = None
    if ftt is not None and (
        engine.has_alternative(call) or (policy.retry.retry_on_timeout and number < policy.retry.max_attempts)
    ):
        ftt_at = loop.time() + ftt
    limit = ftt_at if deadline is None or (ftt_at is not None and ftt_at < deadline) else deadline
    agen = provider.stream_chat(request, engine.context(call, cand, policy, deadline))
    buffered: list[ChatCompletionChunk] = []
    try:
        try:
            while True:
                try:
                    async with asyncio.timeout_at(limit) as cm:
                        chunk = await anext(agen)
                except StopAsyncIteration:
                    raise StreamInterrupted(
                        "the stream ended before any content", provider=cand.provider, model=cand.model
                    ) from None
                except TimeoutError as exc:
                    if cm.expired() and limit is not None and limit == ftt_at:
                        raise FirstTokenTimeout(
                            f"no content within the first-token timeout of {ftt:g}s", provider=cand.provider
                        ) from exc
                    raise engine.timeout_error(call, cand, cm.expired(), exc) from exc
                buffered.append(chunk)
                if has_content(chunk):
                    break
        except BaseException:
            await close_quietly(agen)
            raise
    except (UpstreamError, InvalidRequest) as exc:
        slots.release()
        engine.attempt_failed(call, cand, policy, exc, start, number, probe)
        raise
    except BaseException:
        slots.release()
        engine.breaker.record(cand.key, policy.circuit, "neutral", probe=probe)
        raise
    ttft = engine.clock() - start
    engine.attempt_succeeded(call, cand, policy, ttft, ttft, number)
    return OpenedStream(
        cand=cand,
        policy=policy,
        agen=agen,
        buffered=buffered,
        slots=slots,
        probe=probe,
        started=start,
        index=len(call.attempts) - 1,
        number=number,
        loop_deadline=deadline,
        prefilled=prefilled,
    )


def stream_request(call: CallState, cand: Candidate, provider: ChatProvider) -> tuple[ChatRequest, bool]:
    """The request for ``cand``: when continuing, the delivered text goes along as a prefill if it accepts one."""
    text = call.prefill
    if not text or not provider.capabilities(cand.model).accepts_prefill:
        return call.request, False
    req = call.request
    msgs = req.messages
    last = msgs[-1] if msgs else None
    if last is not None and last.role == "assistant" and isinstance(last.content, str):
        # The caller already prefilled: the partial answer continues their prefix.
        msgs = (*msgs[:-1], attrs.evolve(last, content=last.content + text))
    else:
        msgs = (*msgs, Message(role="assistant", content=text))
    return attrs.evolve(req, messages=msgs), True


async def finish_stream(
    engine: Engine, call: CallState, opened: OpenedStream, outcome: Outcome, error: BaseException | None = None
) -> None:
    """Account for a committed stream's end: success, failure (it broke) or neutral (closed by the caller)."""
    if opened.finished:
        return
    opened.finished = True
    opened.slots.release()
    cand = opened.cand
    latency = engine.clock() - opened.started
    att = call.attempts[opened.index]
    if outcome == "failure" and error is not None:
        att = attrs.evolve(
            att,
            outcome="error",
            error=engine.message(error, cand),
            error_type=type(error).__name__,
            status=getattr(error, "status", None),
            latency=latency,
        )
        call.attempts = _replaced(call.attempts, opened.index, att)
        call.errors += (error,)
        engine.hooks.attempt(
            AttemptEvent(requested_model=call.requested_model, attempt=att, number=opened.number, stream=True)
        )
    else:
        call.attempts = _replaced(call.attempts, opened.index, attrs.evolve(att, latency=latency))
    engine.breaker.record(cand.key, opened.policy.circuit, outcome, probe=opened.probe)
    await close_quietly(opened.agen)


def _replaced(items: tuple[T, ...], index: int, item: T) -> tuple[T, ...]:
    return (*items[:index], item, *items[index + 1 :])


async def close_quietly(agen: AsyncIterator[Any]) -> None:
    """``aclose()`` a provider's stream if it has one; errors while closing are not the caller's problem."""
    aclose: Callable[[], Awaitable[None]] | None = getattr(agen, "aclose", None)
    if aclose is None:
        return
    # Closing a broken stream may raise again; the connection is gone either way.
    with contextlib.suppress(Exception):
        await aclose()


class _Watchdog:
    """The idle timeout between chunks and the call's deadline, with one timer for the whole stream.

    ``asyncio.timeout`` around every chunk would add and remove a timer per chunk. This keeps one timer and only
    moves it when it fires before its time (the usual lazily-reset idle timer). When it fires while the stream is
    waiting for a chunk and the time is really up, it cancels the waiting task; :meth:`expired` turns that
    cancellation back into a timeout, like ``asyncio.timeout`` does.
    """

    __slots__ = ("_cancelling", "_handle", "_since", "deadline", "fired", "idle", "loop", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop, idle: float | None, deadline: float | None) -> None:
        self.loop, self.idle, self.deadline = loop, idle, deadline
        self.task: asyncio.Task[Any] | None = None
        self.fired = False
        self._handle: asyncio.TimerHandle | None = None
        self._since = 0.0
        self._cancelling = 0

    def begin(self) -> asyncio.Task[Any] | None:
        """The stream starts waiting for a chunk (in the current task)."""
        task = asyncio.current_task(self.loop)  # the loop passed: no get_running_loop() per chunk
        if task is None or (self.idle is None and self.deadline is None):
            return None
        self._since = self.loop.time()
        self.task, self._cancelling = task, task.cancelling()
        if self._handle is None:
            self._arm()
        return task

    def _due(self) -> float:
        due = self.deadline if self.deadline is not None else math.inf
        if self.idle is not None:
            due = min(due, self._since + self.idle)
        return due

    def _arm(self) -> None:
        due = self._due()
        if due != math.inf:
            self._handle = self.loop.call_at(due, self._fire)

    def _fire(self) -> None:
        self._handle = None
        task = self.task
        if task is None:
            return  # not waiting now: begin() re-arms
        if self.loop.time() + 1e-3 < self._due():
            self._arm()  # a chunk came since this timer was set: move it
            return
        self.fired = True
        task.cancel()

    def expired(self, task: asyncio.Task[Any] | None) -> bool:
        """Was this cancellation ours (and only ours)? Then it is a timeout, not a cancellation."""
        if not self.fired or task is None:
            return False
        self.fired = False
        return task.uncancel() <= self._cancelling

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()


class ChatStream:
    """An async iterator of :class:`ChatCompletionChunk` and an async context manager (see the module docs)."""

    __slots__ = (
        "__weakref__",
        "_call",
        "_closed",
        "_done",
        "_engine",
        "_gen",
        "_on_close",
        "_opened",
        "_provider_meta",
        "_reasoning",
        "_text",
        "_tools",
        "_usage",
        "_warnings",
        "finished",
        "restarts",
    )

    def __init__(self, engine: Engine, call: CallState, on_close: Callable[[ChatStream], None] | None = None) -> None:
        self._engine = engine
        self._call = call
        self._on_close = on_close
        self._gen: AsyncGenerator[ChatCompletionChunk, None] | None = None
        self._opened: OpenedStream | None = None
        self._closed = False
        self._provider_meta: ResponseMeta | None = None
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tools = False
        self._done: set[int] = set()
        self._usage: Usage | None = None
        self._warnings: list[CallWarning] = []
        self.finished = False
        """True once the stream ended with its finish reason (the answer is complete)."""
        self.restarts = 0
        """How many times the answer restarted from scratch on another target (restart markers yielded)."""

    # -- what the caller reads -----------------------------------------------------------------------------------
    @property
    def meta(self) -> ResponseMeta | None:
        """Who is answering and every attempt so far; ``None`` before the first chunk."""
        opened = self._opened
        if opened is None:
            return None
        return self._engine.meta(self._call, opened.cand, self._provider_meta, *self._warnings)

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        return self._call.attempts

    @property
    def provider(self) -> str | None:
        """The provider instance answering (after the first chunk)."""
        return self._opened.cand.provider if self._opened is not None else None

    @property
    def model(self) -> str | None:
        """The upstream model answering (after the first chunk)."""
        return self._opened.cand.model if self._opened is not None else None

    @property
    def requested_model(self) -> str:
        return self._call.requested_model

    @property
    def usage(self) -> Usage | None:
        """The usage the answering target reported (``stream_options.include_usage``), after the end."""
        return self._usage

    @property
    def text(self) -> str:
        """The content of choice 0 received so far (since the last restart)."""
        return "".join(self._text)

    # -- protocol ------------------------------------------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        # ``async for`` iterates the inner generator directly: one await layer less per chunk.
        return self._generator()

    async def __anext__(self) -> ChatCompletionChunk:
        return await self._generator().__anext__()

    def _generator(self) -> AsyncIterator[ChatCompletionChunk]:
        gen = self._gen
        if gen is None:
            if self._closed:
                return _EMPTY
            gen = self._gen = self._run()
        return gen

    async def aclose(self) -> None:
        """Stop reading: release the upstream connection and the target's slot. Idempotent."""
        if self._closed:
            return
        self._closed = True
        gen, self._gen = self._gen, None
        if gen is not None:
            await gen.aclose()
        if self._on_close is not None:
            self._on_close(self)

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- the work ------------------------------------------------------------------------------------------------
    async def _run(self) -> AsyncGenerator[ChatCompletionChunk, None]:
        engine, call = self._engine, self._call
        opened, _ = await engine.run(call, functools.partial(stream_attempt, engine))
        self._opened = opened
        first = True
        stream_id: str | None = None
        loop = asyncio.get_running_loop()
        dog: _Watchdog | None = None
        try:
            while True:
                agen, pending = opened.agen, opened.buffered
                dog = _Watchdog(loop, opened.policy.timeouts.idle, opened.loop_deadline)
                continuation = opened.prefilled
                error: BaseException | None = None
                try:
                    while True:
                        if pending:
                            chunk = pending.pop(0)
                            if continuation and not has_content(chunk):
                                continue  # the continuation's own role prelude: the caller already has one
                        else:
                            task = dog.begin()
                            try:
                                chunk = await anext(agen)
                            except StopAsyncIteration:
                                break
                            except asyncio.CancelledError as exc:
                                if not dog.expired(task):
                                    raise
                                raise self._timeout(dog, opened) from exc
                            finally:
                                dog.task = None
                        self._track(chunk)
                        if first:
                            first = False
                            stream_id = chunk.id
                            if chunk.meta is not None:
                                self._provider_meta = chunk.meta
                            chunk = attrs.evolve(chunk, meta=self.meta)
                        elif continuation and chunk.id != stream_id and stream_id is not None:
                            chunk = attrs.evolve(chunk, id=stream_id)
                        yield chunk
                except (UpstreamError, InvalidRequest) as exc:
                    error = exc
                finally:
                    dog.close()
                if self.finished:
                    # Complete answer (an error after every finish reason, e.g. a lost usage chunk, changes nothing).
                    await finish_stream(engine, call, opened, "success")
                    return
                if error is None:
                    error = StreamInterrupted(
                        "the stream ended without a finish reason",
                        provider=opened.cand.provider,
                        model=opened.cand.model,
                    )
                await finish_stream(engine, call, opened, "failure", error)
                broken = opened
                opened = await self._recover(broken, error)
                self._opened = opened
                if not opened.prefilled:
                    marker = self._restart_marker(broken, opened, error, stream_id)
                    self._reset()
                    first = False
                    yield marker
        finally:
            if dog is not None:
                dog.close()
            live = self._opened
            if live is not None and not live.finished:
                # Closed early by the caller, cancelled, or our own error: release the connection and the slot.
                await finish_stream(engine, call, live, "neutral")

    def _timeout(self, dog: _Watchdog, opened: OpenedStream) -> UpstreamTimeout:
        if dog.deadline is not None and dog.loop.time() >= dog.deadline:
            self._call.expired = True
            return DeadlineExceeded("the call's deadline ran out while streaming", provider=opened.cand.provider)
        return IdleTimeout(f"no chunk for {dog.idle:g}s while streaming", provider=opened.cand.provider)

    async def _recover(self, broken: OpenedStream, error: BaseException) -> OpenedStream:
        """Continue on the next target, or raise StreamInterrupted with what was delivered."""
        call, engine = self._call, self._engine
        partial = "".join(self._text)
        if call.policy.stream_recovery != "continue" or engine.deadline_passed(call):
            raise self._interrupted(broken, error) from error
        simple = not self._tools and (call.request.n or 1) == 1
        call.prefill = partial if simple and partial else None
        engine.failover(call, broken.cand, error, "stream_interrupted")
        try:
            opened, _ = await engine.run(call, functools.partial(stream_attempt, engine))
        except (UpstreamError, InvalidRequest, AllTargetsFailed) as exc:
            raise self._interrupted(broken, error) from exc
        self._warnings.append(
            CallWarning(
                type="other",
                setting="stream_recovery",
                message=(
                    f"the stream from {broken.cand.key} broke ({type(error).__name__}); "
                    + (
                        f"{opened.cand.key} continued it from a prefill of {len(partial)} characters"
                        if opened.prefilled
                        else f"{opened.cand.key} restarted the answer (restart marker sent)"
                    )
                ),
            )
        )
        return opened

    def _restart_marker(
        self, broken: OpenedStream, opened: OpenedStream, error: BaseException, stream_id: str | None
    ) -> ChatCompletionChunk:
        self.restarts += 1
        info = {
            "event": "restart",
            "provider": opened.cand.provider,
            "model": opened.cand.model,
            "reason": type(error).__name__,
            "discard": len("".join(self._text)),
        }
        return ChatCompletionChunk(
            id=stream_id or "polyrelay-restart", choices=(), extra={RESTART_KEY: info}, meta=self.meta
        )

    def _reset(self) -> None:
        self._text.clear()
        self._reasoning.clear()
        self._done.clear()
        self._tools = False
        self._usage = None

    def _interrupted(self, broken: OpenedStream, error: BaseException) -> StreamInterrupted:
        status = getattr(error, "status", None)
        return StreamInterrupted(
            f"the stream from {broken.cand.key} broke after content was delivered: {type(error).__name__}: {error}",
            partial="".join(self._text),
            partial_reasoning="".join(self._reasoning),
            provider=broken.cand.provider,
            model=broken.cand.model,
            status=status if isinstance(status, int) else None,
            request_id=getattr(error, "request_id", None),
        )

    def _track(self, chunk: ChatCompletionChunk) -> None:
        # The only per-chunk work: remember choice 0's text (for StreamInterrupted.partial and continuation) and
        # which choices finished.
        for ch in chunk.choices:
            d = ch.delta
            if ch.index == 0:
                if d.content:
                    self._text.append(d.content)
                if d.reasoning_content:
                    self._reasoning.append(d.reasoning_content)
            if d.tool_calls:
                self._tools = True
            if ch.finish_reason is not None:
                self._done.add(ch.index)
                if len(self._done) >= (self._call.request.n or 1):
                    self.finished = True
        if chunk.usage is not None:
            self._usage = chunk.usage
