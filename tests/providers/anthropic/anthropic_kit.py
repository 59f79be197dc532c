"""Shared helpers for the Anthropic provider tests: cassettes, stream translation, chunk accumulation."""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from polyrelay.errors import Secret
from polyrelay.provider import CallContext, ProviderSettings
from polyrelay.sse import SSEDecoder
from polyrelay.transport import Timeouts, Transport
from polyrelay.types import ChatCompletionChunk, ChatRequest, Usage
from polyrelay.types._converters import parse_request
from polyrelay_anthropic import SPEC
from polyrelay_anthropic._provider import AnthropicProvider
from polyrelay_anthropic._request import PreparedRequest, ResponsePlan, TranslateOptions, build_request
from polyrelay_anthropic._stream import StreamTranslator
from polyrelay_anthropic._wire import parse_event, to_wire

CASSETTES = Path(__file__).resolve().parents[2] / "fixtures" / "recorded" / "anthropic"


@dataclass
class Exchange:
    request: dict[str, Any]
    status: int
    json: Any = None
    sse: bytes | None = None


@functools.cache
def load(name: str) -> list[Exchange]:
    data = yaml.safe_load((CASSETTES / name).read_text())
    out = []
    for item in data["interactions"]:
        response = item["response"]
        body = response.get("body")
        out.append(
            Exchange(
                request=item["request"]["parsed_body"],
                status=response["status"]["code"],
                json=response.get("parsed_body"),
                sse=body["string"].encode() if body else None,
            )
        )
    return out


def openai(body: dict[str, Any]) -> ChatRequest:
    return parse_request(body)


def translate(
    body: dict[str, Any], *, model: str = "claude-sonnet-4-5", stream: bool = False, **options: Any
) -> PreparedRequest:
    return build_request(
        parse_request({"model": "public", **body}),
        model=model,
        provider="claude",
        stream=stream,
        options=TranslateOptions(**options),
    )


def wire(body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = to_wire(translate(body, **kw).body)
    return out


@dataclass
class Collected:
    chunks: list[ChatCompletionChunk] = field(default_factory=list)
    content: str = ""
    reasoning: str = ""
    roles: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish: list[str] = field(default_factory=list)
    usage: Usage | None = None
    thinking_blocks: list[dict[str, Any]] = field(default_factory=list)
    server_blocks: list[dict[str, Any]] = field(default_factory=list)

    def add(self, chunk: ChatCompletionChunk) -> None:
        self.chunks.append(chunk)
        if chunk.usage is not None:
            assert chunk.choices == ()
            self.usage = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            if delta.role:
                self.roles.append(delta.role)
            self.content += delta.content or ""
            self.reasoning += delta.reasoning_content or ""
            self.thinking_blocks += delta.extra.get("thinking_blocks", [])
            self.server_blocks += delta.extra.get("server_tool_blocks", [])
            for call in delta.tool_calls or ():
                slot = self.tool_calls.get(call.index)
                if slot is None:
                    # The first fragment of a call carries id, type and name (and arguments "").
                    assert call.id and call.type == "function" and call.function and call.function.name
                    assert call.function.arguments == ""
                    slot = self.tool_calls[call.index] = {"id": call.id, "name": call.function.name, "arguments": ""}
                else:
                    assert call.id is None and call.function is not None and call.function.name is None
                slot["arguments"] += call.function.arguments or "" if call.function else ""
            if choice.finish_reason:
                self.finish.append(choice.finish_reason)

    def arguments(self, index: int) -> Any:
        return json.loads(self.tool_calls[index]["arguments"])


def translate_stream(
    raw: bytes,
    cuts: Iterable[int] = (),
    *,
    plan: ResponsePlan | None = None,
    include_usage: bool = True,
) -> Collected:
    """Feed ``raw`` SSE bytes split at ``cuts`` through the decoder and the translator (as the provider does)."""
    translator = StreamTranslator(
        plan=plan or ResponsePlan(), provider="claude", model="m", include_usage=include_usage
    )
    decoder = SSEDecoder()
    out = Collected()
    points = [0, *sorted(set(cuts)), len(raw)]
    pieces = [raw[a:b] for a, b in itertools.pairwise(points) if b > a]
    for piece in pieces:
        for event in decoder.feed(piece):
            for chunk in translator.feed(parse_event(event.json())):
                out.add(chunk)
            if translator.done:
                return out
    for event in decoder.close():
        for chunk in translator.feed(parse_event(event.json())):
            out.add(chunk)
    for chunk in translator.end_of_stream():
        out.add(chunk)
    return out


def settings(base_url: str | None = None, *, key: str | None = "test-key", **options: Any) -> ProviderSettings:
    return ProviderSettings(
        name="claude",
        type="anthropic",
        base_url=base_url,
        api_key=Secret(key) if key is not None else None,
        options=options,
        config_path="providers.claude",
    )


def provider(base_url: str, transport: Transport, *, key: str | None = "test-key", **options: Any) -> AnthropicProvider:
    made = SPEC.factory(settings(base_url, key=key, **options), transport)
    assert isinstance(made, AnthropicProvider)
    return made


def ctx(model: str = "claude-sonnet-4-5", **kw: Any) -> CallContext:
    return CallContext(model=model, timeouts=Timeouts(connect=5, first_byte=5, idle=5, total=10), **kw)


def every_cut(raw: bytes) -> Sequence[int]:
    return range(1, len(raw))


def sse(*events: dict[str, Any]) -> bytes:
    """Anthropic-style SSE bytes: an ``event:`` line and a padded ``data:`` line per event."""
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}   \n\n".encode() for e in events)


def message_start(input_tokens: int = 10, **usage: int) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1, **usage},
        },
    }


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def delta(index: int, **body: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": body}


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str | None = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": usage or {"output_tokens": 5},
    }


MESSAGE_STOP: dict[str, Any] = {"type": "message_stop"}
PING: dict[str, Any] = {"type": "ping"}
