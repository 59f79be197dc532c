"""OpenAI request → Gemini body: turns, tool results, media, tools, generation settings, thinking, signatures,
warnings and refusals (pure translation; the HTTP tests check that refusals happen before any request)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from gemini_support import body_of, request

from polyrelay.errors import InvalidRequest, UnsupportedFeature
from polyrelay_gemini._options import GeminiOptions
from polyrelay_gemini._request import DUMMY_SIGNATURE, translate


def tr(req: dict[str, Any], *, model: str = "gemini-2.5-flash", **options: Any) -> Any:
    return translate(request(req), model=model, options=GeminiOptions(**options), provider="gemini")


def warned(req: dict[str, Any], **kw: Any) -> dict[str | None, str]:
    return {w.setting: w.message for w in tr(req, **kw).warnings}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def tool_call(call_id: str, name: str, args: str = "{}", **extra: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}, **extra}


def sig(value: str) -> dict[str, Any]:
    return {"extra_content": {"google": {"thought_signature": value}}}


# ----------------------------------------------------------------------------------------------- turns


def test_system_and_developer_messages_become_system_instruction_in_order() -> None:
    body = body_of(
        {
            "messages": [
                {"role": "system", "content": "A"},
                user("hi"),
                {"role": "developer", "content": [{"type": "text", "text": "B"}]},
                {"role": "assistant", "content": "hello"},
                {"role": "system", "content": ""},
            ]
        }
    )
    assert body["systemInstruction"] == {"parts": [{"text": "A"}, {"text": "B"}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [{"text": "hello"}]},
    ]


def test_consecutive_same_role_turns_merge() -> None:
    body = body_of(
        {
            "messages": [
                user("one"),
                user([{"type": "text", "text": "two"}]),
                {"role": "assistant", "content": "a"},
                {"role": "assistant", "content": "b"},
                user("three"),
            ]
        }
    )
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}]},
        {"role": "model", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "user", "parts": [{"text": "three"}]},
    ]


def test_tool_results_merge_into_one_user_turn_never_mixed_with_user_text() -> None:
    body = body_of(
        {
            "messages": [
                user("weather in Paris and Rome?"),
                {
                    "role": "assistant",
                    "tool_calls": [
                        tool_call("c1", "weather", '{"city":"Paris"}'),
                        tool_call("c2", "weather", '{"city":"Rome"}'),
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                {"role": "tool", "tool_call_id": "c2", "content": '{"sky": "rain", "c": 12}'},
                user("and tomorrow?"),
            ]
        }
    )
    user_fr, user_text = body["contents"][2], body["contents"][3]
    assert user_fr == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "weather", "response": {"output": "sunny"}, "id": "c1"}},
            {"functionResponse": {"name": "weather", "response": {"sky": "rain", "c": 12}, "id": "c2"}},
        ],
    }
    assert user_text == {"role": "user", "parts": [{"text": "and tomorrow?"}]}
    assert body["contents"][1]["parts"][1] == {
        "functionCall": {"name": "weather", "args": {"city": "Rome"}, "id": "c2"}
    }


def test_history_starting_with_the_model_gets_a_user_turn_first() -> None:
    body = body_of({"messages": [{"role": "assistant", "content": "Hi, I am a bot."}, user("hello")]})
    assert body["contents"][0] == {"role": "user", "parts": [{"text": ""}]}
    assert body["contents"][1]["role"] == "model"


def test_gemma_has_no_system_instruction() -> None:
    body = body_of({"messages": [{"role": "system", "content": "Be terse."}, user("hi")]}, model="gemma-3-27b-it")
    assert "systemInstruction" not in body
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Be terse."}, {"text": "hi"}]}]


def test_only_system_messages_is_invalid() -> None:
    with pytest.raises(InvalidRequest) as info:
        tr({"messages": [{"role": "system", "content": "x"}]})
    assert info.value.path == "messages"


def test_empty_assistant_messages_are_dropped() -> None:
    body = body_of({"messages": [user("a"), {"role": "assistant", "content": ""}, user("b")]})
    assert body["contents"] == [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}]


# ----------------------------------------------------------------------------------------------- tool results


def test_tool_name_is_recovered_from_earlier_tool_calls() -> None:
    body = body_of(
        {
            "messages": [
                user("x"),
                {"role": "assistant", "tool_calls": [tool_call("call_A", "lookup")]},
                {
                    "role": "tool",
                    "tool_call_id": "call_A",
                    "content": [{"type": "text", "text": "found "}, {"type": "text", "text": "it"}],
                },
            ]
        }
    )
    fr = body["contents"][2]["parts"][0]["functionResponse"]
    assert fr == {"name": "lookup", "response": {"output": "found it"}, "id": "call_A"}


def test_unknown_tool_call_id_names_the_message() -> None:
    with pytest.raises(InvalidRequest) as info:
        tr(
            {
                "messages": [
                    user("x"),
                    {"role": "assistant", "tool_calls": [tool_call("call_A", "lookup")]},
                    {"role": "tool", "tool_call_id": "call_B", "content": "?"},
                ]
            }
        )
    assert info.value.path == "messages[2].tool_call_id"
    assert "call_B" in str(info.value)


def test_tool_result_before_its_call_is_not_found() -> None:
    with pytest.raises(InvalidRequest) as info:
        tr(
            {
                "messages": [
                    user("x"),
                    {"role": "tool", "tool_call_id": "call_A", "content": "?"},
                    {"role": "assistant", "tool_calls": [tool_call("call_A", "lookup")]},
                ]
            }
        )
    assert info.value.path == "messages[1].tool_call_id"


def test_legacy_function_role_uses_its_name() -> None:
    body = body_of({"messages": [user("x"), {"role": "function", "name": "lookup", "content": "42"}]})
    assert body["contents"][1]["parts"] == [{"functionResponse": {"name": "lookup", "response": {"output": "42"}}}]


def test_bad_tool_call_arguments_are_invalid() -> None:
    for args, msg in (("{not json", "not valid JSON"), ("[1, 2]", "JSON object")):
        with pytest.raises(InvalidRequest) as info:
            tr({"messages": [user("x"), {"role": "assistant", "tool_calls": [tool_call("c", "f", args)]}]})
        assert info.value.path == "messages[1].tool_calls[0].function.arguments"
        assert msg in str(info.value)


def test_media_in_tool_results_needs_gemini_3() -> None:
    msgs = [
        user("x"),
        {"role": "assistant", "tool_calls": [tool_call("c", "shot")]},
        {
            "role": "tool",
            "tool_call_id": "c",
            "content": [
                {"type": "text", "text": "here"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
            ],
        },
    ]
    with pytest.raises(UnsupportedFeature) as info:
        tr({"messages": msgs})
    assert info.value.path == "messages[2].content[1]"
    body = body_of({"messages": msgs}, model="gemini-3-pro-preview")
    fr = body["contents"][2]["parts"][0]["functionResponse"]
    assert fr["response"] == {"output": "here"}
    assert fr["parts"] == [{"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}}]


# ----------------------------------------------------------------------------------------------- media


def media(part: dict[str, Any], **kw: Any) -> Any:
    return tr({"messages": [user([part])]}, **kw)


def image(url: str, detail: str | None = None) -> dict[str, Any]:
    iu: dict[str, Any] = {"url": url}
    if detail:
        iu["detail"] = detail
    return {"type": "image_url", "image_url": iu}


def first_part(t: Any) -> Any:
    return t.body.contents[0].parts[0]


def test_data_uri_becomes_inline_data() -> None:
    p = first_part(media(image("data:image/jpeg;base64,/9j/4AAQ")))
    assert (p.inline_data.mime_type, p.inline_data.data) == ("image/jpeg", "/9j/4AAQ")
    p = first_part(media(image("data:text/plain,hello%20world")))
    assert base64.b64decode(p.inline_data.data) == b"hello world" and p.inline_data.mime_type == "text/plain"
    with pytest.raises(InvalidRequest) as info:
        media(image("data:nonsense"))
    assert info.value.path == "messages[0].content[0].image_url.url"


@pytest.mark.parametrize(
    ("url", "model", "mode", "expect"),
    [
        ("https://example.com/cat.png", "gemini-2.5-flash", "auto", ("file", "image/png")),
        ("https://example.com/paper.PDF", "gemini-3-pro-preview", "auto", ("file", "application/pdf")),
        ("https://example.com/cat", "gemini-2.5-flash", "auto", "download"),  # no extension: mime unknown
        ("https://example.com/song.mp3", "gemini-2.5-flash", "auto", "download"),  # not fetchable as fileData
        ("http://example.com/cat.png", "gemini-2.5-flash", "auto", "download"),  # not HTTPS
        ("https://example.com/cat.png", "gemini-2.0-flash", "auto", "download"),  # 2.0 fetches no external URLs
        ("https://example.com/cat.png", "gemini-2.5-flash", "always", "download"),
        ("https://example.com/cat.png", "gemini-2.5-flash", "never", ("file", "image/png")),
        ("https://www.youtube.com/watch?v=lCdaVNyHtjU", "gemini-2.0-flash", "always", ("file", "video/mp4")),
        ("https://generativelanguage.googleapis.com/v1beta/files/abc", "gemini-2.5-flash", "always", ("file", None)),
        ("gs://bucket/clip.mp4", "gemini-2.5-flash", "auto", ("file", "video/mp4")),
    ],
)
def test_media_urls(url: str, model: str, mode: str, expect: Any) -> None:
    t = media(image(url), model=model, download_urls=mode)
    if expect == "download":
        assert [(d.url, d.path) for d in t.downloads] == [(url, "messages[0].content[0].image_url.url")]
        return
    assert not t.downloads
    fd = first_part(t).file_data
    assert (fd.file_uri, fd.mime_type) == (url, expect[1])


def test_urls_gemini_cannot_fetch_are_refused_when_downloads_are_off() -> None:
    for url in ("https://example.com/cat", "http://example.com/cat.png"):
        with pytest.raises(UnsupportedFeature) as info:
            media(image(url), download_urls="never")
        assert info.value.path == "messages[0].content[0].image_url.url"
    with pytest.raises(InvalidRequest):
        media(image("ftp://example.com/cat.png"))


def test_downloaded_media_is_inlined_on_the_second_pass() -> None:
    from polyrelay_gemini._wire import Blob

    url = "http://example.com/cat.png"
    t = translate(
        request({"messages": [user([image(url)])]}),
        model="gemini-2.5-flash",
        options=GeminiOptions(),
        provider="gemini",
        downloaded={url: Blob(mime_type="image/png", data="AAAA")},
    )
    assert not t.downloads and first_part(t).inline_data == Blob(mime_type="image/png", data="AAAA")


def test_audio_and_files() -> None:
    p = first_part(media({"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}))
    assert (p.inline_data.mime_type, p.inline_data.data) == ("audio/wav", "UklGRg==")
    p = first_part(media({"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}}))
    assert p.inline_data.mime_type == "audio/mp3"
    p = first_part(media({"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x"}}))
    assert (p.inline_data.mime_type, p.inline_data.data) == ("application/pdf", "JVBERi0x")
    p = first_part(media({"type": "file", "file": {"filename": "a.pdf", "file_data": "JVBERi0x"}}))
    assert p.inline_data.mime_type == "application/pdf"
    p = first_part(media({"type": "file", "file": {"file_id": "files/abc123", "filename": "a.pdf"}}))
    assert p.file_data.file_uri == "https://generativelanguage.googleapis.com/v1beta/files/abc123"
    with pytest.raises(UnsupportedFeature) as info:
        media({"type": "file", "file": {"file_id": "file-abc"}})
    assert info.value.path == "messages[0].content[0].file.file_id"
    with pytest.raises(UnsupportedFeature):
        media({"type": "file", "file": {"filename": "blob", "file_data": "AAAA"}})


def test_unrepresentable_parts_are_unsupported() -> None:
    with pytest.raises(UnsupportedFeature) as info:
        media({"type": "video_url", "video_url": {"url": "x"}})
    assert info.value.path == "messages[0].content[0]" and "video_url" in str(info.value)
    with pytest.raises(UnsupportedFeature) as info:
        tr({"messages": [{"role": "system", "content": [image("data:image/png;base64,AA")]}, user("x")]})
    assert info.value.path == "messages[0].content[0]"


def test_image_detail_is_warned() -> None:
    assert "image_url.detail" in warned({"messages": [user([image("data:image/png;base64,AA", "high")])]})
    assert warned({"messages": [user([image("data:image/png;base64,AA", "auto")])]}) == {}


# ----------------------------------------------------------------------------------------------- tools

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather now",
        "strict": True,
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": False,
            "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"], "enum": ["C", "F", None]}},
            "required": ["city", "unit"],
        },
    },
}


def test_tools_become_function_declarations_with_converted_schemas() -> None:
    body = body_of({"messages": [user("x")], "tools": [WEATHER]})
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather now",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {
                            "city": {"type": "STRING"},
                            "unit": {"type": "STRING", "enum": ["C", "F"], "nullable": True},
                        },
                        "required": ["city", "unit"],
                    },
                }
            ]
        }
    ]
    passthrough = body_of({"messages": [user("x")], "tools": [WEATHER]}, json_schema_mode="passthrough")
    decl = passthrough["tools"][0]["functionDeclarations"][0]
    assert decl["parametersJsonSchema"] == WEATHER["function"]["parameters"] and "parameters" not in decl


def test_bad_function_names_are_unsupported() -> None:
    bad = {"type": "function", "function": {"name": "9lives", "parameters": {"type": "object"}}}
    with pytest.raises(UnsupportedFeature) as info:
        tr({"messages": [user("x")], "tools": [bad]})
    assert info.value.path == "tools[0].function.name"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("none", {"mode": "NONE"}),
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    body = body_of({"messages": [user("x")], "tools": [WEATHER], "tool_choice": choice})
    assert body["toolConfig"] == {"functionCallingConfig": expected}


def test_tool_choice_errors() -> None:
    with pytest.raises(InvalidRequest) as info:
        tr(
            {
                "messages": [user("x")],
                "tools": [WEATHER],
                "tool_choice": {"type": "function", "function": {"name": "x"}},
            }
        )
    assert info.value.path == "tool_choice.function.name"
    with pytest.raises(InvalidRequest) as info:
        tr({"messages": [user("x")], "tool_choice": "required"})
    assert info.value.path == "tool_choice"
    assert "toolConfig" not in body_of({"messages": [user("x")], "tool_choice": "none"})


def test_web_search_options_add_google_search() -> None:
    body = body_of({"messages": [user("x")], "tools": [WEATHER], "web_search_options": {}})
    assert body["tools"][1] == {"googleSearch": {}}


# ----------------------------------------------------------------------------------------------- settings


def test_generation_config() -> None:
    body = body_of(
        {
            "messages": [user("x")],
            "temperature": 0.3,
            "top_p": 0.9,
            "top_k": 40,
            "seed": 7,
            "n": 2,
            "max_tokens": 100,
            "max_completion_tokens": 50,
            "stop": ["END", "STOP"],
            "presence_penalty": 0.5,
            "frequency_penalty": -0.5,
            "logprobs": True,
            "top_logprobs": 3,
        }
    )
    assert body["generationConfig"] == {
        "stopSequences": ["END", "STOP"],
        "candidateCount": 2,
        "maxOutputTokens": 50,  # max_completion_tokens wins
        "temperature": 0.3,
        "topP": 0.9,
        "topK": 40,
        "seed": 7,
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.5,
        "responseLogprobs": True,
        "logprobs": 3,
    }
    assert body_of({"messages": [user("x")], "stop": "END", "n": 1})["generationConfig"] == {"stopSequences": ["END"]}
    assert "generationConfig" not in body_of({"messages": [user("x")]})


def test_too_many_stop_sequences_and_bad_top_k() -> None:
    with pytest.raises(UnsupportedFeature) as info:
        tr({"messages": [user("x")], "stop": ["a", "b", "c", "d", "e", "f"]})
    assert info.value.path == "stop"
    with pytest.raises(InvalidRequest) as invalid:
        tr({"messages": [user("x")], "top_k": "many"})
    assert invalid.value.path == "top_k"


def test_penalties_are_dropped_with_a_warning_on_gemini_3() -> None:
    t = tr({"messages": [user("x")], "presence_penalty": 0.5}, model="gemini-3-flash-preview")
    assert t.body.generation_config is None
    assert [w.setting for w in t.warnings] == ["presence_penalty/frequency_penalty"]


def test_json_modes() -> None:
    schema = {
        "type": "object",
        "properties": {"b": {"type": "integer"}, "a": {"$ref": "#/$defs/A"}},
        "required": ["b", "a"],
        "$defs": {"A": {"type": "string", "format": "date-time"}},
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "out", "schema": schema, "strict": True}}
    assert body_of({"messages": [user("x")], "response_format": {"type": "json_object"}})["generationConfig"] == {
        "responseMimeType": "application/json"
    }
    assert body_of({"messages": [user("x")], "response_format": {"type": "text"}}).get("generationConfig") is None
    converted = body_of({"messages": [user("x")], "response_format": fmt})["generationConfig"]
    assert converted == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {"b": {"type": "INTEGER"}, "a": {"type": "STRING", "format": "date-time"}},
            "propertyOrdering": ["b", "a"],
            "required": ["b", "a"],
        },
    }
    raw = body_of({"messages": [user("x")], "response_format": fmt}, json_schema_mode="passthrough")["generationConfig"]
    assert raw == {"responseMimeType": "application/json", "responseJsonSchema": schema}


# ----------------------------------------------------------------------------------------------- thinking


@pytest.mark.parametrize(
    ("model", "effort", "expected", "warning"),
    [
        ("gemini-2.5-flash", "low", {"includeThoughts": True, "thinkingBudget": 1024}, False),
        ("gemini-2.5-flash", "medium", {"includeThoughts": True, "thinkingBudget": 8192}, False),
        ("gemini-2.5-flash", "high", {"includeThoughts": True, "thinkingBudget": 24576}, False),
        ("gemini-2.5-flash", "xhigh", {"includeThoughts": True, "thinkingBudget": 24576}, False),  # flash cap
        ("gemini-2.5-pro", "xhigh", {"includeThoughts": True, "thinkingBudget": 32768}, False),
        ("gemini-2.5-flash", "none", {"thinkingBudget": 0}, False),
        ("gemini-2.5-pro", "none", {"thinkingBudget": 128}, True),  # Pro cannot stop thinking
        ("gemini-2.5-flash-lite", "minimal", {"includeThoughts": True, "thinkingBudget": 512}, False),
        ("gemini-flash-latest", "low", {"includeThoughts": True, "thinkingBudget": 1024}, False),
        ("gemini-3-pro-preview", "low", {"includeThoughts": True, "thinkingLevel": "low"}, False),
        ("gemini-3-pro-preview", "medium", {"includeThoughts": True, "thinkingLevel": "high"}, False),
        ("gemini-3.1-pro-preview", "medium", {"includeThoughts": True, "thinkingLevel": "medium"}, False),
        ("gemini-3-pro-preview", "none", {"thinkingLevel": "low"}, True),
        ("gemini-3-flash-preview", "minimal", {"includeThoughts": True, "thinkingLevel": "minimal"}, False),
        ("gemini-3-flash-preview", "none", {"thinkingLevel": "minimal"}, True),
        ("gemini-3-flash-preview", "high", {"includeThoughts": True, "thinkingLevel": "high"}, False),
        ("gemini-2.0-flash", "high", None, True),  # not a thinking model: a thinkingConfig would be rejected
    ],
)
def test_reasoning_effort(model: str, effort: str, expected: dict[str, Any] | None, warning: bool) -> None:
    t = tr({"messages": [user("x")], "reasoning_effort": effort}, model=model)
    body = body_of({"messages": [user("x")], "reasoning_effort": effort}, model=model)
    assert (body.get("generationConfig") or {}).get("thinkingConfig") == expected
    assert ("reasoning_effort" in {w.setting for w in t.warnings}) is warning


def test_thinking_extras_and_bad_effort() -> None:
    body = body_of({"messages": [user("x")], "reasoning_effort": "high", "thinking_budget": -1})
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": -1}
    body = body_of({"messages": [user("x")], "include_thoughts": True}, model="gemini-3-pro-preview")
    assert body["generationConfig"]["thinkingConfig"] == {"includeThoughts": True}
    with pytest.raises(InvalidRequest) as info:
        tr({"messages": [user("x")], "reasoning_effort": "extreme"})
    assert info.value.path == "reasoning_effort"


# ----------------------------------------------------------------------------------------------- signatures


def test_signatures_are_sent_back_where_they_came_from() -> None:
    body = body_of(
        {
            "messages": [
                user("x"),
                {
                    "role": "assistant",
                    "content": "Let me check.",
                    "reasoning_content": "thinking...",
                    "extra_content": {
                        "google": {"thought_signature": "U0lHLVRFWFQ=", "reasoning_signature": "U0lHLVI="}
                    },
                    "tool_calls": [tool_call("c1", "f", "{}", **sig("U0lHLUNBTEw=")), tool_call("c2", "f")],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "1"},
                {"role": "tool", "tool_call_id": "c2", "content": "2"},
            ]
        },
        model="gemini-3-pro-preview",
    )
    assert body["contents"][1]["parts"] == [
        {"text": "thinking...", "thought": True, "thoughtSignature": "U0lHLVI="},
        {"text": "Let me check.", "thoughtSignature": "U0lHLVRFWFQ="},
        {"thoughtSignature": "U0lHLUNBTEw=", "functionCall": {"name": "f", "args": {}, "id": "c1"}},
        {"functionCall": {"name": "f", "args": {}, "id": "c2"}},  # parallel calls after the first carry none
    ]


def test_signature_only_text_part_follows_the_calls() -> None:
    body = body_of(
        {
            "messages": [
                user("x"),
                {
                    "role": "assistant",
                    "content": None,
                    "extra_content": {"google": {"thought_signature": "U0lH"}},
                    "tool_calls": [tool_call("c1", "f", "{}", **sig("Q0FMTA=="))],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "1"},
            ]
        }
    )
    assert body["contents"][1]["parts"][-1] == {"text": "", "thoughtSignature": "U0lH"}


def test_unsigned_calls_get_the_placeholder_on_gemini_3_only() -> None:
    msgs = [
        user("x"),
        {"role": "assistant", "tool_calls": [tool_call("c1", "f"), tool_call("c2", "f")]},
        {"role": "tool", "tool_call_id": "c1", "content": "1"},
        {"role": "tool", "tool_call_id": "c2", "content": "2"},
    ]
    parts = body_of({"messages": msgs}, model="gemini-3-flash-preview")["contents"][1]["parts"]
    assert [p.get("thoughtSignature") for p in parts] == [DUMMY_SIGNATURE, None]
    parts = body_of({"messages": msgs}, model="gemini-2.5-flash")["contents"][1]["parts"]
    assert [p.get("thoughtSignature") for p in parts] == [None, None]


def test_litellm_style_signature_in_the_tool_call_id() -> None:
    body = body_of(
        {
            "messages": [
                user("x"),
                {"role": "assistant", "tool_calls": [tool_call("call_1__thought__U0lH", "f")]},
                {"role": "tool", "tool_call_id": "call_1__thought__U0lH", "content": "ok"},
            ]
        }
    )
    call_part = body["contents"][1]["parts"][0]
    assert call_part == {"thoughtSignature": "U0lH", "functionCall": {"name": "f", "args": {}, "id": "call_1"}}
    assert body["contents"][2]["parts"][0]["functionResponse"]["id"] == "call_1"


# ----------------------------------------------------------------------------------------------- warnings / refusals


def test_settings_gemini_cannot_honour_are_warned() -> None:
    w = warned(
        {
            "messages": [{"role": "user", "content": "x", "name": "bob"}],
            "logit_bias": {"50256": -100},
            "user": "u-1",
            "parallel_tool_calls": False,
            "tools": [WEATHER],
            "store": True,
            "service_tier": "flex",
        }
    )
    assert set(w) == {"logit_bias", "user", "parallel_tool_calls", "messages.name", "store", "service_tier"}
    assert warned({"messages": [user("x")], "parallel_tool_calls": True, "tools": [WEATHER]}) == {}


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"modalities": ["text", "audio"]}, "modalities[1]"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"functions": [{"name": "f"}]}, "functions"),
    ],
)
def test_unrepresentable_requests_are_unsupported(extra: dict[str, Any], path: str) -> None:
    with pytest.raises(UnsupportedFeature) as info:
        tr({"messages": [user("x")], **extra})
    assert info.value.path == path and info.value.provider == "gemini"
