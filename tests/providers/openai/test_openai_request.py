"""build_request: the caller's OpenAI request → the body one upstream accepts, per row."""

from __future__ import annotations

from typing import Any

import pytest

from polyrelay.types._converters import parse_request
from polyrelay_openai._request import alnum9_id, build_request
from polyrelay_openai._rows import ROWS

BASE = "https://api.example.com/v1"
USER = {"role": "user", "content": "hi"}


def build(preset: str, *, stream: bool = False, base_url: str = BASE, **fields: Any) -> Any:
    request = parse_request({"model": "public", "messages": [USER], **fields})
    return build_request(request, ROWS[preset], model="up-model", stream=stream, base_url=base_url)


def test_everything_is_kept_for_openai_and_model_comes_from_ctx() -> None:
    fields: dict[str, Any] = {
        "temperature": 0.3,
        "top_p": 0.9,
        "max_completion_tokens": 50,
        "seed": 7,
        "logit_bias": {"1": 2},
        "n": 2,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "reasoning_effort": "low",
        "verbosity": "low",  # unknown to polyrelay: passed through verbatim
        "metadata": {"k": "v"},
    }
    wire = build("openai", **fields)
    assert wire.body == {"model": "up-model", "messages": [USER], **fields}
    assert wire.warnings == ()


def test_stream_flags() -> None:
    assert build("openai", stream=True).body["stream"] is True
    request = parse_request(
        {"model": "p", "messages": [USER], "stream": True, "stream_options": {"include_usage": True}}
    )
    plain = build_request(request, ROWS["openai"], model="m", stream=False, base_url=BASE)
    assert plain.body["stream"] is False and "stream_options" not in plain.body
    asked = build("openai", stream=True, stream_options={"include_usage": True})
    assert asked.body["stream_options"] == {"include_usage": True}
    for preset in ("zhipu", "mistral"):
        assert "stream_options" not in build(preset, stream=True, stream_options={"include_usage": True}).body


def test_groq_drops_unsupported_params_with_warnings() -> None:
    wire = build("groq", logprobs=True, top_logprobs=3, logit_bias={"1": 1}, n=3, temperature=0.1)
    assert wire.body == {"model": "up-model", "messages": [USER], "temperature": 0.1}
    assert [w.setting for w in wire.warnings] == ["logprobs", "logit_bias", "top_logprobs", "n"]
    assert build("groq", n=1).body["n"] == 1 and build("groq", n=1).warnings == ()


def test_names_dropped_for_upstreams_that_reject_them() -> None:
    request = parse_request({"model": "p", "messages": [{"role": "user", "content": "x", "name": "ann"}]})
    wire = build_request(request, ROWS["groq"], model="m", stream=False, base_url=BASE)
    assert "name" not in wire.body["messages"][0]
    assert [w.setting for w in wire.warnings] == ["messages[].name"]


@pytest.mark.parametrize("preset", ["deepseek", "mistral", "zhipu", "moonshot", "dashscope", "together"])
def test_max_completion_tokens_renamed_for_max_tokens_only_upstreams(preset: str) -> None:
    wire = build(preset, max_completion_tokens=99)
    assert wire.body["max_tokens"] == 99 and "max_completion_tokens" not in wire.body
    both = build(preset, max_completion_tokens=99, max_tokens=10)
    assert both.body["max_tokens"] == 10 and [w.setting for w in both.warnings] == ["max_completion_tokens"]


def test_mistral_seed_is_random_seed() -> None:
    assert build("mistral", seed=3).body["random_seed"] == 3


def test_zhipu_tool_choice_and_json_schema() -> None:
    assert build("zhipu", tool_choice="auto").body["tool_choice"] == "auto"
    wire = build(
        "zhipu",
        tool_choice="required",
        response_format={"type": "json_schema", "json_schema": {"name": "x"}},
        presence_penalty=0.5,
    )
    assert "tool_choice" not in wire.body and "presence_penalty" not in wire.body
    assert wire.body["response_format"] == {"type": "json_object"}
    assert {w.setting for w in wire.warnings} == {"tool_choice", "response_format", "presence_penalty"}


ASSISTANT_WITH_REASONING = {
    "role": "assistant",
    "content": "x",
    "reasoning_content": "thought",
    "reasoning": "thought",
    "reasoning_details": [{"type": "reasoning.text", "text": "thought", "signature": "s"}],
}
TOOL_TURN = {
    "role": "assistant",
    "content": None,
    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
}


def history(preset: str) -> list[dict[str, Any]]:
    request = parse_request(
        {
            "model": "p",
            "messages": [
                USER,
                ASSISTANT_WITH_REASONING,
                USER,
                TOOL_TURN,
                {"role": "tool", "tool_call_id": "call_1", "content": "1"},
            ],
        }
    )
    messages: list[dict[str, Any]] = build_request(request, ROWS[preset], model="m", stream=False, base_url=BASE).body[
        "messages"
    ]
    return messages


def test_reasoning_replay_per_row() -> None:
    openai = history("openai")
    assert {"reasoning_content", "reasoning", "reasoning_details"}.isdisjoint(openai[1])
    deepseek = history("deepseek")
    assert "reasoning_content" not in deepseek[1] and "reasoning" not in deepseek[1]
    assert deepseek[3]["reasoning_content"] == ""
    openrouter = history("openrouter")
    assert openrouter[1]["reasoning"] == "thought" and openrouter[1]["reasoning_details"][0]["signature"] == "s"
    assert "reasoning_content" not in openrouter[1] and "reasoning" not in openrouter[3]
    zhipu = history("zhipu")
    assert zhipu[1]["reasoning_content"] == "thought" and "reasoning" not in zhipu[1]
    relay = history("relay")
    assert relay[1] == ASSISTANT_WITH_REASONING  # relays get messages exactly as written


@pytest.mark.parametrize(
    ("preset", "base_url", "flag"),
    [
        ("deepseek", "https://api.deepseek.com/beta", "prefix"),
        ("deepseek", "https://api.deepseek.com", None),
        ("mistral", BASE, "prefix"),
        ("moonshot", BASE, "partial"),
        ("openai", BASE, None),
    ],
)
def test_trailing_assistant_message_is_marked_as_prefill(preset: str, base_url: str, flag: str | None) -> None:
    request = parse_request({"model": "p", "messages": [USER, {"role": "assistant", "content": "Sure, "}]})
    last = build_request(request, ROWS[preset], model="m", stream=False, base_url=base_url).body["messages"][-1]
    extra = set(last) - {"role", "content"}
    assert extra == ({flag} if flag else set())
    if flag:
        assert last[flag] is True


def test_mistral_ids_are_deterministic_and_valid() -> None:
    for original in ("call_abc", "toolu_01XYZ", "functions.get_weather:0", "x"):
        new = alnum9_id(original)
        assert len(new) == 9 and new.isascii() and new.isalnum()
        assert alnum9_id(original) == new
    assert alnum9_id("abcDEF123") == "abcDEF123"
    assert alnum9_id("call_a") != alnum9_id("call_b")
    request = parse_request(
        {"model": "p", "messages": [USER, TOOL_TURN, {"role": "tool", "tool_call_id": "call_1", "content": "1"}]}
    )
    wire = build_request(request, ROWS["mistral"], model="m", stream=False, base_url=BASE)
    new = alnum9_id("call_1")
    assert wire.body["messages"][1]["tool_calls"][0]["id"] == new
    assert wire.body["messages"][2]["tool_call_id"] == new
    assert dict(wire.ids_back) == {new: "call_1"}
