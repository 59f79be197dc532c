"""The provider end to end: ProviderSpec factory → OpenAICompatProvider → a real Transport whose session
aioresponses intercepts. Auth, headers, error mapping, stream endings, vendor quirks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aioresponses import aioresponses
from openai_support import (
    BASE,
    CHAT_URL,
    FAKE_KEY,
    assemble,
    chunk,
    collect,
    completion_body,
    ctx,
    make_provider,
    mock_post,
    sent,
    sse,
)

from polyrelay.errors import (
    AuthenticationFailed,
    BadRequest,
    ContentPolicyViolation,
    ContextWindowExceeded,
    InvalidUpstreamResponse,
    NotFound,
    Overloaded,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    ServerError,
    StreamInterrupted,
    UpstreamError,
    UpstreamStatusError,
)
from polyrelay.transport import Transport
from polyrelay.types._converters import parse_request
from polyrelay.types.chat import ChatRequest

HELLO = {"model": "public", "messages": [{"role": "user", "content": "Hello"}]}


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport()
    yield t
    await t.aclose()


def req(**kw: Any) -> ChatRequest:
    return parse_request({**HELLO, **kw})


def assert_no_key(exc: BaseException) -> None:
    assert FAKE_KEY not in str(exc) and FAKE_KEY not in repr(exc)
    assert FAKE_KEY[:12] not in str(exc) and FAKE_KEY[-8:] not in str(exc)


# --------------------------------------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    ("options", "header", "value"),
    [
        ({}, "Authorization", f"Bearer {FAKE_KEY}"),
        ({"auth": "raw"}, "Authorization", FAKE_KEY),
        ({"auth": "header", "auth_header": "api-key"}, "api-key", FAKE_KEY),
        ({"preset": "azure"}, "api-key", FAKE_KEY),
        ({"quirks": {"auth": "header", "auth_header": "X-Key"}}, "X-Key", FAKE_KEY),
    ],
)
async def test_auth_styles(transport: Transport, options: dict[str, Any], header: str, value: str) -> None:
    provider = make_provider(transport, **options)
    with aioresponses() as m:
        mock_post(m, payload=completion_body())
        await provider.chat(req(), ctx())
        _, headers, url = sent(m)
    assert headers[header] == value
    others = [h for h in headers if h.lower() in ("authorization", "api-key", "x-key") and h != header]
    assert others == []  # the key is in exactly one header
    assert url == CHAT_URL


async def test_auth_none_sends_no_key(transport: Transport) -> None:
    provider = make_provider(transport, auth="none")
    with aioresponses() as m:
        mock_post(m, payload=completion_body())
        await provider.chat(req(), ctx())
        _, headers, _ = sent(m)
    assert FAKE_KEY not in json.dumps(dict(headers))


async def test_extra_headers_from_settings_and_call_and_the_key_wins(transport: Transport) -> None:
    provider = make_provider(
        transport, headers={"HTTP-Referer": "https://app.example", "authorization": "Bearer other-key"}
    )
    with aioresponses() as m:
        mock_post(m, payload=completion_body())
        await provider.chat(req(), ctx(extra_headers={"X-Title": "demo"}))
        _, headers, _ = sent(m)
    assert headers["HTTP-Referer"] == "https://app.example"
    assert headers["X-Title"] == "demo"
    assert headers["Authorization"] == f"Bearer {FAKE_KEY}"
    assert "other-key" not in json.dumps(dict(headers))


async def test_model_is_replaced_and_vendor_params_pass_through(transport: Transport) -> None:
    provider = make_provider(transport)
    with aioresponses() as m:
        mock_post(m, payload=completion_body())
        result = await provider.chat(req(temperature=0.2, top_k=5, provider={"order": ["a"]}), ctx(model="gpt-up"))
        body, _, _ = sent(m)
    assert body == {**HELLO, "model": "gpt-up", "temperature": 0.2, "top_k": 5, "provider": {"order": ["a"]}}
    assert result.choices[0].message.content == "Hi"
    assert result.meta is not None and result.meta.model == "gpt-up" and result.meta.warnings == ()


async def test_azure_deployment_url_with_model_placeholder_and_api_version(transport: Transport) -> None:
    base = "https://res.openai.azure.com/openai/deployments/{model}"
    provider = make_provider(transport, base_url=base, api_version="2024-12-01-preview")
    assert provider.row.name == "azure"
    url = "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-12-01-preview"
    with aioresponses() as m:
        mock_post(m, url, payload=completion_body())
        await provider.chat(req(), ctx(model="gpt-4o"))
        _, headers, sent_url = sent(m)
    assert sent_url == url and headers["api-key"] == FAKE_KEY


async def test_a_model_id_cannot_move_the_key_to_another_host(transport: Transport) -> None:
    from polyrelay.errors import ConfigError

    provider = make_provider(transport, base_url="https://{model}.example.com/v1")
    with aioresponses() as m, pytest.raises(ConfigError):
        await provider.chat(req(), ctx(model="evil.attacker.net/x"))
    assert m.requests == {}


# ------------------------------------------------------------------------------------------------ error mapping

OPENAI_ERR = {"error": {"message": "something failed", "type": "invalid_request_error", "param": None, "code": None}}


def err(message: str, type_: str | None = None, code: Any = None, **more: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code, **more}}


ERROR_TABLE: list[Any] = [
    # status, body, headers, class, retryable, retry_after
    (400, OPENAI_ERR, {}, BadRequest, False, None),
    (400, err("too long", "invalid_request_error", "context_length_exceeded"), {}, ContextWindowExceeded, False, None),
    (400, err("The response was filtered", None, "content_filter"), {}, ContentPolicyViolation, False, None),
    (
        401,
        err(f"Incorrect API key provided: {FAKE_KEY}.", "invalid_request_error", "invalid_api_key"),
        {},
        AuthenticationFailed,
        False,
        None,
    ),
    (402, err("Insufficient Balance", "unknown_error"), {}, QuotaExceeded, False, None),  # DeepSeek
    (402, {"error": {"code": 402, "message": "Insufficient credits"}}, {}, QuotaExceeded, False, None),  # OpenRouter
    (
        403,
        err("Country not supported", "invalid_request_error", "unsupported_country_region_territory"),
        {},
        PermissionDenied,
        False,
        None,
    ),
    (
        403,
        {"error": {"code": 403, "message": "flagged", "metadata": {"reasons": ["violence"], "flagged_input": "x"}}},
        {},
        ContentPolicyViolation,
        False,
        None,
    ),
    (404, err("The model `x` does not exist", "invalid_request_error", "model_not_found"), {}, NotFound, False, None),
    (408, err("timeout"), {}, UpstreamStatusError, True, None),
    (409, err("conflict"), {}, UpstreamStatusError, True, None),
    (413, "<html><body>413 Request Entity Too Large</body></html>", {}, BadRequest, False, None),
    (
        422,
        {
            "object": "error",
            "message": {"detail": [{"loc": ["body", "x"], "msg": "extra"}]},
            "type": "invalid_request_message_error",
            "param": None,
            "code": None,
        },
        {},
        BadRequest,
        False,
        None,
    ),
    (429, err("Rate limit reached", "requests", "rate_limit_exceeded"), {"Retry-After": "7"}, RateLimited, True, 7.0),
    (
        429,
        err("Rate limit reached", "tokens", "rate_limit_exceeded"),
        {"retry-after-ms": "1500"},
        RateLimited,
        True,
        1.5,
    ),
    (
        429,
        err("You exceeded your current quota", "insufficient_quota", "insufficient_quota"),
        {},
        QuotaExceeded,
        False,
        None,
    ),
    (
        429,
        {
            "error": {
                "code": 429,
                "message": "Provider returned error",
                "metadata": {"raw": "busy", "provider_name": "G"},
            }
        },
        {},
        RateLimited,
        True,
        None,
    ),
    (500, err("The server had an error", "server_error"), {}, ServerError, True, None),
    (500, err("The server had an error", "server_error"), {"x-should-retry": "false"}, ServerError, False, None),
    (400, OPENAI_ERR, {"x-should-retry": "true"}, BadRequest, True, None),
    (502, "<html><head><title>502 Bad Gateway</title></head></html>", {}, ServerError, True, None),
    (503, err("overloaded", "server_error"), {"Retry-After": "3"}, Overloaded, True, 3.0),
    (529, err("Overloaded", "overloaded_error"), {}, Overloaded, True, None),
]


@pytest.mark.parametrize(("status", "body", "headers", "cls", "retryable", "retry_after"), ERROR_TABLE)
@pytest.mark.parametrize("streamed", [False, True], ids=["chat", "stream"])
async def test_error_status_mapping(
    transport: Transport,
    status: int,
    body: Any,
    headers: dict[str, str],
    cls: type[UpstreamStatusError],
    retryable: bool,
    retry_after: float | None,
    streamed: bool,
) -> None:
    provider = make_provider(transport)
    with aioresponses() as m:
        if isinstance(body, str):
            mock_post(m, status=status, body=body, headers=headers, content_type="text/html")
        else:
            mock_post(m, status=status, payload=body, headers=headers)
        with pytest.raises(UpstreamStatusError) as info:
            if streamed:
                await collect(provider.stream_chat(req(stream=True), ctx()))
            else:
                await provider.chat(req(), ctx())
    exc = info.value
    assert type(exc) is cls
    assert (exc.status, exc.retryable, exc.provider) == (status, retryable, "up")
    assert getattr(exc, "retry_after", None) == retry_after
    assert exc.message  # never empty
    assert_no_key(exc)
    assert FAKE_KEY not in json.dumps(exc.body)


async def test_error_messages_carry_the_upstream_text_and_openrouter_metadata(transport: Transport) -> None:
    provider = make_provider(transport)
    body = {
        "error": {
            "code": 429,
            "message": "Provider returned error",
            "metadata": {"provider_name": "Google", "raw": "gemini is temporarily rate-limited"},
        }
    }
    with aioresponses() as m:
        mock_post(m, status=429, payload=body, headers={"x-request-id": "req_123"})
        with pytest.raises(RateLimited) as info:
            await provider.chat(req(), ctx())
    assert "Provider returned error" in str(info.value) and "Google: gemini is temporarily rate-limited" in str(
        info.value
    )
    assert info.value.request_id == "req_123" and info.value.code == "429"


async def test_echoed_key_is_redacted_from_the_message(transport: Transport) -> None:
    provider = make_provider(transport)
    echo = err(f"Incorrect API key provided: {FAKE_KEY[:8]}***{FAKE_KEY[-4:]} and {FAKE_KEY}", code="invalid_api_key")
    with aioresponses() as m:
        mock_post(m, status=401, payload=echo)
        with pytest.raises(AuthenticationFailed) as info:
            await provider.chat(req(), ctx())
    assert_no_key(info.value)
    assert "Incorrect API key provided" in info.value.message


async def test_error_object_in_a_200_body(transport: Transport) -> None:
    provider = make_provider(transport)
    with aioresponses() as m:
        mock_post(m, payload=err("Rate limit", "rate_limit_error", "rate_limit_exceeded"))
        with pytest.raises(RateLimited) as info:
            await provider.chat(req(), ctx())
    assert info.value.status == 429


@pytest.mark.parametrize("body", [b"not json {", b"<html>oops</html>", b"[1, 2, 3]"])
async def test_malformed_body_is_invalid_upstream_response(transport: Transport, body: bytes) -> None:
    provider = make_provider(transport)
    with aioresponses() as m:
        mock_post(m, body=body, content_type="application/json")
        with pytest.raises(InvalidUpstreamResponse) as info:
            await provider.chat(req(), ctx())
    assert info.value.provider == "up" and info.value.retryable
    assert_no_key(info.value)


async def test_completion_missing_required_fields_is_invalid(transport: Transport) -> None:
    provider = make_provider(transport)
    with aioresponses() as m:
        mock_post(m, payload={"object": "chat.completion", "choices": [{"message": {"content": 5}}]})
        with pytest.raises(InvalidUpstreamResponse):
            await provider.chat(req(), ctx())


# ------------------------------------------------------------------------------------------------------ streams


async def test_stream_yields_openai_chunks_and_meta(transport: Transport) -> None:
    provider = make_provider(transport)
    body = sse(chunk({"role": "assistant", "content": ""}), chunk({"content": "Hi"}), chunk(finish="stop"))
    with aioresponses() as m:
        mock_post(m, body=body, headers={"x-request-id": "req_9"})
        chunks = await collect(provider.stream_chat(req(stream=True), ctx(requested_model="public")))
        wire, headers, _ = sent(m)
    assert wire["stream"] is True and headers["Accept"] == "application/json"
    got = assemble(chunks)
    assert (got.content, got.finish_reason) == ("Hi", "stop")
    meta = chunks[0].meta
    assert meta is not None and (meta.provider, meta.request_id, meta.requested_model) == ("up", "req_9", "public")
    assert all(c.meta is None for c in chunks[1:])


async def test_include_usage_is_requested_upstream_when_asked(transport: Transport) -> None:
    usage = {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}
    body = sse(chunk({"content": "x"}), chunk(finish="stop"), {"id": "c", "choices": [], "usage": usage})
    for preset, sends in (("openai", True), ("zhipu", False)):
        provider = make_provider(transport, preset=preset)
        with aioresponses() as m:
            mock_post(m, body=body)
            chunks = await collect(
                provider.stream_chat(req(stream=True, stream_options={"include_usage": True}), ctx())
            )
            wire, _, _ = sent(m)
        assert ("stream_options" in wire) is sends
        assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 5


async def test_stream_without_done_but_with_finish_reason_ends_normally(transport: Transport) -> None:
    provider = make_provider(transport)
    with aioresponses() as m:
        mock_post(m, body=sse(chunk({"content": "Paris"}), chunk(finish="stop"), done=False))
        chunks = await collect(provider.stream_chat(req(stream=True), ctx()))
    assert assemble(chunks).content == "Paris"


async def test_stream_cut_before_finish_reason_is_interrupted(transport: Transport) -> None:
    provider = make_provider(transport)
    body = sse(chunk({"content": "Par"}), done=False) + b'data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":{"con'
    got: list[Any] = []
    with aioresponses() as m:
        mock_post(m, body=body)
        with pytest.raises((StreamInterrupted, InvalidUpstreamResponse)) as info:
            async for c in provider.stream_chat(req(stream=True), ctx()):
                got.append(c)
    # The half event at EOF is dispatched (the SSE decoder's documented choice) and cannot parse.
    assert isinstance(info.value, InvalidUpstreamResponse)
    assert assemble(got).content == "Par"
    with aioresponses() as m:
        mock_post(m, body=sse(chunk({"content": "Par"}), done=False))
        with pytest.raises(StreamInterrupted) as cut:
            await collect(provider.stream_chat(req(stream=True), ctx()))
    assert cut.value.partial == "Par" and cut.value.provider == "up" and cut.value.retryable


async def test_in_stream_error_event_after_content(transport: Transport) -> None:
    provider = make_provider(transport)
    body = sse(
        chunk({"content": "Hel"}), {"error": {"message": "The server had an error", "type": "server_error"}}, done=False
    )
    got: list[Any] = []
    with aioresponses() as m:
        mock_post(m, body=body)
        with pytest.raises(ServerError) as info:
            async for c in provider.stream_chat(req(stream=True), ctx()):
                got.append(c)
    assert assemble(got).content == "Hel" and info.value.retryable
    assert_no_key(info.value)


async def test_malformed_sse_event_is_invalid_upstream_response(transport: Transport) -> None:
    provider = make_provider(transport)
    with aioresponses() as m:
        mock_post(m, body=sse(chunk({"content": "a"}), "{not json}", chunk(finish="stop")))
        with pytest.raises(InvalidUpstreamResponse) as info:
            await collect(provider.stream_chat(req(stream=True), ctx()))
    assert info.value.provider == "up"


async def test_json_error_body_instead_of_a_stream(transport: Transport) -> None:
    provider = make_provider(transport)
    with aioresponses() as m:
        mock_post(m, payload=err("no quota", "insufficient_quota", "insufficient_quota"))
        with pytest.raises(QuotaExceeded):
            await collect(provider.stream_chat(req(stream=True), ctx()))


# ------------------------------------------------------------------------------------------------ vendor quirks


async def test_mistral_tool_ids_round_trip(transport: Transport) -> None:
    provider = make_provider(transport, base_url="https://api.mistral.ai/v1")
    assert provider.row.name == "mistral"
    history = req(
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_abc-123", "type": "function", "function": {"name": "w", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_abc-123", "content": "sunny"},
        ]
    )
    url = "https://api.mistral.ai/v1/chat/completions"
    with aioresponses() as m:
        mock_post(m, url, payload=completion_body("ok"))
        await provider.chat(history, ctx())
        wire, _, _ = sent(m)
    upstream_id = wire["messages"][1]["tool_calls"][0]["id"]
    assert len(upstream_id) == 9 and upstream_id.isalnum() and upstream_id.isascii()
    assert wire["messages"][2]["tool_call_id"] == upstream_id
    # The upstream refers back to the remapped id: the caller sees its own id again (plain and streamed).
    echo = completion_body(
        None, tool_calls=[{"id": upstream_id, "type": "function", "function": {"name": "w", "arguments": "{}"}}]
    )
    with aioresponses() as m:
        mock_post(m, url, payload=echo)
        result = await provider.chat(history, ctx())
        mock_post(
            m,
            url,
            body=sse(
                chunk(
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": upstream_id, "function": {"name": "w", "arguments": "{}"}}],
                    },
                    finish="tool_calls",
                )
            ),
        )
        chunks = await collect(provider.stream_chat(history, ctx()))
    calls = result.choices[0].message.tool_calls
    assert calls is not None and calls[0].id == "call_abc-123"
    assert assemble(chunks).tool_calls[0]["id"] == "call_abc-123"


async def test_moonshot_usage_inside_the_choice(transport: Transport) -> None:
    provider = make_provider(transport, base_url="https://api.moonshot.ai/v1")
    usage = {"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10}
    finish = chunk({"content": "!"}, finish="stop")
    finish["choices"][0]["usage"] = usage
    with aioresponses() as m:
        mock_post(m, "https://api.moonshot.ai/v1/chat/completions", body=sse(chunk({"content": "Hi"}), finish))
        chunks = await collect(provider.stream_chat(req(stream=True, stream_options={"include_usage": True}), ctx()))
    assert chunks[-1].choices == () and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 10
    assert all("usage" not in ch.extra for c in chunks for ch in c.choices)


async def test_xai_completion_tokens_include_reasoning(transport: Transport) -> None:
    provider = make_provider(transport, base_url="https://api.x.ai/v1")
    body = completion_body("1")
    body["usage"] = {
        "prompt_tokens": 12,
        "completion_tokens": 1,
        "total_tokens": 303,
        "completion_tokens_details": {"reasoning_tokens": 290},
    }
    with aioresponses() as m:
        mock_post(m, "https://api.x.ai/v1/chat/completions", payload=body)
        result = await provider.chat(req(), ctx())
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens) == (12, 291, 303)


async def test_groq_dropped_params_produce_call_warnings(transport: Transport) -> None:
    provider = make_provider(transport, spec_type="groq", base_url=None)
    assert provider.base_url == "https://api.groq.com/openai/v1"
    with aioresponses() as m:
        mock_post(m, "https://api.groq.com/openai/v1/chat/completions", payload=completion_body())
        result = await provider.chat(req(logit_bias={"50256": -100}, n=2, temperature=0.5), ctx())
        wire, _, _ = sent(m)
        mock_post(
            m,
            "https://api.groq.com/openai/v1/chat/completions",
            body=sse(chunk({"content": "x"}), chunk(finish="stop")),
        )
        chunks = await collect(provider.stream_chat(req(stream=True, logprobs=True), ctx()))
    assert "logit_bias" not in wire and "n" not in wire and wire["temperature"] == 0.5
    assert result.meta is not None
    assert {w.setting for w in result.meta.warnings} == {"logit_bias", "n"}
    assert all(w.type == "unsupported-setting" and "groq" in w.message for w in result.meta.warnings)
    assert chunks[0].meta is not None and [w.setting for w in chunks[0].meta.warnings] == ["logprobs"]


async def test_deepseek_reasoning_is_parsed_and_replayed_on_tool_turns(transport: Transport) -> None:
    provider = make_provider(transport, spec_type="deepseek", base_url=None)
    url = "https://api.deepseek.com/chat/completions"
    body = completion_body("Answer", reasoning_content="Because.")
    with aioresponses() as m:
        mock_post(m, url, payload=body)
        first = await provider.chat(req(), ctx(model="deepseek-reasoner"))
    assert first.choices[0].message.reasoning_content == "Because."
    history = req(
        messages=[
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "x", "reasoning_content": "old thoughts"},
            {"role": "user", "content": "b"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "1"},
        ]
    )
    with aioresponses() as m:
        mock_post(m, url, payload=body)
        await provider.chat(history, ctx(model="deepseek-reasoner"))
        wire, _, _ = sent(m)
    assert "reasoning_content" not in wire["messages"][1]  # plain turn: may be omitted
    assert wire["messages"][3]["reasoning_content"] == ""  # tool turn: must be present


async def test_stream_is_closed_when_the_consumer_stops_early(transport: Transport) -> None:
    provider = make_provider(transport)
    with aioresponses() as m:
        mock_post(m, body=sse(chunk({"content": "a"}), chunk({"content": "b"}), chunk(finish="stop")))
        stream = provider.stream_chat(req(stream=True), ctx())
        first = await anext(stream)
        await stream.aclose()
    assert first.choices[0].delta.content == "a"


async def test_errors_never_show_the_key(transport: Transport) -> None:
    """Every error path of this file's table, once more with a body that echoes the full key everywhere."""
    provider = make_provider(transport)
    echo = {
        "error": {
            "message": f"bad key {FAKE_KEY}",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
            "metadata": {"raw": FAKE_KEY},
        }
    }
    errors: list[UpstreamError] = []
    with aioresponses() as m:
        for status in (400, 401, 429, 500):
            mock_post(m, status=status, payload=echo)
            with pytest.raises(UpstreamError) as info:
                await provider.chat(req(), ctx())
            errors.append(info.value)
        mock_post(m, body=sse(chunk({"content": "a"}), echo, done=False))
        with pytest.raises(UpstreamError) as info:
            await collect(provider.stream_chat(req(stream=True), ctx()))
        errors.append(info.value)
    for exc in errors:
        assert_no_key(exc)
        assert FAKE_KEY not in json.dumps(exc.body)
    assert BASE in provider.base_url
