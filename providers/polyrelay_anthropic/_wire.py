"""The Anthropic Messages API wire format as typed attrs models, and its one converter.

Content blocks and stream events are tagged unions on ``type``. A block, source, delta or event type we do not model
is kept whole as an ``Unknown*`` object (Anthropic adds server-tool blocks and event types over time; its versioning
policy says clients must tolerate them), so nothing the upstream sent is silently lost.

Every model carries the ``extra`` / ``explicit_nulls`` bookkeeping of :mod:`polyrelay.serde`: unknown keys survive a
parse and are written back, e.g. ``cache_control`` on a block or ``citations`` on a text block.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

import attrs

from polyrelay.errors import InvalidUpstreamResponse
from polyrelay.serde import WireConverter, first_error
from polyrelay.serde import explicit_nulls_field as _nulls
from polyrelay.serde import extra_field as _extra

__all__ = [
    "Base64Source",
    "ContentBlock",
    "ContentBlockDeltaEvent",
    "ContentBlockStartEvent",
    "ContentBlockStopEvent",
    "Delta",
    "DocumentBlock",
    "ErrorDetail",
    "ErrorEnvelope",
    "ErrorEvent",
    "FileSource",
    "ImageBlock",
    "InputJSONDelta",
    "Message",
    "MessageDeltaBody",
    "MessageDeltaEvent",
    "MessageStartEvent",
    "MessageStopEvent",
    "MessagesRequest",
    "OutputConfig",
    "OutputFormat",
    "OutputTokensDetails",
    "PingEvent",
    "RedactedThinkingBlock",
    "RequestMetadata",
    "SignatureDelta",
    "Source",
    "StreamEvent",
    "TextBlock",
    "TextDelta",
    "TextSource",
    "ThinkingBlock",
    "ThinkingConfig",
    "ThinkingDelta",
    "ToolChoiceSpec",
    "ToolResultBlock",
    "ToolSpec",
    "ToolUseBlock",
    "URLSource",
    "UnknownBlock",
    "UnknownDelta",
    "UnknownEvent",
    "UnknownSource",
    "Usage",
    "WireMessage",
    "parse_error_envelope",
    "parse_event",
    "parse_message",
    "to_wire",
]

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------------- sources


@attrs.frozen(kw_only=True)
class Base64Source:
    type: Literal["base64"] = "base64"
    media_type: str
    data: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class URLSource:
    type: Literal["url"] = "url"
    url: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class TextSource:
    """A plain-text document (``media_type`` ``text/plain``)."""

    type: Literal["text"] = "text"
    media_type: str = "text/plain"
    data: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class FileSource:
    """A file uploaded through the Files API (needs the ``files-api-…`` beta header)."""

    type: Literal["file"] = "file"
    file_id: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class UnknownSource:
    type: str
    data: Mapping[str, Any]


Source = Base64Source | URLSource | TextSource | FileSource | UnknownSource

# ---------------------------------------------------------------------------------------------------- content blocks


@attrs.frozen(kw_only=True)
class TextBlock:
    type: Literal["text"] = "text"
    text: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ImageBlock:
    type: Literal["image"] = "image"
    source: Source
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class DocumentBlock:
    type: Literal["document"] = "document"
    source: Source
    title: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ToolUseBlock:
    """A client tool call. ``input`` is a JSON object (``{}`` at ``content_block_start`` of a stream)."""

    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: Any
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ToolResultBlock:
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    content: str | tuple[ContentBlock, ...] | None = None
    is_error: bool | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ThinkingBlock:
    """Extended thinking. ``signature`` must travel back unmodified with the block on later turns."""

    type: Literal["thinking"] = "thinking"
    thinking: str
    signature: str = ""
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class RedactedThinkingBlock:
    """Thinking the safety system encrypted; opaque, only for sending back."""

    type: Literal["redacted_thinking"] = "redacted_thinking"
    data: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class UnknownBlock:
    """A block type not modelled here (``server_tool_use``, ``web_search_tool_result``, …); ``data`` is all of it."""

    type: str
    data: Mapping[str, Any]


ContentBlock = (
    TextBlock
    | ImageBlock
    | DocumentBlock
    | ToolUseBlock
    | ToolResultBlock
    | ThinkingBlock
    | RedactedThinkingBlock
    | UnknownBlock
)

# ---------------------------------------------------------------------------------------------------- request


@attrs.frozen(kw_only=True)
class WireMessage:
    role: Literal["user", "assistant"]
    content: tuple[ContentBlock, ...]
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ToolSpec:
    name: str
    input_schema: Mapping[str, Any]
    description: str | None = None
    strict: bool | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ToolChoiceSpec:
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ThinkingConfig:
    """``{"type": "enabled", "budget_tokens": N}``; other types (``adaptive``, ``disabled``) pass through."""

    type: str
    budget_tokens: int | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class RequestMetadata:
    user_id: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class OutputFormat:
    type: Literal["json_schema"] = "json_schema"
    schema: Mapping[str, Any]
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class OutputConfig:
    """``format`` is native structured output; other keys (``effort``) ride in ``extra``."""

    format: OutputFormat | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class MessagesRequest:
    """``POST /v1/messages`` body. ``extra`` carries the Anthropic-only keys a caller passed through."""

    model: str
    max_tokens: int
    messages: tuple[WireMessage, ...]
    system: str | tuple[TextBlock, ...] | None = None
    stop_sequences: tuple[str, ...] | None = None
    stream: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    tools: tuple[ToolSpec, ...] | None = None
    tool_choice: ToolChoiceSpec | None = None
    thinking: ThinkingConfig | None = None
    metadata: RequestMetadata | None = None
    output_config: OutputConfig | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


# ---------------------------------------------------------------------------------------------------- response


@attrs.frozen(kw_only=True)
class OutputTokensDetails:
    thinking_tokens: int | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class Usage:
    """Token counts. ``input_tokens`` excludes cache reads and writes. In ``message_delta`` every field is optional
    and the values present are cumulative."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    output_tokens_details: OutputTokensDetails | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class Message:
    """A ``type: "message"`` response (also the ``message`` of ``message_start``, with empty ``content``)."""

    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str = ""
    content: tuple[ContentBlock, ...] = ()
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: Usage | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ErrorDetail:
    type: str
    message: str = ""
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ErrorEnvelope:
    """``{"type": "error", "error": {"type", "message"}, "request_id"}``."""

    type: Literal["error"] = "error"
    error: ErrorDetail
    request_id: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


# ---------------------------------------------------------------------------------------------------- stream


@attrs.frozen(kw_only=True)
class TextDelta:
    type: Literal["text_delta"] = "text_delta"
    text: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class InputJSONDelta:
    type: Literal["input_json_delta"] = "input_json_delta"
    partial_json: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ThinkingDelta:
    type: Literal["thinking_delta"] = "thinking_delta"
    thinking: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class SignatureDelta:
    type: Literal["signature_delta"] = "signature_delta"
    signature: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class UnknownDelta:
    """``citations_delta`` and future delta types."""

    type: str
    data: Mapping[str, Any]


Delta = TextDelta | InputJSONDelta | ThinkingDelta | SignatureDelta | UnknownDelta


@attrs.frozen(kw_only=True)
class MessageStartEvent:
    type: Literal["message_start"] = "message_start"
    message: Message
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ContentBlockStartEvent:
    type: Literal["content_block_start"] = "content_block_start"
    index: int
    content_block: ContentBlock
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ContentBlockDeltaEvent:
    type: Literal["content_block_delta"] = "content_block_delta"
    index: int
    delta: Delta
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ContentBlockStopEvent:
    type: Literal["content_block_stop"] = "content_block_stop"
    index: int
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class MessageDeltaBody:
    stop_reason: str | None = None
    stop_sequence: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class MessageDeltaEvent:
    type: Literal["message_delta"] = "message_delta"
    delta: MessageDeltaBody = attrs.field(factory=MessageDeltaBody)
    usage: Usage | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class MessageStopEvent:
    type: Literal["message_stop"] = "message_stop"
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class PingEvent:
    type: Literal["ping"] = "ping"
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ErrorEvent:
    """An error after HTTP 200: ``{"type": "error", "error": {"type": "overloaded_error", ...}}``."""

    type: Literal["error"] = "error"
    error: ErrorDetail
    request_id: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class UnknownEvent:
    type: str
    data: Mapping[str, Any]


StreamEvent = (
    MessageStartEvent
    | ContentBlockStartEvent
    | ContentBlockDeltaEvent
    | ContentBlockStopEvent
    | MessageDeltaEvent
    | MessageStopEvent
    | PingEvent
    | ErrorEvent
    | UnknownEvent
)

# ---------------------------------------------------------------------------------------------------- converter

_SOURCES: Mapping[str, type[Any]] = {
    "base64": Base64Source,
    "url": URLSource,
    "text": TextSource,
    "file": FileSource,
}
_BLOCKS: Mapping[str, type[Any]] = {
    "text": TextBlock,
    "image": ImageBlock,
    "document": DocumentBlock,
    "tool_use": ToolUseBlock,
    "tool_result": ToolResultBlock,
    "thinking": ThinkingBlock,
    "redacted_thinking": RedactedThinkingBlock,
}
_DELTAS: Mapping[str, type[Any]] = {
    "text_delta": TextDelta,
    "input_json_delta": InputJSONDelta,
    "thinking_delta": ThinkingDelta,
    "signature_delta": SignatureDelta,
}
_EVENTS: Mapping[str, type[Any]] = {
    "message_start": MessageStartEvent,
    "content_block_start": ContentBlockStartEvent,
    "content_block_delta": ContentBlockDeltaEvent,
    "content_block_stop": ContentBlockStopEvent,
    "message_delta": MessageDeltaEvent,
    "message_stop": MessageStopEvent,
    "ping": PingEvent,
    "error": ErrorEvent,
}


def _build(detailed: bool) -> WireConverter:
    w = WireConverter(detailed=detailed)
    c = w.c

    def tagged(table: Mapping[str, type[Any]], unknown: type[Any], what: str) -> Any:
        def structure(v: Any, _: Any) -> Any:
            if not isinstance(v, Mapping):
                raise TypeError(f"a {what} must be an object, got {type(v).__name__}")
            tag = v.get("type")
            if not isinstance(tag, str):
                raise ValueError(f"a {what} needs a string 'type'")
            cls = table.get(tag)
            if cls is None:
                return unknown(type=tag, data=dict(v))
            return c.structure(v, cls)

        return structure

    c.register_structure_hook(Source, tagged(_SOURCES, UnknownSource, "source"))
    c.register_structure_hook(ContentBlock, tagged(_BLOCKS, UnknownBlock, "content block"))
    c.register_structure_hook(Delta, tagged(_DELTAS, UnknownDelta, "delta"))
    c.register_structure_hook(StreamEvent, tagged(_EVENTS, UnknownEvent, "stream event"))
    for unknown in (UnknownSource, UnknownBlock, UnknownDelta, UnknownEvent):
        c.register_unstructure_hook(unknown, lambda u: dict(u.data))

    blocks_t = tuple[ContentBlock, ...]

    def structure_result_content(v: Any, _: Any) -> Any:
        if v is None or isinstance(v, str):
            return v
        return c.structure(v, blocks_t)

    c.register_structure_hook(str | blocks_t | None, structure_result_content)

    def structure_system(v: Any, _: Any) -> Any:
        if v is None or isinstance(v, str):
            return v
        return c.structure(v, tuple[TextBlock, ...])

    c.register_structure_hook(str | tuple[TextBlock, ...] | None, structure_system)

    # Strict scalars: cattrs would turn null into "None" or 5 into "5"; an upstream sending those is broken.
    def structure_str(v: Any, _: Any) -> str:
        if not isinstance(v, str):
            raise TypeError(f"expected a string, got {type(v).__name__}")
        return v

    def structure_int(v: Any, _: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"expected an integer, got {type(v).__name__}")
        return v

    def structure_float(v: Any, _: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise TypeError(f"expected a number, got {type(v).__name__}")
        return float(v)

    def structure_bool(v: Any, _: Any) -> bool:
        if not isinstance(v, bool):
            raise TypeError(f"expected true or false, got {type(v).__name__}")
        return v

    c.register_structure_hook(str, structure_str)
    c.register_structure_hook(int, structure_int)
    c.register_structure_hook(float, structure_float)
    c.register_structure_hook(bool, structure_bool)
    c.register_structure_hook(Any, lambda v, _: v)
    return w


@functools.cache
def _detailed() -> WireConverter:
    return _build(detailed=True)


@functools.cache
def _fast() -> WireConverter:
    # The hot path (every stream event): no per-field error bookkeeping; on failure the detailed converter
    # re-runs to name the offending field.
    return _build(detailed=False)


def _parse(data: Any, cls: Any, what: str, provider: str) -> Any:
    try:
        return _fast().structure(data, cls)
    except Exception as fast_exc:  # any structuring failure means the upstream sent garbage
        try:
            _detailed().structure(data, cls)
        except Exception as exc:
            path, msg = first_error(exc)
            raise InvalidUpstreamResponse(
                f"invalid Anthropic {what}: {path or 'body'}: {msg}", provider=provider
            ) from exc
        raise InvalidUpstreamResponse(f"invalid Anthropic {what}: {fast_exc}", provider=provider) from fast_exc


def parse_message(data: Any, *, provider: str = "") -> Message:
    """Structure a non-stream response body; :class:`InvalidUpstreamResponse` naming the field on failure."""
    out: Message = _parse(data, Message, "message", provider)
    return out


def parse_event(data: Any, *, provider: str = "") -> StreamEvent:
    """Structure one stream event's JSON (dispatching on its ``type``)."""
    out: StreamEvent = _parse(data, StreamEvent, "stream event", provider)
    return out


def parse_error_envelope(data: Any) -> ErrorEnvelope | None:
    """The error envelope in ``data``, or ``None`` when ``data`` is not one (an HTML page, a bare string)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("error"), Mapping):
        return None
    try:
        envelope: ErrorEnvelope = _fast().structure({**data, "type": "error"}, ErrorEnvelope)
    except Exception:  # noqa: BLE001 - not an Anthropic envelope; the caller falls back to the status
        return None
    return envelope


def to_wire(obj: Any) -> Any:
    """JSON-ready data of any model here (``None`` fields left out)."""
    return _fast().unstructure(obj)
