"""Gemini ``streamGenerateContent?alt=sse`` events → OpenAI ``chat.completion.chunk`` objects.

:class:`StreamTranslator` is a pure state machine (no I/O): feed it the JSON of each SSE event, and call
:meth:`~StreamTranslator.end_of_stream` when the body ends. Its phases::

    AWAITING_FIRST --first chunk--> STREAMING --every expected candidate has a finishReason--> COMPLETE

Gemini streams are different from OpenAI's in ways this handles:

- each chunk is a whole ``GenerateContentResponse`` holding only the new parts; ``functionCall`` parts arrive
  whole, so a tool call is emitted as its opening fragment (id, name, ``""``) and one arguments fragment;
- there is no ``[DONE]``: the stream is complete once every candidate has a ``finishReason`` (the provider stops
  reading there, without waiting for EOF). At EOF before that, :class:`~polyrelay.errors.StreamInterrupted`;
- ``usageMetadata`` is cumulative and on every chunk: the last one seen is the usage (one final usage chunk
  with ``choices == []`` when ``include_usage`` was asked);
- an error can arrive as a ``data: {"error": {...}}`` event after HTTP 200: it is classified and raised;
- a blocked prompt (``promptFeedback.blockReason``) comes in the first chunk: ContentPolicyViolation.

The part/finish/usage mapping is :mod:`._response`'s, so stream and non-stream agree (ids included).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

import attrs

from polyrelay.errors import Secret, StreamInterrupted
from polyrelay.types.completion import (
    ChatCompletionChunk,
    ChoiceDelta,
    ChunkChoice,
    FunctionCallDelta,
    ResponseMeta,
    ToolCallDelta,
)
from polyrelay_gemini._errors import classify_error, error_status, is_error_payload
from polyrelay_gemini._response import (
    ResponseIds,
    arguments_json,
    check_prompt_feedback,
    google_extra,
    map_finish_reason,
    map_logprobs,
    map_usage,
    parse_response,
    tool_call_id,
)
from polyrelay_gemini._wire import Candidate, Part, UsageMetadata, wire_converter

__all__ = ["Phase", "StreamTranslator"]


class Phase(enum.Enum):
    AWAITING_FIRST = "awaiting_first"
    STREAMING = "streaming"
    COMPLETE = "complete"


@attrs.define
class _ChoiceState:
    """One candidate's progress."""

    index: int
    tool_calls: int = 0
    finish_reason: str | None = None
    text: list[str] = attrs.field(factory=list)
    reasoning: list[str] = attrs.field(factory=list)


@attrs.define
class StreamTranslator:
    """Turns one Gemini stream into OpenAI chunks. See the module docstring for the state machine."""

    provider: str
    model: str
    """The upstream model id, used when the chunks carry no ``modelVersion``."""
    created: int
    include_usage: bool = False
    expected_choices: int = 1
    """``n`` of the request: the stream is complete when this many candidates have finished."""
    meta: ResponseMeta | None = None
    """Put on the first chunk (carries the request's warnings)."""
    secrets: tuple[Secret | str, ...] = ()
    request_id: str | None = None
    phase: Phase = Phase.AWAITING_FIRST
    ids: ResponseIds | None = None
    choices: dict[int, _ChoiceState] = attrs.field(factory=dict)
    usage: UsageMetadata | None = None
    _meta_pending: bool = True

    @property
    def complete(self) -> bool:
        return self.phase is Phase.COMPLETE

    # ------------------------------------------------------------------------------------------------ input

    def feed(self, data: Any) -> list[ChatCompletionChunk]:
        """The chunks for one SSE event's JSON. Raises the classified error for an in-stream error event."""
        if self.phase is Phase.COMPLETE:
            return []
        if is_error_payload(data):
            raise classify_error(
                error_status(data) or 500,
                data,
                provider=self.provider,
                request_id=self.request_id,
                model=self.model,
                secrets=self.secrets,
            )
        response = parse_response(data, provider=self.provider)
        if self.phase is Phase.AWAITING_FIRST:
            check_prompt_feedback(response, provider=self.provider, model=self.model)
            self.ids = ResponseIds.of(response, fallback_model=self.model)
            self.phase = Phase.STREAMING
        if response.usage_metadata is not None:
            self.usage = response.usage_metadata
        out: list[ChatCompletionChunk] = []
        for position, cand in enumerate(response.candidates or ()):
            out.extend(self._candidate(cand, position))
        if self._all_expected_finished():
            out.extend(self._finish())
        return out

    def end_of_stream(self) -> list[ChatCompletionChunk]:
        """The body ended: the final chunks if the answer was complete, else :class:`StreamInterrupted`."""
        if self.phase is Phase.COMPLETE:
            return []
        states = list(self.choices.values())
        if states and all(s.finish_reason is not None for s in states):
            # Fewer candidates than asked for, all finished: Gemini may return fewer than candidateCount.
            return self._finish()
        raise StreamInterrupted(
            "the Gemini stream ended before the answer was complete (no finishReason)",
            provider=self.provider,
            partial=self.partial_text,
            partial_reasoning=self.partial_reasoning,
            request_id=self.request_id,
            model=self.model,
        )

    @property
    def partial_text(self) -> str:
        """The content of choice 0 received so far."""
        first = self.choices.get(0)
        return "".join(first.text) if first else ""

    @property
    def partial_reasoning(self) -> str:
        first = self.choices.get(0)
        return "".join(first.reasoning) if first else ""

    # ------------------------------------------------------------------------------------------------ mapping

    def _candidate(self, cand: Candidate, position: int) -> Iterable[ChatCompletionChunk]:
        index = cand.index if cand.index is not None else position
        state = self.choices.get(index)
        if state is None:
            state = self.choices[index] = _ChoiceState(index=index)
            yield self._chunk(ChunkChoice(index=index, delta=ChoiceDelta(role="assistant", content="")))
        logprobs = map_logprobs(cand.logprobs_result)
        for part in (cand.content.parts if cand.content is not None else None) or ():
            for delta in self._deltas(part, state):
                yield self._chunk(ChunkChoice(index=index, delta=delta, logprobs=logprobs))
                logprobs = None
        if logprobs is not None:
            yield self._chunk(ChunkChoice(index=index, delta=ChoiceDelta(), logprobs=logprobs))
        if cand.finish_reason is not None and state.finish_reason is None:
            finish, native = map_finish_reason(cand.finish_reason, has_tool_calls=state.tool_calls > 0)
            state.finish_reason = finish
            extra = google_extra(
                grounding_metadata=dict(cand.grounding_metadata) if cand.grounding_metadata else None,
                finish_message=cand.finish_message,
            )
            yield self._chunk(
                ChunkChoice(
                    index=index,
                    delta=ChoiceDelta(extra=extra),
                    finish_reason=finish,
                    extra={"native_finish_reason": native} if native else {},
                )
            )

    def _deltas(self, part: Part, state: _ChoiceState) -> Iterable[ChoiceDelta]:
        assert self.ids is not None
        sig = part.thought_signature
        if part.function_call is not None:
            fc = part.function_call
            n = state.tool_calls
            state.tool_calls += 1
            opening = ToolCallDelta(
                index=n,
                id=tool_call_id(self.ids, state.index, n, fc.id),
                type="function",
                function=FunctionCallDelta(name=fc.name, arguments=""),
                extra=google_extra(thought_signature=sig),
            )
            yield ChoiceDelta(tool_calls=(opening,))
            arguments = FunctionCallDelta(arguments=arguments_json(fc.args))
            yield ChoiceDelta(tool_calls=(ToolCallDelta(index=n, function=arguments),))
        elif part.text is not None and part.thought:
            state.reasoning.append(part.text)
            if part.text or sig:
                yield ChoiceDelta(reasoning_content=part.text or None, extra=google_extra(reasoning_signature=sig))
        elif part.text is not None:
            state.text.append(part.text)
            if part.text or sig:
                yield ChoiceDelta(content=part.text or None, extra=google_extra(thought_signature=sig))
        elif part.thought and sig:
            yield ChoiceDelta(extra=google_extra(reasoning_signature=sig))
        elif part.inline_data is None and part.file_data is None and not part.extra:
            if sig:
                yield ChoiceDelta(extra=google_extra(thought_signature=sig))
        else:
            yield ChoiceDelta(extra=google_extra(parts=[wire_converter().unstructure(part)]))

    def _all_expected_finished(self) -> bool:
        if len(self.choices) < self.expected_choices:
            return False
        return all(s.finish_reason is not None for s in self.choices.values())

    def _finish(self) -> list[ChatCompletionChunk]:
        self.phase = Phase.COMPLETE
        usage = map_usage(self.usage)
        if not self.include_usage or usage is None:
            return []
        return [self._chunk(None, usage=usage)]

    def _chunk(self, choice: ChunkChoice | None, *, usage: Any = None) -> ChatCompletionChunk:
        assert self.ids is not None
        meta = None
        if self._meta_pending:
            meta, self._meta_pending = self.meta, False
        return ChatCompletionChunk(
            id=self.ids.completion_id,
            created=self.created,
            model=self.ids.model,
            choices=(choice,) if choice is not None else (),
            usage=usage,
            meta=meta,
        )
