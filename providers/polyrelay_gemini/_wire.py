"""Gemini ``v1beta`` wire models (``generateContent`` request and response, google.rpc error status).

Field names are Python snake_case; :func:`wire_converter` maps them to the proto3-JSON lowerCamelCase the API uses
(``mime_type`` ↔ ``mimeType``). Every model keeps unknown keys in ``extra`` and writes them back, so parts and
metadata we do not model (``executableCode``, ``groundingMetadata`` ...) survive a parse/serialise round trip.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import attrs

from polyrelay.serde import WireConverter
from polyrelay.serde import explicit_nulls_field as _nulls
from polyrelay.serde import extra_field as _extra

__all__ = [
    "Blob",
    "Candidate",
    "Content",
    "FileData",
    "FunctionCallingConfig",
    "FunctionDeclaration",
    "GenerateContentRequest",
    "GenerateContentResponse",
    "GenerationConfig",
    "LogprobsCandidate",
    "LogprobsResult",
    "ModalityTokenCount",
    "Part",
    "PromptFeedback",
    "RpcStatus",
    "ThinkingConfig",
    "Tool",
    "ToolConfig",
    "TopCandidates",
    "UsageMetadata",
    "WireFunctionCall",
    "WireFunctionResponse",
    "camel",
    "wire_converter",
]


# --------------------------------------------------------------------------------------------------- parts


@attrs.frozen(kw_only=True)
class Blob:
    """``inlineData``: base64 bytes with their MIME type."""

    mime_type: str
    data: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class FileData:
    """``fileData``: a Files-API URI, a YouTube URL or a public HTTPS URL."""

    file_uri: str
    mime_type: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class WireFunctionCall:
    name: str
    args: Mapping[str, Any] | None = None
    id: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class WireFunctionResponse:
    name: str
    response: Mapping[str, Any]
    id: str | None = None
    parts: tuple[Part, ...] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class Part:
    """One part: exactly one data field (``text``, ``inline_data`` ...) plus ``thought`` / ``thought_signature``.

    Data fields we do not model (``executableCode``, ``codeExecutionResult``, ``toolCall`` ...) stay in ``extra``.
    """

    text: str | None = None
    thought: bool | None = None
    thought_signature: str | None = None
    inline_data: Blob | None = None
    file_data: FileData | None = None
    function_call: WireFunctionCall | None = None
    function_response: WireFunctionResponse | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class Content:
    """A turn: ``role`` is ``user`` or ``model`` (``None`` in ``systemInstruction``)."""

    role: str | None = None
    parts: tuple[Part, ...] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


# --------------------------------------------------------------------------------------------------- request


@attrs.frozen(kw_only=True)
class FunctionDeclaration:
    name: str
    description: str | None = None
    parameters: Mapping[str, Any] | None = None
    parameters_json_schema: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class Tool:
    """One tool; ``function_declarations`` or a built-in (``googleSearch`` ...) kept in ``extra``."""

    function_declarations: tuple[FunctionDeclaration, ...] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class FunctionCallingConfig:
    mode: str
    allowed_function_names: tuple[str, ...] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ToolConfig:
    function_calling_config: FunctionCallingConfig | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ThinkingConfig:
    include_thoughts: bool | None = None
    thinking_budget: int | None = None
    thinking_level: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class GenerationConfig:
    stop_sequences: tuple[str, ...] | None = None
    response_mime_type: str | None = None
    response_schema: Mapping[str, Any] | None = None
    response_json_schema: Mapping[str, Any] | None = None
    response_modalities: tuple[str, ...] | None = None
    candidate_count: int | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_logprobs: bool | None = None
    logprobs: int | None = None
    thinking_config: ThinkingConfig | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class GenerateContentRequest:
    """``POST models/{model}:generateContent`` body."""

    contents: tuple[Content, ...]
    system_instruction: Content | None = None
    tools: tuple[Tool, ...] | None = None
    tool_config: ToolConfig | None = None
    safety_settings: tuple[Mapping[str, Any], ...] | None = None
    generation_config: GenerationConfig | None = None
    cached_content: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


# --------------------------------------------------------------------------------------------------- response


@attrs.frozen(kw_only=True)
class ModalityTokenCount:
    modality: str | None = None
    token_count: int | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class UsageMetadata:
    """Token counts. ``candidates_token_count`` excludes thoughts; ``prompt_token_count`` includes cached tokens."""

    prompt_token_count: int | None = None
    cached_content_token_count: int | None = None
    candidates_token_count: int | None = None
    tool_use_prompt_token_count: int | None = None
    thoughts_token_count: int | None = None
    total_token_count: int | None = None
    prompt_tokens_details: tuple[ModalityTokenCount, ...] | None = None
    candidates_tokens_details: tuple[ModalityTokenCount, ...] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class LogprobsCandidate:
    token: str | None = None
    token_id: int | None = None
    log_probability: float | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class TopCandidates:
    candidates: tuple[LogprobsCandidate, ...] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class LogprobsResult:
    top_candidates: tuple[TopCandidates, ...] | None = None
    chosen_candidates: tuple[LogprobsCandidate, ...] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class Candidate:
    content: Content | None = None
    finish_reason: str | None = None
    finish_message: str | None = None
    index: int | None = None
    grounding_metadata: Mapping[str, Any] | None = None
    logprobs_result: LogprobsResult | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class PromptFeedback:
    block_reason: str | None = None
    block_reason_message: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class GenerateContentResponse:
    """One response (non-stream), or one stream chunk holding only the new parts."""

    candidates: tuple[Candidate, ...] | None = None
    prompt_feedback: PromptFeedback | None = None
    usage_metadata: UsageMetadata | None = None
    model_version: str | None = None
    response_id: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class RpcStatus:
    """``google.rpc.Status``: the value of ``{"error": ...}`` in error bodies and in-stream error events."""

    code: int | None = None
    message: str | None = None
    status: str | None = None
    details: tuple[Mapping[str, Any], ...] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


# --------------------------------------------------------------------------------------------------- converter


def camel(name: str) -> str:
    """``response_mime_type`` → ``responseMimeType`` (proto3 JSON names)."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _structure_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _structure_int(value: Any, _: Any) -> int:
    # proto3 JSON may write int64 values as strings; int32 counts arrive as numbers.
    if isinstance(value, bool):
        raise TypeError("expected an integer, got bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _structure_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _structure_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {type(value).__name__}")
    return value


def _structure_mapping(value: Any, _: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _build(detailed: bool) -> WireConverter:
    w = WireConverter(rename=camel, detailed=detailed)
    w.register_structure_hook(str, _structure_str)
    w.register_structure_hook(int, _structure_int)
    w.register_structure_hook(float, _structure_float)
    w.register_structure_hook(bool, _structure_bool)
    mapping_t: Any = Mapping[str, Any]
    w.c.register_structure_hook_func(lambda t: t == mapping_t, _structure_mapping)
    w.register_structure_hook(Any, lambda v, _: v)
    return w


@functools.cache
def wire_converter(*, detailed: bool = False) -> WireConverter:
    """The Gemini wire converter (built once). ``detailed=True`` reports field paths on structuring errors."""
    return _build(detailed)
