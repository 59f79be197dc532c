"""The Gemini provider over real HTTP on 127.0.0.1 against the simulated upstream, through a polyrelay Transport."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web
from gemini_support import KEY, ctx, fold, provider, request, serve

from polyrelay.errors import (
    AuthenticationFailed,
    ConfigError,
    ContentPolicyViolation,
    ContextWindowExceeded,
    InvalidRequest,
    InvalidUpstreamResponse,
    NotFound,
    Overloaded,
    PermissionDenied,
    RateLimited,
    ServerError,
    StreamInterrupted,
    UnsupportedFeature,
)
from polyrelay.testing._faults import Fault
from polyrelay.testing._gemini import GeminiUpstream, ScriptedBlock
from polyrelay.testing._openai import ScriptedReply, ScriptedToolCall
from polyrelay.transport import Transport
from polyrelay.types.completion import ChatCompletionChunk
from polyrelay_gemini import SPEC
from polyrelay_gemini._options import OPTION_KEYS, GeminiOptions
from polyrelay_gemini._provider import GeminiProvider

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport()
    yield t
    await t.aclose()


@pytest.fixture
async def upstream() -> AsyncIterator[GeminiUpstream]:
    async with GeminiUpstream(api_key=KEY, reply=ScriptedReply(content="Paris is the capital of France.")) as up:
        yield up


async def collect(gen: AsyncIterator[ChatCompletionChunk]) -> list[ChatCompletionChunk]:
    return [c async for c in gen]


# ----------------------------------------------------------------------------------------------- happy paths


async def test_chat(upstream: GeminiUpstream, transport: Transport) -> None:
    prov = provider(upstream.base_url, transport)
    req = request(
        {
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital?"}],
            "logit_bias": {"1": 1},
        }
    )
    result = await prov.chat(req, ctx())
    assert result.choices[0].message.content == "Paris is the capital of France."
    assert result.choices[0].finish_reason == "stop" and result.id.startswith("chatcmpl-")
    assert result.usage is not None and result.usage.total_tokens == result.usage.prompt_tokens + 8
    assert result.meta is not None and (result.meta.provider, result.meta.model) == ("gem", "gemini-2.5-flash")
    assert result.meta.requested_model == "public-name"
    assert [w.setting for w in result.meta.warnings] == ["logit_bias"]
    (sent,) = upstream.requests
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.json["systemInstruction"] == {"parts": [{"text": "Be brief."}]}


async def test_key_is_never_in_the_url(upstream: GeminiUpstream, transport: Transport) -> None:
    prov = provider(upstream.base_url, transport)
    await prov.chat(request({"messages": [{"role": "user", "content": "x"}]}), ctx())
    await collect(prov.stream_chat(request({"messages": [{"role": "user", "content": "x"}]}), ctx()))
    for sent in upstream.requests:
        assert "key" not in sent.query and KEY not in sent.path and KEY not in json.dumps(dict(sent.query))
    assert [dict(r.query) for r in upstream.requests] == [{}, {"alt": "sse"}]
    assert KEY not in repr(prov)


async def test_stream(upstream: GeminiUpstream, transport: Transport) -> None:
    upstream.push_reply(ScriptedReply(content="Paris, of course.", reasoning_content="Easy one.", chunk_size=5))
    prov = provider(upstream.base_url, transport)
    req = request(
        {
            "messages": [{"role": "user", "content": "Capital?"}],
            "stream": True,
            "stream_options": {"include_usage": True},
            "reasoning_effort": "low",
        }
    )
    chunks = await collect(prov.stream_chat(req, ctx()))
    f = fold(chunks)
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].meta is not None
    assert f.content == "Paris, of course." and f.reasoning == "Easy one." and f.finish_reason == "stop"
    assert f.usage is not None and f.usage.completion_tokens_details is not None
    assert f.usage.completion_tokens_details.reasoning_tokens == 3
    assert chunks[-1].choices == () and chunks[-1].usage == f.usage
    sent = upstream.requests[0]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent" and sent.query["alt"] == "sse"
    assert sent.json["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 1024}


async def test_tool_calling_two_rounds_on_gemini_3(upstream: GeminiUpstream, transport: Transport) -> None:
    """Round 1 streams a signed tool call; round 2 sends it back (the upstream rejects unsigned Gemini 3 calls)."""
    prov = provider(upstream.base_url, transport)
    upstream.push_reply(ScriptedReply(content=None, tool_calls=[ScriptedToolCall("get_weather", '{"city":"Paris"}')]))
    upstream.push_reply(ScriptedReply(content="It is sunny in Paris."))
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = fold(
        await collect(
            prov.stream_chat(request({"messages": messages, "tools": [WEATHER_TOOL]}), ctx("gemini-3-pro-preview"))
        )
    )
    assert first.finish_reason == "tool_calls"
    (call,) = first.tool_calls
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}
    signature = call["extra"]["extra_content"]["google"]["thought_signature"]
    assert signature in upstream.issued_signatures
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                    **call["extra"],
                }
            ],
        },
        {"role": "tool", "tool_call_id": call["id"], "content": '{"sky": "sunny"}'},
    ]
    second = await prov.chat(request({"messages": messages, "tools": [WEATHER_TOOL]}), ctx("gemini-3-pro-preview"))
    assert second.choices[0].message.content == "It is sunny in Paris."
    replayed = upstream.requests[1].json["contents"]
    assert replayed[1]["parts"][0]["thoughtSignature"] == signature
    assert replayed[2]["parts"][0]["functionResponse"] == {
        "name": "get_weather",
        "response": {"sky": "sunny"},
        "id": call["id"],
    }


async def test_upstream_rejects_a_forged_signature(upstream: GeminiUpstream, transport: Transport) -> None:
    prov = provider(upstream.base_url, transport)
    forged = {
        "id": "c",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"},
        "extra_content": {"google": {"thought_signature": "Rk9SR0VE"}},
    }
    req = request(
        {
            "tools": [WEATHER_TOOL],
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [forged]},
                {"role": "tool", "tool_call_id": "c", "content": "1"},
            ],
        }
    )
    with pytest.raises(Exception) as info:
        await prov.chat(req, ctx("gemini-3-pro-preview"))
    assert type(info.value).__name__ == "BadRequest" and "Thought signature is not valid" in str(info.value)


async def test_relay_base_url_headers_and_downloads(transport: Transport) -> None:
    """A relay with a path prefix and its own header; a plain-http image is downloaded and inlined."""

    async def image(_: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG-bytes", headers={"Content-Type": "image/png"})

    async with (
        serve({"GET /cat": image}) as origin,
        GeminiUpstream(api_key=None, reply=ScriptedReply(content="a cat")) as up,
    ):
        settings = attrs.evolve(
            provider(up.base_url + "/", transport, key=None).settings, headers={"x-relay-token": "relay-secret-value"}
        )
        relay = GeminiProvider(settings, transport, GeminiOptions())
        req = request(
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What is it?"},
                            {"type": "image_url", "image_url": {"url": origin + "/cat"}},
                        ],
                    }
                ]
            }
        )
        result = await relay.chat(req, ctx())
        assert result.choices[0].message.content == "a cat"
        (sent,) = up.requests
        assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
        assert sent.headers["x-relay-token"] == "relay-secret-value" and "x-goog-api-key" not in sent.headers
        assert sent.json["contents"][0]["parts"][1] == {
            "inlineData": {"mimeType": "image/png", "data": "iVBORy1ieXRlcw=="}
        }


async def test_a_cut_off_stream_event_is_an_invalid_response(transport: Transport) -> None:
    async def cut(_: web.Request) -> web.Response:
        body = b'data: {"candidates": [{"content": {"parts": [{"text": "Hel\r\n\r\n'
        return web.Response(body=body, headers={"Content-Type": "text/event-stream"})

    async with serve({"POST /v1beta/models/{m}": cut}) as origin:
        with pytest.raises(InvalidUpstreamResponse) as info:
            await collect(
                provider(origin + "/v1beta", transport).stream_chat(
                    request({"messages": [{"role": "user", "content": "x"}]}), ctx()
                )
            )
    assert info.value.provider == "gem" and info.value.retryable


# ----------------------------------------------------------------------------------------------- refusals


async def test_unsupported_features_fail_before_any_request(upstream: GeminiUpstream, transport: Transport) -> None:
    prov = provider(upstream.base_url, transport)
    bad_part = request({"messages": [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": "v"}}]}]})
    with pytest.raises(UnsupportedFeature) as info:
        await prov.chat(bad_part, ctx())
    assert info.value.path == "messages[0].content[0]"
    audio_out = request({"messages": [{"role": "user", "content": "x"}], "modalities": ["text", "audio"]})
    with pytest.raises(UnsupportedFeature):
        await collect(prov.stream_chat(audio_out, ctx()))
    with pytest.raises(InvalidRequest):
        await prov.chat(
            request(
                {
                    "messages": [
                        {"role": "user", "content": "x"},
                        {"role": "tool", "tool_call_id": "nope", "content": "1"},
                    ]
                }
            ),
            ctx(),
        )
    assert upstream.requests == []


async def test_download_limit_fails_before_the_upstream_call(upstream: GeminiUpstream, transport: Transport) -> None:
    async def big(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * 5000, headers={"Content-Type": "image/png"})

    async with serve({"GET /big.png": big}) as origin:
        prov = provider(upstream.base_url, transport, max_inline_bytes=1000)
        req = request(
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": origin + "/big.png"}}]}
                ]
            }
        )
        with pytest.raises(InvalidRequest) as info:
            await prov.chat(req, ctx())
        assert "max_inline_bytes=1000" in str(info.value) and info.value.path == "messages[0].content[0].image_url.url"
        missing = request(
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": origin + "/gone.png"}}]}
                ]
            }
        )
        with pytest.raises(InvalidRequest, match="HTTP 404"):
            await prov.chat(missing, ctx())
    assert upstream.requests == []


# ----------------------------------------------------------------------------------------------- faults


async def test_rate_limit_with_retry_info(upstream: GeminiUpstream, transport: Transport) -> None:
    upstream.add_fault(Fault.status_code(429))
    prov = provider(upstream.base_url, transport)
    with pytest.raises(RateLimited) as info:
        await prov.chat(request({"messages": [{"role": "user", "content": "x"}]}), ctx())
    err = info.value
    assert err.retry_after == 1.0 and err.retryable and err.code == "RESOURCE_EXHAUSTED" and err.status == 429
    upstream.add_fault(Fault.status_code(429, retry_after=7))
    with pytest.raises(RateLimited) as info:
        await collect(prov.stream_chat(request({"messages": [{"role": "user", "content": "x"}]}), ctx()))
    assert info.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("status", "cls"), [(503, Overloaded), (500, ServerError), (504, ServerError), (403, PermissionDenied)]
)
async def test_status_faults(upstream: GeminiUpstream, transport: Transport, status: int, cls: type[Exception]) -> None:
    upstream.add_fault(Fault.status_code(status))
    with pytest.raises(cls):
        await provider(upstream.base_url, transport).chat(
            request({"messages": [{"role": "user", "content": "x"}]}), ctx()
        )


async def test_bad_key_and_unknown_model(upstream: GeminiUpstream, transport: Transport) -> None:
    wrong = "AIzaSyWRONG-KEY-0123456789abcdefghijk"
    with pytest.raises(AuthenticationFailed) as info:
        await provider(upstream.base_url, transport, key=wrong).chat(
            request({"messages": [{"role": "user", "content": "x"}]}), ctx()
        )
    assert info.value.status == 400 and info.value.code == "API_KEY_INVALID" and wrong not in str(info.value)
    with pytest.raises(NotFound) as nf:
        await provider(upstream.base_url, transport).chat(
            request({"messages": [{"role": "user", "content": "x"}]}), ctx("gemini-9-ultra")
        )
    assert "models/gemini-9-ultra is not found" in nf.value.message


async def test_context_window(transport: Transport) -> None:
    async with GeminiUpstream(api_key=KEY, context_window=10) as up:
        with pytest.raises(ContextWindowExceeded) as info:
            await provider(up.base_url, transport).chat(
                request({"messages": [{"role": "user", "content": "word " * 100}]}), ctx()
            )
    assert "exceeds the maximum number of tokens allowed (10)" in info.value.message


async def test_blocked_prompt(upstream: GeminiUpstream, transport: Transport) -> None:
    prov = provider(upstream.base_url, transport)
    upstream.push_reply(ScriptedBlock(reason="SAFETY", message="blocked by policy"))
    upstream.push_reply(ScriptedBlock(reason="PROHIBITED_CONTENT"))
    with pytest.raises(ContentPolicyViolation) as info:
        await prov.chat(request({"messages": [{"role": "user", "content": "x"}]}), ctx())
    assert info.value.code == "SAFETY" and "blocked by policy" in info.value.message
    with pytest.raises(ContentPolicyViolation) as info:
        await collect(prov.stream_chat(request({"messages": [{"role": "user", "content": "x"}]}), ctx()))
    assert info.value.code == "PROHIBITED_CONTENT"


async def test_refusal_is_a_safety_stop(upstream: GeminiUpstream, transport: Transport) -> None:
    upstream.push_reply(ScriptedReply(refusal="no"))
    result = await provider(upstream.base_url, transport).chat(
        request({"messages": [{"role": "user", "content": "x"}]}), ctx()
    )
    assert result.choices[0].finish_reason == "content_filter" and result.choices[0].message.content is None


async def test_stream_faults(upstream: GeminiUpstream, transport: Transport) -> None:
    prov = provider(upstream.base_url, transport)
    upstream.reply = ScriptedReply(content="abcdefghijklmnopqrstuvwxyz", chunk_size=4)
    req = request({"messages": [{"role": "user", "content": "x"}], "stream": True})

    upstream.add_fault(Fault.truncate(after_chunks=2))
    with pytest.raises(StreamInterrupted) as info:
        await collect(prov.stream_chat(req, ctx()))
    assert info.value.partial == "abcdefgh"

    upstream.add_fault(Fault.error_event(after_chunks=1))
    with pytest.raises(ServerError):
        await collect(prov.stream_chat(req, ctx()))

    upstream.add_fault(
        Fault.error_event(
            after_chunks=1,
            body={"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}},
        )
    )
    with pytest.raises(Overloaded):
        await collect(prov.stream_chat(req, ctx()))

    # A cut-off event in the CRLF-framed stream is an invalid upstream response, never a silent success.
    upstream.add_fault(Fault.malformed(after_chunks=1))
    with pytest.raises(InvalidUpstreamResponse):
        await collect(prov.stream_chat(req, ctx()))

    # Gemini never sends [DONE]: the no_done fault changes nothing, the stream completes at its finishReason.
    upstream.add_fault(Fault.no_done())
    assert fold(await collect(prov.stream_chat(req, ctx()))).content == "abcdefghijklmnopqrstuvwxyz"


async def test_non_stream_faults(upstream: GeminiUpstream, transport: Transport) -> None:
    prov = provider(upstream.base_url, transport)
    req = request({"messages": [{"role": "user", "content": "x"}]})
    upstream.add_fault(Fault.malformed())
    with pytest.raises(InvalidUpstreamResponse):
        await prov.chat(req, ctx())
    upstream.add_fault(Fault.error_event())  # an error body inside a 200
    with pytest.raises(ServerError) as info:
        await prov.chat(req, ctx())
    assert info.value.code == "INTERNAL"
    upstream.add_fault(Fault.status_code(502, body="<html>Bad Gateway</html>"))
    with pytest.raises(ServerError) as html:
        await prov.chat(req, ctx())
    assert html.value.status == 502 and "Bad Gateway" in html.value.message


async def test_closing_a_stream_early_leaves_the_provider_usable(
    upstream: GeminiUpstream, transport: Transport
) -> None:
    upstream.reply = ScriptedReply(content="x" * 400, chunk_size=10)
    prov = provider(upstream.base_url, transport)
    gen = prov.stream_chat(request({"messages": [{"role": "user", "content": "x"}]}), ctx())
    assert isinstance(gen, AsyncGenerator)
    first = await gen.__anext__()
    assert first.choices[0].delta.role == "assistant"
    await gen.aclose()
    again = fold(await collect(prov.stream_chat(request({"messages": [{"role": "user", "content": "x"}]}), ctx())))
    assert again.content == "x" * 400


# ----------------------------------------------------------------------------------------------- spec / config


def test_spec_and_capabilities(transport: Transport) -> None:
    assert (SPEC.name, SPEC.api_key_env, SPEC.default_base_url) == (
        "gemini",
        "GEMINI_API_KEY",
        "https://generativelanguage.googleapis.com/v1beta",
    )
    prov = provider("https://example.invalid/v1beta", transport)
    assert SPEC.option_keys == OPTION_KEYS  # declared in __init__ without importing the implementation
    caps = prov.capabilities("gemini-2.5-flash")
    assert caps.accepts_prefill is False and caps.context_window == 1_048_576
    assert prov.capabilities("models/gemini-3-pro-preview").context_window == 1_048_576
    assert prov.capabilities("gemini-1.5-pro").context_window == 2_097_152
    assert prov.capabilities("my-custom-model").context_window is None
    assert prov.capabilities("gemini-2.5-flash-image").context_window is None


def test_options_are_validated(transport: Transport) -> None:
    with pytest.raises(ConfigError) as info:
        provider("https://x/v1beta", transport, download_url="always")
    assert info.value.key == "providers.gem.download_url" and "did you mean 'download_urls'" in str(info.value)
    with pytest.raises(ConfigError) as info:
        provider("https://x/v1beta", transport, json_schema_mode="raw")
    assert info.value.key == "providers.gem.json_schema_mode"
    with pytest.raises(ConfigError):
        provider("https://x/v1beta", transport, max_inline_bytes=0)
    with pytest.raises(ConfigError):
        provider("https://x/v1beta", transport, safety_settings=[{"category": "X"}])


def test_importing_the_package_is_cheap() -> None:
    code = (
        "import sys, polyrelay_gemini; "
        "print(sorted(m for m in sys.modules if m.startswith(('aiohttp', 'polyrelay_gemini.', 'cattrs'))))"
    )
    root = Path(__file__).parents[3]
    env_path = f"{root / 'src'}:{root / 'providers'}"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONPATH": env_path}
    )
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------------------------- the simulator


async def test_simulator_rejects_what_the_real_api_rejects(upstream: GeminiUpstream) -> None:
    url = upstream.base_url + "/models/gemini-3-pro-preview:generateContent"
    cases = [
        ({"contents": [{"role": "user", "parts": [{"text": "x"}]}], "generationConfig": {"max_tokens": 5}},
         'Unknown name "max_tokens"'),
        ({"contents": []}, "contents is not specified"),
        ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "valid role"),
        ({"contents": [{"role": "user", "parts": []}]}, "must not be empty"),
        ({"contents": [{"role": "user", "parts": [{"text": "x"}]}, {"role": "model", "parts": [
            {"functionCall": {"name": "f", "args": {}}}]}]}, "missing a `thought_signature`"),
        ({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
          "generationConfig": {"thinkingConfig": {"thinkingBudget": 1, "thinkingLevel": "low"}}}, "only one of"),
    ]  # fmt: skip
    async with aiohttp.ClientSession() as session:
        for body, message in cases:
            async with session.post(url, json=body, headers={"x-goog-api-key": KEY}) as resp:
                error = (await resp.json())["error"]
                assert (resp.status, error["status"]) == (400, "INVALID_ARGUMENT") and message in error["message"]
        async with session.post(url, json=cases[1][0]) as resp:
            assert resp.status == 403 and (await resp.json())["error"]["status"] == "PERMISSION_DENIED"


async def test_several_candidates_stream_as_choices(upstream: GeminiUpstream, transport: Transport) -> None:
    upstream.reply = ScriptedReply(content="same answer", chunk_size=4)
    prov = provider(upstream.base_url, transport)
    req = request({"messages": [{"role": "user", "content": "x"}], "n": 2, "stream_options": {"include_usage": True}})
    chunks = await collect(prov.stream_chat(req, ctx()))
    for index in (0, 1):
        f = fold(chunks, index)
        assert (f.content, f.finish_reason, f.roles) == ("same answer", "stop", 1)
    assert upstream.requests[0].json["generationConfig"] == {"candidateCount": 2}
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 2 * 3
    whole = await prov.chat(request({"messages": [{"role": "user", "content": "x"}], "n": 2}), ctx())
    assert [c.message.content for c in whole.choices] == ["same answer", "same answer"]
