"""Fuzzing each provider's response parsing with mutated recorded traffic.

Every recorded chat response under tests/fixtures/recorded (JSON bodies, SSE streams and error bodies of OpenAI and
OpenAI-compatible upstreams, Gemini and Anthropic) is mutated — keys deleted, values nulled or replaced with other
types, JSON text truncated, stream events dropped, repeated or cut, the stream cut at any byte — and served to the
provider's real ``chat`` / ``stream_chat`` through a stub transport (no network). The outcome must be a parsed
:class:`ChatCompletion` / :class:`ChatCompletionChunk` objects, or a polyrelay :class:`UpstreamError`
(:class:`InvalidUpstreamResponse`, :class:`StreamInterrupted`, a classified status error); never a raw
``KeyError`` / ``TypeError`` / ``AttributeError`` or any other exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, cast
from unittest import mock

import attrs
import pytest
from fuzz_support import MUTATIONS, attrs_state, fuzz, json_paths, json_values, load_cassettes, mutate
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from polyrelay.errors import InvalidUpstreamResponse, Secret, UpstreamError, UpstreamStatusError
from polyrelay.provider import CallContext, ChatProvider, ProviderSettings, ProviderSpec
from polyrelay.sse import ServerSentEvent, SSEDecoder, encode_event
from polyrelay.transport import Timeouts, Transport
from polyrelay.types._converters import fast_openai_converter, parse_completion, text_delta_chunk, to_json
from polyrelay.types._plain import NOT_PLAIN, plain_chunk, plain_completion
from polyrelay.types.chat import ChatRequest, Message, StreamOptions
from polyrelay.types.completion import ChatCompletion, ChatCompletionChunk
from polyrelay_openai import _response as openai_response
from polyrelay_openai._errors import is_inband_error
from polyrelay_openai._response import normalize_completion
from polyrelay_openai._rows import ROWS, CompatRow

RECORDED = Path(__file__).parents[1] / "fixtures" / "recorded"
KEY = "sk-FUZZ-0123456789abcdefghij"


# -- the recorded responses -------------------------------------------------------------------------------------


@attrs.frozen
class Recorded:
    """One recorded chat response."""

    kind: str  # openai | gemini | anthropic
    base_url: str
    model: str
    status: int
    headers: Mapping[str, str]
    stream: bool
    json: Any = None  # JSON bodies
    events: tuple[ServerSentEvent, ...] = ()  # SSE bodies


def _kind(uri: str) -> tuple[str, str] | None:
    """(provider kind, base URL) of a chat request URI, or None for other endpoints."""
    if uri.endswith("/chat/completions"):
        return "openai", uri[: -len("/chat/completions")]
    if ":generateContent" in uri or ":streamGenerateContent" in uri:
        return "gemini", uri.split("/models/")[0]
    if uri.split("?")[0].endswith("/v1/messages"):
        return "anthropic", uri.split("/messages")[0]
    return None


def _load() -> list[Recorded]:
    out: list[Recorded] = []
    for inter in load_cassettes(RECORDED):
        req, resp = inter["request"], inter["response"]
        found = _kind(req["uri"])
        if found is None or req["method"] != "POST":
            continue
        kind, base = found
        headers = {k: ", ".join(v) if isinstance(v, list) else str(v) for k, v in (resp.get("headers") or {}).items()}
        ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        body = req.get("parsed_body") or {}
        model: str = "m"
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            model = body["model"]
        if kind == "gemini":
            model = req["uri"].split("/models/")[1].split(":")[0]
        status = resp["status"]["code"]
        if "text/event-stream" in ctype:
            decoder = SSEDecoder()
            events = decoder.feed(resp["body"]["string"].encode()) + decoder.close()
            out.append(Recorded(kind, base, model, status, headers, True, events=tuple(events)))
        elif "parsed_body" in resp:
            out.append(Recorded(kind, base, model, status, headers, False, json=resp["parsed_body"]))
    return out


ALL = _load()
BY_KIND = {k: [r for r in ALL if r.kind == k] for k in ("openai", "gemini", "anthropic")}


def test_recorded_responses_were_found() -> None:
    assert len(BY_KIND["openai"]) >= 60
    assert sum(r.stream for r in BY_KIND["openai"]) >= 8
    assert any(r.status >= 400 for r in BY_KIND["openai"])


# -- a transport that serves one canned response ----------------------------------------------------------------


class StubResponse:
    """The parts of :class:`polyrelay.transport.HttpResponse` providers use, over canned bytes."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes, pieces: int) -> None:
        self.status = status
        self.headers: Mapping[str, str] = CIMultiDictProxy(CIMultiDict(headers))
        self.url = "http://127.0.0.1/stub"
        self._body = body
        self._pieces = max(1, pieces)
        self.closed = False

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id") or self.headers.get("request-id")

    async def read(self) -> bytes:
        self.closed = True  # as HttpResponse.read: the whole body read gives the connection back
        return self._body

    async def text(self) -> str:
        return (await self.read()).decode("utf-8", "replace")

    async def json(self) -> Any:
        body = await self.read()
        try:
            return json.loads(body)
        except ValueError as exc:  # what HttpResponse.json raises
            raise InvalidUpstreamResponse("upstream returned a body that is not JSON", status=self.status) from exc

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        size = max(1, len(self._body) // self._pieces)
        for i in range(0, len(self._body), size):
            yield self._body[i : i + size]

    async def iter_sse(self) -> AsyncIterator[ServerSentEvent]:
        decoder = SSEDecoder()
        async for piece in self.iter_bytes():
            for event in decoder.feed(piece):
                yield event
        for event in decoder.close():
            yield event

    def close(self) -> None:
        self.closed = True

    def release(self) -> None:
        self.closed = True

    async def __aenter__(self) -> StubResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class StubTransport:
    """Answers every request with the response set in :attr:`next`."""

    def __init__(self) -> None:
        self.next: StubResponse | None = None

    async def request(self, method: str, url: str, **kw: Any) -> StubResponse:
        assert self.next is not None
        return self.next


def _spec(kind: str) -> ProviderSpec:
    if kind == "openai":
        from polyrelay_openai import SPEC as OPENAI

        return OPENAI
    module = pytest.importorskip(f"polyrelay_{kind}")
    spec: ProviderSpec = module.SPEC
    return spec


_PROVIDERS: dict[tuple[str, str], tuple[ChatProvider, StubTransport]] = {}


def provider_for(rec: Recorded) -> tuple[ChatProvider, StubTransport]:
    key = (rec.kind, rec.base_url)
    if key not in _PROVIDERS:
        transport = StubTransport()
        settings = ProviderSettings(
            name="up", type=rec.kind, base_url=rec.base_url, api_key=Secret(KEY), config_path="providers.up"
        )
        provider = _spec(rec.kind).factory(settings, cast(Transport, transport))
        assert isinstance(provider, ChatProvider)
        _PROVIDERS[key] = (provider, transport)
    return _PROVIDERS[key]


# -- running one case -------------------------------------------------------------------------------------------


async def _call(rec: Recorded, body: bytes, pieces: int) -> None:
    provider, transport = provider_for(rec)
    transport.next = StubResponse(rec.status, rec.headers, body, pieces)
    ctx = CallContext(model=rec.model, timeouts=Timeouts(), requested_model="public")
    messages = (Message(role="user", content="Hi"),)
    if rec.stream:
        request = ChatRequest(
            model="public", messages=messages, stream=True, stream_options=StreamOptions(include_usage=True)
        )
        async for chunk in provider.stream_chat(request, ctx):
            assert isinstance(chunk, ChatCompletionChunk)
    else:
        result = await provider.chat(ChatRequest(model="public", messages=messages), ctx)
        assert isinstance(result, ChatCompletion)
    assert transport.next.closed or rec.stream  # the non-stream path always releases the response


def run_case(rec: Recorded, body: bytes, pieces: int = 1) -> None:
    """Serve ``body`` as ``rec``'s response; only parsed objects or an UpstreamError may come out."""
    with contextlib.suppress(UpstreamError):
        asyncio.run(_call(rec, body, pieces))


def sse_body(events: list[tuple[str, str | None]]) -> bytes:
    return b"".join(encode_event(data, event=name) for data, name in events)


# -- strategies -------------------------------------------------------------------------------------------------


@st.composite
def mutated_json(draw: st.DrawFn, value: Any) -> Any:
    value = copy.deepcopy(value)
    for _ in range(draw(st.integers(1, 3))):
        paths = json_paths(value)
        if not paths:
            return draw(json_values)
        how = draw(st.sampled_from(MUTATIONS))
        value = mutate(value, draw(st.sampled_from(paths)), how, draw(json_values) if how == "replace" else None)
    return value


@st.composite
def json_case(draw: st.DrawFn, pool: list[Recorded]) -> tuple[Recorded, bytes]:
    rec = draw(st.sampled_from([r for r in pool if not r.stream]))
    text = json.dumps(rec.json, ensure_ascii=False)
    how = draw(st.sampled_from(["mutate", "mutate", "mutate", "truncate", "other_json"]))
    if how == "truncate":
        return rec, text.encode()[: draw(st.integers(0, len(text.encode())))]
    if how == "other_json":
        return rec, json.dumps(draw(json_values)).encode()
    return rec, json.dumps(draw(mutated_json(rec.json)), ensure_ascii=False).encode()


@st.composite
def stream_case(draw: st.DrawFn, pool: list[Recorded]) -> tuple[Recorded, bytes, int]:
    rec = draw(st.sampled_from([r for r in pool if r.stream]))
    events: list[tuple[str, str | None]] = [(e.data, e.event) for e in rec.events]
    for _ in range(draw(st.integers(1, 3))):
        if not events:
            break
        i = draw(st.integers(0, len(events) - 1))
        data, name = events[i]
        how = draw(st.sampled_from(["mutate", "mutate", "mutate", "truncate", "drop", "repeat", "rename"]))
        if how == "drop":
            del events[i]
        elif how == "repeat":
            events.insert(i, events[i])
        elif how == "rename":
            events[i] = (data, draw(st.none() | st.sampled_from(["error", "message_stop", "ping", "x"])))
        elif how == "truncate":
            events[i] = (data[: draw(st.integers(0, len(data)))], name)
        else:
            try:
                parsed = json.loads(data)
            except ValueError:
                continue  # [DONE]
            events[i] = (json.dumps(draw(mutated_json(parsed)), ensure_ascii=False), name)
    body = sse_body(events)
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]  # the connection drops anywhere
    return rec, body, draw(st.integers(1, 8))


# -- properties -------------------------------------------------------------------------------------------------

KINDS = [
    pytest.param("openai", id="openai-compatible"),
    pytest.param("gemini", id="gemini"),
    pytest.param("anthropic", id="anthropic"),
]


def _pool(kind: str, stream: bool) -> list[Recorded]:
    pool = [r for r in BY_KIND[kind] if r.stream == stream]
    if not pool:
        pytest.skip(f"no recorded {kind} {'streams' if stream else 'bodies'}")
    _spec(kind)  # skips when the provider package is not there
    return pool


@pytest.mark.parametrize("kind", KINDS)
def test_mutated_json_responses(kind: str) -> None:
    pool = _pool(kind, stream=False)

    @fuzz()
    @given(json_case(pool))
    def check(case: tuple[Recorded, bytes]) -> None:
        run_case(*case)

    check()


@pytest.mark.parametrize("kind", KINDS)
def test_mutated_streams(kind: str) -> None:
    pool = _pool(kind, stream=True)

    @fuzz()
    @given(stream_case(pool))
    def check(case: tuple[Recorded, bytes, int]) -> None:
        run_case(*case)

    check()


@pytest.mark.parametrize("kind", KINDS)
def test_unmutated_recorded_responses_parse_or_raise_classified_errors(kind: str) -> None:
    """The control: every recorded response as it is. Real traffic is never "invalid" or "interrupted": it parses,
    or (error statuses, in-stream errors, blocked prompts) raises a classified status error."""
    _spec(kind)
    outcomes: list[str] = []
    for rec in BY_KIND[kind]:
        body = json.dumps(rec.json).encode() if not rec.stream else sse_body([(e.data, e.event) for e in rec.events])
        try:
            asyncio.run(_call(rec, body, 3))
        except UpstreamStatusError:
            outcomes.append("classified")
        else:
            assert rec.status < 400, "an error status parsed as a success"
            outcomes.append("ok")
    assert outcomes.count("ok") >= len(outcomes) // 2


# -- the chunk fast path agrees with the general converter ------------------------------------------------------


RECORDED_CHUNKS: list[Any] = [
    parsed
    for rec in BY_KIND["openai"]
    for event in rec.events
    if event.data.strip() != "[DONE]"
    for parsed in [json.loads(event.data)]
    if isinstance(parsed, dict) and "choices" in parsed
]


def test_recorded_chunks_were_found() -> None:
    assert len(RECORDED_CHUNKS) >= 100
    assert sum(plain_chunk(c) is not NOT_PLAIN for c in RECORDED_CHUNKS) >= 50  # the fast path is the common one


@fuzz(2)
@given(st.sampled_from(RECORDED_CHUNKS).flatmap(mutated_json) | st.sampled_from(RECORDED_CHUNKS))
def test_the_chunk_fast_path_builds_what_the_converter_builds(data: Any) -> None:
    fast = plain_chunk(data)
    if fast is NOT_PLAIN:
        return  # not a plain chunk: the general path handles it
    general = fast_openai_converter().structure(data, ChatCompletionChunk)
    assert attrs_state(fast) == attrs_state(general)
    assert to_json(fast) == to_json(general)


def _text_delta_args(data: Any) -> tuple[dict[str, Any], dict[str, Any], str] | None:
    """The arguments the OpenAI stream assembler passes to ``text_delta_chunk``, or None when it would not call it."""
    if not isinstance(data, dict) or data.get("usage") is not None:
        return None
    choices = data.get("choices")
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        return None
    delta = choices[0].get("delta")
    if not isinstance(delta, dict) or len(delta) != 1 or not isinstance(delta.get("content"), str):
        return None
    return data, choices[0], delta["content"]


def test_text_delta_chunks_were_found() -> None:
    found = [a for c in RECORDED_CHUNKS if (a := _text_delta_args(c)) is not None]
    assert len(found) >= 15  # the property below is not vacuous...
    assert all(text_delta_chunk(*a) is not None for a in found)  # ...and real text deltas take the fast path


@fuzz(2)
@given(st.sampled_from(RECORDED_CHUNKS).flatmap(mutated_json) | st.sampled_from(RECORDED_CHUNKS))
def test_the_text_delta_fast_path_builds_what_the_converter_builds(data: Any) -> None:
    args = _text_delta_args(data)
    if args is None:
        return
    fast = text_delta_chunk(*args)
    if fast is None:
        return  # something in it is not plain: the assembler falls back to parse_chunk
    general = fast_openai_converter().structure({k: v for k, v in data.items() if k != "usage"}, ChatCompletionChunk)
    assert attrs_state(fast) == attrs_state(general)
    assert to_json(fast) == to_json(general)
    assert repr(fast) == repr(general)


# -- the completion fast paths agree with the general ones ---------------------------------------------------------

RECORDED_COMPLETIONS: list[Any] = [
    r.json
    for r in BY_KIND["openai"]
    if not r.stream and r.status < 300 and isinstance(r.json, dict) and "choices" in r.json
]


def test_recorded_completions_take_the_fast_path() -> None:
    assert len(RECORDED_COMPLETIONS) >= 20
    plain = [c for c in RECORDED_COMPLETIONS if plain_completion(c) is not NOT_PLAIN]
    assert (
        len(plain) >= len(RECORDED_COMPLETIONS) // 2
    )  # the fast path is the common one, and the test below is not vacuous
    for c in plain:
        assert plain_completion(c) == parse_completion(copy.deepcopy(c))


@fuzz(2)
@given(st.sampled_from(RECORDED_COMPLETIONS).flatmap(mutated_json) | st.sampled_from(RECORDED_COMPLETIONS))
def test_the_completion_fast_path_builds_what_the_converter_builds(data: Any) -> None:
    fast = plain_completion(data)
    if fast is NOT_PLAIN:
        return  # not plain: the general path handles it
    general = fast_openai_converter().structure(data, ChatCompletion)
    assert attrs_state(fast) == attrs_state(general)
    assert to_json(fast) == to_json(general)
    assert repr(fast) == repr(general)


def _normalized(data: Any, row: CompatRow) -> tuple[str, Any]:
    try:
        return "ok", attrs_state(normalize_completion(copy.deepcopy(data), row, ids_back={}, provider="p"))
    except UpstreamError as exc:
        return type(exc).__name__, str(exc)


@fuzz(2)
@given(
    st.sampled_from(RECORDED_COMPLETIONS).flatmap(mutated_json) | st.sampled_from(RECORDED_COMPLETIONS),
    st.sampled_from(sorted(ROWS)),
)
def test_skipping_normalization_changes_nothing(data: Any, row_name: str) -> None:
    """``normalize_completion`` parses an already-normal body as it is; the result equals the copying path's."""
    row = ROWS[row_name]
    with mock.patch.object(openai_response, "new_tool_id", lambda: "call_fixed"):  # ids made up for missing ones
        fast = _normalized(data, row)
        with (
            mock.patch.object(openai_response, "_plain_and_normal", lambda _d, _r: None),
            mock.patch.object(openai_response, "_already_normal", lambda _d, _r: False),
        ):
            slow = _normalized(data, row)
    assert fast == slow


def _normal_by_json(data: Any, row: CompatRow) -> bool:
    return (
        plain_completion(data) is not NOT_PLAIN
        and not is_inband_error(data)
        and openai_response._already_normal(data, row)
    )


def test_recorded_completions_are_found_normal_on_the_built_objects() -> None:
    row = ROWS["openai"]
    normal = [c for c in RECORDED_COMPLETIONS if openai_response._plain_and_normal(c, row) is not None]
    assert len(normal) >= len(RECORDED_COMPLETIONS) // 2  # the common case, and the test below is not vacuous
    assert all(_normal_by_json(c, row) for c in normal)


@fuzz(2)
@given(
    st.sampled_from(RECORDED_COMPLETIONS).flatmap(mutated_json) | st.sampled_from(RECORDED_COMPLETIONS),
    st.sampled_from(sorted(ROWS)),
)
def test_the_check_on_built_objects_is_the_json_check(data: Any, row_name: str) -> None:
    """``normalize_completion`` decides "plain, no in-band error, already normal" on the built objects; that is
    exactly what ``is_inband_error`` and ``_already_normal`` decide on the JSON."""
    if data.__class__ is not dict:
        return
    row = ROWS[row_name]
    assert (openai_response._plain_and_normal(data, row) is not None) == _normal_by_json(data, row)
