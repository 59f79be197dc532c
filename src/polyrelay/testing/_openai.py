"""A simulated OpenAI Chat Completions upstream (``POST /v1/chat/completions``, ``GET /v1/models``).

Bodies, headers, stream chunks and error envelopes follow the real API (shapes taken from recorded traffic):
``chat.completion`` bodies with usage details, ``chat.completion.chunk`` streams that open with a role chunk,
close each choice with ``delta: {}`` + ``finish_reason``, add a ``choices: []`` usage chunk when
``stream_options.include_usage`` is on, and end with ``data: [DONE]``.

What the model says is scripted with :class:`ScriptedReply`::

    async with OpenAIUpstream(reply=ScriptedReply(content="Paris.")) as upstream:
        upstream.push_reply(ScriptedReply(tool_calls=[ScriptedToolCall("get_weather", '{"city":"Paris"}')]))
        ...  # the first call gets the tool call, later calls "Paris."
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import string
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
from aiohttp import web

from polyrelay.testing._server import (
    Handler,
    IncomingCall,
    SimulatedUpstream,
    StreamEvent,
    StreamEventKind,
    sse_data,
)

__all__ = [
    "INSUFFICIENT_QUOTA_BODY",
    "OpenAIUpstream",
    "ScriptedReply",
    "ScriptedToolCall",
    "estimate_prompt_tokens",
    "openai_error",
]

_SYSTEM_FINGERPRINT = "fp_5f1e2d3c4b"
_OPENAI_VERSION = "2020-10-01"
_ORGANIZATION = "org-simulated"
_API_KEYS_URL = "https://platform.openai.com/account/api-keys"
_RATE_LIMITS_URL = "https://platform.openai.com/account/rate-limits"
_DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "o3-mini")
# Rate limits advertised in the x-ratelimit-* headers of every response.
_LIMIT_REQUESTS = 10_000
_LIMIT_TOKENS = 30_000_000
# OpenAI's per-message framing overhead in its own token counting: a few tokens per message, a few to prime.
_TOKENS_PER_MESSAGE = 3
_TOKENS_PRIMING = 3
# A non-text content part (image, audio, file) counts like a low-detail image.
_TOKENS_PER_MEDIA_PART = 85
_ID_ALPHABET = string.ascii_letters + string.digits

_MISSING_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth "
    "(i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the "
    f"API from your browser and are prompted for a username. You can obtain an API key from {_API_KEYS_URL}."
)
_BAD_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library "
    "correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble "
    "figuring out how to fix this, please contact us through our help center at help.openai.com.)"
)

# Status -> (message, type, code) of the real envelope, for status faults and outages.
_STATUS_ERRORS: Mapping[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    403: ("Country, region, or territory not supported", "request_forbidden", "unsupported_country_region_territory"),
    408: ("Request timed out.", "invalid_request_error", None),
    409: ("The request conflicted with another request. Please try again.", "invalid_request_error", None),
    422: ("The request could not be processed.", "invalid_request_error", None),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
    504: ("Gateway timeout.", "server_error", None),
}


def openai_error(
    message: str, *, type: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """An OpenAI error envelope: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


#: The billing 429 (not worth retrying): ``add_fault(Fault.status_code(429, body=INSUFFICIENT_QUOTA_BODY))``.
INSUFFICIENT_QUOTA_BODY: Mapping[str, Any] = openai_error(
    "You exceeded your current quota, please check your plan and billing details. For more information on this "
    "error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
    type="insufficient_quota",
    code="insufficient_quota",
)


@attrs.frozen
class ScriptedToolCall:
    """A tool call the simulated model makes. ``arguments`` is JSON text (sent as is, valid or not)."""

    name: str
    arguments: str = "{}"
    #: Default: a fresh ``call_...`` id per response.
    id: str | None = None


def _tool_call_tuple(calls: Iterable[ScriptedToolCall]) -> tuple[ScriptedToolCall, ...]:
    return tuple(calls)


def _positive(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value!r}")


@attrs.frozen(kw_only=True)
class ScriptedReply:
    """What the simulated model answers (every one of the ``n`` choices answers the same)."""

    content: str | None = "Hello from the simulated upstream."
    #: DeepSeek-style reasoning text, streamed before the content.
    reasoning_content: str | None = None
    tool_calls: Sequence[ScriptedToolCall] = attrs.field(default=(), converter=_tool_call_tuple)
    #: Default: ``"tool_calls"`` when there are tool calls, else ``"stop"``.
    finish_reason: str | None = None
    #: When set the reply is a refusal: ``refusal`` carries it and ``content`` is sent as null.
    refusal: str | None = None
    #: Default: :func:`estimate_prompt_tokens` of the request.
    prompt_tokens: int | None = None
    #: Per choice. Default: a quarter of the characters the model outputs (at least 1).
    completion_tokens: int | None = None
    #: Streams: characters per content / reasoning / refusal / tool-argument delta.
    chunk_size: int = attrs.field(default=8, validator=_positive)

    @property
    def effective_finish_reason(self) -> str:
        """The ``finish_reason`` sent."""
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"

    @property
    def effective_content(self) -> str | None:
        """The ``content`` sent (null for refusals)."""
        return None if self.refusal is not None else self.content


ReplySource = ScriptedReply | Callable[[Any], ScriptedReply]


def estimate_prompt_tokens(body: Any) -> int:
    """The simulator's deterministic token count of a chat request (``prompt_tokens`` and the context check).

    A quarter of the characters of each message's text, tool-call names and arguments (rounded up), 85 per
    non-text part, 3 per message and 3 more, plus a quarter of the characters of the ``tools`` JSON.
    """
    if not isinstance(body, Mapping):
        return 0
    messages = body.get("messages")
    total = _TOKENS_PRIMING
    for message in messages if isinstance(messages, list) else ():
        chars, media = _message_size(message)
        total += _TOKENS_PER_MESSAGE + math.ceil(chars / 4) + media * _TOKENS_PER_MEDIA_PART
    tools = body.get("tools")
    if tools:
        total += math.ceil(len(json.dumps(tools, separators=(",", ":"))) / 4)
    return total


class OpenAIUpstream(SimulatedUpstream):
    """Simulated ``https://api.openai.com/v1``: chat completions (JSON and SSE) and the model list.

    Auth is ``Authorization: Bearer <api_key>``; with ``accept_raw_key=True`` a bare key in ``Authorization`` is
    accepted too (some OpenAI-compatible servers allow it). ``context_window`` turns on the 400
    ``context_length_exceeded`` check against :func:`estimate_prompt_tokens`. ``chunk_delay`` seconds pass between
    stream events.
    """

    name = "openai"
    base_path = "/v1"

    def __init__(
        self,
        *,
        reply: ReplySource | None = None,
        context_window: int | None = None,
        chunk_delay: float = 0.0,
        accept_raw_key: bool = False,
        models: Sequence[str] = _DEFAULT_MODELS,
        api_key: str | None = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.reply: ReplySource = reply if reply is not None else ScriptedReply()
        self.context_window = context_window
        self.chunk_delay = chunk_delay
        self.accept_raw_key = accept_raw_key
        self.models = tuple(models)
        self._pushed: deque[ScriptedReply] = deque()

    def push_reply(self, reply: ScriptedReply) -> None:
        """Queue a one-off reply; queued replies answer the next chat calls (FIFO) before the default ``reply``."""
        self._pushed.append(reply)

    # ----------------------------------------------------------------------------------------- endpoints

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        return (
            ("POST", "/v1/chat/completions", self._chat_completions),
            ("GET", "/v1/models", self._list_models),
        )

    async def _list_models(self, call: IncomingCall) -> web.StreamResponse:
        data = [
            {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "system"} for model in self.models
        ]
        return await self._send_json(call, {"object": "list", "data": data})

    async def _unknown_route(self, call: IncomingCall) -> web.StreamResponse:
        message = f"Invalid URL ({call.recorded.method} {call.recorded.path})"
        return await self._send_json(call, openai_error(message), status=404)

    async def _chat_completions(self, call: IncomingCall) -> web.StreamResponse:
        body = call.recorded.json
        problem = self._validate(body)
        if problem is not None:
            return await self._send_json(call, problem, status=400)
        assert isinstance(body, dict)
        prompt_tokens = estimate_prompt_tokens(body)
        if self.context_window is not None and prompt_tokens > self.context_window:
            message = (
                f"This model's maximum context length is {self.context_window} tokens. However, your messages "
                f"resulted in {prompt_tokens} tokens. Please reduce the length of the messages."
            )
            error = openai_error(message, param="messages", code="context_length_exceeded")
            return await self._send_json(call, error, status=400)
        reply = self._next_reply(body)
        completion = _Completion(body=body, reply=reply, prompt_tokens=prompt_tokens)
        if body.get("stream") is True:
            return await self._send_stream(call, completion.events(), chunk_delay=self.chunk_delay)
        return await self._send_json(call, completion.response_body())

    def _validate(self, body: Any) -> dict[str, Any] | None:
        if not isinstance(body, dict):
            return openai_error(_BAD_JSON_MESSAGE)
        if not isinstance(body.get("model"), str) or not body["model"]:
            return openai_error("you must provide a model parameter")
        if "messages" not in body:
            return openai_error(
                "Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"
            )
        messages = body["messages"]
        if not isinstance(messages, list):
            return openai_error(
                f"Invalid type for 'messages': expected an array, but got {_json_type(messages)} instead.",
                param="messages",
                code="invalid_type",
            )
        if not messages:
            return openai_error(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array "
                "instead.",
                param="messages",
                code="empty_array",
            )
        if body.get("stream_options") is not None and body.get("stream") is not True:
            return openai_error(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="invalid_value",
            )
        n = body.get("n", 1)
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128):
            return openai_error(
                f"Invalid 'n': expected an integer between 1 and 128, but got {n!r} instead.",
                param="n",
                code="invalid_value",
            )
        return None

    def _next_reply(self, body: dict[str, Any]) -> ScriptedReply:
        if self._pushed:
            return self._pushed.popleft()
        if isinstance(self.reply, ScriptedReply):
            return self.reply
        return self.reply(body)

    # ----------------------------------------------------------------------------------------- hooks

    def _presented_key(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, rest = header.strip().partition(" ")
        if scheme.lower() == "bearer" and rest.strip():
            return rest.strip()
        if self.accept_raw_key and header.strip() and not rest:
            return header.strip()
        return None

    def _auth_failure(self, call: IncomingCall, presented: str | None) -> tuple[int, Any]:
        if presented is None:
            return 401, openai_error(_MISSING_KEY_MESSAGE)
        return 401, _incorrect_key_error(presented)

    def _error_body(self, call: IncomingCall, status: int) -> Any:
        if status == 401:
            presented = self._presented_key(call.request)
            return _incorrect_key_error(presented or "sk-" + "*" * 20)
        if status == 404:
            model = self._request_model(call.recorded) or "unknown"
            return openai_error(
                f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found"
            )
        if status == 429:
            model = self._request_model(call.recorded) or "unknown"
            requested = estimate_prompt_tokens(call.recorded.json)
            return openai_error(
                f"Rate limit reached for {model} in organization {_ORGANIZATION} on tokens per min (TPM): "
                f"Limit {_LIMIT_TOKENS}, Used {_LIMIT_TOKENS}, Requested {requested}. Please try again in "
                f"{_duration(_retry_seconds(call))}. Visit {_RATE_LIMITS_URL} to learn more.",
                type="tokens",
                code="rate_limit_exceeded",
            )
        known = _STATUS_ERRORS.get(status)
        if known is not None:
            message, kind, code = known
            return openai_error(message, type=kind, code=code)
        kind = "server_error" if status >= 500 else "invalid_request_error"
        return openai_error(f"Request failed with status {status}.", type=kind)

    def _error_headers(self, call: IncomingCall, status: int) -> Mapping[str, str]:
        if status != 429:
            return {}
        return {
            "x-ratelimit-remaining-requests": str(_LIMIT_REQUESTS - 1),
            "x-ratelimit-remaining-tokens": "0",
            "x-ratelimit-reset-tokens": _duration(_retry_seconds(call)),
        }

    def _response_headers(self, call: IncomingCall) -> Mapping[str, str]:
        elapsed_ms = max(0, int((asyncio.get_running_loop().time() - call.recorded.received_at) * 1000))
        return {
            "x-request-id": f"req_{uuid.uuid4().hex}",
            "openai-processing-ms": str(elapsed_ms),
            "openai-version": _OPENAI_VERSION,
            "openai-organization": _ORGANIZATION,
            "access-control-expose-headers": "X-Request-ID",
            "x-ratelimit-limit-requests": str(_LIMIT_REQUESTS),
            "x-ratelimit-limit-tokens": str(_LIMIT_TOKENS),
            "x-ratelimit-remaining-requests": str(_LIMIT_REQUESTS - 1),
            "x-ratelimit-remaining-tokens": str(_LIMIT_TOKENS - 1_000),
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-reset-tokens": "2ms",
        }


@attrs.frozen(kw_only=True)
class _Completion:
    """One chat completion being answered: renders the JSON body or the SSE events."""

    body: Mapping[str, Any]
    reply: ScriptedReply
    prompt_tokens: int
    id: str = attrs.field(factory=lambda: "chatcmpl-" + _random_id(29))
    created: int = attrs.field(factory=lambda: int(time.time()))

    @property
    def n(self) -> int:
        n = self.body.get("n")
        return n if isinstance(n, int) else 1

    @property
    def model(self) -> str:
        return str(self.body["model"])

    def usage(self) -> dict[str, Any]:
        reply = self.reply
        reasoning = math.ceil(len(reply.reasoning_content) / 4) if reply.reasoning_content else 0
        per_choice = reply.completion_tokens
        if per_choice is None:
            per_choice = max(1, math.ceil(_output_chars(reply) / 4))
        prompt = reply.prompt_tokens if reply.prompt_tokens is not None else self.prompt_tokens
        completion = per_choice * self.n
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": min(reasoning * self.n, completion),
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def response_body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": index,
                    "message": self._message(),
                    "logprobs": None,
                    "finish_reason": self.reply.effective_finish_reason,
                }
                for index in range(self.n)
            ],
            "usage": self.usage(),
            "service_tier": "default",
            "system_fingerprint": _SYSTEM_FINGERPRINT,
        }

    def _message(self) -> dict[str, Any]:
        reply = self.reply
        message: dict[str, Any] = {"role": "assistant", "content": reply.effective_content}
        if reply.reasoning_content is not None:
            message["reasoning_content"] = reply.reasoning_content
        message["refusal"] = reply.refusal
        message["annotations"] = []
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": _call_id(call), "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
                for call in reply.tool_calls
            ]
        return message

    def events(self) -> list[StreamEvent]:
        options = self.body.get("stream_options")
        options = options if isinstance(options, Mapping) else {}
        include_usage = options.get("include_usage") is True
        obfuscate = options.get("include_obfuscation", True) is not False
        per_choice = [self._choice_deltas() for _ in range(self.n)]
        events: list[StreamEvent] = []
        # n > 1: the real API interleaves the choices' chunks, told apart by choices[].index.
        for step in range(len(per_choice[0])):
            for index, deltas in enumerate(per_choice):
                kind, delta, finish = deltas[step]
                choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
                chunk = self._chunk([choice], include_usage=include_usage, obfuscate=obfuscate)
                events.append(StreamEvent(data=sse_data(chunk), kind=kind))
        if include_usage:
            chunk = self._chunk([], include_usage=False, obfuscate=obfuscate)
            chunk["usage"] = self.usage()
            if obfuscate:
                chunk["obfuscation"] = chunk.pop("obfuscation")  # keep the real key order: usage, obfuscation
            events.append(StreamEvent(data=sse_data(chunk), kind="end"))
        events.append(StreamEvent(data=sse_data("[DONE]"), kind="done"))
        return events

    def _choice_deltas(self) -> list[tuple[StreamEventKind, dict[str, Any], str | None]]:
        reply = self.reply
        size = reply.chunk_size
        content = reply.effective_content
        opening: dict[str, Any] = {"role": "assistant", "content": "" if content else None, "refusal": None}
        deltas: list[tuple[StreamEventKind, dict[str, Any], str | None]] = [("prelude", opening, None)]
        for piece in _pieces(reply.reasoning_content, size):
            deltas.append(("content", {"reasoning_content": piece}, None))
        for piece in _pieces(content, size):
            deltas.append(("content", {"content": piece}, None))
        for piece in _pieces(reply.refusal, size):
            deltas.append(("content", {"refusal": piece}, None))
        for position, call in enumerate(reply.tool_calls):
            first = {
                "index": position,
                "id": _call_id(call),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            deltas.append(("content", {"tool_calls": [first]}, None))
            for piece in _pieces(call.arguments, size):
                deltas.append(
                    ("content", {"tool_calls": [{"index": position, "function": {"arguments": piece}}]}, None)
                )
        deltas.append(("end", {}, reply.effective_finish_reason))
        return deltas

    def _chunk(self, choices: list[dict[str, Any]], *, include_usage: bool, obfuscate: bool) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": _SYSTEM_FINGERPRINT,
            "choices": choices,
        }
        if include_usage:
            chunk["usage"] = None
        if obfuscate:
            # Real streams pad chunks with random text so sizes do not leak the tokens; clients must ignore it.
            chunk["obfuscation"] = _random_id(secrets.randbelow(12) + 3)
        return chunk


def _pieces(text: str | None, size: int) -> list[str]:
    if not text:
        return []
    return [text[start : start + size] for start in range(0, len(text), size)]


def _output_chars(reply: ScriptedReply) -> int:
    parts = [reply.effective_content, reply.reasoning_content, reply.refusal]
    chars = sum(len(part) for part in parts if part)
    return chars + sum(len(call.name) + len(call.arguments) for call in reply.tool_calls)


def _message_size(message: Any) -> tuple[int, int]:
    """(characters of text, number of non-text parts) in one request message."""
    if not isinstance(message, Mapping):
        return 0, 0
    chars, media = 0, 0
    content = message.get("content")
    if isinstance(content, str):
        chars += len(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                chars += len(part["text"])
            elif isinstance(part, Mapping) and isinstance(part.get("refusal"), str):
                chars += len(part["refusal"])
            else:
                media += 1
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            chars += len(str(function.get("name") or "")) + len(str(function.get("arguments") or ""))
    return chars, media


def _call_id(call: ScriptedToolCall) -> str:
    return call.id if call.id is not None else "call_" + _random_id(24)


def _random_id(length: int) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _incorrect_key_error(presented: str) -> dict[str, Any]:
    return openai_error(
        f"Incorrect API key provided: {_mask_key(presented)}. You can find your API key at {_API_KEYS_URL}.",
        code="invalid_api_key",
    )


def _mask_key(key: str) -> str:
    # OpenAI shows the first and last few characters; short keys are masked whole so no test key leaks.
    if len(key) < 12:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


def _retry_seconds(call: IncomingCall) -> float:
    fault = call.fault
    if fault is not None and fault.retry_after_ms is not None:
        return fault.retry_after_ms / 1000
    if fault is not None and isinstance(fault.retry_after, int | float):
        return float(fault.retry_after)
    return 1.0


def _duration(seconds: float) -> str:
    """OpenAI's duration notation: ``120ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest}s"


def _json_type(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else "a value"
