"""A simulated Anthropic Messages upstream (``POST /v1/messages``).

Bodies, headers, stream events and error envelopes follow the real API (shapes taken from recorded traffic):
``type: "message"`` bodies with cache-aware usage, SSE streams where every event has an ``event:`` line and a
``data:`` line whose JSON is padded with spaces, a ``ping`` after the first block starts, ``message_delta`` with
cumulative usage, ``message_stop`` as the end marker (no ``[DONE]``), and errors as
``{"type": "error", "error": {"type", "message"}, "request_id"}``.

Auth is ``x-api-key`` (the real 401 bodies: "x-api-key header is required" / "invalid x-api-key"); with
``accept_bearer=True`` an ``Authorization: Bearer`` key is accepted too, like relays in front of Anthropic. The
``anthropic-version`` header is required, as upstream.

What the model says is scripted with the OpenAI simulator's :class:`~polyrelay.testing.ScriptedReply` (content →
a text block, ``reasoning_content`` → a signed thinking block, tool calls → ``tool_use`` blocks) or, for
Anthropic-only shapes, with :class:`AnthropicReply` and its blocks::

    async with AnthropicUpstream(reply=ScriptedReply(content="Paris.")) as upstream:
        upstream.push_reply(AnthropicReply(blocks=[ReplyThinking("Let me look."), ReplyToolUse("get_weather",
                                                                                               {"city": "Paris"})]))

The simulator checks what the real API checks and a client can get wrong: required fields, roles, empty content,
``tool_use`` / ``tool_result`` pairing, thinking budgets, forced tool use with thinking, and that thinking blocks
sent back carry the signature this server gave them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import string
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import attrs
from aiohttp import web

from polyrelay.testing._openai import ScriptedReply
from polyrelay.testing._server import Handler, IncomingCall, SimulatedUpstream, StreamEvent, StreamEventKind

__all__ = [
    "AnthropicReply",
    "AnthropicUpstream",
    "ReplyBlock",
    "ReplyRedactedThinking",
    "ReplyText",
    "ReplyThinking",
    "ReplyToolUse",
    "anthropic_error",
    "estimate_input_tokens",
    "simulated_signature",
]

_ID_ALPHABET: Final = string.ascii_letters + string.digits
_SIGNING_KEY: Final = b"polyrelay-simulated-anthropic"
_MIN_THINKING_BUDGET: Final = 1_024
_DOCS: Final = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"
# OpenAI finish reasons a ScriptedReply may carry → Anthropic stop reasons.
_STOP_REASONS: Final[Mapping[str, str]] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
# Status → (error type, message) of the real envelope, for status faults and outages.
_STATUS_ERRORS: Final[Mapping[int, tuple[str, str]]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: (
        "billing_error",
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or "
        "purchase credits.",
    ),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per minute. For details, "
        "refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. "
        "Please reduce the prompt length or the maximum tokens requested, or try again later.",
    ),
    500: ("api_error", "Internal server error"),
    503: ("overloaded_error", "Overloaded"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


def anthropic_error(kind: str, message: str, *, request_id: str | None = None) -> dict[str, Any]:
    """An Anthropic error envelope."""
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id or _request_id()}


def simulated_signature(thinking: str) -> str:
    """The signature this simulator gives a thinking block (and expects back with it)."""
    digest = hmac.new(_SIGNING_KEY, thinking.encode(), hashlib.sha256).digest()
    return base64.b64encode(b"sim" + digest).decode()


# ---------------------------------------------------------------------------------------------------- scripting


@attrs.frozen
class ReplyText:
    text: str


@attrs.frozen
class ReplyThinking:
    thinking: str
    #: Default: :func:`simulated_signature` of the text (what a later request must send back).
    signature: str | None = None


@attrs.frozen
class ReplyRedactedThinking:
    data: str = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDxH4mPnZ5sQ7vB5URj"


@attrs.frozen
class ReplyToolUse:
    name: str
    input: Mapping[str, Any] = attrs.field(factory=dict)
    #: Default: a fresh ``toolu_...`` id per response.
    id: str | None = None


ReplyBlock = ReplyText | ReplyThinking | ReplyRedactedThinking | ReplyToolUse


def _positive(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value!r}")


def _block_tuple(blocks: Iterable[ReplyBlock]) -> tuple[ReplyBlock, ...]:
    return tuple(blocks)


@attrs.frozen(kw_only=True)
class AnthropicReply:
    """What the simulated model answers, as Anthropic content blocks."""

    blocks: Sequence[ReplyBlock] = attrs.field(converter=_block_tuple)
    #: Default: ``tool_use`` when a block is a tool use, else ``end_turn``.
    stop_reason: str | None = None
    stop_sequence: str | None = None
    #: Default: an estimate from the request (a quarter of its characters).
    input_tokens: int | None = None
    #: Default: a quarter of the characters the model outputs (at least 1).
    output_tokens: int | None = None
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    #: Streams: characters per text / thinking / tool-input delta.
    chunk_size: int = attrs.field(default=8, validator=_positive)

    @classmethod
    def text(cls, text: str, **kw: Any) -> AnthropicReply:
        return cls(blocks=(ReplyText(text),), **kw)

    @property
    def effective_stop_reason(self) -> str:
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_use" if any(isinstance(b, ReplyToolUse) for b in self.blocks) else "end_turn"

    @classmethod
    def from_scripted(cls, reply: ScriptedReply) -> AnthropicReply:
        """The Anthropic reading of an OpenAI-simulator reply."""
        blocks: list[ReplyBlock] = []
        if reply.reasoning_content:
            blocks.append(ReplyThinking(reply.reasoning_content))
        text = reply.refusal if reply.refusal is not None else reply.content
        if text:
            blocks.append(ReplyText(text))
        for call in reply.tool_calls:
            try:
                parsed = json.loads(call.arguments) if call.arguments.strip() else {}
            except ValueError:
                parsed = None
            blocks.append(ReplyToolUse(call.name, parsed if isinstance(parsed, dict) else {}, call.id))
        stop = reply.finish_reason
        if reply.refusal is not None and stop is None:
            stop = "refusal"
        return cls(
            blocks=blocks,
            stop_reason=_STOP_REASONS.get(stop, stop) if stop is not None else None,
            input_tokens=reply.prompt_tokens,
            output_tokens=reply.completion_tokens,
            chunk_size=reply.chunk_size,
        )


ReplySource = ScriptedReply | AnthropicReply | Callable[[Any], "ScriptedReply | AnthropicReply"]


# ---------------------------------------------------------------------------------------------------- server


class AnthropicUpstream(SimulatedUpstream):
    """Simulated ``https://api.anthropic.com/v1``: ``POST /v1/messages`` (JSON and SSE).

    ``context_window`` turns on the "prompt is too long" 400 against the simulator's token estimate; ``models``
    (when given) limits the models served (others get the real 404 ``not_found_error``); ``chunk_delay`` seconds
    pass between stream events.
    """

    name = "anthropic"
    base_path = "/v1"

    def __init__(
        self,
        *,
        reply: ReplySource | None = None,
        context_window: int | None = None,
        models: Sequence[str] | None = None,
        chunk_delay: float = 0.0,
        accept_bearer: bool = False,
        api_key: str | None = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.reply: ReplySource = reply if reply is not None else ScriptedReply()
        self.context_window = context_window
        self.models = tuple(models) if models is not None else None
        self.chunk_delay = chunk_delay
        self.accept_bearer = accept_bearer
        self._pushed: deque[ScriptedReply | AnthropicReply] = deque()

    def push_reply(self, reply: ScriptedReply | AnthropicReply) -> None:
        """Queue a one-off reply; queued replies answer the next calls (FIFO) before the default ``reply``."""
        self._pushed.append(reply)

    # ----------------------------------------------------------------------------------------- endpoints

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        return (("POST", "/v1/messages", self._messages),)

    async def _unknown_route(self, call: IncomingCall) -> web.StreamResponse:
        return await self._send_json(call, anthropic_error("not_found_error", "Not Found"), status=404)

    async def _messages(self, call: IncomingCall) -> web.StreamResponse:
        body = call.recorded.json
        if not call.request.headers.get("anthropic-version"):
            error = anthropic_error("invalid_request_error", "anthropic-version: header is required")
            return await self._send_json(call, error, status=400)
        problem = _validate(body)
        if problem is not None:
            return await self._send_json(call, anthropic_error("invalid_request_error", problem), status=400)
        assert isinstance(body, dict)
        if self.models is not None and body["model"] not in self.models:
            error = anthropic_error("not_found_error", f"model: {body['model']}")
            return await self._send_json(call, error, status=404)
        input_tokens = estimate_input_tokens(body)
        if self.context_window is not None and input_tokens > self.context_window:
            message = f"prompt is too long: {input_tokens} tokens > {self.context_window} maximum"
            return await self._send_json(call, anthropic_error("invalid_request_error", message), status=400)
        answer = _Answer(body=body, reply=self._next_reply(body), input_tokens=input_tokens)
        if body.get("stream") is True:
            error_event = None
            if call.fault is not None and call.fault.kind == "error_event":
                error_event = _event("error", self._in_band_error(call))
            return await self._send_stream(call, answer.events(), error_event=error_event, chunk_delay=self.chunk_delay)
        return await self._send_json(call, answer.body_json())

    def _next_reply(self, body: dict[str, Any]) -> AnthropicReply:
        source: ReplySource = self._pushed.popleft() if self._pushed else self.reply
        if not isinstance(source, ScriptedReply | AnthropicReply):
            source = source(body)
        return AnthropicReply.from_scripted(source) if isinstance(source, ScriptedReply) else source

    # ----------------------------------------------------------------------------------------- hooks

    def _presented_key(self, request: web.Request) -> str | None:
        key = request.headers.get("x-api-key")
        if key:
            return key.strip()
        if self.accept_bearer:
            scheme, _, rest = request.headers.get("Authorization", "").strip().partition(" ")
            if scheme.lower() == "bearer" and rest.strip():
                return rest.strip()
        return None

    def _auth_failure(self, call: IncomingCall, presented: str | None) -> tuple[int, Any]:
        if presented is None:
            return 401, anthropic_error("authentication_error", "x-api-key header is required")
        return 401, anthropic_error("authentication_error", "invalid x-api-key")

    def _error_body(self, call: IncomingCall, status: int) -> Any:
        if status == 404:
            return anthropic_error("not_found_error", f"model: {self._request_model(call.recorded) or 'unknown'}")
        known = _STATUS_ERRORS.get(status)
        if known is not None:
            return anthropic_error(*known)
        kind = "api_error" if status >= 500 else "invalid_request_error"
        return anthropic_error(kind, f"Request failed with status {status}.")

    def _error_headers(self, call: IncomingCall, status: int) -> Mapping[str, str]:
        headers: dict[str, str] = {}
        if status == 429 or status >= 500:
            headers["x-should-retry"] = "true"
        if status == 429:
            headers["anthropic-ratelimit-requests-limit"] = "50"
            headers["anthropic-ratelimit-requests-remaining"] = "0"
        return headers

    def _response_headers(self, call: IncomingCall) -> Mapping[str, str]:
        return {"request-id": _request_id(), "anthropic-organization-id": str(uuid.uuid5(uuid.NAMESPACE_DNS, "sim"))}

    def _in_band_error(self, call: IncomingCall) -> Any:
        # In-stream errors from Anthropic are nearly always capacity errors, so that is the default here.
        if call.fault is not None and call.fault.body is not None:
            return call.fault.body
        return anthropic_error("overloaded_error", "Overloaded")


# ---------------------------------------------------------------------------------------------------- answers


@attrs.frozen(kw_only=True)
class _Answer:
    """One reply being rendered as a JSON body or as SSE events."""

    body: Mapping[str, Any]
    reply: AnthropicReply
    input_tokens: int
    id: str = attrs.field(factory=lambda: "msg_01" + _random_id(22))

    def blocks(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for block in self.reply.blocks:
            if isinstance(block, ReplyText):
                out.append({"type": "text", "text": block.text})
            elif isinstance(block, ReplyThinking):
                signature = block.signature if block.signature is not None else simulated_signature(block.thinking)
                out.append({"type": "thinking", "thinking": block.thinking, "signature": signature})
            elif isinstance(block, ReplyRedactedThinking):
                out.append({"type": "redacted_thinking", "data": block.data})
            else:
                tool_id = block.id if block.id is not None else "toolu_01" + _random_id(22)
                out.append({"type": "tool_use", "id": tool_id, "name": block.name, "input": dict(block.input)})
        return out

    def usage(self, *, final: bool) -> dict[str, Any]:
        reply = self.reply
        output = reply.output_tokens
        if output is None:
            chars = sum(len(json.dumps(b)) for b in self.blocks())
            output = max(1, math.ceil(chars / 4))
        write = reply.cache_creation_input_tokens
        return {
            "input_tokens": reply.input_tokens if reply.input_tokens is not None else self.input_tokens,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": reply.cache_read_input_tokens,
            "cache_creation": {"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": 0},
            "output_tokens": output if final else 1,
            "service_tier": "standard",
        }

    def body_json(self) -> dict[str, Any]:
        return {
            "model": self.body["model"],
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "content": self.blocks(),
            "stop_reason": self.reply.effective_stop_reason,
            "stop_sequence": self.reply.stop_sequence,
            "usage": self.usage(final=True),
        }

    def events(self) -> list[StreamEvent]:
        size = self.reply.chunk_size
        start = {**self.body_json(), "content": [], "stop_reason": None, "stop_sequence": None}
        start["usage"] = self.usage(final=False)
        events = [_stream_event("message_start", {"message": start}, "prelude")]
        for index, block in enumerate(self.blocks()):
            kind = block["type"]
            opening: dict[str, Any]
            deltas: list[dict[str, Any]] = []
            if kind == "text":
                opening = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(block["text"], size)]
            elif kind == "thinking":
                opening = {"type": "thinking", "thinking": "", "signature": ""}
                deltas = [{"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"], size)]
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
            elif kind == "tool_use":
                opening = {**block, "input": {}}
                arguments = json.dumps(block["input"]) if block["input"] else ""
                deltas = [{"type": "input_json_delta", "partial_json": ""}]
                deltas += [{"type": "input_json_delta", "partial_json": p} for p in _pieces(arguments, size)]
            else:  # redacted_thinking arrives whole in its start event
                opening = block
            opening_kind: StreamEventKind = "content" if kind in ("tool_use", "redacted_thinking") else "prelude"
            events.append(
                _stream_event("content_block_start", {"index": index, "content_block": opening}, opening_kind)
            )
            if index == 0:
                events.append(_stream_event("ping", {}, "prelude"))
            for delta in deltas:
                events.append(_stream_event("content_block_delta", {"index": index, "delta": delta}, "content"))
            events.append(_stream_event("content_block_stop", {"index": index}, "prelude"))
        usage = self.usage(final=True)
        final_usage = {k: usage[k] for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")}
        final_usage["output_tokens"] = usage["output_tokens"]
        delta = {"stop_reason": self.reply.effective_stop_reason, "stop_sequence": self.reply.stop_sequence}
        events.append(_stream_event("message_delta", {"delta": delta, "usage": final_usage}, "end"))
        events.append(_stream_event("message_stop", {}, "done"))
        return events


def _stream_event(kind: str, payload: Mapping[str, Any], place: StreamEventKind) -> StreamEvent:
    return StreamEvent(data=_event(kind, {"type": kind, **payload}), kind=place)


def _event(kind: str, payload: Any) -> bytes:
    """``event: <kind>`` + ``data: <json>`` padded with spaces, as the real API pads its events."""
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    if kind == "ping":
        data = '{"type": "ping"}'
    pad = " " * secrets.randbelow(16)
    return f"event: {kind}\ndata: {data}{pad}\n\n".encode()


# ---------------------------------------------------------------------------------------------------- validation


def _validate(body: Any) -> str | None:
    """The message of the 400 the real API would send, or ``None``."""
    if not isinstance(body, dict):
        return "There was an error parsing the body of your request."
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            return f"{key}: Field required"
    max_tokens = body["max_tokens"]
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
        return "max_tokens: Input should be a valid integer greater than or equal to 0"
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, message in enumerate(messages):
        problem = _check_message(messages, i, message)
        if problem is not None:
            return problem
    return _check_thinking(body)


def _check_message(messages: list[Any], i: int, message: Any) -> str | None:
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
        return f"messages.{i}.role: Input should be 'user' or 'assistant'"
    content = message.get("content")
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    if not isinstance(blocks, list):
        return f"messages.{i}.content: Input should be a valid list"
    last = i == len(messages) - 1
    if not blocks and not (last and message["role"] == "assistant"):
        return f"messages.{i}: all messages must have non-empty content except for the optional final assistant message"
    for j, block in enumerate(blocks):
        if not isinstance(block, dict):
            return f"messages.{i}.content.{j}: Input should be a valid dictionary"
        if block.get("type") == "text" and not str(block.get("text", "")).strip():
            return "messages: text content blocks must contain non-whitespace text"
        if block.get("type") == "thinking" and block.get("signature") != simulated_signature(
            str(block.get("thinking", ""))
        ):
            return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
    uses = [b.get("id") for b in blocks if b.get("type") == "tool_use"]
    if uses:
        after = messages[i + 1] if i + 1 < len(messages) else None
        answered = set()
        if isinstance(after, dict) and isinstance(after.get("content"), list):
            answered = {b.get("tool_use_id") for b in after["content"] if isinstance(b, dict)}
        missing = [u for u in uses if u not in answered]
        if missing and after is not None:
            return (
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(map(str, missing))}. Each `tool_use` block must have a corresponding `tool_result` "
                "block in the next message."
            )
    results = [(j, b.get("tool_use_id")) for j, b in enumerate(blocks) if b.get("type") == "tool_result"]
    if results:
        before = messages[i - 1] if i > 0 else None
        known = set()
        if isinstance(before, dict) and isinstance(before.get("content"), list):
            known = {b.get("id") for b in before["content"] if isinstance(b, dict) and b.get("type") == "tool_use"}
        for j, use_id in results:
            if use_id not in known:
                return (
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {use_id}. "
                    "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                )
    return None


def _check_thinking(body: Mapping[str, Any]) -> str | None:
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < _MIN_THINKING_BUDGET:
        return f"thinking.enabled.budget_tokens: Input should be greater than or equal to {_MIN_THINKING_BUDGET}"
    if body["max_tokens"] <= budget:
        return (
            f"`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at {_DOCS}"
        )
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    return None


def estimate_input_tokens(body: Mapping[str, Any]) -> int:
    """The simulator's deterministic prompt size: a quarter of the characters of messages, system and tools."""
    parts = [body.get("messages"), body.get("system"), body.get("tools")]
    chars = sum(len(json.dumps(p, separators=(",", ":"))) for p in parts if p)
    return max(1, math.ceil(chars / 4))


def _pieces(text: str, size: int) -> list[str]:
    return [text[start : start + size] for start in range(0, len(text), size)]


def _random_id(length: int) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _request_id() -> str:
    return "req_011C" + _random_id(20)
