"""OpenAI request → Anthropic Messages body: one test per mapping rule (wire-chat.md §3.7)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from anthropic_kit import translate, wire

from polyrelay.errors import InvalidRequest, UnsupportedFeature
from polyrelay_anthropic._models import model_profile
from polyrelay_anthropic._request import JSON_TOOL_NAME, REASONING_BUDGETS

USER = {"role": "user", "content": "Hi"}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PNG = base64.b64encode(b"\x89PNG fake").decode()


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _warned(body: dict[str, Any], **kw: Any) -> dict[str, str]:
    return {w.setting or "": w.message for w in translate(body, **kw).warnings}


# ---------------------------------------------------------------------------------------------------- system & turns


def test_one_system_message_becomes_the_system_string() -> None:
    out = wire({"messages": [{"role": "system", "content": "Be brief."}, USER]})
    assert out["system"] == "Be brief."
    assert out["messages"] == [{"role": "user", "content": [_text("Hi")]}]


def test_system_and_developer_messages_anywhere_become_system_blocks_in_order() -> None:
    messages = [
        {"role": "system", "content": "One."},
        USER,
        {"role": "assistant", "content": "Hello"},
        {"role": "developer", "content": "Two."},
        {"role": "user", "content": "Again"},
    ]
    out = wire({"messages": messages})
    assert out["system"] == [_text("One."), _text("Two.")]
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]


def test_system_parts_keep_cache_control() -> None:
    system = {
        "role": "system",
        "content": [{"type": "text", "text": "Long prompt", "cache_control": {"type": "ephemeral"}}],
    }
    assert wire({"messages": [system, USER]})["system"] == [
        {"type": "text", "text": "Long prompt", "cache_control": {"type": "ephemeral"}}
    ]


def test_system_image_is_unsupported() -> None:
    system = {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}
    with pytest.raises(UnsupportedFeature) as info:
        translate({"messages": [system, USER]})
    assert info.value.path == "messages[0].content[0]" and info.value.provider == "claude"


def test_consecutive_same_role_turns_merge_with_tool_results_first() -> None:
    messages = [
        USER,
        {"role": "user", "content": "More"},
        {"role": "assistant", "content": "Calling", "tool_calls": [_call("toolu_1", "get_weather", '{"city":"Oslo"}')]},
        {"role": "assistant", "content": "and more"},
        {"role": "user", "content": "Here:"},  # user text before the tool result in the OpenAI list...
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Rain"},
    ]
    out = wire({"messages": messages, "tools": [WEATHER]})
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][0]["content"] == [_text("Hi"), _text("More")]
    assert [b["type"] for b in out["messages"][1]["content"]] == ["text", "tool_use", "text"]
    # ...but Anthropic wants the tool_result blocks first in the merged user turn.
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Rain"},
        _text("Here:"),
    ]


def test_empty_turns_are_dropped_and_neighbours_merge() -> None:
    messages = [
        USER,
        {"role": "assistant", "content": "A"},
        {"role": "user", "content": "  "},
        {"role": "assistant", "content": "B"},
    ]
    out = wire({"messages": messages})
    assert out["messages"] == [
        {"role": "user", "content": [_text("Hi")]},
        {"role": "assistant", "content": [_text("A"), _text("B")]},
    ]


def test_trailing_assistant_message_is_the_prefill_without_trailing_whitespace() -> None:
    out = wire({"messages": [USER, {"role": "assistant", "content": "The answer is: \n"}]})
    assert out["messages"][-1] == {"role": "assistant", "content": [_text("The answer is:")]}


def test_no_conversation_left_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest) as info:
        translate({"messages": [{"role": "system", "content": "Only a system prompt"}]})
    assert info.value.path == "messages"


def test_legacy_function_role_is_unsupported() -> None:
    with pytest.raises(UnsupportedFeature) as info:
        translate({"messages": [USER, {"role": "function", "name": "f", "content": "x"}]})
    assert info.value.path == "messages[1]"


# ---------------------------------------------------------------------------------------------------- parts


def _user_parts(*parts: dict[str, Any], **kw: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = wire({"messages": [{"role": "user", "content": list(parts)}]}, **kw)["messages"][0][
        "content"
    ]
    return out


def _image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, "detail": "high"}}


def test_data_uri_image_becomes_a_base64_source() -> None:
    assert _user_parts(_image(f"data:image/png;base64,{PNG}")) == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    ]
    assert _user_parts(_image(f"data:image/jpg;base64,{PNG}"))[0]["source"]["media_type"] == "image/jpeg"


def test_http_image_url_becomes_a_url_source_and_pdf_url_a_document() -> None:
    assert _user_parts(_image("https://example.com/cat.jpg")) == [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    ]
    assert _user_parts(_image("https://example.com/doc.pdf?x=1")) == [
        {"type": "document", "source": {"type": "url", "url": "https://example.com/doc.pdf?x=1"}}
    ]


def test_pdf_data_uri_in_image_url_becomes_a_document() -> None:
    assert _user_parts(_image(f"data:application/pdf;base64,{PNG}"))[0] == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": PNG},
    }


@pytest.mark.parametrize(
    ("url", "error", "path"),
    [
        ("ftp://example.com/a.png", InvalidRequest, "messages[0].content[0].image_url"),
        ("data:image/png,notbase64", InvalidRequest, "messages[0].content[0].image_url"),
        (f"data:image/bmp;base64,{PNG}", UnsupportedFeature, "messages[0].content[0].image_url"),
    ],
)
def test_bad_images_are_refused_before_the_network(url: str, error: type[Exception], path: str) -> None:
    with pytest.raises(error) as info:
        _user_parts(_image(url))
    assert type(info.value) is error and getattr(info.value, "path", None) == path


def test_pdf_file_part_becomes_a_titled_base64_document() -> None:
    part = {"type": "file", "file": {"filename": "report.pdf", "file_data": f"data:application/pdf;base64,{PNG}"}}
    assert _user_parts(part) == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PNG},
            "title": "report.pdf",
        }
    ]


def test_bare_base64_file_data_uses_the_filename_extension() -> None:
    part = {"type": "file", "file": {"filename": "scan.PDF", "file_data": PNG}}
    assert _user_parts(part)[0]["source"] == {"type": "base64", "media_type": "application/pdf", "data": PNG}
    with pytest.raises(UnsupportedFeature):
        _user_parts({"type": "file", "file": {"filename": "sheet.xlsx", "file_data": PNG}})


def test_text_file_becomes_a_plain_text_document() -> None:
    data = base64.b64encode("héllo".encode()).decode()
    part = {"type": "file", "file": {"file_data": f"data:text/plain;base64,{data}"}}
    assert _user_parts(part) == [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "héllo"}}
    ]


def test_file_id_becomes_a_files_api_document() -> None:
    part = {"type": "file", "file": {"file_id": "file_011abc"}}
    assert _user_parts(part) == [{"type": "document", "source": {"type": "file", "file_id": "file_011abc"}}]
    with pytest.raises(InvalidRequest) as info:
        _user_parts({"type": "file", "file": {"filename": "x.pdf"}})
    assert info.value.path == "messages[0].content[0].file"


def test_audio_input_is_unsupported() -> None:
    with pytest.raises(UnsupportedFeature) as info:
        _user_parts({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}})
    assert info.value.path == "messages[0].content[0]"


def test_native_anthropic_blocks_pass_through_and_cache_control_is_kept() -> None:
    native = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "x"},
        "citations": {"enabled": True},
    }
    cached = {"type": "text", "text": "Big", "cache_control": {"type": "ephemeral"}, "annotations": []}
    assert _user_parts(native, cached) == [
        native,
        {"type": "text", "text": "Big", "cache_control": {"type": "ephemeral"}},
    ]


def test_message_level_cache_control_marks_the_last_block() -> None:
    out = wire({"messages": [{"role": "user", "content": "Big", "cache_control": {"type": "ephemeral"}}]})
    assert out["messages"][0]["content"] == [{"type": "text", "text": "Big", "cache_control": {"type": "ephemeral"}}]


# ---------------------------------------------------------------------------------------------------- tools


def _call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_tools_become_input_schemas() -> None:
    bare = {"type": "function", "function": {"name": "now"}}
    partial = {
        "type": "function",
        "function": {"name": "find", "parameters": {"properties": {"q": {"type": "string"}}}},
    }
    cached = {**WEATHER, "cache_control": {"type": "ephemeral"}}
    out = wire({"messages": [USER], "tools": [bare, partial, cached]})
    assert out["tools"] == [
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
        {"name": "find", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}},
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": WEATHER["function"]["parameters"],  # type: ignore[index]
            "cache_control": {"type": "ephemeral"},
        },
    ]
    assert "tool_choice" not in out


def test_strict_tools_on_models_with_structured_output_only() -> None:
    strict = {"type": "function", "function": {**WEATHER["function"], "strict": True}}  # type: ignore[dict-item]
    assert wire({"messages": [USER], "tools": [strict]})["tools"][0]["strict"] is True
    old = translate({"messages": [USER], "tools": [strict]}, model="claude-3-5-sonnet-20241022")
    assert old.body.tools is not None and old.body.tools[0].strict is None
    assert [w.setting for w in old.warnings] == ["tools[0].function.strict"]


@pytest.mark.parametrize(
    ("choice", "parallel", "want"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ({"type": "function", "function": {"name": "get_weather"}}, None, {"type": "tool", "name": "get_weather"}),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
    ],
)
def test_tool_choice(choice: Any, parallel: bool | None, want: dict[str, Any]) -> None:
    body: dict[str, Any] = {"messages": [USER], "tools": [WEATHER]}
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert wire(body)["tool_choice"] == want


def test_tool_choice_naming_an_undeclared_tool_is_invalid() -> None:
    with pytest.raises(InvalidRequest) as info:
        translate(
            {"messages": [USER], "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}}
        )
    assert info.value.path == "tool_choice.function.name"


def test_tool_choice_without_tools_is_left_out() -> None:
    assert "tool_choice" not in wire({"messages": [USER], "tool_choice": "auto"})


def test_tool_names_and_ids_outside_anthropics_alphabet_are_rewritten_consistently() -> None:
    mcp = {"type": "function", "function": {"name": "fs.read:file"}}
    messages = [
        USER,
        {"role": "assistant", "content": None, "tool_calls": [_call("functions.Bash:0", "fs.read:file", "{}")]},
        {"role": "tool", "tool_call_id": "functions.Bash:0", "content": "data"},
    ]
    prepared = translate(
        {
            "messages": messages,
            "tools": [mcp],
            "tool_choice": {"type": "function", "function": {"name": "fs.read:file"}},
        }
    )
    out = wire({"messages": messages, "tools": [mcp]})
    use = out["messages"][1]["content"][0]
    result = out["messages"][2]["content"][0]
    assert out["tools"][0]["name"] == use["name"] == "fs_read_file"
    assert use["id"] == result["tool_use_id"] and use["id"].startswith("functions_Bash_0_")
    assert prepared.body.tool_choice is not None and prepared.body.tool_choice.name == "fs_read_file"
    assert prepared.plan.caller_name("fs_read_file") == "fs.read:file"


def test_tool_results_carry_is_error_and_parts() -> None:
    messages = [
        USER,
        {
            "role": "assistant",
            "tool_calls": [_call("toolu_a", "get_weather", '{"city":"Oslo"}'), _call("toolu_b", "get_weather", "")],
        },
        {"role": "tool", "tool_call_id": "toolu_a", "content": "boom", "is_error": True},
        {
            "role": "tool",
            "tool_call_id": "toolu_b",
            "content": [{"type": "text", "text": "map:"}, _image("https://x.io/m.png")],
        },
    ]
    out = wire({"messages": messages, "tools": [WEATHER]})
    assert out["messages"][1]["content"][1]["input"] == {}  # empty arguments → {}
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": "boom", "is_error": True},
        {
            "type": "tool_result",
            "tool_use_id": "toolu_b",
            "content": [_text("map:"), {"type": "image", "source": {"type": "url", "url": "https://x.io/m.png"}}],
        },
    ]


def test_tool_message_without_id_is_invalid() -> None:
    with pytest.raises(InvalidRequest) as info:
        translate({"messages": [USER, {"role": "tool", "content": "x"}]})
    assert info.value.path == "messages[1].tool_call_id"


def test_broken_tool_arguments_in_history_are_kept_with_a_warning() -> None:
    messages = [USER, {"role": "assistant", "tool_calls": [_call("toolu_a", "get_weather", '{"city": "Os')]}]
    prepared = translate({"messages": messages, "tools": [WEATHER]})
    assert prepared.body.messages[1].content[0].input == {"rawInvalidInput": '{"city": "Os'}  # type: ignore[union-attr]
    assert [w.setting for w in prepared.warnings] == ["messages[1].tool_calls[0].function.arguments"]


# ---------------------------------------------------------------------------------------------------- thinking


@pytest.mark.parametrize(("effort", "budget"), sorted(REASONING_BUDGETS.items()))
def test_reasoning_effort_maps_to_a_thinking_budget(effort: str, budget: int) -> None:
    out = wire({"messages": [USER], "reasoning_effort": effort, "max_tokens": 20_000})
    assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert out["max_tokens"] == 20_000


def test_max_tokens_is_raised_above_the_budget() -> None:
    out = wire({"messages": [USER], "reasoning_effort": "high", "max_completion_tokens": 1000})
    assert (out["thinking"]["budget_tokens"], out["max_tokens"]) == (4096, 5096)


def test_reasoning_effort_none_and_unknown() -> None:
    assert "thinking" not in wire({"messages": [USER], "reasoning_effort": "none"})
    with pytest.raises(InvalidRequest) as info:
        translate({"messages": [USER], "reasoning_effort": "extreme"})
    assert info.value.path == "reasoning_effort"


def test_reasoning_effort_on_a_model_without_thinking_is_a_warning() -> None:
    prepared = translate({"messages": [USER], "reasoning_effort": "low"}, model="claude-3-5-haiku-20241022")
    assert prepared.body.thinking is None and [w.setting for w in prepared.warnings] == ["reasoning_effort"]


def test_sampling_parameters_the_api_refuses_with_thinking_are_dropped() -> None:
    body = {"messages": [USER], "reasoning_effort": "low", "temperature": 0.2, "top_p": 0.5, "top_k": 5}
    prepared = translate(body)
    assert (prepared.body.temperature, prepared.body.top_p, prepared.body.top_k) == (None, None, None)
    assert sorted(w.setting or "" for w in prepared.warnings) == ["temperature", "top_k", "top_p"]
    kept = translate({"messages": [USER], "reasoning_effort": "low", "temperature": 1, "top_p": 0.96})
    assert (kept.body.temperature, kept.body.top_p, kept.warnings) == (1.0, 0.96, ())


def test_forced_tool_use_with_thinking_is_unsupported() -> None:
    with pytest.raises(UnsupportedFeature) as info:
        translate({"messages": [USER], "reasoning_effort": "low", "tools": [WEATHER], "tool_choice": "required"})
    assert info.value.path == "tool_choice"


def test_explicit_thinking_passes_through() -> None:
    out = wire({"messages": [USER], "thinking": {"type": "adaptive", "display": "summarized"}})
    assert out["thinking"] == {"type": "adaptive", "display": "summarized"}
    with pytest.raises(InvalidRequest):
        translate({"messages": [USER], "thinking": "on"})


def test_assistant_thinking_blocks_go_back_first_and_unsigned_reasoning_is_left_out() -> None:
    blocks = [
        {"type": "thinking", "thinking": "Hmm.", "signature": "sig=="},
        {"type": "redacted_thinking", "data": "opaque"},
    ]
    server = [{"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"q": "x"}}]
    messages = [
        USER,
        {
            "role": "assistant",
            "content": "Answer",
            "reasoning_content": "Hmm.",
            "thinking_blocks": blocks,
            "server_tool_blocks": server,
            "tool_calls": [_call("toolu_1", "get_weather", '{"city":"Oslo"}')],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Sun"},
        {"role": "assistant", "content": "Done", "reasoning_content": "no signature here"},
        {"role": "user", "content": "Thanks"},
    ]
    out = wire({"messages": messages, "tools": [WEATHER]})
    assert [b["type"] for b in out["messages"][1]["content"]] == [
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        "text",
        "tool_use",
    ]
    assert out["messages"][1]["content"][:3] == [*blocks, *server]
    assert out["messages"][3]["content"] == [_text("Done")]


def test_malformed_thinking_blocks_are_invalid() -> None:
    messages = [USER, {"role": "assistant", "content": "x", "thinking_blocks": [{"type": "thinking", "thinking": "t"}]}]
    with pytest.raises(InvalidRequest) as info:
        translate({"messages": messages})
    assert info.value.path == "messages[1].thinking_blocks[0]"


# ---------------------------------------------------------------------------------------------------- JSON output

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA, "description": "A city."}}


def test_json_schema_uses_native_output_where_the_model_has_it() -> None:
    out = wire({"messages": [USER], "response_format": JSON_SCHEMA})
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "tools" not in out


def test_json_schema_goes_through_a_forced_tool_on_older_models() -> None:
    prepared = translate({"messages": [USER], "response_format": JSON_SCHEMA}, model="claude-3-7-sonnet-latest")
    out = wire({"messages": [USER], "response_format": JSON_SCHEMA}, model="claude-3-7-sonnet-latest")
    assert out["tools"] == [{"name": JSON_TOOL_NAME, "description": "A city.", "input_schema": SCHEMA}]
    assert out["tool_choice"] == {"type": "tool", "name": JSON_TOOL_NAME}
    assert prepared.plan.json_tool == JSON_TOOL_NAME


def test_structured_output_option_forces_the_tool() -> None:
    out = wire({"messages": [USER], "response_format": JSON_SCHEMA}, structured_output="tool")
    assert out["tool_choice"] == {"type": "tool", "name": JSON_TOOL_NAME} and "output_config" not in out


def test_json_object_uses_a_permissive_tool() -> None:
    out = wire({"messages": [USER], "response_format": {"type": "json_object"}})
    assert out["tools"][0]["name"] == JSON_TOOL_NAME
    assert out["tools"][0]["input_schema"] == {"type": "object", "properties": {}}


def test_json_tool_next_to_the_callers_tools_requires_some_tool() -> None:
    out = wire({"messages": [USER], "tools": [WEATHER], "response_format": {"type": "json_object"}})
    assert [t["name"] for t in out["tools"]] == ["get_weather", JSON_TOOL_NAME]
    assert out["tool_choice"] == {"type": "any"}


def test_json_via_tool_with_thinking_or_a_clashing_name_is_refused() -> None:
    with pytest.raises(UnsupportedFeature) as info:
        translate({"messages": [USER], "response_format": {"type": "json_object"}, "reasoning_effort": "low"})
    assert info.value.path == "response_format"
    clash = {"type": "function", "function": {"name": JSON_TOOL_NAME}}
    with pytest.raises(InvalidRequest):
        translate({"messages": [USER], "tools": [clash], "response_format": {"type": "json_object"}})
    array = {"type": "json_schema", "json_schema": {"name": "list", "schema": {"type": "array"}}}
    with pytest.raises(UnsupportedFeature):
        translate({"messages": [USER], "response_format": array}, structured_output="tool")


def test_native_output_keeps_other_output_config_keys() -> None:
    out = wire(
        {"messages": [USER], "response_format": JSON_SCHEMA, "output_config": {"effort": "low", "format": {"x": 1}}}
    )
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}, "effort": "low"}


# ---------------------------------------------------------------------------------------------------- limits & sampling


@pytest.mark.parametrize(
    ("model", "default"),
    [
        ("claude-3-haiku-20240307", 4096),
        ("claude-3-5-sonnet-20241022", 8192),
        ("claude-3-7-sonnet-latest", 64000),
        ("claude-opus-4-1-20250805", 32000),
        ("claude-sonnet-4-20250514", 64000),
        ("claude-sonnet-4-5", 64000),
        ("us.anthropic.claude-haiku-4-5-20251001-v1:0", 64000),
        ("my-relay-alias", 4096),
    ],
)
def test_default_max_tokens_per_model_family(model: str, default: int) -> None:
    assert wire({"messages": [USER]}, model=model)["max_tokens"] == default


def test_max_tokens_option_and_cap() -> None:
    assert wire({"messages": [USER]}, default_max_tokens=1000)["max_tokens"] == 1000
    assert wire({"messages": [USER], "max_tokens": 10, "max_completion_tokens": 20})["max_tokens"] == 20
    assert _warned({"messages": [USER], "max_tokens": 100_000}, model="claude-3-5-haiku-latest") == {
        "max_tokens": "lowered to 8192, the output limit of 'claude-3-5-haiku-latest'"
    }
    assert wire({"messages": [USER], "max_tokens": 100_000}, model="claude-3-5-haiku-latest")["max_tokens"] == 8192


def test_sampling_parameters() -> None:
    out = wire({"messages": [USER], "temperature": 0.3, "top_p": 0.9, "top_k": 40, "stop": "END", "user": "u-42"})
    assert (out["temperature"], out["top_p"], out["top_k"]) == (0.3, 0.9, 40)
    assert out["stop_sequences"] == ["END"] and out["metadata"] == {"user_id": "u-42"}
    assert wire({"messages": [USER], "temperature": 1.7})["temperature"] == 1.0
    assert "temperature" in _warned({"messages": [USER], "temperature": 1.7})
    with pytest.raises(InvalidRequest) as info:
        translate({"messages": [USER], "top_k": "many"})
    assert info.value.path == "top_k"


def test_whitespace_stop_sequences_are_dropped() -> None:
    out = wire({"messages": [USER], "stop": ["\n", "STOP", " "]})
    assert out["stop_sequences"] == ["STOP"]
    assert "stop_sequences" not in wire({"messages": [USER], "stop": ["\n\n"]})
    assert "stop" in _warned({"messages": [USER], "stop": ["\n\n"]})


def test_several_choices_and_audio_output_are_unsupported() -> None:
    with pytest.raises(UnsupportedFeature) as info:
        translate({"messages": [USER], "n": 2})
    assert info.value.path == "n"
    assert "n" not in wire({"messages": [USER], "n": 1})
    with pytest.raises(UnsupportedFeature) as info:
        translate({"messages": [USER], "modalities": ["text", "audio"]})
    assert info.value.path == "modalities"


def test_parameters_anthropic_cannot_honour_become_warnings() -> None:
    body = {
        "messages": [USER],
        "presence_penalty": 0.5,
        "frequency_penalty": 0.5,
        "logit_bias": {"50256": -100},
        "seed": 7,
        "logprobs": True,
        "top_logprobs": 3,
    }
    warned = _warned(body)
    assert sorted(warned) == ["frequency_penalty", "logit_bias", "logprobs", "presence_penalty", "seed", "top_logprobs"]
    out = wire(body)
    assert not {"presence_penalty", "frequency_penalty", "logit_bias", "seed", "logprobs", "top_logprobs"} & set(out)


def test_extra_keys_pass_through_only_when_anthropic_knows_them() -> None:
    body = {
        "messages": [USER],
        "cache_control": {"type": "ephemeral"},
        "service_tier": "standard_only",
        "metadata": {"user_id": "meta-user", "tag": "x"},
        "store": True,
    }
    out = wire(body)
    assert out["cache_control"] == {"type": "ephemeral"} and out["service_tier"] == "standard_only"
    assert out["metadata"] == {"user_id": "meta-user", "tag": "x"} and "store" not in out
    assert set(_warned(body)) == {"store"}
    assert set(_warned({"messages": [USER], "service_tier": "flex"})) == {"service_tier"}


@pytest.mark.parametrize(
    ("model", "thinking", "native", "limit"),
    [
        ("claude-3-opus-20240229", False, False, 4096),
        ("claude-3-5-sonnet-latest", False, False, 8192),
        ("claude-3-7-sonnet-20250219", True, False, 64000),
        ("claude-opus-4-20250514", True, False, 32000),
        ("claude-opus-4-1", True, True, 32000),
        ("claude-sonnet-4-0", True, False, 64000),
        ("claude-sonnet-4-5-20250929", True, True, 64000),
        ("claude-opus-4-6", True, True, 64000),
    ],
)
def test_model_profiles(model: str, thinking: bool, native: bool, limit: int) -> None:
    profile = model_profile(model)
    assert (profile.known, profile.thinking, profile.native_structured_output, profile.max_output) == (
        True,
        thinking,
        native,
        limit,
    )


def test_rewritten_tool_names_never_collide_with_valid_ones() -> None:
    dotted = {"type": "function", "function": {"name": "a.b"}}
    plain = {"type": "function", "function": {"name": "a_b"}}
    prepared = translate({"messages": [USER], "tools": [dotted, plain]})
    assert prepared.body.tools is not None
    names = [t.name for t in prepared.body.tools]
    assert names[1] == "a_b" and names[0].startswith("a_b_") and len(set(names)) == 2
    assert prepared.plan.caller_name(names[0]) == "a.b" and prepared.plan.caller_name("a_b") == "a_b"
