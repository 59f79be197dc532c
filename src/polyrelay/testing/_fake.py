"""A scriptable in-process provider for tests: :class:`FakeProvider` and :func:`fake_spec`.

Register the spec, configure provider instances of its type, and script each instance::

    registry = ProviderRegistry([fake_spec()], entry_points=False)
    router = Router(providers={"a": ProviderSettings(name="a", type="fake")}, models=[...], registry=registry)
    fake = router.provider("a")                      # the FakeProvider instance of provider "a"
    fake.push(RateLimited("slow down", retry_after=1), Reply(content="Hi!"))
    ...
    assert [c.ctx.model for c in fake.calls] == ["gpt-4o", "gpt-4o"]

A **step** answers one call: a :class:`Reply`, an exception instance (raised as the call's error), or a callable
``(request, ctx) -> step``. Pushed steps are used first-in first-out (optionally only for one upstream model), then
``fake.default`` answers.

Like the real transport, the fake honours the call's context: a ``Reply.delay`` longer than
``ctx.timeouts.first_byte`` raises :class:`~polyrelay.errors.FirstByteTimeout` when that timeout ends, a pause in a
stream longer than ``ctx.timeouts.idle`` raises :class:`~polyrelay.errors.IdleTimeout`, and anything running past
``ctx.deadline`` raises :class:`~polyrelay.errors.DeadlineExceeded`. ``delay=math.inf`` never answers.
Every call is recorded in ``fake.calls`` (:class:`FakeCall`), including whether its stream was released.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from typing import Literal

import attrs

from polyrelay.errors import ConfigError, DeadlineExceeded, FirstByteTimeout, IdleTimeout
from polyrelay.policy import did_you_mean
from polyrelay.provider import CallContext, ModelCapabilities, ProviderSettings, ProviderSpec
from polyrelay.types.chat import ChatRequest, ToolCall
from polyrelay.types.completion import (
    CallWarning,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    Choice,
    ChoiceDelta,
    ChunkChoice,
    FunctionCallDelta,
    ResponseMeta,
    ToolCallDelta,
    Usage,
)

__all__ = ["FakeCall", "FakeProvider", "Reply", "Step", "fake_spec", "hang"]

StreamItem = str | float | BaseException | ChatCompletionChunk
"""In ``Reply.chunks``: text (a content delta), a pause in seconds, an exception (raised there), or a chunk."""

_OPTION_KEYS = frozenset({"accepts_prefill", "context_window"})


def _items(value: Sequence[StreamItem] | None) -> tuple[StreamItem, ...] | None:
    return None if value is None else tuple(value)


def _tool_calls(value: Iterable[ToolCall]) -> tuple[ToolCall, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class Reply:
    """A successful answer.

    Non-streamed calls get ``content``/``reasoning_content``/``tool_calls`` in one completion. Streamed calls get a
    role chunk, then ``chunks`` (default: the reasoning, the content in ``chunk_size`` pieces, the tool calls),
    then, with ``finish``, the finish chunk and (when the request asked for it) the usage chunk. ``finish=False``
    ends the stream right after ``chunks``, like a provider that lost the end of the stream without noticing.
    """

    content: str | None = "Hello from FakeProvider."
    reasoning_content: str | None = None
    tool_calls: tuple[ToolCall, ...] = attrs.field(default=(), converter=_tool_calls)
    finish_reason: str | None = None
    """Default: ``tool_calls`` when there are tool calls, else ``stop``."""
    usage: Usage | None = None
    """Default: a deterministic count from the text (a quarter of the characters)."""
    delay: float = 0.0
    """Seconds before the answer (non-stream) or before the stream opens (its "headers")."""
    chunks: tuple[StreamItem, ...] | None = attrs.field(default=None, converter=_items)
    chunk_size: int = 8
    finish: bool = True
    warnings: tuple[CallWarning, ...] = ()
    """Put on the result's meta, as a provider reports settings it could not honour."""
    request_id: str | None = None


Step = Reply | BaseException | Callable[[ChatRequest, CallContext], "Reply | BaseException"]


def hang() -> Reply:
    """A step that never answers (the call ends only by a timeout, its deadline or cancellation)."""
    return Reply(delay=math.inf)


@attrs.define(kw_only=True, eq=False)
class FakeCall:
    """One call the fake received."""

    request: ChatRequest
    ctx: CallContext
    stream: bool
    started_at: float
    """``loop.time()`` when the call arrived."""
    outcome: Literal["pending", "ok", "error", "cancelled", "closed"] = "pending"
    """``closed``: a stream closed by the consumer before its end."""
    error: BaseException | None = None
    chunks_sent: int = 0
    released: bool = False
    """The call let go of its (simulated) connection: it returned, raised, was cancelled or closed."""


@attrs.define(eq=False)
class _Queued:
    step: Step
    model: str | None


class FakeProvider:
    """A provider that answers from a script (see the module docs); a :class:`~polyrelay.provider.ChatProvider`."""

    def __init__(
        self,
        settings: ProviderSettings,
        transport: object = None,
        *,
        capabilities: ModelCapabilities | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.calls: list[FakeCall] = []
        self.default: Step = Reply()
        """Answers every call when nothing pushed matches."""
        opts = settings.options
        for k in opts:
            if k not in _OPTION_KEYS:
                raise ConfigError(
                    f"unknown option{did_you_mean(str(k), _OPTION_KEYS)}", key=f"{settings.config_path or 'fake'}.{k}"
                )
        self.caps = capabilities or ModelCapabilities(
            accepts_prefill=bool(opts.get("accepts_prefill", False)), context_window=opts.get("context_window")
        )
        """What :meth:`capabilities` reports for every model."""
        self._queue: deque[_Queued] = deque()
        self._seq = 0

    # -- scripting -----------------------------------------------------------------------------------------------
    def push(self, *steps: Step, model: str | None = None) -> None:
        """Queue steps for the next calls (only calls for upstream model ``model`` when given)."""
        self._queue.extend(_Queued(step=s, model=model) for s in steps)

    def clear(self) -> None:
        self._queue.clear()

    @property
    def pending(self) -> int:
        """Pushed steps not used yet."""
        return len(self._queue)

    @property
    def open_calls(self) -> int:
        """Calls that have not released their connection (e.g. a stream nobody closed)."""
        return sum(1 for c in self.calls if not c.released)

    def capabilities(self, model: str) -> ModelCapabilities:
        return self.caps

    # -- ChatProvider --------------------------------------------------------------------------------------------
    async def chat(self, request: ChatRequest, ctx: CallContext) -> ChatCompletion:
        call = self._record(request, ctx, stream=False)
        try:
            reply = self._reply(request, ctx)
            await _pause(reply.delay, ctx, "first_byte", self.name)
            result = self._completion(request, ctx, reply)
        except asyncio.CancelledError:
            call.outcome = "cancelled"
            raise
        except BaseException as exc:
            call.outcome, call.error = "error", exc
            raise
        finally:
            call.released = True
        call.outcome = "ok"
        return result

    async def stream_chat(self, request: ChatRequest, ctx: CallContext) -> AsyncGenerator[ChatCompletionChunk, None]:
        call = self._record(request, ctx, stream=True)
        try:
            reply = self._reply(request, ctx)
            await _pause(reply.delay, ctx, "first_byte", self.name)
            cid = f"fake-{self._seq}"
            yield self._chunk(cid, ctx, ChoiceDelta(role="assistant", content=""), meta=self._meta(ctx, reply))
            call.chunks_sent += 1
            for item in self._stream_items(reply):
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, int | float):
                    await _pause(float(item), ctx, "idle", self.name)
                    continue
                chunk = (
                    item if isinstance(item, ChatCompletionChunk) else self._chunk(cid, ctx, ChoiceDelta(content=item))
                )
                yield chunk
                call.chunks_sent += 1
            if reply.finish:
                yield self._chunk(cid, ctx, ChoiceDelta(), finish_reason=_finish(reply))
                call.chunks_sent += 1
                if request.include_usage:
                    yield ChatCompletionChunk(id=cid, model=ctx.model, usage=self._usage(request, reply))
                    call.chunks_sent += 1
        except GeneratorExit:
            call.outcome = "closed"
            raise
        except asyncio.CancelledError:
            call.outcome = "cancelled"
            raise
        except BaseException as exc:
            call.outcome, call.error = "error", exc
            raise
        else:
            call.outcome = "ok"
        finally:
            call.released = True

    # -- internals -----------------------------------------------------------------------------------------------
    def _record(self, request: ChatRequest, ctx: CallContext, *, stream: bool) -> FakeCall:
        self._seq += 1
        call = FakeCall(request=request, ctx=ctx, stream=stream, started_at=asyncio.get_running_loop().time())
        self.calls.append(call)
        return call

    def _reply(self, request: ChatRequest, ctx: CallContext) -> Reply:
        step: Step | None = None
        for q in self._queue:
            if q.model is None or q.model == ctx.model:
                self._queue.remove(q)
                step = q.step
                break
        if step is None:
            step = self.default
        if callable(step) and not isinstance(step, Reply | BaseException):
            step = step(request, ctx)
        if isinstance(step, BaseException):
            raise step
        return step

    def _meta(self, ctx: CallContext, reply: Reply) -> ResponseMeta | None:
        if not reply.warnings and reply.request_id is None:
            return None
        return ResponseMeta(provider=self.name, model=ctx.model, warnings=reply.warnings, request_id=reply.request_id)

    def _usage(self, request: ChatRequest, reply: Reply) -> Usage:
        if reply.usage is not None:
            return reply.usage
        prompt = 3 + sum(3 + math.ceil(len(m.text) / 4) for m in request.messages)
        out = len(reply.content or "") + len(reply.reasoning_content or "")
        out += sum(len(t.function.name) + len(t.function.arguments) for t in reply.tool_calls)
        completion = max(1, math.ceil(out / 4))
        return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)

    def _completion(self, request: ChatRequest, ctx: CallContext, reply: Reply) -> ChatCompletion:
        message = ChatCompletionMessage(
            content=reply.content,
            reasoning_content=reply.reasoning_content,
            tool_calls=reply.tool_calls or None,
        )
        return ChatCompletion(
            id=f"fake-{self._seq}",
            model=ctx.model,
            choices=(Choice(index=0, message=message, finish_reason=_finish(reply)),),
            usage=self._usage(request, reply),
            meta=self._meta(ctx, reply),
        )

    def _chunk(
        self,
        cid: str,
        ctx: CallContext,
        delta: ChoiceDelta,
        *,
        finish_reason: str | None = None,
        meta: ResponseMeta | None = None,
    ) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=cid,
            model=ctx.model,
            choices=(ChunkChoice(index=0, delta=delta, finish_reason=finish_reason),),
            meta=meta,
        )

    def _stream_items(self, reply: Reply) -> Sequence[StreamItem | ChatCompletionChunk]:
        if reply.chunks is not None:
            return reply.chunks
        out: list[StreamItem] = []
        size = max(1, reply.chunk_size)
        cid = f"fake-{self._seq}"
        for text, field in ((reply.reasoning_content, "reasoning_content"), (reply.content, "content")):
            for i in range(0, len(text or ""), size):
                piece = (text or "")[i : i + size]
                if field == "content":
                    out.append(piece)
                else:
                    delta = ChoiceDelta(reasoning_content=piece)
                    out.append(ChatCompletionChunk(id=cid, choices=(ChunkChoice(index=0, delta=delta),)))
        for n, tc in enumerate(reply.tool_calls):
            first = ToolCallDelta(
                index=n, id=tc.id, type="function", function=FunctionCallDelta(name=tc.function.name, arguments="")
            )
            rest = ToolCallDelta(index=n, function=FunctionCallDelta(arguments=tc.function.arguments))
            for d in (first, rest):
                out.append(
                    ChatCompletionChunk(id=cid, choices=(ChunkChoice(index=0, delta=ChoiceDelta(tool_calls=(d,))),))
                )
        return out


def _finish(reply: Reply) -> str:
    if reply.finish_reason is not None:
        return reply.finish_reason
    return "tool_calls" if reply.tool_calls else "stop"


async def _pause(seconds: float, ctx: CallContext, phase: Literal["first_byte", "idle"], provider: str) -> None:
    """Sleep like waiting on the network: cut short by the phase's timeout or the call's deadline."""
    if seconds <= 0:
        return
    loop = asyncio.get_running_loop()
    now = loop.time()
    phase_limit = ctx.timeouts.first_byte if phase == "first_byte" else ctx.timeouts.idle
    cut: tuple[float, Exception] | None = None
    if phase_limit is not None and phase_limit < seconds:
        err: Exception = (
            FirstByteTimeout(f"no response headers within {phase_limit}s", provider=provider)
            if phase == "first_byte"
            else IdleTimeout(f"no data for {phase_limit}s while streaming", provider=provider)
        )
        cut = (phase_limit, err)
    if ctx.deadline is not None and ctx.deadline - now < (cut[0] if cut else seconds):
        cut = (max(0.0, ctx.deadline - now), DeadlineExceeded("the call's deadline ran out", provider=provider))
    wait = cut[0] if cut is not None else seconds
    if math.isinf(wait):
        await loop.create_future()  # never resolves: only cancellation ends it
    else:
        await asyncio.sleep(wait)
    if cut is not None:
        raise cut[1]


def fake_spec(name: str = "fake", *, capabilities: ModelCapabilities | None = None) -> ProviderSpec:
    """A :class:`~polyrelay.provider.ProviderSpec` whose instances are :class:`FakeProvider` s.

    Options accepted in the provider's settings: ``accepts_prefill`` (bool) and ``context_window`` (int).
    """

    def factory(settings: ProviderSettings, transport: object) -> FakeProvider:
        return FakeProvider(settings, transport, capabilities=capabilities)

    return ProviderSpec(
        name=name,
        factory=factory,
        description="scriptable in-process provider for tests",
        option_keys=_OPTION_KEYS,
    )
