"""Every recorded chat exchange under tests/fixtures/recorded/{openai,openai-compatible,deepseek}, replayed through
the provider end to end (its ProviderSpec factory, a real Transport, aioresponses as the upstream):

- the recorded request body, structured with ``parse_request`` (public model name ``public-alias``) and sent with
  ``ctx.model`` = the recorded model, must be what the provider puts on the wire, except for the differences its
  row documents (listed in ``expected_wire_body``);
- a recorded ``chat.completion`` must come back as the same JSON (plus ``reasoning_content`` where the row reads
  another reasoning field, and generated ids where the upstream sent empty ones);
- a recorded SSE stream must assemble (the way an OpenAI client accumulates chunks) to the content, reasoning,
  tool calls, finish reason and usage computed here directly from the raw events;
- recorded error responses (HTTP errors and in-stream errors) must raise the right error class.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aioresponses import aioresponses
from openai_support import RECORDED, assemble, collect, ctx, load_cassette, make_provider, mock_post, sent

from polyrelay.errors import BadRequest, NotFound, RateLimited, UpstreamStatusError
from polyrelay.sse import SSEDecoder
from polyrelay.transport import Transport
from polyrelay.types._converters import parse_request
from polyrelay_openai._rows import ROWS, CompatRow, detect_preset

FOLDERS = ("openai", "openai-compatible", "deepseek")


def _interactions() -> list[Any]:
    params = []
    for folder in FOLDERS:
        for path in sorted((RECORDED / folder).glob("*.yaml")):
            for i, inter in enumerate(load_cassette(path)):
                req = inter["request"]
                if req["method"] == "POST" and "/chat/completions" in req["uri"]:
                    params.append(pytest.param(path, i, id=f"{folder}/{path.stem}#{i}"))
    return params


INTERACTIONS = _interactions()

#: Recorded upstream errors (file#interaction): the class each must raise. HTTP errors, and errors sent inside
#: a 200 stream.
EXPECTED_ERRORS: dict[str, tuple[type[UpstreamStatusError], int, str | None]] = {
    "test_openrouter_errors_raised#0": (RateLimited, 429, "429"),
    "test_openrouter_errors_raised#1": (RateLimited, 429, "429"),
    "test_openrouter_errors_raised#2": (RateLimited, 429, "429"),
    "test_tool_regular_error#0": (NotFound, 404, "model_not_found"),
    "test_model_name_suggestion[openai-chat]#0": (NotFound, 404, "model_not_found"),
    "test_openai_o1_mini_system_role[system]#0": (BadRequest, 400, "unsupported_value"),
    "test_openai_web_search_tool_model_not_supported#0": (BadRequest, 400, None),
    "test_tool_use_failed_error#0": (BadRequest, 400, "tool_use_failed"),
    "test_openrouter_stream_error#0": (BadRequest, 400, "400"),  # data: {"error": {"code": 400, ...}} after 200
    "test_tool_use_failed_error_streaming#0": (BadRequest, 400, "tool_use_failed"),  # event: error (Groq)
}


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport()
    yield t
    await t.aclose()


def _base_and_options(uri: str) -> tuple[str, dict[str, Any]]:
    parts = urlsplit(uri)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}".removesuffix("/chat/completions")
    options: dict[str, Any] = {}
    version = parse_qs(parts.query).get("api-version")
    if version:
        options["api_version"] = version[0]
    return base, options


def expected_wire_body(recorded: dict[str, Any], row: CompatRow) -> dict[str, Any]:
    """The recorded body with the changes the row documents (none for most recordings)."""
    body = copy.deepcopy(recorded)
    if body.get("stream") and not row.stream_options:
        body.pop("stream_options", None)  # Zhipu / Mistral: usage comes on the finish chunk unasked
    return body


def expected_completion(recorded: dict[str, Any], row: CompatRow, got: dict[str, Any]) -> dict[str, Any]:
    """The recorded completion as the provider must return it."""
    body = copy.deepcopy(recorded)
    for ci, choice in enumerate(body["choices"]):
        msg = choice["message"]
        if not isinstance(msg.get("reasoning_content"), str):
            for name in row.reasoning_fields:
                if isinstance(msg.get(name), str):
                    msg["reasoning_content"] = msg[name]
                    break
        for ti, call in enumerate(msg.get("tool_calls") or []):
            if call["id"] == "":
                generated = got["choices"][ci]["message"]["tool_calls"][ti]["id"]
                assert generated.startswith("call_") and len(generated) > 10
                call["id"] = generated
    return body


def raw_events(body: str) -> list[tuple[str | None, str]]:
    d = SSEDecoder()
    return [(e.event, e.data) for e in d.feed(body.encode()) + d.close()]


def expected_from_sse(body: str, row: CompatRow) -> dict[str, Any]:
    """Content, reasoning, tool calls, finish reason and usage read straight from the raw recorded events."""
    content, reasoning, finish, usage = "", "", None, None
    calls: dict[int, dict[str, str]] = {}
    for event, data in raw_events(body):
        if data == "[DONE]":
            break
        obj = json.loads(data)
        if event == "error" or obj.get("error"):
            break
        usage = obj.get("usage") or usage
        for choice in obj.get("choices") or []:
            usage = choice.get("usage") or usage
            delta = choice.get("delta") or {}
            c = delta.get("content")
            if isinstance(c, list):  # Mistral thinking arrays
                for part in c:
                    if part["type"] == "text":
                        content += part["text"]
                    elif part["type"] == "thinking":
                        reasoning += "".join(p["text"] for p in part["thinking"])
            else:
                content += c or ""
            r = delta.get("reasoning_content")
            if r is None:
                r = next((delta[f] for f in row.reasoning_fields if isinstance(delta.get(f), str)), None)
            reasoning += r or ""
            for tc in delta.get("tool_calls") or []:
                slot = calls.setdefault(tc["index"], {"id": "", "name": "", "arguments": ""})
                slot["id"] = slot["id"] or tc.get("id") or ""
                slot["name"] = slot["name"] or (tc.get("function") or {}).get("name") or ""
                slot["arguments"] += (tc.get("function") or {}).get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return {
        "content": content,
        "reasoning": reasoning,
        "tool_calls": [calls[i] for i in sorted(calls)],
        "finish_reason": finish,
        "usage": usage,
    }


@pytest.mark.parametrize(("path", "index"), INTERACTIONS)
async def test_recorded_exchange(path: Path, index: int, transport: Transport) -> None:
    inter = load_cassette(path)[index]
    req, res = inter["request"], inter["response"]
    recorded_body: dict[str, Any] = req["parsed_body"]
    base, options = _base_and_options(req["uri"])
    provider = make_provider(transport, base_url=base, api_key="sk-recorded-test-key-000000", **options)
    row = ROWS[detect_preset(base)]
    assert provider.row.name == row.name  # the preset comes from the host, as configured users would get it

    request = parse_request({**recorded_body, "model": "public-alias"})
    status = res["status"]["code"]
    content_type = (res.get("headers") or {}).get("content-type", ["application/json"])[0]
    streamed = bool(recorded_body.get("stream"))
    expected_error = EXPECTED_ERRORS.get(f"{path.stem}#{index}")
    url = re.compile(re.escape(base + "/chat/completions") + r"(\?.*)?$")

    with aioresponses() as m:
        if "parsed_body" in res:
            mock_post(m, url, status=status, payload=res["parsed_body"], content_type=content_type)
        else:
            mock_post(m, url, status=status, body=res["body"]["string"].encode(), content_type=content_type)
        call_ctx = ctx(model=recorded_body["model"])
        if streamed:
            chunks: list[Any] = []
            stream = provider.stream_chat(request, call_ctx)
            if expected_error is not None:
                with pytest.raises(expected_error[0]) as info:
                    async for c in stream:
                        chunks.append(c)
            else:
                chunks = await collect(stream)
        elif expected_error is not None:
            with pytest.raises(expected_error[0]) as info:
                await provider.chat(request, call_ctx)
        else:
            result = await provider.chat(request, call_ctx)
        wire, _headers, sent_url = sent(m)

    # The request: the recorded body, byte for byte as JSON, with the model from ctx.
    assert wire == expected_wire_body(recorded_body, row)
    assert sent_url.split("?")[0] == base + "/chat/completions"

    if expected_error is not None:
        cls, err_status, code = expected_error
        assert type(info.value) is cls
        assert info.value.status == err_status
        assert info.value.code == code
        assert info.value.provider == "up"
        if streamed:  # content delivered before the in-band error is what the recording says
            exp = expected_from_sse(res["body"]["string"], row)
            got = assemble(chunks)
            assert (got.content, got.reasoning) == (exp["content"], exp["reasoning"])
        return

    if not streamed:
        got_json = result.to_dict()
        assert got_json == expected_completion(res["parsed_body"], row, got_json)
        assert result.meta is not None and result.meta.provider == "up" and result.meta.model == recorded_body["model"]
        # Spot checks through the typed API (what callers read).
        rec_choice = res["parsed_body"]["choices"][0]
        choice = result.choices[0]
        assert choice.finish_reason == rec_choice["finish_reason"]
        assert choice.message.content == rec_choice["message"].get("content")
        rec_reasoning = next(
            (
                rec_choice["message"][f]
                for f in ("reasoning_content", *row.reasoning_fields)
                if isinstance(rec_choice["message"].get(f), str)
            ),
            None,
        )
        assert choice.message.reasoning_content == rec_reasoning
        rec_usage = res["parsed_body"].get("usage")
        if rec_usage:
            assert result.usage is not None
            assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens) == (
                rec_usage["prompt_tokens"],
                rec_usage["completion_tokens"],
                rec_usage["total_tokens"],
            )
        return

    exp = expected_from_sse(res["body"]["string"], row)
    got = assemble(chunks)
    assert got.content == exp["content"]
    assert got.reasoning == exp["reasoning"]
    assert got.finish_reason == exp["finish_reason"]
    assert [(c["name"], c["arguments"]) for c in got.tool_calls] == [
        (c["name"], c["arguments"]) for c in exp["tool_calls"]
    ]
    assert [c["id"] for c in got.tool_calls] == [c["id"] for c in exp["tool_calls"]]
    assert got.role_chunks == 1
    if exp["usage"] is None:
        assert got.usage is None
    else:
        assert got.usage is not None
        assert (got.usage.prompt_tokens, got.usage.completion_tokens, got.usage.total_tokens) == (
            exp["usage"]["prompt_tokens"],
            exp["usage"]["completion_tokens"],
            exp["usage"]["total_tokens"],
        )
    if request.include_usage:
        # OpenAI shape: usage exactly once, on a final chunk without choices.
        assert got.usage_chunks == 1
        assert chunks[-1].choices == () and chunks[-1].usage == got.usage
    assert chunks[0].meta is not None and chunks[0].meta.provider == "up"


def test_every_recorded_chat_exchange_is_covered() -> None:
    """Guards the parametrization: a recording that stopped matching the filter would silently drop out."""
    assert len(INTERACTIONS) >= 60
    names = {p.id.split("#")[0] for p in INTERACTIONS}
    assert {"deepseek/test_deepseek_model_thinking_stream", "openai-compatible/test_zai_thinking_stream"} <= names
