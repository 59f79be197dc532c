"""Anthropic Messages response → OpenAI chat completion (the mapping tables are shared with the stream).

- ``text`` blocks are concatenated into ``message.content`` (``None`` when there are none); ``tool_use`` blocks
  become ``tool_calls`` (ids kept, ``input`` as JSON text); ``thinking`` text becomes ``reasoning_content``.
- ``message.extra["thinking_blocks"]`` keeps every ``thinking`` (with its ``signature``) and ``redacted_thinking``
  block in order, and ``message.extra["server_tool_blocks"]`` the server-tool blocks (``server_tool_use``,
  ``web_search_tool_result``, …): sending the message back as history replays them, which Anthropic requires for
  tool loops with thinking.
- When JSON output went through the forced :data:`~._request.JSON_TOOL_NAME` tool, that tool's input is the
  content (any narration around it is dropped) and ``tool_use`` finishes as ``"stop"``.
- Usage follows OpenAI semantics: ``prompt_tokens = input + cache_read + cache_creation`` (Anthropic's
  ``input_tokens`` excludes cached tokens), ``cached_tokens = cache_read``, ``cache_write_tokens =
  cache_creation``, ``completion_tokens = output_tokens`` (thinking included), ``reasoning_tokens`` from
  ``output_tokens_details.thinking_tokens`` when reported.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Final

from polyrelay.types.chat import FunctionCall, ToolCall
from polyrelay.types.completion import (
    CallWarning,
    ChatCompletion,
    ChatCompletionMessage,
    Choice,
    CompletionTokensDetails,
    PromptTokensDetails,
    ResponseMeta,
    Usage,
)
from polyrelay_anthropic._request import ResponsePlan
from polyrelay_anthropic._wire import (
    Message,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    UnknownBlock,
)
from polyrelay_anthropic._wire import Usage as WireUsage

__all__ = ["FINISH_REASONS", "arguments_text", "completion_from_message", "finish_reason", "map_usage"]

#: Anthropic ``stop_reason`` → OpenAI ``finish_reason``. ``pause_turn`` (a long server-tool turn paused; send the
#: conversation again to continue) has no OpenAI counterpart and reads as ``stop``. Unknown values map to ``stop``.
FINISH_REASONS: Final[Mapping[str, str]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "compaction": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None, *, json_only: bool = False) -> str | None:
    """The OpenAI finish reason. ``json_only``: the only tool called was the JSON-output tool."""
    if stop_reason is None:
        return None
    if stop_reason == "tool_use" and json_only:
        return "stop"
    return FINISH_REASONS.get(stop_reason, "stop")


def map_usage(usage: WireUsage) -> Usage:
    """Anthropic usage → OpenAI usage (prompt includes cached tokens)."""
    read = usage.cache_read_input_tokens or 0
    write = usage.cache_creation_input_tokens or 0
    prompt = (usage.input_tokens or 0) + read + write
    completion = usage.output_tokens or 0
    details = usage.output_tokens_details
    thinking = details.thinking_tokens if details is not None else None
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=read, cache_write_tokens=write or None),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=thinking) if thinking is not None else None,
    )


def arguments_text(tool_input: Any) -> str:
    """A ``tool_use`` input as OpenAI ``arguments`` JSON text."""
    return json.dumps(tool_input, ensure_ascii=False)


def completion_from_message(
    message: Message,
    *,
    plan: ResponsePlan,
    provider: str,
    model: str,
    warnings: tuple[CallWarning, ...] = (),
    request_id: str | None = None,
    created: int | None = None,
) -> ChatCompletion:
    """Translate a non-stream response. ``model`` is the upstream model id asked for (``ctx.model``)."""
    texts: list[str] = []
    reasoning: list[str] = []
    json_texts: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    server_blocks: list[dict[str, Any]] = []
    tool_calls: list[ToolCall] = []
    for block in message.content:
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ThinkingBlock):
            reasoning.append(block.thinking)
            thinking_blocks.append({"type": "thinking", "thinking": block.thinking, "signature": block.signature})
        elif isinstance(block, RedactedThinkingBlock):
            thinking_blocks.append({"type": "redacted_thinking", "data": block.data})
        elif isinstance(block, ToolUseBlock):
            if plan.json_tool is not None and block.name == plan.json_tool:
                json_texts.append(arguments_text(block.input))
            else:
                name = plan.caller_name(block.name)
                tool_calls.append(
                    ToolCall(id=block.id, function=FunctionCall(name=name, arguments=arguments_text(block.input)))
                )
        elif isinstance(block, UnknownBlock):
            server_blocks.append(dict(block.data))
        # image / document / tool_result blocks never appear in a reply
    if json_texts:
        content: str | None = "".join(json_texts)
    else:
        content = "".join(texts) if texts else None
    extra: dict[str, Any] = {}
    if thinking_blocks:
        extra["thinking_blocks"] = thinking_blocks
    if server_blocks:
        extra["server_tool_blocks"] = server_blocks
    choice = Choice(
        index=0,
        message=ChatCompletionMessage(
            content=content,
            tool_calls=tuple(tool_calls) or None,
            reasoning_content="".join(reasoning) if reasoning else None,
            extra=extra,
        ),
        finish_reason=finish_reason(message.stop_reason, json_only=bool(json_texts) and not tool_calls),
    )
    return ChatCompletion(
        id=message.id,
        created=int(time.time()) if created is None else created,
        model=message.model or model,
        choices=(choice,),
        usage=map_usage(message.usage) if message.usage is not None else None,
        meta=ResponseMeta(provider=provider, model=model, warnings=warnings, request_id=request_id),
    )
