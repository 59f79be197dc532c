"""Shared helpers of the Gemini provider tests: cassettes, a provider on a real Transport, feeding raw SSE bytes
through the stream state machine, and folding chunks back into one answer."""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import yaml
from aiohttp import web

from polyrelay.errors import Secret
from polyrelay.provider import CallContext, ProviderSettings
from polyrelay.sse import SSEDecoder
from polyrelay.transport import Timeouts, Transport
from polyrelay.types._converters import parse_request
from polyrelay.types.chat import ChatRequest
from polyrelay.types.completion import ChatCompletionChunk, Usage
from polyrelay_gemini import SPEC
from polyrelay_gemini._options import GeminiOptions
from polyrelay_gemini._provider import GeminiProvider
from polyrelay_gemini._request import translate
from polyrelay_gemini._stream import StreamTranslator
from polyrelay_gemini._wire import wire_converter

RECORDED = Path(__file__).parents[2] / "fixtures" / "recorded" / "gemini"
KEY = "AIzaSyFAKE-0123456789abcdefghijklmnopq"
FAST = Timeouts(connect=5, first_byte=5, idle=5, total=10)


def cassette(name: str) -> list[dict[str, Any]]:
    """The interactions of ``tests/fixtures/recorded/gemini/<name>`` (a fresh copy: tests may not share state)."""
    return copy.deepcopy(_load(name))


@functools.cache
def _load(name: str) -> list[dict[str, Any]]:
    with (RECORDED / name).open("rb") as f:
        data = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    interactions: list[dict[str, Any]] = data["interactions"]
    return interactions


def gemini_calls(name: str) -> list[dict[str, Any]]:
    """The generateContent / streamGenerateContent interactions of a cassette (not token counts, downloads)."""
    return [i for i in cassette(name) if "Content" in i["request"]["uri"] and "countTokens" not in i["request"]["uri"]]


def stream_body(interaction: Mapping[str, Any]) -> bytes:
    body = interaction["response"]["body"]["string"]
    return body if isinstance(body, bytes) else body.encode()


def request(data: Mapping[str, Any]) -> ChatRequest:
    return parse_request({"model": "m", **data})


def body_of(req: Mapping[str, Any], *, model: str = "gemini-2.5-flash", **options: Any) -> dict[str, Any]:
    """The Gemini JSON body our translation produces for an OpenAI request dict (no downloads)."""
    t = translate(request(req), model=model, options=GeminiOptions(**options), provider="gemini")
    assert not t.downloads
    out: dict[str, Any] = wire_converter().unstructure(t.body)
    return out


def provider(base_url: str, transport: Transport, *, key: str | None = KEY, **options: Any) -> GeminiProvider:
    settings = ProviderSettings(
        name="gem",
        type="gemini",
        base_url=base_url,
        api_key=Secret(key) if key is not None else None,
        options=options,
        config_path="providers.gem",
    )
    built = SPEC.factory(settings, transport)
    assert isinstance(built, GeminiProvider)
    return built


def ctx(model: str = "gemini-2.5-flash") -> CallContext:
    return CallContext(model=model, timeouts=FAST, requested_model="public-name")


@contextlib.asynccontextmanager
async def serve(routes: Mapping[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]) -> AsyncIterator[str]:
    """A throwaway HTTP server on 127.0.0.1 (``{method path: handler}``); yields its origin."""
    app = web.Application()
    for route, handler in routes.items():
        method, path = route.split(" ", 1)
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def split_at(raw: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(raw)})
    edges = [0, *points, len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(edges)]


def run_stream(
    pieces: Sequence[bytes], *, include_usage: bool = True, n: int = 1, model: str = "m"
) -> list[ChatCompletionChunk]:
    """Feed raw SSE bytes (in network-sized pieces) through the decoder and the state machine, like the provider."""
    decoder = SSEDecoder()
    state = StreamTranslator(provider="gemini", model=model, created=0, include_usage=include_usage, expected_choices=n)
    out: list[ChatCompletionChunk] = []
    for piece in pieces:
        for event in decoder.feed(piece):
            if event.data.strip():
                out.extend(state.feed(event.json()))
            if state.complete:
                return out
    for event in decoder.close():
        if event.data.strip():
            out.extend(state.feed(event.json()))
    out.extend(state.end_of_stream())
    return out


@attrs.define
class Folded:
    """Stream chunks folded into one answer per choice (index 0 unless said)."""

    content: str | None = None
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] = attrs.field(factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    roles: int = 0
    extras: list[dict[str, Any]] = attrs.field(factory=list)
    ids: set[str] = attrs.field(factory=set)


def fold(chunks: Sequence[ChatCompletionChunk], index: int = 0) -> Folded:
    out = Folded()
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        out.ids.add(chunk.id)
        if chunk.usage is not None:
            assert not chunk.choices, "usage only on the final choices=[] chunk"
            out.usage = chunk.usage
        for choice in chunk.choices:
            if choice.index != index:
                continue
            d = choice.delta
            if d.role is not None:
                assert d.role == "assistant"
                out.roles += 1
            if d.content:
                out.content = (out.content or "") + d.content
            if d.reasoning_content:
                out.reasoning = (out.reasoning or "") + d.reasoning_content
            if d.extra:
                out.extras.append(dict(d.extra))
            for tc in d.tool_calls or ():
                if tc.id is not None:
                    assert tc.index not in calls, "a tool call opens once"
                    assert tc.type == "function" and tc.function is not None and tc.function.arguments == ""
                    calls[tc.index] = {"id": tc.id, "name": tc.function.name, "arguments": "", "extra": dict(tc.extra)}
                elif tc.function is not None and tc.function.arguments:
                    calls[tc.index]["arguments"] += tc.function.arguments
            if choice.finish_reason is not None:
                assert out.finish_reason is None, "one finish_reason per choice"
                out.finish_reason = choice.finish_reason
    out.tool_calls = [calls[i] for i in sorted(calls)]
    return out


def b64(value: str) -> bytes:
    """Decode standard or URL-safe base64 (python-genai re-encodes signatures and data URL-safe)."""
    value = value.replace("-", "+").replace("_", "/")
    return base64.b64decode(value + "=" * (-len(value) % 4))


# snake_case spellings in recorded bodies (python-genai sends some) → the camelCase we send.
_SNAKE = {
    "parameters_json_schema": "parametersJsonSchema",
    "function_declarations": "functionDeclarations",
    "thinking_budget": "thinkingBudget",
    "include_thoughts": "includeThoughts",
    "thinking_level": "thinkingLevel",
}
# Values that are user data (schemas, arguments, results): their keys are never renamed.
_OPAQUE = frozenset({"args", "response", "properties", "parametersJsonSchema", "responseJsonSchema"})


def _upper_types(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: v.upper() if k == "type" and isinstance(v, str) else _upper_types(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_upper_types(v) for v in schema]
    return schema


def normalize(body: Mapping[str, Any], *, keep_ids: bool = True) -> dict[str, Any]:
    """A request body reduced to what must match between ours and a recorded one (see the recorded tests)."""

    def walk(v: Any, key: str = "") -> Any:
        if isinstance(v, Mapping):
            if key in _OPAQUE:
                return json.loads(json.dumps(v))
            out: dict[str, Any] = {}
            for raw_key, sub in v.items():
                k = _SNAKE.get(str(raw_key), str(raw_key))
                if k == "thoughtSignature" or (k == "data" and key == "inlineData"):
                    out[k] = b64(sub)
                elif k == "id" and key in ("functionCall", "functionResponse") and not keep_ids:
                    continue
                else:
                    out[k] = walk(sub, k)
            return out
        if isinstance(v, list):
            return [walk(x, key) for x in v]
        return v

    b: dict[str, Any] = walk(body)
    if isinstance(b.get("systemInstruction"), dict):
        b["systemInstruction"].pop("role", None)
    gen = b.get("generationConfig") or {}
    if gen.get("responseModalities") == ["TEXT"]:
        del gen["responseModalities"]
    if gen:
        b["generationConfig"] = gen
    else:
        b.pop("generationConfig", None)
    # pydantic-ai wraps tools in a single object rather than a list in one cassette.
    if isinstance(b.get("tools"), dict):
        b["tools"] = [b["tools"]]
    names: list[str] = []
    for tool in b.get("tools") or ():
        for decl in tool.get("functionDeclarations") or ():
            names.append(decl["name"])
            if decl.get("description") == "":
                del decl["description"]
            if "parameters" in decl:  # Gemini takes type names in either case; we send the proto's upper case
                decl["parameters"] = _upper_types(decl["parameters"])
            if decl.get("parameters") == {"type": "OBJECT", "properties": {}}:
                del decl["parameters"]  # "no arguments": we leave the schema out, pydantic-ai sends it empty
    fcc = (b.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if sorted(fcc.get("allowedFunctionNames") or ()) == sorted(names) and names:
        del fcc["allowedFunctionNames"]  # every tool allowed == no restriction (OpenAI "required")
    for content in b.get("contents") or ():
        for part in content.get("parts") or ():
            fr = part.get("functionResponse")
            if fr is not None and set(fr["response"]) == {"return_value"}:
                fr["response"] = {"output": fr["response"]["return_value"]}  # pydantic-ai's key; ours is Google's
    return b
