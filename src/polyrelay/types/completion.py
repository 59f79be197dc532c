"""The OpenAI chat-completions response and stream chunk, as typed attrs models.

They read like the openai SDK (``resp.choices[0].message.content``) and have ``to_dict()``. ``meta`` is polyrelay's
own record of who answered and how (see :class:`ResponseMeta`); it is not part of the JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import attrs

from polyrelay._twins import maker
from polyrelay.serde import NOT_WIRE
from polyrelay.serde import explicit_nulls_field as _nulls
from polyrelay.serde import extra_field as _extra
from polyrelay.types.chat import ToolCall

__all__ = [
    "Attempt",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "Choice",
    "ChoiceDelta",
    "ChoiceLogprobs",
    "ChunkChoice",
    "CompletionTokensDetails",
    "FunctionCallDelta",
    "PromptTokensDetails",
    "ResponseMeta",
    "TokenLogprob",
    "TopLogprob",
    "ToolCallDelta",
    "Usage",
    "CallWarning",
]


def _meta() -> Any:
    return attrs.field(default=None, repr=False, eq=False, metadata=NOT_WIRE)


class _ToDict:
    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI JSON of this object (a fresh dict)."""
        from polyrelay.types._converters import openai_converter

        out: dict[str, Any] = openai_converter().unstructure(self)
        return out


@attrs.frozen(kw_only=True, weakref_slot=False)
class PromptTokensDetails(_ToDict):
    cached_tokens: int | None = None
    audio_tokens: int | None = None
    cache_write_tokens: int | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True, weakref_slot=False)
class CompletionTokensDetails(_ToDict):
    reasoning_tokens: int | None = None
    audio_tokens: int | None = None
    accepted_prediction_tokens: int | None = None
    rejected_prediction_tokens: int | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True, weakref_slot=False)
class Usage(_ToDict):
    """Token usage, OpenAI semantics: prompt includes cached tokens, completion includes reasoning tokens."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class TopLogprob(_ToDict):
    token: str
    logprob: float
    bytes: tuple[int, ...] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class TokenLogprob(_ToDict):
    token: str
    logprob: float
    bytes: tuple[int, ...] | None = None
    top_logprobs: tuple[TopLogprob, ...] = ()
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ChoiceLogprobs(_ToDict):
    EMIT_NULL: ClassVar[tuple[str, ...]] = ("content", "refusal")
    content: tuple[TokenLogprob, ...] | None = None
    refusal: tuple[TokenLogprob, ...] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True, weakref_slot=False)
class ChatCompletionMessage(_ToDict):
    EMIT_NULL: ClassVar[tuple[str, ...]] = ("content", "refusal")
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: tuple[ToolCall, ...] | None = None
    reasoning_content: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True, weakref_slot=False)
class Choice(_ToDict):
    EMIT_NULL: ClassVar[tuple[str, ...]] = ("logprobs",)
    index: int = 0
    message: ChatCompletionMessage
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class CallWarning:
    """A request setting the upstream could not honour (it was dropped, not silently)."""

    type: Literal["unsupported-setting", "other"] = "unsupported-setting"
    setting: str | None = None
    message: str = ""


@attrs.frozen(kw_only=True, weakref_slot=False)
class Attempt:
    """One attempt the router made: which target, the outcome, the error class and how long it took."""

    provider: str
    model: str
    outcome: Literal["success", "error", "skipped"]
    error: str | None = None
    error_type: str | None = None
    status: int | None = None
    latency: float = 0.0
    first_byte: float | None = None


@attrs.frozen(kw_only=True, weakref_slot=False)
class ResponseMeta:
    """Who answered and how. Not part of the OpenAI JSON; read it as ``resp.meta``."""

    provider: str
    model: str
    requested_model: str = ""
    attempts: tuple[Attempt, ...] = ()
    warnings: tuple[CallWarning, ...] = ()
    request_id: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)


#: ``new_response_meta(provider, model, requested_model, attempts, warnings, request_id, headers)``: a
#: :class:`ResponseMeta`, positionally, at a third of the keyword ``__init__``'s cost (:mod:`polyrelay._twins`); one
#: is made for every response.
new_response_meta = maker(
    ResponseMeta, ("provider", "model", "requested_model", "attempts", "warnings", "request_id", "headers")
)


@attrs.frozen(kw_only=True, weakref_slot=False)
class ChatCompletion(_ToDict):
    DEFAULTED: ClassVar[tuple[str, ...]] = ("object",)
    id: str
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    choices: tuple[Choice, ...] = ()
    usage: Usage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()
    meta: ResponseMeta | None = _meta()


@attrs.frozen(kw_only=True)
class FunctionCallDelta(_ToDict):
    name: str | None = None
    arguments: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ToolCallDelta(_ToDict):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True, weakref_slot=False)
class ChoiceDelta(_ToDict):
    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    refusal: str | None = None
    tool_calls: tuple[ToolCallDelta, ...] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True, weakref_slot=False)
class ChunkChoice(_ToDict):
    EMIT_NULL: ClassVar[tuple[str, ...]] = ("finish_reason", "logprobs")
    index: int = 0
    delta: ChoiceDelta = attrs.field(factory=ChoiceDelta)
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True, weakref_slot=False)
class ChatCompletionChunk(_ToDict):
    """One streamed chunk. The usage-only final chunk has ``choices == ()`` and ``usage`` set."""

    DEFAULTED: ClassVar[tuple[str, ...]] = ("object",)

    id: str
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str = ""
    choices: tuple[ChunkChoice, ...] = ()
    usage: Usage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()
    meta: ResponseMeta | None = _meta()
