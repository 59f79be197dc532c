"""The Anthropic stream state machine, event by event."""

from __future__ import annotations

import pytest
from anthropic_kit import (
    MESSAGE_STOP,
    PING,
    block_start,
    block_stop,
    delta,
    message_delta,
    message_start,
    sse,
    translate_stream,
)

from polyrelay.errors import InvalidUpstreamResponse, Overloaded, RateLimited, StreamInterrupted
from polyrelay.types import CallWarning
from polyrelay_anthropic._request import JSON_TOOL_NAME, ResponsePlan
from polyrelay_anthropic._stream import StreamTranslator
from polyrelay_anthropic._wire import parse_event

TEXT_BLOCK = {"type": "text", "text": ""}


def _tool(index: int, tool_id: str, name: str) -> dict[str, object]:
    return block_start(index, {"type": "tool_use", "id": tool_id, "name": name, "input": {}})


def test_text_stream_emits_role_content_finish_and_usage() -> None:
    raw = sse(
        PING,  # pings may come anywhere, even first
        message_start(input_tokens=43, cache_read_input_tokens=100),
        block_start(0, TEXT_BLOCK),
        PING,
        delta(0, type="text_delta", text="Hel"),
        delta(0, type="text_delta", text="lo"),
        block_stop(0),
        message_delta("end_turn", input_tokens=61, output_tokens=7),  # newer API: input differs from message_start
        MESSAGE_STOP,
    )
    got = translate_stream(raw)
    assert [c.to_dict()["choices"] for c in got.chunks[:1]] == [
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None, "logprobs": None}]
    ]
    assert got.content == "Hello" and got.finish == ["stop"]
    assert got.chunks[-2].choices[0].delta.to_dict() == {}
    assert got.usage is not None and got.usage.prompt_tokens_details is not None
    assert (got.usage.prompt_tokens, got.usage.completion_tokens) == (161, 7)
    assert got.usage.prompt_tokens_details.cached_tokens == 100
    assert got.chunks[-1].choices == () and {c.id for c in got.chunks} == {"msg_test"}


def test_tool_call_indices_count_tool_use_blocks_not_block_indices() -> None:
    raw = sse(
        message_start(),
        block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, type="thinking_delta", thinking="Two lookups."),
        delta(0, type="signature_delta", signature="c2ln"),
        block_stop(0),
        block_start(1, TEXT_BLOCK),
        delta(1, type="text_delta", text="Checking."),
        block_stop(1),
        _tool(2, "toolu_a", "get_weather"),
        delta(2, type="input_json_delta", partial_json=""),
        delta(2, type="input_json_delta", partial_json='{"city": '),
        delta(2, type="input_json_delta", partial_json='"Oslo"}'),
        block_stop(2),
        _tool(3, "toolu_b", "get_weather"),
        delta(3, type="input_json_delta", partial_json='{"city": "Rome"}'),
        block_stop(3),
        message_delta("tool_use", output_tokens=40),
        MESSAGE_STOP,
    )
    got = translate_stream(raw)
    assert sorted(got.tool_calls) == [0, 1]
    assert got.tool_calls[0] == {"id": "toolu_a", "name": "get_weather", "arguments": '{"city": "Oslo"}'}
    assert got.arguments(1) == {"city": "Rome"}
    assert got.reasoning == "Two lookups." and got.content == "Checking." and got.finish == ["tool_calls"]
    assert got.thinking_blocks == [{"type": "thinking", "thinking": "Two lookups.", "signature": "c2ln"}]
    # An empty partial_json produces no chunk.
    fragments = [c for c in got.chunks if c.choices and c.choices[0].delta.tool_calls]
    assert len(fragments) == 5


def test_tool_names_are_mapped_back_and_json_tool_streams_as_content() -> None:
    raw = sse(
        message_start(),
        _tool(0, "toolu_j", JSON_TOOL_NAME),
        delta(0, type="input_json_delta", partial_json='{"city"'),
        delta(0, type="input_json_delta", partial_json=': "Paris"}'),
        block_stop(0),
        message_delta("tool_use"),
        MESSAGE_STOP,
    )
    got = translate_stream(raw, plan=ResponsePlan(json_tool=JSON_TOOL_NAME))
    assert got.content == '{"city": "Paris"}' and got.tool_calls == {} and got.finish == ["stop"]
    renamed = sse(
        message_start(), _tool(0, "toolu_1", "fs_read"), block_stop(0), message_delta("tool_use"), MESSAGE_STOP
    )
    got = translate_stream(renamed, plan=ResponsePlan(tool_names={"fs_read": "fs.read"}))
    assert got.tool_calls == {0: {"id": "toolu_1", "name": "fs.read", "arguments": ""}}


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
    ],
)
def test_stream_stop_reasons(stop_reason: str, finish: str) -> None:
    raw = sse(
        message_start(),
        block_start(0, TEXT_BLOCK),
        delta(0, type="text_delta", text="x"),
        block_stop(0),
        message_delta(stop_reason),
        MESSAGE_STOP,
    )
    assert translate_stream(raw).finish == [finish]


def test_redacted_thinking_arrives_whole_at_block_start() -> None:
    raw = sse(
        message_start(),
        block_start(0, {"type": "redacted_thinking", "data": "EqkE"}),
        block_stop(0),
        message_delta(),
        MESSAGE_STOP,
    )
    assert translate_stream(raw).thinking_blocks == [{"type": "redacted_thinking", "data": "EqkE"}]


def test_server_tool_blocks_are_rebuilt_and_kept() -> None:
    raw = sse(
        message_start(),
        block_start(0, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}),
        delta(0, type="input_json_delta", partial_json='{"query": "x"}'),
        block_stop(0),
        block_start(1, {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}),
        block_stop(1),
        block_start(2, {"type": "text", "text": "", "citations": []}),
        delta(2, type="citations_delta", citation={"type": "web_search_result_location", "url": "https://x"}),
        delta(2, type="text_delta", text="Sunny."),
        block_stop(2),
        message_delta(),
        MESSAGE_STOP,
    )
    got = translate_stream(raw)
    assert got.server_blocks == [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
    ]
    assert got.content == "Sunny." and got.tool_calls == {}


@pytest.mark.parametrize(
    ("error_type", "cls", "status"),
    [("overloaded_error", Overloaded, 529), ("rate_limit_error", RateLimited, 429)],
)
def test_in_stream_error_event_raises_the_classified_error(error_type: str, cls: type[Exception], status: int) -> None:
    error = {"type": "error", "error": {"type": error_type, "message": "Overloaded"}}
    raw = sse(message_start(), block_start(0, TEXT_BLOCK), delta(0, type="text_delta", text="Hi"), error)
    with pytest.raises(cls) as info:
        translate_stream(raw)
    assert getattr(info.value, "status", None) == status and getattr(info.value, "retryable", None) is True


def test_end_of_input_after_a_stop_reason_completes() -> None:
    raw = sse(
        message_start(),
        block_start(0, TEXT_BLOCK),
        delta(0, type="text_delta", text="Hi"),
        block_stop(0),
        message_delta(),
    )
    got = translate_stream(raw)
    assert got.finish == ["stop"] and got.usage is not None and got.content == "Hi"


def test_end_of_input_before_a_stop_reason_is_interrupted_with_the_partial_answer() -> None:
    raw = sse(
        message_start(),
        block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, type="thinking_delta", thinking="Hmm"),
        block_stop(0),
        block_start(1, TEXT_BLOCK),
        delta(1, type="text_delta", text="Half an ans"),
    )
    with pytest.raises(StreamInterrupted) as info:
        translate_stream(raw)
    assert (info.value.partial, info.value.partial_reasoning) == ("Half an ans", "Hmm")
    with pytest.raises(StreamInterrupted):
        translate_stream(b"")


def test_message_stop_without_message_delta_still_finishes() -> None:
    raw = sse(
        message_start(), block_start(0, TEXT_BLOCK), delta(0, type="text_delta", text="x"), block_stop(0), MESSAGE_STOP
    )
    assert translate_stream(raw).finish == ["stop"]


def test_repeated_message_start_and_unknown_events_are_ignored() -> None:
    raw = sse(
        message_start(),
        message_start(input_tokens=999),
        {"type": "content_block_annotation", "index": 0},
        block_start(0, TEXT_BLOCK),
        delta(0, type="brand_new_delta", x=1),
        delta(0, type="text_delta", text="ok"),
        block_stop(0),
        message_delta(output_tokens=3),
        MESSAGE_STOP,
    )
    got = translate_stream(raw)
    assert got.content == "ok" and got.roles == ["assistant"]
    assert got.usage is not None and got.usage.prompt_tokens == 10


@pytest.mark.parametrize(
    "events",
    [
        (block_start(0, TEXT_BLOCK),),  # content before message_start
        (message_start(), delta(3, type="text_delta", text="x")),  # a delta for a block that never started
        (message_start(), {"type": "content_block_start", "index": "zero", "content_block": TEXT_BLOCK}),
    ],
)
def test_protocol_violations_are_invalid_upstream_responses(events: tuple[dict[str, object], ...]) -> None:
    with pytest.raises(InvalidUpstreamResponse):
        translate_stream(sse(*events))


def test_first_chunk_carries_meta_and_nothing_after_message_stop() -> None:
    warning = CallWarning(setting="seed", message="dropped")
    translator = StreamTranslator(
        plan=ResponsePlan(),
        provider="claude",
        model="claude-x",
        include_usage=False,
        warnings=(warning,),
        request_id="req_9",
    )
    first = translator.feed(parse_event(message_start()))
    assert first[0].meta is not None and first[0].meta.warnings == (warning,) and first[0].meta.request_id == "req_9"
    translator.feed(parse_event(message_delta()))
    assert [c.choices[0].finish_reason for c in translator.feed(parse_event(MESSAGE_STOP))] == []
    assert translator.done and translator.feed(parse_event(block_start(0, TEXT_BLOCK))) == []
    assert translator.end_of_stream() == []
