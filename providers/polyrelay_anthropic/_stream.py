"""The Anthropic stream as a typed state machine that emits OpenAI chat-completion chunks.

Phases: ``waiting`` (nothing yet; only ``ping`` may come) → ``open`` (after ``message_start``; content blocks
start, get deltas, stop) → ``finished`` (``message_delta`` brought a ``stop_reason``: the finish chunk is out) →
``closed`` (``message_stop``; the usage chunk is out). Each open content block has a typed state:

=====================  ================================================================================
block                  what the caller sees
=====================  ================================================================================
text                   ``delta.content`` per ``text_delta``
tool_use               a tool-call delta with ``index`` (counted across tool_use blocks: 0, 1, 2 … — not the
                       Anthropic block index), ``id``, ``type``, ``name``, ``arguments: ""``; then
                       ``arguments`` fragments per non-empty ``input_json_delta``
JSON-output tool       its ``input_json_delta`` fragments are ``delta.content`` (see :mod:`._request`)
thinking               ``delta.reasoning_content`` per ``thinking_delta``; at its stop, a delta whose
                       ``extra["thinking_blocks"]`` holds the whole block with its signature
redacted_thinking      at its start, a delta with ``extra["thinking_blocks"]`` holding the block
server-tool blocks     at their stop, a delta with ``extra["server_tool_blocks"]`` holding the block
=====================  ================================================================================

A consumer that wants to send the turn back as history concatenates the ``thinking_blocks`` /
``server_tool_blocks`` lists of the deltas, in order, into the assistant message's ``extra``.

``ping`` and unknown event types are ignored; ``error`` raises the classified error (``overloaded_error`` →
:class:`~polyrelay.errors.Overloaded`). End of input before ``message_stop``: complete if a ``stop_reason`` was
seen, otherwise :class:`~polyrelay.errors.StreamInterrupted`.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

import attrs

from polyrelay.errors import InvalidUpstreamResponse, StreamInterrupted
from polyrelay.types.completion import (
    CallWarning,
    ChatCompletionChunk,
    ChoiceDelta,
    ChunkChoice,
    FunctionCallDelta,
    ResponseMeta,
    ToolCallDelta,
)
from polyrelay_anthropic._errors import error_from_detail
from polyrelay_anthropic._request import ResponsePlan
from polyrelay_anthropic._response import finish_reason, map_usage
from polyrelay_anthropic._wire import (
    ContentBlockDeltaEvent,
    ContentBlockStartEvent,
    ContentBlockStopEvent,
    ErrorEvent,
    InputJSONDelta,
    MessageDeltaEvent,
    MessageStartEvent,
    MessageStopEvent,
    RedactedThinkingBlock,
    SignatureDelta,
    StreamEvent,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolUseBlock,
    UnknownBlock,
    Usage,
)

__all__ = ["StreamTranslator"]

Phase = Literal["waiting", "open", "finished", "closed"]


@attrs.define
class _Text:
    pass


@attrs.define
class _Tool:
    index: int


@attrs.define
class _JSONOutput:
    pass


@attrs.define
class _Thinking:
    text: list[str] = attrs.field(factory=list)
    signature: list[str] = attrs.field(factory=list)


@attrs.define
class _Opaque:
    """A block we pass through whole (server tools, unknown types); ``input`` may stream as JSON fragments."""

    block: dict[str, Any]
    partial_json: list[str] = attrs.field(factory=list)


_Block = _Text | _Tool | _JSONOutput | _Thinking | _Opaque


class StreamTranslator:
    """Feed it parsed events (:meth:`feed`) and, at end of input, call :meth:`end_of_stream`."""

    def __init__(
        self,
        *,
        plan: ResponsePlan,
        provider: str,
        model: str,
        include_usage: bool,
        warnings: tuple[CallWarning, ...] = (),
        request_id: str | None = None,
    ) -> None:
        self.plan = plan
        self.provider = provider
        self.model = model
        self.include_usage = include_usage
        self.warnings = warnings
        self.request_id = request_id
        self.phase: Phase = "waiting"
        self._id = ""
        self._upstream_model = model
        self._created = 0
        self._blocks: dict[int, _Block] = {}
        self._tool_count = 0
        self._json_seen = False
        self._usage = Usage()
        self._stop_reason: str | None = None
        self._text: list[str] = []
        self._reasoning: list[str] = []

    @property
    def done(self) -> bool:
        """The stream is complete: stop reading."""
        return self.phase == "closed"

    # ----------------------------------------------------------------------------------------- events

    def feed(self, event: StreamEvent) -> list[ChatCompletionChunk]:
        """The chunks one event produces (often none)."""
        if self.phase == "closed":
            return []
        if isinstance(event, ErrorEvent):
            raise error_from_detail(
                event.error, provider=self.provider, model=self.model, request_id=event.request_id or self.request_id
            )
        if isinstance(event, MessageStartEvent):
            return self._message_start(event)
        if isinstance(event, ContentBlockStartEvent | ContentBlockDeltaEvent | ContentBlockStopEvent):
            self._require_open(event.type)
            if isinstance(event, ContentBlockStartEvent):
                return self._block_start(event)
            if isinstance(event, ContentBlockDeltaEvent):
                return self._block_delta(event)
            return self._block_stop(event)
        if isinstance(event, MessageDeltaEvent):
            self._require_open(event.type)
            return self._message_delta(event)
        if isinstance(event, MessageStopEvent):
            self._require_open(event.type)
            return self._message_stop()
        return []  # ping, and event types added after this was written (Anthropic's versioning policy)

    def end_of_stream(self) -> list[ChatCompletionChunk]:
        """The input ended. Complete if a stop reason arrived; otherwise raise :class:`StreamInterrupted`."""
        if self.phase == "closed":
            return []
        if self.phase == "finished":
            self.phase = "closed"
            return [self._usage_chunk()] if self.include_usage else []
        raise StreamInterrupted(
            "the Anthropic stream ended before message_stop and without a stop_reason",
            provider=self.provider,
            partial="".join(self._text),
            partial_reasoning="".join(self._reasoning),
            request_id=self.request_id,
            model=self.model,
        )

    # ----------------------------------------------------------------------------------------- transitions

    def _require_open(self, what: str) -> None:
        if self.phase == "waiting":
            raise InvalidUpstreamResponse(f"Anthropic stream sent {what} before message_start", provider=self.provider)

    def _message_start(self, event: MessageStartEvent) -> list[ChatCompletionChunk]:
        if self.phase != "waiting":
            return []  # proxies have been seen to repeat message_start: the first one counts
        message = event.message
        self.phase = "open"
        self._id = message.id
        self._upstream_model = message.model or self.model
        self._created = int(time.time())
        if message.usage is not None:
            self._usage = message.usage
        meta = ResponseMeta(
            provider=self.provider, model=self.model, warnings=self.warnings, request_id=self.request_id
        )
        return [self._chunk(ChoiceDelta(role="assistant", content=""), meta=meta)]

    def _block_start(self, event: ContentBlockStartEvent) -> list[ChatCompletionChunk]:
        block = event.content_block
        out: list[ChatCompletionChunk] = []
        state: _Block
        if isinstance(block, TextBlock):
            state = _Text()
            if block.text:
                out.append(self._content(block.text))
        elif isinstance(block, ToolUseBlock):
            if self.plan.json_tool is not None and block.name == self.plan.json_tool:
                state = _JSONOutput()
                self._json_seen = True
            else:
                state = _Tool(index=self._tool_count)
                self._tool_count += 1
                first = ToolCallDelta(
                    index=state.index,
                    id=block.id,
                    type="function",
                    function=FunctionCallDelta(name=self.plan.caller_name(block.name), arguments=""),
                )
                out.append(self._chunk(ChoiceDelta(tool_calls=(first,))))
        elif isinstance(block, ThinkingBlock):
            state = _Thinking(text=[block.thinking] if block.thinking else [], signature=[block.signature])
            if block.thinking:
                out.append(self._reasoning_chunk(block.thinking))
        elif isinstance(block, RedactedThinkingBlock):
            state = _Opaque(block={"type": "redacted_thinking", "data": block.data})
            out.append(self._chunk(ChoiceDelta(extra={"thinking_blocks": [state.block]})))
        elif isinstance(block, UnknownBlock):
            state = _Opaque(block=dict(block.data))
        else:  # image / document / tool_result never start in a reply; keep whatever it is
            state = _Opaque(block={"type": block.type})
        self._blocks[event.index] = state
        return out

    def _block_delta(self, event: ContentBlockDeltaEvent) -> list[ChatCompletionChunk]:
        state = self._blocks.get(event.index)
        if state is None:
            raise InvalidUpstreamResponse(
                f"Anthropic stream sent a delta for content block {event.index} that never started",
                provider=self.provider,
            )
        delta = event.delta
        if isinstance(delta, TextDelta):
            return [self._content(delta.text)] if delta.text else []
        if isinstance(delta, ThinkingDelta):
            if isinstance(state, _Thinking):
                state.text.append(delta.thinking)
            return [self._reasoning_chunk(delta.thinking)] if delta.thinking else []
        if isinstance(delta, SignatureDelta):
            if isinstance(state, _Thinking):
                state.signature.append(delta.signature)
            return []
        if isinstance(delta, InputJSONDelta) and delta.partial_json:
            if isinstance(state, _Tool):
                fragment = ToolCallDelta(index=state.index, function=FunctionCallDelta(arguments=delta.partial_json))
                return [self._chunk(ChoiceDelta(tool_calls=(fragment,)))]
            if isinstance(state, _JSONOutput):
                return [self._content(delta.partial_json)]
            if isinstance(state, _Opaque):
                state.partial_json.append(delta.partial_json)
        return []  # citations_delta and future delta types

    def _block_stop(self, event: ContentBlockStopEvent) -> list[ChatCompletionChunk]:
        state = self._blocks.pop(event.index, None)
        if isinstance(state, _Thinking):
            signature = "".join(state.signature)
            if signature:  # unsigned thinking cannot be sent back, so there is nothing to keep
                block = {"type": "thinking", "thinking": "".join(state.text), "signature": signature}
                return [self._chunk(ChoiceDelta(extra={"thinking_blocks": [block]}))]
        elif isinstance(state, _Opaque) and state.block.get("type") != "redacted_thinking":
            block = dict(state.block)
            if state.partial_json:
                try:
                    block["input"] = json.loads("".join(state.partial_json))
                except ValueError as exc:
                    raise InvalidUpstreamResponse(
                        f"Anthropic stream sent invalid JSON input for a {block.get('type')} block",
                        provider=self.provider,
                    ) from exc
            return [self._chunk(ChoiceDelta(extra={"server_tool_blocks": [block]}))]
        return []

    def _message_delta(self, event: MessageDeltaEvent) -> list[ChatCompletionChunk]:
        if event.usage is not None:  # cumulative values; a field left out keeps its earlier value
            self._usage = _merge_usage(self._usage, event.usage)
        stop = event.delta.stop_reason
        if stop is None or self.phase != "open":
            return []
        self._stop_reason = stop
        self.phase = "finished"
        return [self._finish_chunk(stop)]

    def _message_stop(self) -> list[ChatCompletionChunk]:
        out: list[ChatCompletionChunk] = []
        if self.phase == "open":  # message_stop without a stop_reason: the upstream still says it is complete
            out.append(self._finish_chunk("end_turn"))
        self.phase = "closed"
        if self.include_usage:
            out.append(self._usage_chunk())
        return out

    # ----------------------------------------------------------------------------------------- chunks

    def _finish_chunk(self, stop: str) -> ChatCompletionChunk:
        reason = finish_reason(stop, json_only=self._json_seen and self._tool_count == 0)
        return self._chunk(ChoiceDelta(), finish=reason)

    def _content(self, text: str) -> ChatCompletionChunk:
        self._text.append(text)
        return self._chunk(ChoiceDelta(content=text))

    def _reasoning_chunk(self, text: str) -> ChatCompletionChunk:
        self._reasoning.append(text)
        return self._chunk(ChoiceDelta(reasoning_content=text))

    def _usage_chunk(self) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self._id, created=self._created, model=self._upstream_model, choices=(), usage=map_usage(self._usage)
        )

    def _chunk(
        self, delta: ChoiceDelta, *, finish: str | None = None, meta: ResponseMeta | None = None
    ) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self._id,
            created=self._created,
            model=self._upstream_model,
            choices=(ChunkChoice(index=0, delta=delta, finish_reason=finish),),
            meta=meta,
        )


def _merge_usage(old: Usage, new: Usage) -> Usage:
    return Usage(
        input_tokens=new.input_tokens if new.input_tokens is not None else old.input_tokens,
        output_tokens=new.output_tokens if new.output_tokens is not None else old.output_tokens,
        cache_creation_input_tokens=(
            new.cache_creation_input_tokens
            if new.cache_creation_input_tokens is not None
            else old.cache_creation_input_tokens
        ),
        cache_read_input_tokens=(
            new.cache_read_input_tokens if new.cache_read_input_tokens is not None else old.cache_read_input_tokens
        ),
        output_tokens_details=new.output_tokens_details or old.output_tokens_details,
    )
