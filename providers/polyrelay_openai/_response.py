"""Response normalisation shared by the plain and the streamed path.

Upstream JSON is adjusted per row *before* it is structured with the OpenAI converter, because several vendor
shapes would not structure at all (Mistral's ``content`` arrays) and the rest is easiest to fix in JSON:

- reasoning: the row's ``reasoning_fields`` (``reasoning`` for Groq/OpenRouter/Ollama...) are copied into
  ``reasoning_content``; the original key stays (it lands in ``extra``, so it can be sent back);
- ``content`` given as an array of parts (Mistral Magistral ``{"type": "thinking", "thinking": [...]}`` then
  ``{"type": "text"}``) becomes text + ``reasoning_content``;
- usage inside ``choices[i].usage`` (Moonshot) moves to the top level; xAI's ``completion_tokens`` gets its
  reasoning tokens back (only when the numbers prove they were left out);
- vendor finish reasons map onto OpenAI's (the original kept as ``native_finish_reason``); the ones that mean
  "the generation failed" raise;
- tool-call ids: empty ids (Gemini's compat endpoint) get generated ones, remapped ids (Mistral) go back to the
  caller's.
"""

from __future__ import annotations

import json
import secrets as _secrets
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

import attrs

from polyrelay.classify import error_for_status
from polyrelay.errors import InvalidUpstreamResponse, Secret, UpstreamStatusError
from polyrelay.serde import json_kind
from polyrelay.types._converters import parse_completion
from polyrelay.types._plain import NOT_PLAIN, plain_completion
from polyrelay.types.completion import ChatCompletion, ChatCompletionMessage
from polyrelay_openai._errors import inband_error, is_inband_error
from polyrelay_openai._rows import CompatRow

__all__ = [
    "ERROR_FINISH_REASONS",
    "FINISH_REASONS",
    "finish_error",
    "new_tool_id",
    "normalize_completion",
    "normalize_message",
    "normalize_usage",
]

#: Vendor finish reasons → OpenAI's. OpenAI's own values (stop, length, tool_calls, content_filter,
#: function_call) and unknown ones pass through unchanged.
FINISH_REASONS: Mapping[str, str] = {
    "sensitive": "content_filter",  # Zhipu moderation
    "eos": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_length": "length",
    "tool_use": "tool_calls",
}

#: Finish reasons that mean the generation failed: (status, message) of the error raised for them.
ERROR_FINISH_REASONS: Mapping[str, tuple[int, str]] = {
    "error": (500, "the upstream ended the generation with an error"),  # OpenRouter
    "network_error": (500, "the upstream reported a network error during generation"),  # Zhipu
    "insufficient_system_resource": (503, "the upstream ran out of capacity during generation"),  # DeepSeek
}


def new_tool_id() -> str:
    """An id for a tool call the upstream sent without one (the next turn needs it to send the result)."""
    return "call_" + _secrets.token_hex(12)


def _split_parts(parts: list[Any]) -> tuple[str | None, str | None]:
    """(text, reasoning) of a content-part array; ``None`` where there were no parts of that kind."""
    text: list[str] | None = None
    thinking: list[str] | None = None
    for part in parts:
        if not isinstance(part, Mapping):
            raise InvalidUpstreamResponse(f"a content part must be an object, got {json_kind(part)}")
        kind = part.get("type")
        if kind == "text":
            text = (text or []) + [str(part.get("text") or "")]
        elif kind == "thinking":
            inner = part.get("thinking")
            if isinstance(inner, str):
                thinking = (thinking or []) + [inner]
            elif isinstance(inner, list):
                thinking = (thinking or []) + [
                    str(p.get("text") or "") for p in inner if isinstance(p, Mapping) and p.get("type") == "text"
                ]
        # Other part kinds (references, images) have no place in an OpenAI message: they are dropped.
    return ("".join(text) if text is not None else None), ("".join(thinking) if thinking is not None else None)


def normalize_message(msg: Mapping[str, Any], row: CompatRow) -> dict[str, Any]:
    """A copy of a message / delta object with content arrays and reasoning fields normalised."""
    out = dict(msg)
    content = out.get("content")
    if isinstance(content, list):
        text, thinking = _split_parts(content)
        out["content"] = text
        if thinking is not None and not isinstance(out.get("reasoning_content"), str):
            out["reasoning_content"] = thinking
    if not isinstance(out.get("reasoning_content"), str):
        for name in row.reasoning_fields:
            value = out.get(name)
            if name != "reasoning_content" and isinstance(value, str):
                out["reasoning_content"] = value
                break
    return out


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def normalize_usage(usage: Mapping[str, Any], row: CompatRow) -> dict[str, Any]:
    """A copy of a usage object with OpenAI semantics (completion tokens include reasoning tokens)."""
    out = dict(usage)
    if row.usage_fix == "add_reasoning":
        details = out.get("completion_tokens_details")
        reasoning = details.get("reasoning_tokens") if isinstance(details, Mapping) else None
        prompt, completion, total = out.get("prompt_tokens"), out.get("completion_tokens"), out.get("total_tokens")
        # Only when the totals prove reasoning was left out of completion_tokens (xAI: 12 + 1 + 290 = 303).
        if (
            _is_int(reasoning)
            and _is_int(prompt)
            and _is_int(completion)
            and _is_int(total)
            and reasoning
            and prompt + completion + reasoning == total
        ):
            out["completion_tokens"] = completion + reasoning
    return out


def map_finish_reason(choice: dict[str, Any]) -> None:
    """Rewrite a vendor ``finish_reason`` in place (keeping the original as ``native_finish_reason``)."""
    reason = choice.get("finish_reason")
    if isinstance(reason, str) and reason in FINISH_REASONS:
        choice.setdefault("native_finish_reason", reason)
        choice["finish_reason"] = FINISH_REASONS[reason]


def finish_error(
    reason: str,
    data: Mapping[str, Any],
    *,
    provider: str,
    headers: Mapping[str, str] | None,
    request_id: str | None,
    model: str | None,
    secrets: Iterable[Secret | str],
) -> UpstreamStatusError:
    """The error for a finish reason in :data:`ERROR_FINISH_REASONS` (the event's own error object if it has one)."""
    if data.get("error"):
        return inband_error(
            data, provider=provider, headers=headers, request_id=request_id, model=model, secrets=secrets
        )
    status, message = ERROR_FINISH_REASONS[reason]
    return error_for_status(
        status,
        f"{message} (finish_reason {reason!r})",
        provider=provider,
        code=reason,
        headers=headers,
        request_id=request_id,
        model=model,
        secrets=tuple(secrets),
    )


def _tool_calls(calls: Any, ids_back: Mapping[str, str]) -> Any:
    if not isinstance(calls, list):
        return calls
    out = []
    for call in calls:
        if isinstance(call, Mapping):
            call = dict(call)
            cid = call.get("id")
            if not isinstance(cid, str) or not cid:
                call["id"] = new_tool_id()
            elif cid in ids_back:
                call["id"] = ids_back[cid]
            args = call.get("function", {}).get("arguments") if isinstance(call.get("function"), Mapping) else None
            if args is not None and not isinstance(args, str):
                # Some servers send the arguments as a JSON object instead of a JSON string.
                call["function"] = {**call["function"], "arguments": json.dumps(args, ensure_ascii=False)}
        out.append(call)
    return out


def _already_normal(data: Mapping[str, Any], row: CompatRow) -> bool:
    """True when :func:`normalize_completion` would change nothing in ``data`` (the common case): it is then
    parsed as it is, without copying every object on the way. Mirrors the rewrites done below."""
    if row.usage_fix != "none":
        return False
    choices = data.get("choices")
    if choices.__class__ is not list:
        return False
    for ch in choices:
        if ch.__class__ is not dict or "usage" in ch:
            return False
        reason = ch.get("finish_reason")
        if isinstance(reason, str) and (reason in FINISH_REASONS or reason in ERROR_FINISH_REASONS):
            return False
        message = ch.get("message")
        if message.__class__ is not dict or "tool_calls" in message or isinstance(message.get("content"), list):
            return False
        if not isinstance(message.get("reasoning_content"), str):
            for name in row.reasoning_fields:
                if name != "reasoning_content" and isinstance(message.get(name), str):
                    return False
    return True


_SPECIAL_REASONS = frozenset(FINISH_REASONS) | frozenset(ERROR_FINISH_REASONS)
_MESSAGE_FIELDS = frozenset(f.name for f in attrs.fields(ChatCompletionMessage))


def _plain_and_normal(data: Mapping[str, Any], row: CompatRow) -> ChatCompletion | None:
    """The common case, decided on the built objects instead of the JSON: ``data`` is the plain shape
    (:func:`~polyrelay.types._plain.plain_completion`), not an in-band error (:func:`is_inband_error`) and already
    normal (:func:`_already_normal`); then its completion, else ``None`` (the caller takes the general path). The
    checks are those two functions' read off the objects: an unknown key is in ``extra``, a null in
    ``explicit_nulls``; the plain shape already excludes tool calls and content arrays."""
    if row.usage_fix != "none" or "choices" not in data:
        return None
    c: ChatCompletion = plain_completion(data)
    if c is NOT_PLAIN or c.object == "error" or (c.extra and c.extra.get("error")):
        return None
    others = row.reasoning_fields
    for ch in c.choices:
        if (ch.extra and "usage" in ch.extra) or ch.finish_reason in _SPECIAL_REASONS:
            return None
        m = ch.message
        nulls = m.explicit_nulls
        if nulls and "tool_calls" in nulls:
            return None
        if m.reasoning_content is None:
            for name in others:
                if name == "reasoning_content":
                    continue
                value = getattr(m, name) if name in _MESSAGE_FIELDS else m.extra.get(name) if m.extra else None
                if isinstance(value, str):
                    return None
    return c


def normalize_completion(
    data: Mapping[str, Any],
    row: CompatRow,
    *,
    ids_back: Mapping[str, str],
    provider: str,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    model: str | None = None,
    secrets: Iterable[Secret | str] = (),
) -> ChatCompletion:
    """Normalise a ``chat.completion`` body and structure it. Raises the upstream's error for error bodies."""
    if data.__class__ is dict:
        plain = _plain_and_normal(data, row)
        if plain is not None:
            return plain
    secrets = tuple(secrets)
    if is_inband_error(data):
        raise inband_error(
            data, provider=provider, headers=headers, request_id=request_id, model=model, secrets=secrets
        )
    if _already_normal(data, row):
        return parse_completion(data, provider=provider)
    out = dict(data)
    choices = out.get("choices")
    if isinstance(choices, list):
        new_choices: list[Any] = []
        for choice in choices:
            if isinstance(choice, Mapping):
                ch = dict(choice)
                moved = ch.pop("usage", None)
                if isinstance(moved, Mapping) and not isinstance(out.get("usage"), Mapping):
                    out["usage"] = moved  # Moonshot puts usage inside the choice
                elif moved is not None:
                    ch["usage"] = moved
                reason = ch.get("finish_reason")
                if isinstance(reason, str) and reason in ERROR_FINISH_REASONS:
                    raise finish_error(
                        reason,
                        out,
                        provider=provider,
                        headers=headers,
                        request_id=request_id,
                        model=model,
                        secrets=secrets,
                    )
                map_finish_reason(ch)
                message = ch.get("message")
                if isinstance(message, Mapping):
                    message = normalize_message(message, row)
                    if "tool_calls" in message:
                        message["tool_calls"] = _tool_calls(message["tool_calls"], ids_back)
                    ch["message"] = message
                new_choices.append(ch)
            else:
                new_choices.append(choice)
        out["choices"] = new_choices
    usage = out.get("usage")
    if isinstance(usage, Mapping):
        out["usage"] = normalize_usage(usage, row)
    return parse_completion(out, provider=provider)
