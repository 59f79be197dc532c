"""StreamAssembler: vendor chunk shapes in, OpenAI-shaped chunks out (no I/O; the provider feeds it events)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai_support import assemble, chunk

from polyrelay.errors import (
    BadRequest,
    ContentPolicyViolation,
    InvalidUpstreamResponse,
    Overloaded,
    RateLimited,
    ServerError,
    StreamInterrupted,
)
from polyrelay.sse import ServerSentEvent
from polyrelay.types.completion import ChatCompletionChunk
from polyrelay_openai._rows import ROWS, CompatRow
from polyrelay_openai._stream import StreamAssembler


def run(
    events: list[Any], *, row: CompatRow = ROWS["openai"], include_usage: bool = False, n: int = 1, **kw: Any
) -> tuple[list[ChatCompletionChunk], StreamAssembler]:
    """Feed events (objects are JSON-encoded; ServerSentEvent as is) until [DONE] or completion, then end()."""
    state = StreamAssembler(row, provider="up", include_usage=include_usage, expected_choices=n, **kw)
    out: list[ChatCompletionChunk] = []
    for e in events:
        ev = e if isinstance(e, ServerSentEvent) else ServerSentEvent(data=e if isinstance(e, str) else json.dumps(e))
        out += state.feed(ev)
        if state.done or state.complete:
            break
    out += state.end()
    return out, state


def tc(
    index: int | None = None, id: str | None = None, name: str | None = None, args: str | None = None
) -> dict[str, Any]:
    d: dict[str, Any] = {"function": {}}
    if index is not None:
        d["index"] = index
    if id is not None:
        d["id"] = id
        d["type"] = "function"
    if name is not None:
        d["function"]["name"] = name
    if args is not None:
        d["function"]["arguments"] = args
    return d


# ----------------------------------------------------------------------------------------------------- tool calls


def test_openai_fragments_assemble_by_index() -> None:
    chunks, _ = run(
        [
            chunk({"role": "assistant", "content": None, "tool_calls": [tc(0, "call_a", "f", "")]}),
            chunk({"tool_calls": [tc(0, args='{"x"')]}),
            chunk({"tool_calls": [tc(1, "call_b", "g", "{}")]}),
            chunk({"tool_calls": [tc(0, args=":1}")]}),
            chunk(finish="tool_calls"),
            "[DONE]",
        ]
    )
    got = assemble(chunks)
    assert got.tool_calls == [
        {"id": "call_a", "name": "f", "arguments": '{"x":1}'},
        {"id": "call_b", "name": "g", "arguments": "{}"},
    ]
    assert got.finish_reason == "tool_calls"


def test_known_id_and_name_are_not_overwritten_by_empty_strings() -> None:
    # DashScope / GLM repeat "id": "" and "name": "" on continuation fragments.
    chunks, _ = run(
        [
            chunk({"role": "assistant", "tool_calls": [tc(0, "call_a", "lookup", "")]}),
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "", "type": "function", "function": {"name": "", "arguments": '{"q"'}}
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "id": "", "function": {"arguments": ':"x"}'}}]}),
            chunk(finish="tool_calls"),
        ]
    )
    got = assemble(chunks)
    assert got.tool_calls == [{"id": "call_a", "name": "lookup", "arguments": '{"q":"x"}'}]
    later = [t for c in chunks[1:] for ch in c.choices for t in ch.delta.tool_calls or ()]
    assert all(t.id is None and (t.function is None or t.function.name is None) for t in later)


def test_missing_index_means_next_call() -> None:
    # Mistral: whole calls without index (and without type), finish_reason on the same chunk.
    chunks, _ = run(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk(
                {
                    "tool_calls": [
                        {"id": "abcDEF123", "function": {"name": "f", "arguments": '{"a":1}'}},
                        {"id": "ghiJKL456", "function": {"name": "g", "arguments": '{"b":2}'}},
                    ]
                },
                finish="tool_calls",
            ),
        ]
    )
    got = assemble(chunks)
    assert [(c["id"], c["name"], c["arguments"]) for c in got.tool_calls] == [
        ("abcDEF123", "f", '{"a":1}'),
        ("ghiJKL456", "g", '{"b":2}'),
    ]


def test_index_less_continuation_appends_to_the_latest_call() -> None:
    chunks, _ = run(
        [
            chunk({"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{"}}]}),
            chunk({"tool_calls": [{"function": {"arguments": "}"}}]}),
            chunk(finish="tool_calls"),
        ]
    )
    assert assemble(chunks).tool_calls == [{"id": "c1", "name": "f", "arguments": "{}"}]


def test_indices_starting_at_one_are_renumbered_densely_in_order_of_first_appearance() -> None:
    # Anthropic's OpenAI-compat layer numbers calls by content block: the first call after text is index 1.
    chunks, _ = run(
        [
            chunk({"role": "assistant", "content": "Let me check."}),
            chunk({"tool_calls": [tc(3, "toolu_b", "second", "")]}),
            chunk({"tool_calls": [tc(1, "toolu_a", "first", "")]}),
            chunk({"tool_calls": [tc(1, args="{}")]}),
            chunk({"tool_calls": [tc(3, args='{"k":1}')]}),
            chunk(finish="tool_calls"),
        ]
    )
    got = assemble(chunks)
    assert [(c["id"], c["arguments"]) for c in got.tool_calls] == [("toolu_b", '{"k":1}'), ("toolu_a", "{}")]
    indices = [t.index for c in chunks for ch in c.choices for t in ch.delta.tool_calls or ()]
    assert indices == [0, 1, 1, 0]


def test_reused_index_with_a_new_id_is_a_new_call() -> None:
    chunks, _ = run(
        [
            chunk({"role": "assistant", "tool_calls": [tc(0, "c1", "f", "{}")]}),
            chunk({"tool_calls": [tc(0, "c2", "g", "")]}),
            chunk({"tool_calls": [tc(0, args='{"z":0}')]}),
            chunk(finish="tool_calls"),
        ]
    )
    assert assemble(chunks).tool_calls == [
        {"id": "c1", "name": "f", "arguments": "{}"},
        {"id": "c2", "name": "g", "arguments": '{"z":0}'},
    ]


def test_missing_id_is_generated_and_arguments_object_becomes_a_string() -> None:
    chunks, _ = run(
        [
            chunk(
                {"role": "assistant", "tool_calls": [{"index": 0, "function": {"name": "f", "arguments": {"a": 1}}}]}
            ),
            chunk(finish="tool_calls"),
        ]
    )
    (call,) = assemble(chunks).tool_calls
    assert call["id"].startswith("call_") and call["arguments"] == '{"a": 1}'


def test_remapped_ids_go_back_to_the_callers_ids() -> None:
    chunks, _ = run(
        [chunk({"role": "assistant", "tool_calls": [tc(None, "Ab3dE6gH9", "f", "{}")]}), chunk(finish="tool_calls")],
        ids_back={"Ab3dE6gH9": "call_original"},
    )
    assert assemble(chunks).tool_calls[0]["id"] == "call_original"


def test_vendor_keys_on_tool_calls_are_kept() -> None:
    # Gemini's compat endpoint: the thought signature rides on the tool call and must be sent back.
    sig = {"google": {"thought_signature": "c2ln"}}
    chunks, _ = run(
        [
            chunk({"role": "assistant", "tool_calls": [{**tc(0, "c1", "f", "{}"), "extra_content": sig}]}),
            chunk(finish="tool_calls"),
        ]
    )
    first = chunks[0].choices[0].delta.tool_calls
    assert first is not None and first[0].extra == {"extra_content": sig}


# ----------------------------------------------------------------------------------------- roles, reasoning, usage


def test_role_only_on_the_first_chunk_of_each_choice() -> None:
    # Zhipu repeats role on every delta; one upstream sends no role at all.
    chunks, _ = run(
        [
            chunk({"role": "assistant", "reasoning_content": "hm"}),
            chunk({"role": "assistant", "content": "4"}),
            chunk({"role": "assistant", "content": ""}, finish="stop"),
        ],
        row=ROWS["zhipu"],
    )
    assert [c.choices[0].delta.role for c in chunks] == ["assistant", None, None]
    chunks, _ = run([chunk({"content": "x"}), chunk(finish="stop")])
    assert chunks[0].choices[0].delta.role == "assistant"


def test_n_choices_each_get_a_role_and_all_must_finish() -> None:
    def c(i: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "x", "choices": [{"index": i, "delta": delta, "finish_reason": finish}]}

    events = [c(0, {"content": "a"}), c(1, {"content": "b"}), c(0, {}, "stop")]
    chunks, _ = run([*events, c(1, {}, "stop"), "[DONE]"], n=2)
    assert [ch.choices[0].delta.role for ch in chunks[:2]] == ["assistant", "assistant"]
    partial = StreamAssembler(ROWS["openai"], provider="up", include_usage=False, expected_choices=2)
    for e in events:
        partial.feed(ServerSentEvent(data=json.dumps(e)))
    assert not partial.complete  # choice 1 has not finished yet


@pytest.mark.parametrize(
    ("row", "field"),
    [("groq", "reasoning"), ("openrouter", "reasoning"), ("ollama", "reasoning"), ("deepseek", "reasoning_content")],
)
def test_reasoning_field_is_normalised_and_the_original_kept(row: str, field: str) -> None:
    chunks, _ = run(
        [chunk({"role": "assistant", field: "think"}), chunk({"content": "ok"}, finish="stop")], row=ROWS[row]
    )
    delta = chunks[0].choices[0].delta
    assert delta.reasoning_content == "think"
    if field != "reasoning_content":
        assert delta.extra[field] == "think"


def test_mistral_thinking_arrays_become_reasoning_and_text() -> None:
    thinking = {"type": "thinking", "thinking": [{"type": "text", "text": "Let me see"}]}
    chunks, _ = run(
        [
            chunk({"role": "assistant", "content": [thinking]}),
            chunk({"content": [{"type": "text", "text": "Yes"}]}, finish="stop"),
        ],
        row=ROWS["mistral"],
    )
    got = assemble(chunks)
    assert (got.reasoning, got.content) == ("Let me see", "Yes")


@pytest.mark.parametrize(
    "placement",
    ["trailing", "finish", "choice"],
)
def test_usage_is_the_last_seen_anywhere_and_sent_once_at_the_end(placement: str) -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    finish = chunk({}, finish="stop")
    if placement == "finish":
        finish["usage"] = usage
    elif placement == "choice":  # Moonshot
        finish["choices"][0]["usage"] = usage
    events = [chunk({"role": "assistant", "content": "hi"}, usage=None), finish]
    if placement == "trailing":
        events.append({"id": "chatcmpl-1", "choices": [], "usage": usage})
    chunks, _ = run([*events, "[DONE]"], include_usage=True)
    assert chunks[-1].choices == () and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 12
    assert all(c.usage is None for c in chunks[:-1])


def test_usage_not_asked_for_stays_where_the_upstream_put_it() -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    chunks, _ = run([chunk({"content": "a"}), chunk({}, finish="stop", usage=usage), "[DONE]"])
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 3


def test_xai_usage_gets_reasoning_tokens_back() -> None:
    usage = {
        "prompt_tokens": 12,
        "completion_tokens": 1,
        "total_tokens": 303,
        "completion_tokens_details": {"reasoning_tokens": 290},
    }
    chunks, _ = run(
        [chunk({"content": "a"}), chunk(finish="stop"), {"id": "x", "choices": [], "usage": usage}],
        row=ROWS["xai"],
        include_usage=True,
    )
    last = chunks[-1].usage
    assert last is not None and (last.completion_tokens, last.total_tokens) == (291, 303)


def test_completion_ends_without_done_once_finished_and_usage_arrived() -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    state = StreamAssembler(ROWS["openai"], provider="up", include_usage=True)
    state.feed(ServerSentEvent(data=json.dumps(chunk({"content": "a"}, finish="stop"))))
    before = (state.finished, state.complete)
    state.feed(ServerSentEvent(data=json.dumps({"id": "x", "choices": [], "usage": usage})))
    assert before == (True, False)  # finished, but the usage chunk was still due
    assert (state.complete, state.done) == (True, False)


@pytest.mark.parametrize(("vendor", "openai"), [("sensitive", "content_filter"), ("eos", "stop"), ("length", "length")])
def test_vendor_finish_reasons_map_to_openai(vendor: str, openai: str) -> None:
    chunks, _ = run([chunk({"content": "a"}), chunk(finish=vendor)])
    choice = chunks[-1].choices[0]
    assert choice.finish_reason == openai
    if vendor != openai:
        assert choice.extra["native_finish_reason"] == vendor


# ------------------------------------------------------------------------------------------------------ failures


def test_eof_before_finish_reason_is_interrupted_with_the_partial_text() -> None:
    state = StreamAssembler(ROWS["deepseek"], provider="up", include_usage=False)
    state.feed(ServerSentEvent(data=json.dumps(chunk({"role": "assistant", "reasoning_content": "hmm"}))))
    state.feed(ServerSentEvent(data=json.dumps(chunk({"content": "Par"}))))
    with pytest.raises(StreamInterrupted) as info:
        state.end()
    assert (info.value.partial, info.value.partial_reasoning) == ("Par", "hmm")
    assert info.value.retryable


def test_done_before_any_finish_reason_is_interrupted() -> None:
    with pytest.raises(StreamInterrupted, match=r"\[DONE\]"):
        run([chunk({"content": "Par"}), "[DONE]"])


@pytest.mark.parametrize(
    ("event", "cls", "status"),
    [
        (ServerSentEvent(data='{"error":{"message":"boom","type":"server_error","code":null}}'), ServerError, 500),
        (
            ServerSentEvent(data='{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}'),
            RateLimited,
            429,
        ),
        (
            ServerSentEvent(data='{"object":"error","message":"bad","type":"BadRequestError","code":400}'),
            BadRequest,
            400,
        ),
        (
            ServerSentEvent(
                event="error",
                data='{"error":{"message":"x","type":"invalid_request_error","code":"tool_use_failed","status_code":400}}',
            ),
            BadRequest,
            400,
        ),
        (ServerSentEvent(event="error", data='{"type":"overloaded"}'), ServerError, 500),
        (
            ServerSentEvent(
                data='{"error":{"code":429,"message":"Provider returned error","metadata":{"raw":"busy"}}}'
            ),
            RateLimited,
            429,
        ),
        (ServerSentEvent(data='{"error":{"message":"flagged","code":"content_filter"}}'), ContentPolicyViolation, 500),
    ],
)
def test_in_band_errors_raise_the_classified_error(event: ServerSentEvent, cls: type[Exception], status: int) -> None:
    state = StreamAssembler(ROWS["openai"], provider="up", include_usage=False)
    state.feed(ServerSentEvent(data=json.dumps(chunk({"content": "partial"}))))
    with pytest.raises(cls) as info:
        state.feed(event)
    assert type(info.value) is cls
    assert getattr(info.value, "status", None) == status


def test_openrouter_error_finish_reason_raises() -> None:
    bad = chunk({}, finish="error")
    bad["error"] = {"code": 502, "message": "Provider disconnected"}
    with pytest.raises(ServerError, match="Provider disconnected") as info:
        run([chunk({"content": "a"}), bad])
    assert info.value.status == 502
    with pytest.raises(Overloaded):
        run([chunk({"content": "a"}), chunk(finish="insufficient_system_resource")], row=ROWS["deepseek"])


@pytest.mark.parametrize(
    "data", ['{"choices": [{"delta": ', "[1, 2]", '{"choices": {}}', '{"choices": [{"delta": "x"}]}']
)
def test_unparsable_events_are_invalid_upstream_responses(data: str) -> None:
    state = StreamAssembler(ROWS["openai"], provider="up", include_usage=False)
    with pytest.raises(InvalidUpstreamResponse) as info:
        state.feed(ServerSentEvent(data=data))
    assert info.value.provider == "up"


def test_keepalive_usage_only_chunks_are_absorbed_when_usage_is_asked() -> None:
    state = StreamAssembler(ROWS["openai"], provider="up", include_usage=True)
    assert (
        state.feed(
            ServerSentEvent(
                data=json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion.chunk",
                        "choices": [],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1},
                    }
                )
            )
        )
        == []
    )
    assert state.usage is not None
