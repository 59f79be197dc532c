"""Recorded real Anthropic traffic (tests/fixtures/recorded/anthropic) through our translation, both ways.

Responses: every recorded body is parsed and checked against concrete values from the recording; every recorded
stream is fed byte by byte, and at single split points (every byte offset for two representative streams, a
seeded sample for the others). Requests: where the recorded request is expressible in the OpenAI schema, the
OpenAI request written here translates to exactly the recorded upstream body.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest
from anthropic_kit import CASSETTES, Collected, load, translate, translate_stream

from polyrelay.errors import BadRequest, NotFound
from polyrelay_anthropic._errors import error_from_response
from polyrelay_anthropic._request import ResponsePlan
from polyrelay_anthropic._response import completion_from_message
from polyrelay_anthropic._wire import parse_message, to_wire

# ---------------------------------------------------------------------------------------------------- responses


@dataclass(frozen=True)
class Expect:
    id: str
    model: str
    finish: str
    usage: tuple[int, int, int]  # prompt (incl. cache), completion, cached
    start: str = ""  # content starts with this ("" with content None when no text)
    end: str = ""
    reasoning: str | None = None
    thinking: tuple[tuple[str, str], ...] = ()  # (type, signature-or-data prefix)
    server: tuple[str, ...] = ()
    tools: tuple[tuple[str, str, dict[str, Any]], ...] = ()


S45 = "claude-sonnet-4-5-20250929"
S4 = "claude-sonnet-4-20250514"
H45 = "claude-haiku-4-5-20251001"

RESPONSES: dict[tuple[str, int], Expect] = {
    ("test_anthropic_cache_real_api.yaml", 0): Expect(
        "msg_01UUPT9QdZnZSRzcQJkjG25U", S45, "stop", (1114, 406, 1111), "# What is Python?", "NASA, and Instagram."
    ),
    ("test_anthropic_cache_real_api.yaml", 1): Expect(
        "msg_01KPaKTJSqAKoZri7Ujrny58", S45, "stop", (1532, 33, 1111), "Python is a beginner-friendly", "computing."
    ),
    ("test_anthropic_model_empty_message_on_history.yaml", 0): Expect(
        "msg_01PAZFa5ciacA9ptgEDMbkZM", S45, "stop", (41, 88, 0), "I can't physically give you a potato", "to you?"
    ),
    ("test_anthropic_model_instructions.yaml", 0): Expect(
        "msg_01Fg1JVgvCYUHWsxrj9GkpEv",
        "claude-3-opus-20240229",
        "stop",
        (20, 10, 0),
        "The capital of France is Paris.",
        "The capital of France is Paris.",
    ),
    ("test_anthropic_model_thinking_part.yaml", 0): Expect(
        "msg_01TGA8SWcHTTn5674cmicbnJ",
        S45,
        "stop",
        (43, 321, 0),
        "Here's how to cross the street safely:",
        "stay alert and make safe choices.",
        reasoning="This is a straightforward question about pedestrian safety.",
        thinking=(("thinking", "Eq8CCkYICxgCKkDdadQOXMzN"),),
    ),
    ("test_anthropic_model_thinking_part.yaml", 1): Expect(
        "msg_016Vg1RgKdfLjsCLybGjd8Xo",
        S45,
        "stop",
        (354, 525, 0),
        "# How to Cross a River",
        "find a bridge or don't cross.",
        reasoning="This is an interesting analogy question.",
        thinking=(("thinking", "EvgHCkYICxgCKkBWep44ZkS8"),),
    ),
    ("test_anthropic_model_thinking_part_redacted.yaml", 0): Expect(
        "msg_01TbZ1ZKNMPq28AgBLyLX3c4",
        S45,
        "stop",
        (92, 196, 0),
        "I notice that your message appears to contain a command",
        "Is there something specific I can assist you with today?",
        thinking=(("redacted_thinking", "EvgFCkYIBxgCKkBmxKtCnM3x"),),
    ),
    ("test_anthropic_model_thinking_part_redacted.yaml", 1): Expect(
        "msg_012oSSVsQdwoGH6b2fryM4fF",
        S45,
        "stop",
        (168, 232, 0),
        "That message appeared to be an attempt",
        "something I can actually help you with today?",
        thinking=(("redacted_thinking", "EtUFCkYIBxgCKkAE46qlfUcG"),),
    ),
    ("test_anthropic_native_output_decimal_strict.yaml", 0): Expect(
        "msg_01GehnYTFBiQDSeSpRvDa1Mp", S45, "stop", (222, 10, 0), '{"amount":12.34}', '{"amount":12.34}'
    ),
    ("test_anthropic_tool_output.yaml", 0): Expect(
        "msg_012TXW181edhmR5JCsQRsBKx",
        S45,
        "tool_calls",
        (445, 23, 0),
        tools=(("toolu_01X9wcHKKAZD9tBC711xipPa", "get_user_country", {}),),
    ),
    ("test_anthropic_tool_output.yaml", 1): Expect(
        "msg_01K4Fzcf1bhiyLzHpwLdrefj",
        S45,
        "tool_calls",
        (497, 56, 0),
        tools=(("toolu_01LZABsgreMefH2Go8D5PQbW", "final_result", {"city": "Mexico City", "country": "Mexico"}),),
    ),
    ("test_anthropic_tool_with_thinking.yaml", 0): Expect(
        "msg_01WvueFjZVbHcj4H4zUzeGv2",
        S4,
        "tool_calls",
        (398, 155, 0),
        "I'll help you find the largest city in your country.",
        "which country you're from.",
        reasoning='The user is asking about the largest city in "the user country".',
        thinking=(("thinking", "EqEECkYICxgCKkAo3UA4WwDb"),),
        tools=(("toolu_01YGzqpRE16Vricda3Aqcejo", "get_user_country", {}),),
    ),
    ("test_anthropic_tool_with_thinking.yaml", 1): Expect(
        "msg_01SZ8KP8HhB1TxP6Ybbv6iKz",
        S4,
        "stop",
        (566, 126, 0),
        "Based on the information that you're from Mexico",
        "economic, and cultural center of Mexico.",
    ),
    ("test_anthropic_web_search_tool.yaml", 0): Expect(
        "msg_0119wM5YxCLg3hwUWrxEQ9Y8",
        S4,
        "stop",
        (8984, 520, 0),
        "Based on the search results, here's the weather information for San Francisco today",
        "should limit outdoor activities.",
        reasoning="The user is asking about the weather in San Francisco today.",
        thinking=(("thinking", "Et0ECkYIBxgCKkCXTXBKWJ3Q"),),
        server=("server_tool_use", "web_search_tool_result"),
    ),
    ("test_anthropic_web_search_tool.yaml", 1): Expect(
        "msg_01Vatv9GeGaeqVHfSGhkU7mo",
        S4,
        "stop",
        (19859, 544, 0),
        "Based on the search results, here's the weather information for Mexico City today",
        "should take precautions.",
        reasoning="The user is now asking about the weather in Mexico City",
        thinking=(("thinking", "EqgCCkYIBxgCKkAhyrWtc4Mf"),),
        server=("server_tool_use", "web_search_tool_result"),
    ),
    ("test_document_url_input.yaml", 0): Expect(
        "msg_014baYh9nwS6x3wiEtCQHkU7",
        S45,
        "stop",
        (2682, 101, 0),
        "This document appears to be a sample PDF",
        "without the distraction of meaningful content.",
    ),
    ("test_image_url_input.yaml", 0): Expect(
        "msg_01TQMY6yjmVxHiAh8qEdausZ", H45, "stop", (296, 91, 0), "This is a potato.", "frying, or mashing."
    ),
    ("test_multiple_parallel_tool_calls.yaml", 0): Expect(
        "msg_011S3wxtqL5CVescWqS3zeg2",
        H45,
        "tool_calls",
        (423, 202, 0),
        "I'll help you find out who is the youngest",
        "to compare their ages.",
        tools=(
            ("toolu_0167cfEnoQaPviGdVXA95zcu", "retrieve_entity_info", {"name": "Alice"}),
            ("toolu_01EEe2V5HD1Ac4rKiUR4HD2T", "retrieve_entity_info", {"name": "Bob"}),
            ("toolu_01XFyAjstT3966qvRynZyVPo", "retrieve_entity_info", {"name": "Charlie"}),
            ("toolu_013mnQZbgtK2oe3Mo3XKJsx3", "retrieve_entity_info", {"name": "Daisy"}),
        ),
    ),
    ("test_multiple_parallel_tool_calls.yaml", 1): Expect(
        "msg_01JVqZPgDwmnyb2kKC3MwCVf", H45, "stop", (771, 77, 0), "Based on the retrieved information", "members."
    ),
    ("test_no_tools_native_output_strict_true.yaml", 0): Expect(
        "msg_01Hfgh959WDWjL5jkM2FQXTL",
        S45,
        "stop",
        (196, 19, 0),
        '{"city":"London","country":"United Kingdom","population":9002488}',
        "9002488}",
    ),
    ("test_tool_choice_matrix[auto-anthropic].yaml", 0): Expect(
        "msg_0157RbBMVd2po91eocfMnSDy",
        S45,
        "tool_calls",
        (572, 53, 0),
        tools=(("toolu_01WN4AuToBnJyXNQXwQBBebj", "get_weather", {"city": "Paris"}),),
    ),
    ("test_tool_choice_matrix[auto-anthropic].yaml", 1): Expect(
        "msg_016ZQ7FNypND5WzmJJ8stJRh",
        S45,
        "stop",
        (646, 31, 0),
        "The weather in Paris is currently sunny with a temperature of 22°C",
        "It's a beautiful day!",
    ),
    ("test_tool_choice_matrix[none-anthropic].yaml", 0): Expect(
        "msg_012FmdErbEVHjaRHthX16vED",
        S45,
        "stop",
        (567, 16, 0),
        "Hello! \U0001f44b How can I help you today?",
        "help you today?",
    ),
    ("test_tool_choice_matrix[required-anthropic].yaml", 0): Expect(
        "msg_01XLMRBfoG8znkbH9NTqYZFU",
        S45,
        "tool_calls",
        (655, 38, 0),
        tools=(("toolu_01Dxp8hdnkA8bsrVJJ8LB9q1", "get_weather", {"city": "Paris"}),),
    ),
}


def _completion(name: str, index: int) -> Any:
    ex = load(name)[index]
    assert ex.status == 200 and ex.json is not None
    return completion_from_message(parse_message(ex.json), plan=ResponsePlan(), provider="claude", model="m")


@pytest.mark.parametrize(("name", "index"), sorted(RESPONSES), ids=lambda v: str(v))
def test_recorded_response(name: str, index: int) -> None:
    import json

    want = RESPONSES[(name, index)]
    completion = _completion(name, index)
    choice = completion.choices[0]
    message = choice.message
    assert (completion.id, completion.model, choice.finish_reason) == (want.id, want.model, want.finish)
    assert completion.usage is not None and completion.usage.prompt_tokens_details is not None
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.prompt_tokens_details.cached_tokens) == want.usage
    assert usage.total_tokens == want.usage[0] + want.usage[1]
    if want.start:
        assert message.content is not None
        assert message.content.startswith(want.start) and message.content.endswith(want.end)
    else:
        assert message.content is None
    if want.reasoning is None:
        assert message.reasoning_content is None
    else:
        assert message.reasoning_content is not None and message.reasoning_content.startswith(want.reasoning)
    blocks = message.extra.get("thinking_blocks", [])
    assert [(b["type"], (b.get("signature") or b.get("data"))[:24]) for b in blocks] == list(want.thinking)
    assert [b["type"] for b in message.extra.get("server_tool_blocks", [])] == list(want.server)
    calls = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or ()]
    assert calls == list(want.tools)


def test_recorded_web_search_blocks_keep_query_and_results() -> None:
    message = _completion("test_anthropic_web_search_tool.yaml", 0).choices[0].message
    use, result = message.extra["server_tool_blocks"]
    assert use["id"] == "srvtoolu_01EoSNE7k4dUJyGatASCV5qs" and use["input"] == {"query": "San Francisco weather today"}
    assert result["tool_use_id"] == "srvtoolu_01EoSNE7k4dUJyGatASCV5qs" and result["content"][0]["encrypted_content"]


@pytest.mark.parametrize(
    ("name", "cls", "status", "code", "message", "request_id"),
    [
        (
            "test_anthropic_count_tokens_error.yaml",
            NotFound,
            404,
            "not_found_error",
            "model: claude-does-not-exist",
            "req_011CVEA3SF7rnb3DuBZytqQa",
        ),
        (
            "test_anthropic_explicit_effort_xhigh_unsupported_model_errors.yaml",
            BadRequest,
            400,
            "invalid_request_error",
            "This model does not support effort level 'xhigh'. Supported levels: high, low, max, medium.",
            "req_011Ca7jT9AHpgXgdv8igm4z9",
        ),
        (
            "test_model_name_suggestion[anthropic].yaml",
            NotFound,
            404,
            "not_found_error",
            "model: claude-sonet-4-5",
            "req_011CdufXo8Y2LVfY2veyuQWG",
        ),
    ],
)
def test_recorded_error(name: str, cls: type[Exception], status: int, code: str, message: str, request_id: str) -> None:
    import json

    ex = load(name)[0]
    error = error_from_response(ex.status, json.dumps(ex.json).encode(), {}, provider="claude")
    assert type(error) is cls
    assert (error.status, error.code, error.message, error.request_id) == (status, code, message, request_id)
    assert error.retryable is False


# ---------------------------------------------------------------------------------------------------- streams


@dataclass(frozen=True)
class StreamExpect:
    id: str
    model: str
    content: tuple[str, str, int]  # starts with, ends with, length
    reasoning: tuple[str, str, int] | None
    thinking: tuple[tuple[str, str, str], ...]  # type, signature/data head, tail
    server: tuple[tuple[str, str], ...]  # type, id / tool_use_id
    usage: tuple[int, int]
    chunks: int


STREAMS: dict[str, StreamExpect] = {
    "test_request_stream_fallback_for_high_max_tokens.yaml": StreamExpect(
        "msg_018E1hg8GoVTGEKQY3ovMcSJ", S45, ("2", "2", 1), None, (), (), (20, 5), 4
    ),
    "test_anthropic_model_thinking_part_redacted_stream.yaml": StreamExpect(
        "msg_018XZkwvj9asBiffg3fXt88s",
        S45,
        ("I notice that you've sent what appears to be some", "a legitimate task or question?", 359),
        None,
        (("redacted_thinking", "EqkECkYIBxgCKkA8", "4ewJ/hgB"), ("redacted_thinking", "EtgBCkYIBxgCKkDQ", "Z1J0GAE=")),
        (),
        (92, 189),
        20,
    ),
    "test_anthropic_model_thinking_part_stream.yaml": StreamExpect(
        "msg_01ALwQ87pTS7hH1PjSdC9wJD",
        S4,
        ("Here are the basic steps for safely crossing the street:", "safety over speed when crossing streets.", 1021),
        (
            "This is a straightforward question about pedestrian safety.",
            "basic safety information that could help prevent accidents.",
            202,
        ),
        (("thinking", "EvMCCkYICxgCKkCH", "jfQYAQ=="),),
        (),
        (43, 282),
        112,
    ),
    "test_anthropic_model_web_search_tool_stream.yaml": StreamExpect(
        "msg_01QmxBSdEbD9ZeBWDVgFDoQ5",
        S4,
        ("Based on the search results, I can see that", "a pleasant day in San Francisco!", 1335),
        ("The user is asking about the weather in San Francisco today.", "the most current information.", 405),
        (("thinking", "Er8ECkYIBxgCKkDp", "0RAYAQ=="),),
        (
            ("server_tool_use", "srvtoolu_01FYcUbzEaqqQh1WBRj1QX3h"),
            ("web_search_tool_result", "srvtoolu_01FYcUbzEaqqQh1WBRj1QX3h"),
            ("server_tool_use", "srvtoolu_01FDqc7ruGpVRoNuD5G6jkUx"),
            ("web_search_tool_result", "srvtoolu_01FDqc7ruGpVRoNuD5G6jkUx"),
        ),
        (22397, 637),
        52,
    ),
    "test_anthropic_code_execution_tool_stream.yaml": StreamExpect(
        "msg_01Js8aWE7YbmiaUPneGiCskE",
        "claude-sonnet-4-6",
        ("I'll calculate that expression for you right away!Following", "Final Answer: **-428,330,955.97745**", 501),
        ("Let me calculate this mathematical expression.", "mathematical expression.", 46),
        (("thinking", "EusBClsIDRgCKkBp", "4RcinBgB"),),
        (
            ("server_tool_use", "srvtoolu_01MwXaweAHve88x6s3Fc8x6Q"),
            ("bash_code_execution_tool_result", "srvtoolu_01MwXaweAHve88x6s3Fc8x6Q"),
        ),
        (4714, 304),  # message_delta's input_tokens (4714) replace message_start's (2293)
        17,
    ),
    "test_anthropic_text_editor_code_execution_tool_stream.yaml": StreamExpect(
        "msg_01LEVZMk9TMqVchNa2WMgXtG",
        "claude-sonnet-4-6",
        ("Sure! I'll do both steps simultaneously", "The file contains the text you specified.", 542),
        None,
        (),
        (
            ("server_tool_use", "srvtoolu_01Xd8YZU6yAcvd5JbLCTRfFi"),
            ("server_tool_use", "srvtoolu_01F3VxYFjEyogm8Ynuc75zfs"),
            ("text_editor_code_execution_tool_result", "srvtoolu_01Xd8YZU6yAcvd5JbLCTRfFi"),
            ("text_editor_code_execution_tool_result", "srvtoolu_01F3VxYFjEyogm8Ynuc75zfs"),
            ("server_tool_use", "srvtoolu_01UZ1EtACaBJ87pPA9guaxHU"),
            ("text_editor_code_execution_tool_result", "srvtoolu_01UZ1EtACaBJ87pPA9guaxHU"),
        ),
        (7621, 384),
        19,
    ),
}
#: Streams checked at every byte offset (small and representative: plain text; redacted thinking with pings).
EVERY_CUT = (
    "test_request_stream_fallback_for_high_max_tokens.yaml",
    "test_anthropic_model_thinking_part_redacted_stream.yaml",
)
SAMPLED_CUTS = 150


def _check_stream(got: Collected, want: StreamExpect) -> None:
    assert {c.id for c in got.chunks} == {want.id} and {c.model for c in got.chunks} == {want.model}
    assert got.roles == ["assistant"] and got.chunks[0].choices[0].delta.role == "assistant"
    start, end, length = want.content
    assert got.content.startswith(start) and got.content.endswith(end) and len(got.content) == length
    if want.reasoning is None:
        assert got.reasoning == ""
    else:
        r_start, r_end, r_len = want.reasoning
        assert got.reasoning.startswith(r_start) and got.reasoning.endswith(r_end) and len(got.reasoning) == r_len
    marks = [
        (b["type"], (b.get("signature") or b["data"])[:16], (b.get("signature") or b["data"])[-8:])
        for b in got.thinking_blocks
    ]
    assert marks == list(want.thinking)
    for block in got.thinking_blocks:
        if block["type"] == "thinking":
            assert block["thinking"] == got.reasoning  # the whole thinking text rides with its signature
    assert [(b["type"], b.get("id") or b.get("tool_use_id")) for b in got.server_blocks] == list(want.server)
    assert got.tool_calls == {}  # server tools are not client tool calls
    assert got.finish == ["stop"]
    assert got.usage is not None and (got.usage.prompt_tokens, got.usage.completion_tokens) == want.usage
    assert len(got.chunks) == want.chunks


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_recorded_stream_whole(name: str) -> None:
    raw = load(name)[0].sse
    assert raw is not None
    _check_stream(translate_stream(raw), STREAMS[name])


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_recorded_stream_byte_by_byte(name: str) -> None:
    raw = load(name)[0].sse
    assert raw is not None
    _check_stream(translate_stream(raw, range(1, len(raw))), STREAMS[name])


def _dicts(got: Collected) -> list[dict[str, Any]]:
    # Everything but `created` (the clock) must be identical however the bytes were split.
    return [{k: v for k, v in c.to_dict().items() if k != "created"} for c in got.chunks]


@pytest.mark.parametrize("name", EVERY_CUT)
def test_recorded_stream_every_split_point(name: str) -> None:
    raw = load(name)[0].sse
    assert raw is not None
    whole = _dicts(translate_stream(raw))
    for cut in range(1, len(raw)):
        assert _dicts(translate_stream(raw, [cut])) == whole, cut


@pytest.mark.parametrize("name", sorted(set(STREAMS) - set(EVERY_CUT)))
def test_recorded_stream_sampled_split_points(name: str) -> None:
    raw = load(name)[0].sse
    assert raw is not None
    rng = random.Random(name)
    boundaries = [i for i in range(1, len(raw)) if raw[i - 1 : i + 1] in (b"\n\n", b"\ne", b"\nd", b": ")]
    cuts = rng.sample(range(1, len(raw)), SAMPLED_CUTS) + rng.sample(boundaries, min(50, len(boundaries)))
    for cut in cuts:
        _check_stream(translate_stream(raw, [cut]), STREAMS[name])
    for _ in range(20):  # several cuts at once
        _check_stream(translate_stream(raw, rng.sample(range(1, len(raw)), 7)), STREAMS[name])


def test_recorded_stream_usage_only_when_asked() -> None:
    raw = load("test_request_stream_fallback_for_high_max_tokens.yaml")[0].sse
    assert raw is not None
    got = translate_stream(raw, include_usage=False)
    assert got.usage is None and all(c.choices for c in got.chunks) and got.finish == ["stop"]


# ---------------------------------------------------------------------------------------------------- requests


def _history(name: str, index: int) -> dict[str, Any]:
    """Our own OpenAI reading of a recorded reply, as the caller would send it back."""
    out: dict[str, Any] = _completion(name, index).choices[0].message.to_dict()
    return out


def _text(name: str, index: int, message: int) -> str:
    out: str = load(name)[index].request["messages"][message]["content"][0]["text"]
    return out


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "additionalProperties": False,
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "type": "object",
        },
    },
}
COUNTRY_TOOL = {
    "type": "function",
    "function": {
        "name": "get_user_country",
        "description": "",
        "parameters": {"additionalProperties": False, "properties": {}, "type": "object"},
    },
}
FINAL_RESULT_TOOL = {
    "type": "function",
    "function": {
        "name": "final_result",
        "description": "The final response which ends this conversation",
        "parameters": {
            "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
            "required": ["city", "country"],
            "title": "CityLocation",
            "type": "object",
        },
    },
}
ENTITY_TOOL = {
    "type": "function",
    "function": {
        "name": "retrieve_entity_info",
        "description": "Get the knowledge about the given entity.",
        "parameters": {
            "additionalProperties": False,
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
            "type": "object",
        },
    },
}
CITY_Q = "What is the largest city in the user country?"
FAMILY_Q = "Alice, Bob, Charlie and Daisy are a family. Who is the youngest?"


def _requests() -> dict[tuple[str, int], tuple[str, dict[str, Any]]]:
    """(file, interaction) → (upstream model, the OpenAI request)."""
    out: dict[tuple[str, int], tuple[str, dict[str, Any]]] = {}
    cache = "test_anthropic_cache_real_api.yaml"
    big = _text(cache, 0, 0)
    cache_extra = {"cache_control": {"ttl": "5m", "type": "ephemeral"}}
    first = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": big}]
    out[(cache, 0)] = ("claude-sonnet-4-5", {"messages": first, "max_tokens": 4096, **cache_extra})
    second = [*first, _history(cache, 0), {"role": "user", "content": "Can you summarize that in one sentence?"}]
    out[(cache, 1)] = ("claude-sonnet-4-5", {"messages": second, "max_tokens": 4096, **cache_extra})

    out[("test_anthropic_explicit_effort_xhigh_unsupported_model_errors.yaml", 0)] = (
        "claude-opus-4-6",
        {
            "messages": [{"role": "user", "content": "What is 2+2?"}],
            "max_tokens": 4096,
            "output_config": {"effort": "xhigh"},
        },
    )
    system = load("test_anthropic_model_instructions.yaml")[0].request["system"]
    out[("test_anthropic_model_empty_message_on_history.yaml", 0)] = (
        "claude-sonnet-4-5",
        {
            "messages": [
                {"role": "system", "content": system},
                {"role": "assistant", "content": "Hello, how can I help you?"},
                {"role": "user", "content": "I need a potato!"},
            ],
            "max_tokens": 4096,
        },
    )
    out[("test_anthropic_model_instructions.yaml", 0)] = (
        "claude-3-opus-latest",
        {
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": "What is the capital of France?"},
            ],
            "max_tokens": 4096,
        },
    )
    thinking = "test_anthropic_model_thinking_part.yaml"
    street = [{"role": "user", "content": "How do I cross the street?"}]
    out[(thinking, 0)] = ("claude-sonnet-4-5", {"messages": street, "max_tokens": 4096, "reasoning_effort": "low"})
    river = [
        *street,
        _history(thinking, 0),
        {"role": "user", "content": "Considering the way to cross the street, analogously, how do I cross the river?"},
    ]
    out[(thinking, 1)] = ("claude-sonnet-4-5", {"messages": river, "max_tokens": 4096, "reasoning_effort": "low"})
    out[("test_anthropic_model_thinking_part_stream.yaml", 0)] = (
        "claude-sonnet-4-0",
        {"messages": street, "max_tokens": 4096, "reasoning_effort": "low", "stream": True},
    )
    redacted = "test_anthropic_model_thinking_part_redacted.yaml"
    magic = [{"role": "user", "content": _text(redacted, 0, 0)}]
    model = "claude-sonnet-4-5-20250929"
    out[(redacted, 0)] = (model, {"messages": magic, "max_tokens": 4096, "reasoning_effort": "low"})
    follow = [*magic, _history(redacted, 0), {"role": "user", "content": "What was that?"}]
    out[(redacted, 1)] = (model, {"messages": follow, "max_tokens": 4096, "reasoning_effort": "low"})
    out[("test_anthropic_model_thinking_part_redacted_stream.yaml", 0)] = (
        model,
        {"messages": magic, "max_tokens": 4096, "reasoning_effort": "low", "stream": True},
    )
    for name, question in (
        ("test_anthropic_native_output_decimal_strict.yaml", "Return exactly this payment amount: 12.34"),
        ("test_no_tools_native_output_strict_true.yaml", "Tell me about London"),
    ):
        schema = load(name)[0].request["output_config"]["format"]["schema"]
        response_format = {"type": "json_schema", "json_schema": {"name": "out", "schema": schema, "strict": True}}
        out[(name, 0)] = (
            "claude-sonnet-4-5",
            {
                "messages": [{"role": "user", "content": question}],
                "max_tokens": 4096,
                "response_format": response_format,
            },
        )
    tool_output = "test_anthropic_tool_output.yaml"
    city = [{"role": "user", "content": CITY_Q}]
    tools = {"tools": [COUNTRY_TOOL, FINAL_RESULT_TOOL], "tool_choice": "required", "max_tokens": 4096}
    out[(tool_output, 0)] = ("claude-sonnet-4-5", {"messages": city, **tools})
    call_id = "toolu_01X9wcHKKAZD9tBC711xipPa"
    answered = [
        *city,
        _history(tool_output, 0),
        {"role": "tool", "tool_call_id": call_id, "content": "Mexico", "is_error": False},
    ]
    out[(tool_output, 1)] = ("claude-sonnet-4-5", {"messages": answered, **tools})
    with_thinking = "test_anthropic_tool_with_thinking.yaml"
    budget = {"thinking": {"type": "enabled", "budget_tokens": 3000}, "max_tokens": 4096}
    country = {"tools": [COUNTRY_TOOL], "tool_choice": "auto", **budget}
    out[(with_thinking, 0)] = ("claude-sonnet-4-0", {"messages": city, **country})
    call_id = "toolu_01YGzqpRE16Vricda3Aqcejo"
    loop = [
        *city,
        _history(with_thinking, 0),
        {"role": "tool", "tool_call_id": call_id, "content": "Mexico", "is_error": False},
    ]
    out[(with_thinking, 1)] = ("claude-sonnet-4-0", {"messages": loop, **country})
    out[("test_document_url_input.yaml", 0)] = (
        "claude-sonnet-4-5",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is the main content on this document?"},
                        {"type": "image_url", "image_url": {"url": "https://pdfobject.com/pdf/sample.pdf"}},
                    ],
                }
            ],
            "max_tokens": 4096,
        },
    )
    image = load("test_image_url_input.yaml")[0].request["messages"][0]["content"][1]["source"]["url"]
    out[("test_image_url_input.yaml", 0)] = (
        "claude-haiku-4-5",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this vegetable?"},
                        {"type": "image_url", "image_url": {"url": image, "detail": "auto"}},
                    ],
                }
            ],
            "max_tokens": 4096,
        },
    )
    out[("test_model_name_suggestion[anthropic].yaml", 0)] = (
        "claude-sonet-4-5",
        {"messages": [{"role": "user", "content": "hello"}]},  # an id we cannot read: the 4,096 fallback
    )
    parallel = "test_multiple_parallel_tool_calls.yaml"
    family_system = load(parallel)[0].request["system"]
    family = [{"role": "system", "content": family_system}, {"role": "user", "content": FAMILY_Q}]
    entity = {"tools": [ENTITY_TOOL], "tool_choice": "auto", "max_tokens": 4096}
    out[(parallel, 0)] = ("claude-haiku-4-5", {"messages": family, **entity})
    facts = [
        ("toolu_0167cfEnoQaPviGdVXA95zcu", "alice is bob's wife"),
        ("toolu_01EEe2V5HD1Ac4rKiUR4HD2T", "bob is alice's husband"),
        ("toolu_01XFyAjstT3966qvRynZyVPo", "charlie is alice's son"),
        ("toolu_013mnQZbgtK2oe3Mo3XKJsx3", "daisy is bob's daughter and charlie's younger sister"),
    ]
    results = [{"role": "tool", "tool_call_id": i, "content": c, "is_error": False} for i, c in facts]
    out[(parallel, 1)] = ("claude-haiku-4-5", {"messages": [*family, _history(parallel, 0), *results], **entity})
    out[("test_request_stream_fallback_for_high_max_tokens.yaml", 0)] = (
        "claude-sonnet-4-5",
        {
            "messages": [{"role": "user", "content": "What is 1+1? Answer with just the number."}],
            "max_tokens": 32000,
            "stream": True,
        },
    )
    matrix = "test_tool_choice_matrix[auto-anthropic].yaml"
    paris = [{"role": "user", "content": "What's the weather in Paris?"}]
    out[(matrix, 0)] = (
        "claude-sonnet-4-5",
        {"messages": paris, "tools": [WEATHER_TOOL], "tool_choice": "auto", "max_tokens": 4096},
    )
    sunny = [
        *paris,
        _history(matrix, 0),
        {
            "role": "tool",
            "tool_call_id": "toolu_01WN4AuToBnJyXNQXwQBBebj",
            "content": "Sunny, 22C in Paris",
            "is_error": False,
        },
    ]
    out[(matrix, 1)] = (
        "claude-sonnet-4-5",
        {"messages": sunny, "tools": [WEATHER_TOOL], "tool_choice": "auto", "max_tokens": 4096},
    )
    out[("test_tool_choice_matrix[none-anthropic].yaml", 0)] = (
        "claude-sonnet-4-5",
        {
            "messages": [{"role": "user", "content": "Say hello"}],
            "tools": [WEATHER_TOOL],
            "tool_choice": "none",
            "max_tokens": 4096,
        },
    )
    plain_weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get weather for a city",
            "parameters": {"properties": {"city": {"type": "string"}}, "required": ["city"], "type": "object"},
        },
    }
    out[("test_tool_choice_matrix[required-anthropic].yaml", 0)] = (
        "claude-sonnet-4-5",
        {"messages": paris, "tools": [plain_weather], "tool_choice": "required", "max_tokens": 4096},
    )
    return out


REQUESTS = _requests()
#: Recorded requests the OpenAI schema cannot express: Anthropic server tools (web search, code execution) and
#: the count_tokens endpoint.
NOT_EXPRESSIBLE = {
    ("test_anthropic_code_execution_tool_stream.yaml", 0),
    ("test_anthropic_count_tokens_error.yaml", 0),
    ("test_anthropic_model_web_search_tool_stream.yaml", 0),
    ("test_anthropic_text_editor_code_execution_tool_stream.yaml", 0),
    ("test_anthropic_web_search_tool.yaml", 0),
    ("test_anthropic_web_search_tool.yaml", 1),
}


@pytest.mark.parametrize(("name", "index"), sorted(REQUESTS), ids=lambda v: str(v))
def test_recorded_request(name: str, index: int) -> None:
    model, body = REQUESTS[(name, index)]
    recorded = load(name)[index].request
    prepared = translate(body, model=model, stream=bool(body.get("stream")))
    assert to_wire(prepared.body) == recorded
    assert prepared.warnings == ()


def test_every_recorded_exchange_is_covered() -> None:
    every = {(p.name, i) for p in CASSETTES.glob("*.yaml") for i in range(len(load(p.name)))}
    responses = set(RESPONSES) | {(n, 0) for n in STREAMS}
    errors = {
        ("test_anthropic_count_tokens_error.yaml", 0),
        ("test_anthropic_explicit_effort_xhigh_unsupported_model_errors.yaml", 0),
        ("test_model_name_suggestion[anthropic].yaml", 0),
    }
    assert responses | errors == every
    assert set(REQUESTS) | NOT_EXPRESSIBLE == every
