"""Gemini ``GenerateContentResponse`` → OpenAI ``ChatCompletion``, and the mapping pieces streams share.

Mapping decisions (the stream in :mod:`._stream` uses the same functions):

- one choice per candidate; ``text`` parts form ``content``, ``thought: true`` parts ``reasoning_content``;
- ``functionCall`` parts become tool calls with ids that are stable across stream and non-stream: Gemini's own
  ``functionCall.id`` when it sends one, else ``call_<responseId>_<candidate>_<n>`` (see :func:`tool_call_id`);
- ``thoughtSignature``\\ s are kept where the next turn can send them back, in the ``extra_content.google``
  namespace of Gemini's own OpenAI-compatible endpoint: on a tool call ``{"extra_content": {"google":
  {"thought_signature": ...}}}``; on the message ``thought_signature`` (the signature of a text part) and
  ``reasoning_signature`` (of a thought part). Parts with no OpenAI form (``executableCode``,
  ``codeExecutionResult``, ``inlineData`` output ...) are kept verbatim in ``extra_content.google.parts``, and
  ``groundingMetadata`` / ``finishMessage`` as ``grounding_metadata`` / ``finish_message``;
- finish reasons: :data:`FINISH_REASONS`; ``STOP`` with a function call is ``tool_calls``. Reasons with no exact
  OpenAI equivalent (``MALFORMED_FUNCTION_CALL``, ``OTHER`` ...) map to ``stop`` or ``content_filter`` and the
  Gemini value is kept on the choice as ``native_finish_reason``;
- usage: ``prompt_tokens`` = ``promptTokenCount`` + ``toolUsePromptTokenCount`` (so prompt + completion = total),
  ``completion_tokens`` = ``candidatesTokenCount`` + ``thoughtsTokenCount`` (Gemini's candidates count excludes
  thoughts; OpenAI's completion count includes reasoning), ``reasoning_tokens`` = ``thoughtsTokenCount``,
  ``cached_tokens`` = ``cachedContentTokenCount``;
- a blocked prompt (``promptFeedback.blockReason``, no candidates) raises
  :class:`~polyrelay.errors.ContentPolicyViolation`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from polyrelay.errors import ContentPolicyViolation, InvalidUpstreamResponse
from polyrelay.types.chat import FunctionCall, ToolCall
from polyrelay.types.completion import (
    ChatCompletion,
    ChatCompletionMessage,
    Choice,
    ChoiceLogprobs,
    CompletionTokensDetails,
    PromptTokensDetails,
    ResponseMeta,
    TokenLogprob,
    TopLogprob,
    Usage,
)
from polyrelay_gemini._wire import (
    Candidate,
    GenerateContentResponse,
    LogprobsResult,
    Part,
    UsageMetadata,
    wire_converter,
)

__all__ = [
    "FINISH_REASONS",
    "GOOGLE",
    "EXTRA_KEY",
    "CandidateParts",
    "ResponseIds",
    "check_prompt_feedback",
    "collect_parts",
    "map_finish_reason",
    "map_logprobs",
    "map_usage",
    "parse_response",
    "to_completion",
    "tool_call_id",
]

#: The namespace of Gemini data on OpenAI objects: ``{"extra_content": {"google": {...}}}``.
EXTRA_KEY: Final = "extra_content"
GOOGLE: Final = "google"

#: Gemini finishReason → OpenAI finish_reason. Absent/unspecified and unknown future values → "stop".
FINISH_REASONS: Final[Mapping[str, str]] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    # The model tried to call a function and failed (bad JSON, unknown tool, too many calls): OpenAI has no
    # word for it. "stop" with no tool calls lets the caller see an empty answer and retry or re-prompt; the
    # Gemini reason is kept as native_finish_reason.
    "MALFORMED_FUNCTION_CALL": "stop",
    "UNEXPECTED_TOOL_CALL": "stop",
    "TOO_MANY_TOOL_CALLS": "stop",
    "MISSING_THOUGHT_SIGNATURE": "stop",
    "MALFORMED_RESPONSE": "stop",
    "OTHER": "stop",
    "NO_IMAGE": "stop",
    "IMAGE_OTHER": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
}
#: Reasons whose mapping is exact: the Gemini value is not repeated on the choice.
_EXACT: Final = frozenset({"STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"})


def map_finish_reason(reason: str | None, *, has_tool_calls: bool) -> tuple[str, str | None]:
    """``(openai_finish_reason, native_reason_or_None)``. A function call turns ``STOP`` into ``tool_calls``."""
    if reason is None:
        return ("tool_calls" if has_tool_calls else "stop"), None
    mapped = FINISH_REASONS.get(reason, "stop")
    if mapped == "stop" and has_tool_calls and reason in ("STOP", "FINISH_REASON_UNSPECIFIED"):
        mapped = "tool_calls"
    return mapped, (None if reason in _EXACT else reason)


def map_usage(usage: UsageMetadata | None) -> Usage | None:
    """Gemini usage → OpenAI usage (see the module docstring for what is counted where)."""
    if usage is None:
        return None
    prompt = (usage.prompt_token_count or 0) + (usage.tool_use_prompt_token_count or 0)
    thoughts = usage.thoughts_token_count
    completion = (usage.candidates_token_count or 0) + (thoughts or 0)
    total = usage.total_token_count if usage.total_token_count is not None else prompt + completion
    audio = None
    for d in usage.prompt_tokens_details or ():
        if d.modality == "AUDIO" and d.token_count is not None:
            audio = (audio or 0) + d.token_count
    prompt_details = None
    if usage.cached_content_token_count is not None or audio is not None:
        prompt_details = PromptTokensDetails(cached_tokens=usage.cached_content_token_count, audio_tokens=audio)
    completion_details = CompletionTokensDetails(reasoning_tokens=thoughts) if thoughts is not None else None
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        prompt_tokens_details=prompt_details,
        completion_tokens_details=completion_details,
    )


def map_logprobs(result: LogprobsResult | None) -> ChoiceLogprobs | None:
    """``logprobsResult`` (chosen token per step + top candidates per step) → OpenAI ``logprobs.content``."""
    if result is None or not result.chosen_candidates:
        return None
    tops = result.top_candidates or ()
    content = []
    for i, chosen in enumerate(result.chosen_candidates):
        top = tops[i].candidates or () if i < len(tops) else ()
        content.append(
            TokenLogprob(
                token=chosen.token or "",
                logprob=chosen.log_probability if chosen.log_probability is not None else 0.0,
                top_logprobs=tuple(TopLogprob(token=t.token or "", logprob=t.log_probability or 0.0) for t in top),
            )
        )
    return ChoiceLogprobs(content=tuple(content))


@attrs.frozen(kw_only=True)
class ResponseIds:
    """Ids derived from the first response (chunk): the completion id and the base of synthesized call ids."""

    completion_id: str
    call_base: str
    model: str

    @classmethod
    def of(cls, response: GenerateContentResponse, *, fallback_model: str) -> ResponseIds:
        # 24 hex chars keep synthesized call ids within OpenAI's 40-character tool_call_id limit.
        rid = response.response_id or uuid.uuid4().hex[:24]
        return cls(completion_id=f"chatcmpl-{rid}", call_base=rid, model=response.model_version or fallback_model)


def tool_call_id(ids: ResponseIds, candidate: int, n: int, native: str | None) -> str:
    """Gemini's ``functionCall.id`` if it sent one, else ``call_<responseId>_<candidate>_<n>``.

    Derived only from data every chunk of a stream carries, so a stream and a non-stream read of the same
    answer give the same ids, and ids are unique across turns (responseIds are).
    """
    return native if native else f"call_{ids.call_base}_{candidate}_{n}"


def google_extra(**fields: Any) -> dict[str, Any]:
    """``{"extra_content": {"google": {...}}}`` with the ``None`` fields left out (``{}`` when all are)."""
    kept = {k: v for k, v in fields.items() if v is not None}
    return {EXTRA_KEY: {GOOGLE: kept}} if kept else {}


def arguments_json(args: Mapping[str, Any] | None) -> str:
    """``functionCall.args`` as OpenAI's ``arguments`` string (compact, non-ASCII kept)."""
    return json.dumps(dict(args or {}), ensure_ascii=False, separators=(",", ":"))


@attrs.define
class CandidateParts:
    """The parts of one candidate sorted into the OpenAI fields (used for whole responses)."""

    text: list[str] = attrs.field(factory=list)
    saw_text: bool = False
    reasoning: list[str] = attrs.field(factory=list)
    tool_calls: list[ToolCall] = attrs.field(factory=list)
    text_signature: str | None = None
    reasoning_signature: str | None = None
    other: list[Any] = attrs.field(factory=list)


def collect_parts(parts: Sequence[Part], *, ids: ResponseIds, candidate: int, into: CandidateParts) -> None:
    """Sort ``parts`` into ``into`` (call repeatedly for the chunks of a stream)."""
    for part in parts:
        sig = part.thought_signature
        if part.function_call is not None:
            fc = part.function_call
            n = len(into.tool_calls)
            into.tool_calls.append(
                ToolCall(
                    id=tool_call_id(ids, candidate, n, fc.id),
                    function=FunctionCall(name=fc.name, arguments=arguments_json(fc.args)),
                    extra=google_extra(thought_signature=sig),
                )
            )
        elif part.text is not None and part.thought:
            into.reasoning.append(part.text)
            if sig:
                into.reasoning_signature = sig
        elif part.text is not None:
            into.saw_text = True
            into.text.append(part.text)
            if sig:
                into.text_signature = sig
        elif part.thought and sig:
            # A thought part without text (signature only).
            into.reasoning_signature = sig
        elif part.inline_data is None and part.file_data is None and not part.extra:
            if sig:  # a data-less part carrying only a signature
                into.text_signature = sig
        else:
            # No OpenAI form (executableCode, codeExecutionResult, inline images ...): kept verbatim.
            into.other.append(wire_converter().unstructure(part))


def check_prompt_feedback(response: GenerateContentResponse, *, provider: str, model: str | None) -> None:
    """Raise :class:`ContentPolicyViolation` when the prompt was blocked (no candidates were produced)."""
    feedback = response.prompt_feedback
    if feedback is None or not feedback.block_reason:
        return
    if response.candidates:
        return
    reason = feedback.block_reason
    detail = f": {feedback.block_reason_message}" if feedback.block_reason_message else ""
    raise ContentPolicyViolation(
        f"the prompt was blocked by the upstream (blockReason {reason}){detail}",
        provider=provider,
        status=200,
        code=reason,
        model=model,
        body=wire_converter().unstructure(feedback),
    )


def _message(parts: CandidateParts, candidate: Candidate) -> ChatCompletionMessage:
    tool_calls = tuple(parts.tool_calls) or None
    joined = "".join(parts.text)
    content: str | None = joined if joined or (parts.saw_text and tool_calls is None) else None
    extra = google_extra(
        thought_signature=parts.text_signature,
        reasoning_signature=parts.reasoning_signature,
        parts=parts.other or None,
        grounding_metadata=dict(candidate.grounding_metadata) if candidate.grounding_metadata else None,
        finish_message=candidate.finish_message,
    )
    return ChatCompletionMessage(
        content=content,
        tool_calls=tool_calls,
        reasoning_content="".join(parts.reasoning) if parts.reasoning else None,
        extra=extra,
    )


def to_completion(
    response: GenerateContentResponse,
    *,
    provider: str,
    model: str,
    created: int,
    meta: ResponseMeta | None = None,
) -> ChatCompletion:
    """Build the OpenAI completion for a whole (non-stream) response."""
    check_prompt_feedback(response, provider=provider, model=model)
    if not response.candidates:
        raise InvalidUpstreamResponse("the upstream response has no candidates", provider=provider, model=model)
    ids = ResponseIds.of(response, fallback_model=model)
    choices = []
    for position, cand in enumerate(response.candidates):
        index = cand.index if cand.index is not None else position
        parts = CandidateParts()
        if cand.content is not None and cand.content.parts:
            collect_parts(cand.content.parts, ids=ids, candidate=index, into=parts)
        finish, native = map_finish_reason(cand.finish_reason, has_tool_calls=bool(parts.tool_calls))
        choices.append(
            Choice(
                index=index,
                message=_message(parts, cand),
                finish_reason=finish,
                logprobs=map_logprobs(cand.logprobs_result),
                extra={"native_finish_reason": native} if native else {},
            )
        )
    return ChatCompletion(
        id=ids.completion_id,
        created=created,
        model=ids.model,
        choices=tuple(choices),
        usage=map_usage(response.usage_metadata),
        meta=meta,
    )


def parse_response(data: Any, *, provider: str) -> GenerateContentResponse:
    """Structure one response body / stream chunk; :class:`InvalidUpstreamResponse` naming the bad field."""
    try:
        return wire_converter().structure(data, GenerateContentResponse)
    except Exception as fast_exc:  # any structuring failure means the upstream sent garbage
        from polyrelay.serde import first_error

        try:
            wire_converter(detailed=True).structure(data, GenerateContentResponse)
        except Exception as exc:
            path, msg = first_error(exc)
            raise InvalidUpstreamResponse(
                f"invalid Gemini response: {path or 'body'}: {msg}", provider=provider
            ) from exc
        raise InvalidUpstreamResponse(f"invalid Gemini response: {fast_exc}", provider=provider) from fast_exc
