"""The Gemini provider against real recorded traffic (tests/fixtures/recorded/gemini, pydantic-ai's cassettes).

Responses: every recorded generateContent / streamGenerateContent answer goes through our parser and gives the
OpenAI-shaped result asserted here from the recording. Streams are fed through the SSE decoder and the state
machine split at every byte offset (the small streams) or at a seeded sample of offsets plus byte by byte (the
large one); every split must give exactly the chunks of the unsplit stream.

Requests: where the recorded request can be said in the OpenAI schema, the OpenAI equivalent (written out below)
is translated and compared with the recorded upstream body after :func:`gemini_support.normalize`, which only
removes differences that are choices, not meaning: pydantic-ai's ``return_value`` key vs Google's ``output``,
an explicit empty-object schema vs none, ``allowedFunctionNames`` listing every tool vs no list, python-genai's
``role: user`` on the system instruction and ``responseModalities: [TEXT]``, snake_case spellings and URL-safe
base64. Not expressible: ``test_code_execution`` (the codeExecution tool) and the Vertex Model Armor cassette.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from gemini_support import (
    RECORDED,
    b64,
    body_of,
    cassette,
    ctx,
    fold,
    gemini_calls,
    normalize,
    provider,
    request,
    run_stream,
    serve,
    split_at,
    stream_body,
)

from polyrelay.errors import ContentPolicyViolation, NotFound
from polyrelay.testing._gemini import GeminiUpstream
from polyrelay.testing._openai import ScriptedReply
from polyrelay.transport import Transport
from polyrelay.types.completion import ChatCompletion
from polyrelay_gemini._errors import classify_error
from polyrelay_gemini._provider import DEFAULT_BASE_URL
from polyrelay_gemini._response import parse_response, to_completion

# ----------------------------------------------------------------------------------------------- responses


def complete(file: str, index: int) -> ChatCompletion:
    data = gemini_calls(file)[index]["response"]["parsed_body"]
    return to_completion(parse_response(data, provider="gemini"), provider="gemini", model="m", created=0)


def google(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = obj.extra.get("extra_content", {}).get("google", {})
    return out


def text(value: str | None) -> str:
    assert value is not None
    return value


def usage_tuple(u: Any) -> tuple[int, int, int, int | None, int | None]:
    reasoning = u.completion_tokens_details.reasoning_tokens if u.completion_tokens_details else None
    cached = u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else None
    return (u.prompt_tokens, u.completion_tokens, u.total_tokens, reasoning, cached)


def test_google_model() -> None:
    c = complete("test_google_model.yaml", 0)
    assert c.id == "chatcmpl-bzlXaa_EE_aHqtsPi_zw8Ao" and c.model == "gemini-2.5-flash"
    m = c.choices[0].message
    assert m.content == "Hello! How can I help you today?" and m.tool_calls is None and m.reasoning_content is None
    assert c.choices[0].finish_reason == "stop"
    # candidates 9 + thoughts 34 = completion 43; total as sent.
    assert usage_tuple(c.usage) == (9, 43, 52, 34, None)


def test_instructions_and_multiple_agent_tool_calls_without_response_id() -> None:
    c = complete("test_google_model_instructions.yaml", 0)
    assert c.choices[0].message.content == "The capital of France is Paris.\n"
    assert c.choices[0].index == 0  # candidate index absent in the body → its position
    assert usage_tuple(c.usage) == (13, 8, 21, None, None)

    first = complete("test_multiple_agent_tool_calls.yaml", 0)  # no responseId recorded
    (call,) = first.choices[0].message.tool_calls or ()
    assert call.function.name == "get_capital" and json.loads(call.function.arguments) == {"country": "France"}
    assert first.id.startswith("chatcmpl-") and call.id.startswith("call_") and call.id.endswith("_0_0")
    assert first.choices[0].finish_reason == "tool_calls"
    second = complete("test_multiple_agent_tool_calls.yaml", 1)
    assert second.choices[0].message.content == "The capital of France is Paris.\n"
    assert second.id != first.id


def test_max_tokens_and_empty_thinking_candidate() -> None:
    c = complete("test_google_model_max_tokens.yaml", 0)
    assert c.choices[0].message.content == "The capital of France is" and c.choices[0].finish_reason == "length"
    assert usage_tuple(c.usage) == (15, 5, 20, None, None)

    empty = complete("test_google_model_max_tokens_thinking_model_empty_response.yaml", 0)
    m = empty.choices[0].message
    assert m.content is None and m.tool_calls is None and empty.choices[0].finish_reason == "length"
    assert usage_tuple(empty.usage) == (15, 2, 17, 2, None)


def test_safety_finish_with_empty_content() -> None:
    c = complete("test_google_model_safety_settings.yaml", 0)
    assert c.choices[0].message.content is None
    assert c.choices[0].finish_reason == "content_filter"
    assert c.choices[0].extra == {"native_finish_reason": "SAFETY"}
    assert usage_tuple(c.usage) == (14, 0, 14, None, None)


def test_text_with_thought_signature_is_kept_for_replay() -> None:
    raw = gemini_calls("test_google_model_retrying_after_empty_response.yaml")[0]["response"]["parsed_body"]
    c = complete("test_google_model_retrying_after_empty_response.yaml", 0)
    m = c.choices[0].message
    assert m.content == "Hello! How can I help you today?"
    assert google(m)["thought_signature"] == raw["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    assert usage_tuple(c.usage) == (2, 222, 224, 213, None)


def test_thinking_parts_become_reasoning_content() -> None:
    parts = gemini_calls("test_google_model_thinking_part.yaml")[0]["response"]["parsed_body"]["candidates"][0]
    thought, answer = parts["content"]["parts"]
    c = complete("test_google_model_thinking_part.yaml", 0)
    m = c.choices[0].message
    assert m.reasoning_content == thought["text"] and text(m.reasoning_content).startswith("**A Safe Street-Crossing")
    assert m.content == answer["text"] and text(m.content).startswith("Crossing the street safely")
    assert google(m) == {"thought_signature": answer["thoughtSignature"]}
    assert usage_tuple(c.usage) == (29, 1737, 1766, 1001, None)
    second = complete("test_google_model_thinking_part.yaml", 1)
    assert text(second.choices[0].message.content).startswith("Crossing a river is deceptively similar")
    assert usage_tuple(second.usage) == (1280, 2073, 3353, 1115, None)


def test_function_calls() -> None:
    c = complete("test_google_model_structured_output.yaml", 0)
    (call,) = c.choices[0].message.tool_calls or ()
    assert call.id == "call_cDlXacOkMODnqtsPz8P96Ao_0_0"
    assert call.function.name == "temperature"
    assert json.loads(call.function.arguments) == {"city": "London", "date": "2022-01-01"}
    assert c.choices[0].message.content is None and c.choices[0].finish_reason == "tool_calls"
    final = complete("test_google_model_structured_output.yaml", 1)
    (call,) = final.choices[0].message.tool_calls or ()
    assert json.loads(call.function.arguments) == {"city": "London", "date": "2022-01-01", "temperature": "30°C"}

    no_args = complete("test_google_tool_config_any_with_tool_without_args.yaml", 0)
    (call,) = no_args.choices[0].message.tool_calls or ()
    assert (call.function.name, call.function.arguments) == ("bar", "{}")
    out = complete("test_google_tool_output.yaml", 1)
    (call,) = out.choices[0].message.tool_calls or ()
    assert json.loads(call.function.arguments) == {"city": "Mexico City", "country": "Mexico"}
    assert usage_tuple(out.usage) == (47, 8, 55, None, None)


def test_function_call_with_signature_and_finish_message() -> None:
    raw = gemini_calls("test_tool_choice_matrix[required-google].yaml")[0]["response"]["parsed_body"]
    c = complete("test_tool_choice_matrix[required-google].yaml", 0)
    (call,) = c.choices[0].message.tool_calls or ()
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert google(call) == {"thought_signature": raw["candidates"][0]["content"]["parts"][0]["thoughtSignature"]}
    assert google(c.choices[0].message) == {"finish_message": "Model generated function call(s)."}
    assert c.choices[0].finish_reason == "tool_calls"
    assert usage_tuple(c.usage) == (46, 63, 109, 48, None)


def test_multimodal_answers_and_modality_usage() -> None:
    assert complete("test_google_model_image_url_input.yaml", 0).choices[0].message.content == "That is a potato."
    doc = complete("test_google_model_document_url_input.yaml", 0)
    assert doc.choices[0].message.content == "The document appears to be a dummy PDF file.\n"
    assert usage_tuple(doc.usage) == (1305, 11, 1316, None, None)
    yt = complete("test_google_model_youtube_video_url_input.yaml", 0)
    assert text(yt.choices[0].message.content).startswith("This video demonstrates using an AI agent")
    assert usage_tuple(yt.usage) == (17713, 1276, 18989, 1176, None)
    assert yt.usage is not None and yt.usage.prompt_tokens_details is not None
    assert yt.usage.prompt_tokens_details.audio_tokens == 1917


def test_grounding_and_tool_use_prompt_tokens() -> None:
    c = complete("test_google_model_web_search_tool.yaml", 0)
    m = c.choices[0].message
    assert text(m.content).startswith("## Weather in San Francisco is Mild and Partly Cloudy")
    meta = google(m)["grounding_metadata"]
    assert meta["webSearchQueries"] == ["weather in San Francisco today"] and len(meta["groundingChunks"]) == 3
    # promptTokenCount 17 + toolUsePromptTokenCount 119 = 136; candidates 201 + thoughts 213 = 414.
    assert usage_tuple(c.usage) == (136, 414, 550, 213, None)


def test_code_execution_parts_are_kept_verbatim() -> None:
    raw = gemini_calls("test_code_execution.yaml")[0]["response"]["parsed_body"]["candidates"][0]["content"]["parts"]
    c = complete("test_code_execution.yaml", 0)
    m = c.choices[0].message
    assert m.content == raw[-1]["text"] and text(m.content).startswith("Today is **Thursday, May 23, 2024**")
    g = google(m)
    assert g["thought_signature"] == raw[-1]["thoughtSignature"]
    assert g["parts"] == raw[:-1]  # executableCode / codeExecutionResult, with their signatures
    assert usage_tuple(c.usage) == (257 + 1732, 170 + 773, 2932, 773, None)


def test_native_output_json_text() -> None:
    c = complete("test_google_native_output.yaml", 0)
    assert json.loads(c.choices[0].message.content or "") == {"city": "Mexico City", "country": "Mexico"}


def test_usage_limit_cassette_skips_count_tokens() -> None:
    (call,) = gemini_calls("test_google_model_usage_limit_not_exceeded.yaml")
    assert call["request"]["uri"].endswith(":generateContent")
    c = complete("test_google_model_usage_limit_not_exceeded.yaml", 0)
    assert text(c.choices[0].message.content).startswith("That's a classic! It's famously known as a **pangram**")
    assert usage_tuple(c.usage) == (12, 915, 927, 806, None)


def test_blocked_prompt_raises_content_policy_violation() -> None:
    (blocked,) = [
        i
        for i in cassette("test_google_model_armor_prompt_template_text_gets_blocked.yaml")
        if ":generateContent" in i["request"]["uri"]
    ]
    with pytest.raises(ContentPolicyViolation) as info:
        to_completion(
            parse_response(blocked["response"]["parsed_body"], provider="g"), provider="g", model="m", created=0
        )
    err = info.value
    assert err.code == "MODEL_ARMOR" and err.status == 200 and err.retryable is False
    assert "The prompt violated Prompt Injection and Jailbreak filters." in err.message


def test_unknown_model_404_is_not_found() -> None:
    (call,) = gemini_calls("test_model_name_suggestion[google].yaml")
    err = classify_error(404, call["response"]["parsed_body"], provider="g")
    assert isinstance(err, NotFound) and err.code == "NOT_FOUND" and err.retryable is False
    assert err.message.startswith("models/gemini-3.6-flahs is not found for API version v1beta")


# ----------------------------------------------------------------------------------------------- streams

StreamCheck = Callable[[Any], None]


def _expect_capital(f: Any) -> None:
    assert f.content is None and f.finish_reason == "tool_calls"
    assert [(t["id"], t["name"], json.loads(t["arguments"])) for t in f.tool_calls] == [
        ("call_1lpeaMTxIpW1nvgP-O3vwQY_0_0", "get_capital", {"country": "France"})
    ]
    assert usage_tuple(f.usage) == (52, 5, 57, None, None)


def _expect_temperature_call(f: Any) -> None:
    assert [(t["name"], json.loads(t["arguments"])) for t in f.tool_calls] == [("get_temperature", {"city": "Paris"})]
    assert f.finish_reason == "tool_calls" and usage_tuple(f.usage) == (64, 5, 69, None, None)


def _expect_temperature_text(f: Any) -> None:
    # Cumulative usage: the last chunk wins (its promptTokenCount 79 differs from the first chunk's 169).
    assert f.content == "The temperature in Paris is 30°C.\n" and f.finish_reason == "stop"
    assert usage_tuple(f.usage) == (79, 12, 91, None, None)


def _expect_paris(f: Any) -> None:
    assert f.content == "The capital of France is Paris.\n" and f.finish_reason == "stop"
    assert usage_tuple(f.usage) == (13, 8, 21, None, None) and f.tool_calls == []


def _expect_count(f: Any) -> None:
    assert f.content == "\n".join(str(i) for i in range(1, 31)) and f.finish_reason == "stop"
    assert usage_tuple(f.usage) == (18, 80 + 35, 133, 35, None)


def _expect_signed_call(f: Any) -> None:
    (call,) = f.tool_calls
    assert (call["id"], call["name"], call["arguments"]) == ("call_QUVVadTSNJ6_qtsPvN7J8Q0_0_0", "get_country", "{}")
    assert call["extra"]["extra_content"]["google"]["thought_signature"].startswith("EpwICpkIAXLI2nxl")
    assert f.content is None and f.finish_reason == "tool_calls"  # the final empty text part emits nothing
    assert usage_tuple(f.usage) == (29, 212, 241, 202, None)


def _expect_mexico(f: Any) -> None:
    assert f.content == "The capital of Mexico is Mexico City." and f.finish_reason == "stop"
    assert usage_tuple(f.usage) == (257, 8, 265, None, None)


def _expect_thinking_stream(f: Any) -> None:
    assert f.reasoning is not None and f.reasoning.startswith("**Clarifying User Goals**")
    assert "**Crafting Safe Instructions**" in f.reasoning
    assert f.content is not None and f.content.startswith("This is a great question! Safely crossing the street")
    assert f.content.endswith("Always assume a driver might not see you.") and len(f.content) == 1938
    (extra,) = f.extras  # the signature rode on the first answer chunk
    assert extra["extra_content"]["google"]["thought_signature"].startswith("CiIB0e2Kb6Syj1a961Ef")
    assert f.finish_reason == "stop" and usage_tuple(f.usage) == (34, 469 + 787, 1290, 787, None)


STREAMS: list[tuple[str, int, StreamCheck]] = [
    ("test_google_model_iter_stream.yaml", 0, _expect_capital),
    ("test_google_model_iter_stream.yaml", 1, _expect_temperature_call),
    ("test_google_model_iter_stream.yaml", 2, _expect_temperature_text),
    ("test_google_model_stream.yaml", 0, _expect_paris),
    ("test_google_stream_usage_is_live_mid_stream.yaml", 0, _expect_count),
    ("test_google_streaming_tool_call_thought_signature.yaml", 0, _expect_signed_call),
    ("test_google_streaming_tool_call_thought_signature.yaml", 1, _expect_mexico),
    ("test_google_model_thinking_part_iter.yaml", 0, _expect_thinking_stream),
]
#: Streams checked at every byte offset; the others at a seeded sample of offsets (and byte by byte).
EVERY_SPLIT = {
    ("test_google_model_stream.yaml", 0),
    ("test_google_stream_usage_is_live_mid_stream.yaml", 0),
    ("test_google_streaming_tool_call_thought_signature.yaml", 0),
    ("test_google_model_iter_stream.yaml", 2),
}


@pytest.mark.parametrize(("file", "index", "check"), STREAMS, ids=[f"{f}#{i}" for f, i, _ in STREAMS])
def test_recorded_stream(file: str, index: int, check: StreamCheck) -> None:
    raw = stream_body(gemini_calls(file)[index])
    assert b"\r\n\r\n" in raw  # Gemini's real framing
    whole = run_stream([raw])
    folded = fold(whole)
    check(folded)
    assert folded.roles == 1 and len(folded.ids) == 1
    assert whole[-1].usage is not None and whole[-1].choices == ()
    expected = [c.to_dict() for c in whole]
    if (file, index) in EVERY_SPLIT:
        cuts: list[int] = list(range(1, len(raw)))
    else:
        cuts = random.Random(f"{file}#{index}").sample(range(1, len(raw)), min(300, len(raw) - 1))
    for cut in cuts:
        assert [c.to_dict() for c in run_stream(split_at(raw, [cut]))] == expected, f"split at byte {cut}"
    assert [c.to_dict() for c in run_stream([raw[i : i + 1] for i in range(len(raw))])] == expected


def test_stream_and_non_stream_agree_on_ids() -> None:
    """The same answer read as a stream and as one body gives the same tool-call ids."""
    raw = stream_body(gemini_calls("test_google_model_iter_stream.yaml")[0])
    streamed = fold(run_stream([raw]))
    data = json.loads(raw.split(b"\r\n\r\n")[0][len(b"data: ") :])
    whole = to_completion(parse_response(data, provider="g"), provider="g", model="m", created=0)
    (call,) = whole.choices[0].message.tool_calls or ()
    assert streamed.tool_calls[0]["id"] == call.id and whole.id in streamed.ids


# ----------------------------------------------------------------------------------------------- requests

TOOLS_CAPITAL_TEMPERATURE = [
    {
        "type": "function",
        "function": {
            "name": "get_capital",
            "description": "Get the capital of a country.",
            "parameters": {
                "type": "object",
                "properties": {"country": {"type": "string", "description": "The country name."}},
                "required": ["country"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_temperature",
            "description": "Get the temperature in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "The city name."}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    },
]
NO_ARGS = {"type": "object", "properties": {}, "additionalProperties": False}


def call(call_id: str, name: str, args: str, signature: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
    if signature is not None:
        out["extra_content"] = {"google": {"thought_signature": signature}}
    return out


def recorded_response_part(file: str, index: int, part: int) -> dict[str, Any]:
    body = gemini_calls(file)[index]["response"]
    if "parsed_body" in body:
        parts: list[dict[str, Any]] = body["parsed_body"]["candidates"][0]["content"]["parts"]
        return parts[part]
    first = json.loads(stream_body(gemini_calls(file)[index]).split(b"\r\n\r\n")[0][len(b"data: ") :])
    result: dict[str, Any] = first["candidates"][0]["content"]["parts"][part]
    return result


def _thinking_part_history() -> list[dict[str, Any]]:
    thought, answer = (recorded_response_part("test_google_model_thinking_part.yaml", 0, i) for i in (0, 1))
    return [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "How do I cross the street?"},
        {
            "role": "assistant",
            "content": answer["text"],
            "reasoning_content": thought["text"],
            "extra_content": {"google": {"thought_signature": answer["thoughtSignature"]}},
        },
        {"role": "user", "content": "Considering the way to cross the street, analogously, how do I cross the river?"},
    ]


def _web_search_answer() -> str:
    text: str = recorded_response_part("test_google_model_web_search_tool.yaml", 0, 0)["text"]
    return text


def signed_call_part() -> dict[str, Any]:
    return recorded_response_part("test_google_streaming_tool_call_thought_signature.yaml", 0, 0)


# (cassette, interaction, model, OpenAI request, options, keep ids)
REQUESTS: list[tuple[str, int, Callable[[], dict[str, Any]], dict[str, Any], bool]] = [
    (
        "test_google_model.yaml",
        0,
        lambda: {
            "messages": [{"role": "system", "content": "You are a chatbot."}, {"role": "user", "content": "Hello!"}]
        },
        {},
        True,
    ),
    (
        "test_google_model_instructions.yaml",
        0,
        lambda: {
            "messages": [
                {"role": "developer", "content": "You are a helpful assistant."},
                {"role": "user", "content": "What is the capital of France?"},
            ]
        },
        {},
        True,
    ),
    (
        "test_google_model_iter_stream.yaml",
        0,
        lambda: {
            "stream": True,
            "tools": TOOLS_CAPITAL_TEMPERATURE,
            "messages": [
                {"role": "system", "content": "You are a helpful chatbot."},
                {"role": "user", "content": "What is the temperature of the capital of France?"},
            ],
        },
        {},
        True,
    ),
    (
        "test_google_model_iter_stream.yaml",
        1,
        lambda: {
            "stream": True,
            "tools": TOOLS_CAPITAL_TEMPERATURE,
            "messages": [
                {"role": "system", "content": "You are a helpful chatbot."},
                {"role": "user", "content": "What is the temperature of the capital of France?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        call("pyd_ai_0e1a07b3c2b64d2ab3ad2efbe18e1b97", "get_capital", '{"country":"France"}')
                    ],
                },
                {"role": "tool", "tool_call_id": "pyd_ai_0e1a07b3c2b64d2ab3ad2efbe18e1b97", "content": "Paris"},
            ],
        },
        {},
        True,
    ),
    (
        "test_google_model_iter_stream.yaml",
        2,
        lambda: {
            "stream": True,
            "tools": TOOLS_CAPITAL_TEMPERATURE,
            "messages": [
                {"role": "system", "content": "You are a helpful chatbot."},
                {"role": "user", "content": "What is the temperature of the capital of France?"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        call("pyd_ai_0e1a07b3c2b64d2ab3ad2efbe18e1b97", "get_capital", '{"country":"France"}')
                    ],
                },
                {"role": "tool", "tool_call_id": "pyd_ai_0e1a07b3c2b64d2ab3ad2efbe18e1b97", "content": "Paris"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        call("pyd_ai_98b25d994c5648df82f683188629229d", "get_temperature", '{"city":"Paris"}')
                    ],
                },
                {"role": "tool", "tool_call_id": "pyd_ai_98b25d994c5648df82f683188629229d", "content": "30°C"},
            ],
        },
        {},
        True,
    ),
    (
        "test_google_model_max_tokens.yaml",
        0,
        lambda: {
            "max_tokens": 5,
            "reasoning_effort": "none",
            "messages": [
                {"role": "system", "content": "You are a helpful chatbot."},
                {"role": "user", "content": "What is the capital of France?"},
            ],
        },
        {},
        True,
    ),
    (
        "test_google_model_max_tokens_thinking_model_empty_response.yaml",
        0,
        lambda: {
            "max_completion_tokens": 5,
            "messages": [
                {"role": "system", "content": "You are a helpful chatbot."},
                {"role": "user", "content": "What is the capital of France?"},
            ],
        },
        {},
        True,
    ),
    (
        "test_google_model_retrying_after_empty_response.yaml",
        0,
        lambda: {"messages": [{"role": "user", "content": "Hi"}]},
        {},
        True,
    ),
    (
        "test_google_model_safety_settings.yaml",
        0,
        lambda: {
            "safety_settings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_LOW_AND_ABOVE"}],
            "messages": [
                {"role": "system", "content": "You hate the world!"},
                {"role": "user", "content": "Tell me a joke about a Brazilians."},
            ],
        },
        {},
        True,
    ),
    (
        "test_google_model_stream.yaml",
        0,
        lambda: {
            "stream": True,
            "temperature": 0.0,
            "messages": [
                {"role": "system", "content": "You are a helpful chatbot."},
                {"role": "user", "content": "What is the capital of France?"},
            ],
        },
        {},
        True,
    ),
    (
        "test_google_model_thinking_part.yaml",
        1,
        lambda: {
            "include_thoughts": True,
            "messages": _thinking_part_history(),
            "tools": [{"type": "function", "function": {"name": "dummy", "description": "", "parameters": NO_ARGS}}],
        },
        {"json_schema_mode": "passthrough"},
        True,
    ),
    (
        "test_google_model_thinking_part_iter.yaml",
        0,
        lambda: {
            "stream": True,
            "include_thoughts": True,
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "How do I cross the street?"},
            ],
            "tools": [{"type": "function", "function": {"name": "dummy", "description": "", "parameters": NO_ARGS}}],
        },
        {},
        True,
    ),
    (
        "test_google_model_usage_limit_not_exceeded.yaml",
        0,
        lambda: {"messages": [{"role": "user", "content": "The quick brown fox jumps over the lazydog."}]},
        {},
        True,
    ),
    (
        "test_google_model_web_search_tool.yaml",
        1,
        lambda: {
            "web_search_options": {},
            "messages": [
                {"role": "system", "content": "You are a helpful chatbot."},
                {"role": "user", "content": "What is the weather in San Francisco today?"},
                {"role": "assistant", "content": _web_search_answer()},
                {"role": "user", "content": "how about Mexico City?"},
            ],
        },
        {},
        True,
    ),
    (
        "test_google_model_youtube_video_url_input.yaml",
        0,
        lambda: {
            "messages": [
                {"role": "system", "content": "You are a helpful chatbot."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Explain me this video in a few sentences"},
                        {"type": "image_url", "image_url": {"url": "https://youtu.be/lCdaVNyHtjU"}},
                    ],
                },
            ]
        },
        {},
        True,
    ),
    (
        "test_google_native_output.yaml",
        0,
        lambda: {
            "messages": [{"role": "user", "content": "What is the largest city in Mexico?"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "CityLocation",
                    "strict": True,
                    "schema": {
                        "description": "A city and its country.",
                        "title": "CityLocation",
                        "type": "object",
                        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
                        "required": ["city", "country"],
                    },
                },
            },
        },
        {"json_schema_mode": "passthrough"},
        True,
    ),
    (
        "test_google_stream_usage_is_live_mid_stream.yaml",
        0,
        lambda: {
            "stream": True,
            "messages": [{"role": "user", "content": "Count from 1 to 30, one number per line, digits only."}],
        },
        {},
        True,
    ),
    (
        "test_google_streaming_tool_call_thought_signature.yaml",
        1,
        lambda: {
            "stream": True,
            "tools": [
                {"type": "function", "function": {"name": "get_country", "description": "", "parameters": NO_ARGS}}
            ],
            "messages": [
                {"role": "user", "content": "What is the capital of the user country? Call the tool"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        call(
                            "pyd_ai_29bf73b69e02448588e15893d47a3e7e",
                            "get_country",
                            "{}",
                            signed_call_part()["thoughtSignature"],
                        )
                    ],
                },
                {"role": "tool", "tool_call_id": "pyd_ai_29bf73b69e02448588e15893d47a3e7e", "content": "Mexico"},
            ],
        },
        {"json_schema_mode": "passthrough"},
        True,
    ),
    (
        "test_google_tool_config_any_with_tool_without_args.yaml",
        1,
        lambda: {
            "tool_choice": "required",
            "tools": [
                {"type": "function", "function": {"name": "bar", "description": "", "parameters": NO_ARGS}},
                {
                    "type": "function",
                    "function": {
                        "name": "final_result",
                        "description": "The final response which ends this conversation",
                        "parameters": {
                            "type": "object",
                            "properties": {"bar": {"type": "string"}},
                            "required": ["bar"],
                            "additionalProperties": False,
                        },
                    },
                },
            ],
            "messages": [
                {"role": "user", "content": "run bar for me please"},
                {"role": "assistant", "tool_calls": [call("pyd_ai_e3268c26ec6340bf82ce92c8342ddad2", "bar", "{}")]},
                {"role": "tool", "tool_call_id": "pyd_ai_e3268c26ec6340bf82ce92c8342ddad2", "content": "hello"},
            ],
        },
        {},
        True,
    ),
    (
        "test_google_tool_output.yaml",
        0,
        lambda: {
            "tool_choice": "required",
            "tools": [
                {"type": "function", "function": {"name": "get_user_country", "parameters": NO_ARGS}},
                {
                    "type": "function",
                    "function": {
                        "name": "final_result",
                        "description": "The final response which ends this conversation",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
                            "required": ["city", "country"],
                        },
                    },
                },
            ],
            "messages": [{"role": "user", "content": "What is the largest city in the user country?"}],
        },
        {},
        True,
    ),
    (
        "test_google_model_structured_output.yaml",
        1,
        lambda: {
            "tool_choice": "required",
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "temperature",
                        "description": "<summary>Get the temperature in a city on a specific date.</summary>\n"
                        "<returns>\n<description>The temperature in degrees Celsius.</description>\n"
                        "</returns>",
                        "parameters": {
                            "additionalProperties": False,
                            "type": "object",
                            "required": ["city", "date"],
                            "properties": {
                                "city": {"description": "The city name.", "type": "string"},
                                "date": {"description": "The date. (format: date)", "type": "string"},
                            },
                        },
                    },
                },
                {
                    "type": "function",
                    "function": {
                        "name": "final_result",
                        "description": "The final response which ends this conversation",
                        "parameters": {
                            "type": "object",
                            "required": ["temperature", "date", "city"],
                            "properties": {
                                "city": {"type": "string"},
                                "date": {"description": "Format: date", "type": "string"},
                                "temperature": {"type": "string"},
                            },
                        },
                    },
                },
            ],
            "messages": [
                {"role": "system", "content": "You are a helpful chatbot."},
                {"role": "user", "content": "What was the temperature in London 1st January 2022?"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        call(
                            "pyd_ai_3b434062371141a69cab8ea6571e6812",
                            "temperature",
                            '{"city":"London","date":"2022-01-01"}',
                            "c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I=",
                        )
                    ],
                },
                {"role": "tool", "tool_call_id": "pyd_ai_3b434062371141a69cab8ea6571e6812", "content": "30°C"},
            ],
        },
        {"json_schema_mode": "passthrough"},
        True,
    ),
    (
        "test_multiple_agent_tool_calls.yaml",
        1,
        lambda: {
            "tools": [TOOLS_CAPITAL_TEMPERATURE[0]],
            "messages": [
                {"role": "user", "content": "What is the capital of France?"},
                {"role": "assistant", "tool_calls": [call("c1", "get_capital", '{"country":"France"}')]},
                {"role": "tool", "tool_call_id": "c1", "content": "Paris"},
            ],
        },
        {},
        False,
    ),
    (
        "test_tool_choice_matrix[required-google].yaml",
        0,
        lambda: {
            "tool_choice": "required",
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "Get weather for a city",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                            "required": ["city"],
                        },
                    },
                }
            ],
            "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
        },
        {"json_schema_mode": "passthrough"},
        True,
    ),
    (
        "test_model_name_suggestion[google].yaml",
        0,
        lambda: {"messages": [{"role": "user", "content": "hello"}]},
        {},
        True,
    ),
]


def _model_and_stream(uri: str) -> tuple[str, bool]:
    tail = uri.rsplit("/models/", 1)[1]
    model, _, method = tail.partition(":")
    return model, method.startswith("streamGenerateContent")


@pytest.mark.parametrize(
    ("file", "index", "openai", "options", "keep_ids"), REQUESTS, ids=[f"{r[0]}#{r[1]}" for r in REQUESTS]
)
def test_recorded_request_translation(
    file: str, index: int, openai: Callable[[], dict[str, Any]], options: dict[str, Any], keep_ids: bool
) -> None:
    interaction = gemini_calls(file)[index]
    recorded = interaction["request"]
    model, stream = _model_and_stream(recorded["uri"])
    ours = body_of(openai(), model=model, **options)
    assert normalize(ours, keep_ids=keep_ids) == normalize(recorded["parsed_body"], keep_ids=keep_ids)
    # The URL is the recorded one (and carries no key).
    prov = provider(DEFAULT_BASE_URL, Transport())
    assert prov._url(model, stream) == recorded["uri"]


def test_unexpressible_cassettes_are_the_documented_ones() -> None:
    """Every Gemini-API request in the folder is compared above, except the two that need non-OpenAI features."""
    covered = {r[0] for r in REQUESTS} | {
        "test_google_model_image_url_input.yaml",
        "test_google_model_document_url_input.yaml",
    }
    everything = {p.name for p in RECORDED.glob("*.yaml")}
    assert everything - covered == {
        "test_code_execution.yaml",  # the codeExecution tool
        "test_google_model_armor_prompt_template_text_gets_blocked.yaml",  # Vertex AI, modelArmorConfig
    }


@pytest.mark.parametrize(
    ("file", "text", "served_path"),
    [
        ("test_google_model_image_url_input.yaml", "What is this vegetable?", "/images/potato.jpg"),
        ("test_google_model_document_url_input.yaml", "What is the main content on this document?", "/docs/dummy"),
    ],
)
async def test_recorded_download_and_inline(file: str, text: str, served_path: str) -> None:
    """The recorded download is served on loopback; our upstream body inlines exactly its bytes (like pydantic-ai)."""
    download, chat = cassette(file)
    served = download["response"]

    async def handler(_: web.Request) -> web.Response:
        content_type = served["headers"]["content-type"][0]
        return web.Response(body=served["body"]["string"], headers={"Content-Type": content_type})

    transport = Transport()
    try:
        async with (
            serve({f"GET {served_path}": handler}) as origin,
            GeminiUpstream(api_key="k" * 39, reply=ScriptedReply(content="ok")) as up,
        ):
            prov = provider(up.base_url, transport, key="k" * 39)
            req = request(
                {
                    "messages": [
                        {"role": "system", "content": "You are a helpful chatbot."},
                        {
                            "role": "user",
                            "content": [
                                {"type": "text", "text": text},
                                {"type": "image_url", "image_url": {"url": origin + served_path}},
                            ],
                        },
                    ]
                }
            )
            result = await prov.chat(req, ctx("gemini-2.0-flash"))
            assert result.choices[0].message.content == "ok"
            sent = up.requests[0].json
    finally:
        await transport.aclose()
    recorded = chat["request"]["parsed_body"]
    assert normalize(sent) == normalize(recorded)
    assert b64(sent["contents"][0]["parts"][1]["inlineData"]["data"]) == served["body"]["string"]
