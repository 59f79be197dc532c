"""Anthropic message → OpenAI completion: stop reasons, usage, tool calls, thinking, JSON-output tool."""

from __future__ import annotations

import json
from typing import Any

import pytest

from polyrelay.errors import InvalidUpstreamResponse
from polyrelay.types import CallWarning, ChatCompletion
from polyrelay_anthropic._request import JSON_TOOL_NAME, ResponsePlan
from polyrelay_anthropic._response import FINISH_REASONS, completion_from_message
from polyrelay_anthropic._wire import parse_message


def _message(*content: dict[str, Any], stop_reason: str | None = "end_turn", **usage: Any) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": list(content),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 3, "output_tokens": 2},
    }


def _complete(data: dict[str, Any], plan: ResponsePlan | None = None, **kw: Any) -> ChatCompletion:
    return completion_from_message(parse_message(data), plan=plan or ResponsePlan(), provider="claude", model="m", **kw)


TEXT = {"type": "text", "text": "Hello"}


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str, finish: str) -> None:
    assert _complete(_message(TEXT, stop_reason=stop_reason)).choices[0].finish_reason == finish


def test_finish_reason_table_covers_the_documented_stop_reasons() -> None:
    documented = {
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "pause_turn",
        "refusal",
        "model_context_window_exceeded",
    }
    assert documented <= set(FINISH_REASONS)


def test_usage_counts_cached_tokens_into_the_prompt() -> None:
    data = _message(
        TEXT,
        input_tokens=3,
        cache_read_input_tokens=1111,
        cache_creation_input_tokens=418,
        output_tokens=33,
        output_tokens_details={"thinking_tokens": 20},
    )
    usage = _complete(data).usage
    assert usage is not None and usage.prompt_tokens_details is not None and usage.completion_tokens_details is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1532, 33, 1565)
    assert (usage.prompt_tokens_details.cached_tokens, usage.prompt_tokens_details.cache_write_tokens) == (1111, 418)
    assert usage.completion_tokens_details.reasoning_tokens == 20


def test_text_blocks_concatenate_and_tool_use_becomes_tool_calls() -> None:
    data = _message(
        {"type": "text", "text": "Let me "},
        {"type": "text", "text": "check.", "citations": []},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Zürich"}},
        {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
        stop_reason="tool_use",
    )
    completion = _complete(data)
    message = completion.choices[0].message
    assert message.content == "Let me check." and completion.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None
    assert [(c.id, c.type, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        ("toolu_1", "function", "get_weather", {"city": "Zürich"}),
        ("toolu_2", "function", "now", {}),
    ]
    assert "Zürich" in message.tool_calls[0].function.arguments  # readable unicode, not \\u escapes


def test_thinking_becomes_reasoning_with_signed_blocks_kept_for_the_next_turn() -> None:
    data = _message(
        {"type": "thinking", "thinking": "First ", "signature": "sig1"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "thinking", "thinking": "second.", "signature": "sig2"},
        TEXT,
    )
    message = _complete(data).choices[0].message
    assert message.reasoning_content == "First second." and message.content == "Hello"
    assert message.to_dict()["thinking_blocks"] == [
        {"type": "thinking", "thinking": "First ", "signature": "sig1"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "thinking", "thinking": "second.", "signature": "sig2"},
    ]


def test_json_output_tool_is_the_content_and_finishes_as_stop() -> None:
    plan = ResponsePlan(json_tool=JSON_TOOL_NAME)
    data = _message(
        {"type": "tool_use", "id": "toolu_1", "name": JSON_TOOL_NAME, "input": {"city": "Paris"}},
        stop_reason="tool_use",
    )
    completion = _complete(data, plan)
    assert completion.choices[0].message.content == '{"city": "Paris"}'
    assert completion.choices[0].message.tool_calls is None and completion.choices[0].finish_reason == "stop"
    both = _message(
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
        {"type": "tool_use", "id": "toolu_2", "name": JSON_TOOL_NAME, "input": {}},
        stop_reason="tool_use",
    )
    assert _complete(both, plan).choices[0].finish_reason == "tool_calls"


def test_rewritten_tool_names_are_mapped_back() -> None:
    plan = ResponsePlan(tool_names={"fs_read": "fs.read"})
    data = _message({"type": "tool_use", "id": "toolu_1", "name": "fs_read", "input": {}}, stop_reason="tool_use")
    calls = _complete(data, plan).choices[0].message.tool_calls
    assert calls is not None and calls[0].function.name == "fs.read"


def test_meta_carries_warnings_and_request_id() -> None:
    warning = CallWarning(setting="seed", message="dropped")
    completion = _complete(_message(TEXT), warnings=(warning,), request_id="req_1")
    assert completion.meta is not None
    assert (completion.meta.provider, completion.meta.model, completion.meta.warnings) == ("claude", "m", (warning,))
    assert completion.meta.request_id == "req_1"
    assert completion.to_dict()["choices"][0]["message"] == {"role": "assistant", "content": "Hello", "refusal": None}


def test_no_text_gives_null_content() -> None:
    assert _complete(_message(stop_reason="max_tokens")).choices[0].message.content is None


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({**_message(TEXT), "content": [{"type": "text", "text": None}]}, "content"),
        ({**_message(TEXT), "usage": {"input_tokens": "3"}}, "usage.input_tokens"),
        ({"type": "message"}, "id"),
        ([1, 2], "body"),
    ],
)
def test_malformed_bodies_are_invalid_upstream_responses(data: Any, path: str) -> None:
    with pytest.raises(InvalidUpstreamResponse) as info:
        parse_message(data, provider="claude")
    assert path in info.value.message and info.value.provider == "claude"
