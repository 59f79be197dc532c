"""The OpenAI chat-completions request, as typed attrs models.

Content parts form a tagged union on ``type``; an unknown part type is kept as :class:`UnknownPart` so it can be
passed through to OpenAI-compatible upstreams, or rejected by providers that cannot represent it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import attrs

from polyrelay.serde import explicit_nulls_field as _nulls
from polyrelay.serde import extra_field as _extra

__all__ = [
    "ChatRequest",
    "ContentPart",
    "FilePart",
    "FileRef",
    "FunctionCall",
    "FunctionDefinition",
    "ImageURL",
    "ImagePart",
    "InputAudio",
    "InputAudioPart",
    "JSONSchemaFormat",
    "Message",
    "NamedFunction",
    "NamedToolChoice",
    "RefusalPart",
    "ResponseFormat",
    "Role",
    "StreamOptions",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolChoice",
    "UnknownPart",
]

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
ROLES: frozenset[str] = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@attrs.frozen(kw_only=True)
class TextPart:
    type: Literal["text"] = "text"
    text: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ImageURL:
    """``{"url": ..., "detail": ...}``. ``bare`` records that the caller sent the bare-string form relays accept."""

    url: str
    detail: str | None = None
    bare: bool = attrs.field(default=False, repr=False, metadata={"wire": False})
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ImagePart:
    type: Literal["image_url"] = "image_url"
    image_url: ImageURL
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class InputAudio:
    data: str
    format: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class InputAudioPart:
    type: Literal["input_audio"] = "input_audio"
    input_audio: InputAudio
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class FileRef:
    filename: str | None = None
    file_data: str | None = None
    file_id: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class FilePart:
    type: Literal["file"] = "file"
    file: FileRef
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class RefusalPart:
    type: Literal["refusal"] = "refusal"
    refusal: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class UnknownPart:
    """A content part of a type polyrelay does not model; ``data`` is the whole JSON object."""

    type: str
    data: Mapping[str, Any]


ContentPart = TextPart | ImagePart | InputAudioPart | FilePart | RefusalPart | UnknownPart


@attrs.frozen(kw_only=True)
class FunctionCall:
    name: str
    arguments: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ToolCall:
    DEFAULTED: ClassVar[tuple[str, ...]] = ("type",)
    id: str
    function: FunctionCall
    type: Literal["function"] = "function"
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True, weakref_slot=False)
class Message:
    """One chat message. ``content`` is a string, a tuple of parts, or ``None`` (assistant with tool calls).

    ``reasoning_content`` carries a previous assistant turn's reasoning; ``extra`` keeps vendor fields
    (``thinking_blocks``, ``reasoning_details``, ``prefix``, ...) so providers that understand them can use them.
    """

    role: Role
    content: str | tuple[ContentPart, ...] | None = None
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()

    @property
    def text(self) -> str:
        """The concatenated text of ``content`` (text parts only)."""
        c = self.content
        if c is None:
            return ""
        if isinstance(c, str):
            return c
        return "".join(p.text for p in c if isinstance(p, TextPart))


@attrs.frozen(kw_only=True)
class FunctionDefinition:
    name: str
    description: str | None = None
    parameters: Mapping[str, Any] | None = None
    strict: bool | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class Tool:
    DEFAULTED: ClassVar[tuple[str, ...]] = ("type",)
    function: FunctionDefinition
    type: Literal["function"] = "function"
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class NamedFunction:
    name: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class NamedToolChoice:
    DEFAULTED: ClassVar[tuple[str, ...]] = ("type",)
    function: NamedFunction
    type: Literal["function"] = "function"
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


ToolChoice = str | NamedToolChoice
"""``"none"``, ``"auto"``, ``"required"`` (or a vendor string such as Mistral's ``"any"``), or a named function."""


@attrs.frozen(kw_only=True)
class JSONSchemaFormat:
    name: str
    schema: Mapping[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ResponseFormat:
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True, weakref_slot=False)
class StreamOptions:
    include_usage: bool | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True, weakref_slot=False)
class ChatRequest:
    """``POST /chat/completions`` body. Unknown top-level keys (``extra_body`` style vendor params) go to ``extra``
    and are forwarded to OpenAI-compatible upstreams as they are."""

    FIELDS: ClassVar[frozenset[str]]

    model: str
    messages: tuple[Message, ...]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    tools: tuple[Tool, ...] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    n: int | None = None
    stop: str | tuple[str, ...] | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: Mapping[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    seed: int | None = None
    user: str | None = None
    reasoning_effort: str | None = None
    modalities: tuple[str, ...] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()

    @property
    def output_limit(self) -> int | None:
        """``max_completion_tokens`` or else ``max_tokens``."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


ChatRequest.FIELDS = frozenset(a.name for a in attrs.fields(ChatRequest) if a.name not in ("extra", "explicit_nulls"))
