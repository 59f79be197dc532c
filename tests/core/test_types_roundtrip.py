"""OpenAI-format types: recorded JSON structures and unstructures back to the same JSON; bad input names its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from polyrelay.errors import InvalidRequest, InvalidUpstreamResponse
from polyrelay.sse import SSEDecoder
from polyrelay.types._converters import parse_chunk, parse_completion, parse_request, to_json
from polyrelay.types.chat import ImagePart, TextPart, UnknownPart

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "recorded"
FILES = sorted(p for d in ("openai", "openai-compatible", "deepseek") for p in (FIXTURES / d).glob("*.yaml"))


def _interactions(path: Path) -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text())["interactions"])


def _requests() -> list[Any]:
    out = []
    for f in FILES:
        for i, it in enumerate(_interactions(f)):
            body = it["request"].get("parsed_body")
            if isinstance(body, dict) and "messages" in body:
                out.append(pytest.param(body, id=f"{f.stem}#{i}"))
    return out


def _completions() -> list[Any]:
    out = []
    for f in FILES:
        for i, it in enumerate(_interactions(f)):
            body = it["response"].get("parsed_body")
            if isinstance(body, dict) and body.get("object") == "chat.completion":
                out.append(pytest.param(body, id=f"{f.stem}#{i}"))
    return out


def _stream_events() -> list[Any]:
    out = []
    for f in FILES:
        for i, it in enumerate(_interactions(f)):
            body = (it["response"].get("body") or {}).get("string")
            if isinstance(body, str) and "data:" in body and "chat.completion.chunk" in body:
                out.append(pytest.param(body, id=f"{f.stem}#{i}"))
    return out


REQUESTS, COMPLETIONS, STREAMS = _requests(), _completions(), _stream_events()


def test_fixture_counts() -> None:
    # Guards against the parametrisation silently finding nothing.
    assert len(REQUESTS) >= 40 and len(COMPLETIONS) >= 30 and len(STREAMS) >= 5


@pytest.mark.parametrize("body", REQUESTS)
def test_request_round_trip(body: dict[str, Any]) -> None:
    assert to_json(parse_request(body)) == body


@pytest.mark.parametrize("body", COMPLETIONS)
def test_completion_round_trip(body: dict[str, Any]) -> None:
    c = parse_completion(body)
    assert to_json(c) == body
    assert c.to_dict() == body
    assert c.choices[0].message.content == body["choices"][0]["message"].get("content")


@pytest.mark.parametrize("body", STREAMS)
def test_chunk_round_trip(body: str) -> None:
    events = SSEDecoder().feed(body.encode())
    n = 0
    for ev in events:
        if ev.data == "[DONE]":
            continue
        data = ev.json()
        if "error" in data:
            continue
        if any(isinstance(c.get("delta", {}).get("content"), list) for c in data.get("choices", [])):
            # Mistral Magistral's content-as-array is not OpenAI's shape: the provider's mistral row normalises it.
            with pytest.raises(InvalidUpstreamResponse):
                parse_chunk(data)
            continue
        assert to_json(parse_chunk(data)) == data
        n += 1
    assert n > 0


def test_unknown_fields_kept_in_extra() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi", "x_vendor": 1}], "top_k": 5}
    r = parse_request(body)
    assert r.extra == {"top_k": 5}
    assert r.messages[0].extra == {"x_vendor": 1}
    assert to_json(r) == body


def test_content_parts_and_bare_image_url() -> None:
    body = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": "https://x/a.png"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA", "detail": "low"}},
                    {"type": "video_url", "video_url": {"url": "https://x/v.mp4"}},
                ],
            }
        ],
    }
    r = parse_request(body)
    parts = r.messages[0].content
    assert isinstance(parts, tuple)
    assert isinstance(parts[0], TextPart)
    assert isinstance(parts[1], ImagePart) and parts[1].image_url.url == "https://x/a.png" and parts[1].image_url.bare
    assert isinstance(parts[2], ImagePart) and parts[2].image_url.detail == "low"
    assert isinstance(parts[3], UnknownPart) and parts[3].type == "video_url"
    assert to_json(r) == body
    assert r.messages[0].text == "look"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"messages": []}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": 7}]},
                ],
            },
            "messages[1].content[1].image_url",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
        ({"model": "m", "messages": [], "temperature": "hot"}, "temperature"),
        ({"model": "m", "messages": [], "n": True}, "n"),
        ({"model": "m", "messages": [], "stop": [1]}, "stop"),
        ({"model": "m", "messages": [], "tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
    ],
)
def test_invalid_request_names_path(body: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidRequest) as ei:
        parse_request(body)
    assert ei.value.path == path, str(ei.value)


def test_invalid_upstream_response() -> None:
    with pytest.raises(InvalidUpstreamResponse) as ei:
        parse_completion({"id": "x", "choices": [{"message": {"content": 5}}]}, provider="p")
    assert ei.value.provider == "p"
    assert "choices[0].message.content" in str(ei.value)
    with pytest.raises(InvalidUpstreamResponse):
        parse_chunk(["not", "an", "object"])


def test_explicit_nulls_round_trip() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "assistant", "content": None, "tool_calls": None}],
        "tool_choice": None,
        "stop": None,
        "max_tokens": None,
    }
    r = parse_request(body)
    assert r.tool_choice is None and r.stop is None
    assert to_json(r) == body


def test_fast_builders_make_objects_of_the_real_class_through_their_twins() -> None:
    """The plain-shape builders set slots on a layout twin and then give the object its real class: every class
    they build must allow that (no ``__weakref__`` slot), and the result is indistinguishable from the class's own
    ``__init__``'s."""
    import attrs

    from polyrelay._twins import twin
    from polyrelay.types import _plain
    from polyrelay.types.chat import ChatRequest, Message, StreamOptions
    from polyrelay.types.completion import (
        ChatCompletion,
        ChatCompletionChunk,
        ChatCompletionMessage,
        Choice,
        ChoiceDelta,
        ChunkChoice,
        CompletionTokensDetails,
        PromptTokensDetails,
        Usage,
    )

    built = (ChatRequest, Message, StreamOptions, ChatCompletion, ChatCompletionChunk, ChatCompletionMessage, Choice)
    built += (ChoiceDelta, ChunkChoice, CompletionTokensDetails, PromptTokensDetails, Usage)
    for cls in built:
        assert twin(cls) is not None, cls
    request = _plain.plain_request({"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 1})
    assert type(request) is ChatRequest and type(request.messages[0]) is Message
    assert request == ChatRequest(model="m", messages=(Message(role="user", content="hi"),), seed=1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        request.seed = 2  # type: ignore[misc]
