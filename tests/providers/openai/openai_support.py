"""Shared helpers of the OpenAI-compatible provider tests: building providers, mocking the upstream with
aioresponses through a real :class:`~polyrelay.transport.Transport`, and reading what the provider streamed."""

from __future__ import annotations

import json
import re
import types
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import yaml
from aioresponses import aioresponses

from polyrelay.errors import Secret
from polyrelay.provider import CallContext, ProviderSettings
from polyrelay.transport import Timeouts, Transport
from polyrelay.types.completion import ChatCompletionChunk, Usage
from polyrelay_openai import SPEC, SPECS
from polyrelay_openai._provider import OpenAICompatProvider

RECORDED = Path(__file__).parents[2] / "fixtures" / "recorded"
FAKE_KEY = "sk-FAKEKEY-0123456789abcdefABCDEF"
BASE = "https://api.example.com/v1"
CHAT_URL = BASE + "/chat/completions"


class CompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds responses without the ``stream_writer`` argument aiohttp 3.14 requires."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", types.SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


def mock_post(
    m: aioresponses,
    url: str | re.Pattern[str] = CHAT_URL,
    *,
    status: int = 200,
    payload: Any = None,
    body: str | bytes = b"",
    headers: Mapping[str, str] | None = None,
    content_type: str | None = None,
) -> None:
    """Answer the next POST to ``url`` (a JSON ``payload`` or a raw ``body``)."""
    if content_type is None:
        content_type = "application/json" if payload is not None else "text/event-stream"
    kw: dict[str, Any] = {"status": status, "headers": dict(headers or {}), "content_type": content_type}
    if payload is not None:
        kw["body"] = json.dumps(payload)
    else:
        kw["body"] = body
    m.post(url, response_class=CompatResponse, **kw)


def sse(*events: Any, done: bool = True) -> bytes:
    """An SSE body: each event JSON-encoded (strings verbatim) as ``data:``, then ``[DONE]``."""
    out = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def chunk(delta: Mapping[str, Any] | None = None, *, finish: str | None = None, **top: Any) -> dict[str, Any]:
    """One upstream chunk with a single choice."""
    choice: dict[str, Any] = {"index": 0, "delta": dict(delta or {}), "finish_reason": finish}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [choice],
        **top,
    }


def completion_body(content: str | None = "Hi", **message: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content, **message}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def make_provider(
    transport: Transport,
    *,
    spec_type: str = "openai",
    base_url: str | None = BASE,
    api_key: str | None = FAKE_KEY,
    headers: Mapping[str, str] | None = None,
    config_path: str = "providers.up",
    **options: Any,
) -> OpenAICompatProvider:
    """Build a provider through its ProviderSpec factory, as the registry would."""
    settings = ProviderSettings(
        name="up",
        type=spec_type,
        base_url=base_url,
        api_key=Secret(api_key) if api_key else None,
        headers=dict(headers or {}),
        options=options,
        config_path=config_path,
    )
    provider = SPECS.get(spec_type, SPEC).factory(settings, transport)
    assert isinstance(provider, OpenAICompatProvider)
    return provider


def ctx(model: str = "up-model", **kw: Any) -> CallContext:
    return CallContext(model=model, timeouts=Timeouts(connect=5, first_byte=10, idle=10, total=30), **kw)


def sent(m: aioresponses, index: int = -1) -> tuple[dict[str, Any], Mapping[str, str], str]:
    """(JSON body, headers, URL) of a request the provider sent (default: the last one)."""
    calls = [(key, call) for key, calls in m.requests.items() for call in calls]
    (_method, url), call = calls[index]
    return json.loads(call.kwargs["data"]), call.kwargs["headers"], str(url)


async def collect(stream: AsyncIterator[ChatCompletionChunk]) -> list[ChatCompletionChunk]:
    return [c async for c in stream]


@attrs.define
class Assembled:
    """What a consumer of OpenAI chunks ends up with (choice 0)."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, str]] = attrs.field(factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    usage_chunks: int = 0
    role_chunks: int = 0


def assemble(chunks: list[ChatCompletionChunk]) -> Assembled:
    """Accumulate chunks the way an OpenAI client does, checking the stream contract on the way: role on the
    first chunk only, tool calls by index with id/type/name on their first fragment."""
    out = Assembled()
    for i, c in enumerate(chunks):
        if c.usage is not None:
            out.usage = c.usage
            out.usage_chunks += 1
        for ch in c.choices:
            assert ch.index == 0
            d = ch.delta
            if d.role is not None:
                assert d.role == "assistant"
                out.role_chunks += 1
            elif out.role_chunks == 0:
                raise AssertionError(f"chunk {i} carries content before any role chunk")
            out.content += d.content or ""
            out.reasoning += d.reasoning_content or ""
            for tc in d.tool_calls or ():
                if tc.index == len(out.tool_calls):
                    assert tc.id and tc.type == "function" and tc.function is not None and tc.function.name
                    out.tool_calls.append(
                        {"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments or ""}
                    )
                else:
                    assert tc.index < len(out.tool_calls), "tool-call indices must be dense from 0"
                    assert tc.id is None and tc.type is None
                    if tc.function is not None:
                        out.tool_calls[tc.index]["arguments"] += tc.function.arguments or ""
            if ch.finish_reason:
                out.finish_reason = ch.finish_reason
    return out


def load_cassette(path: Path) -> list[dict[str, Any]]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    interactions: list[dict[str, Any]] = data["interactions"]
    return interactions
