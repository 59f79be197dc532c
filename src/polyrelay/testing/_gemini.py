"""A simulated Gemini API upstream (``v1beta``): ``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse``, plus ``GET /v1beta/models``.

Shapes follow recorded real traffic: lowerCamelCase bodies with ``candidates``, ``usageMetadata`` (thoughts
counted apart from candidates), ``modelVersion`` and ``responseId``; streams framed with ``\\r\\n\\r\\n``, each
event a whole response holding only the new parts, cumulative usage on every event, ``finishReason`` on the last
event and no ``[DONE]``; errors as google.rpc ``Status`` bodies (``INVALID_ARGUMENT`` with ``ErrorInfo``
``API_KEY_INVALID`` for a bad key, ``RESOURCE_EXHAUSTED`` with ``QuotaFailure`` and ``RetryInfo`` for 429).

The key is read from ``x-goog-api-key`` (or ``?key=``, which the real API also accepts; requests are recorded,
so a test can assert a client never puts it in the URL). The request is checked the way the API checks it:
unknown field names, empty ``contents`` / ``parts``, roles other than ``user``/``model``, a non-object
``functionResponse.response``, both ``thinkingBudget`` and ``thinkingLevel``, and on Gemini 3 models a function
call replayed without the ``thoughtSignature`` this server issued — so translation mistakes fail loudly.

What the model says is a :class:`~polyrelay.testing.ScriptedReply` (shared with the other simulated upstreams):
``reasoning_content`` becomes ``thought: true`` parts (sent only when ``thinkingConfig.includeThoughts`` is on,
like the real API, but always counted in ``thoughtsTokenCount``); ``tool_calls`` become ``functionCall`` parts;
``refusal`` becomes a ``SAFETY`` stop with no content; ``finish_reason`` takes OpenAI names (``length`` →
``MAX_TOKENS``) or Gemini names verbatim. :class:`ScriptedBlock` answers with a blocked prompt
(``promptFeedback.blockReason``, no candidates)::

    async with GeminiUpstream(reply=ScriptedReply(content="Paris.")) as upstream:
        upstream.push_reply(ScriptedReply(tool_calls=[ScriptedToolCall("get_weather", '{"city":"Paris"}')]))
        upstream.push_reply(ScriptedBlock(reason="SAFETY"))
"""

from __future__ import annotations

import base64
import json
import math
import secrets
import string
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import attrs
from aiohttp import web

from polyrelay.testing._openai import ScriptedReply, ScriptedToolCall
from polyrelay.testing._server import Handler, IncomingCall, RecordedRequest, SimulatedUpstream, StreamEvent

__all__ = ["GeminiUpstream", "ScriptedBlock", "gemini_error", "estimate_gemini_prompt_tokens"]

_DEFAULT_MODELS: Final = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash", "gemini-3-pro-preview")
_ID_ALPHABET: Final = string.ascii_letters + string.digits + "-_"
#: Google's documented placeholder that disables signature validation for one function call.
_DUMMY_SIGNATURE: Final = "skip_thought_signature_validator"
# Gemini counts an image as 258 tokens; every non-text part is counted so.
_TOKENS_PER_MEDIA_PART: Final = 258
_RPC_PREFIX: Final = "type.googleapis.com/google.rpc."

# HTTP status -> (google.rpc status, message) of the real bodies.
_STATUS_ERRORS: Final[Mapping[int, tuple[str, str]]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: (
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
        "valid authentication credential.",
    ),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The operation was aborted."),
    429: (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more information on "
        "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    ),
    499: ("CANCELLED", "The operation was cancelled."),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    501: ("UNIMPLEMENTED", "Operation is not implemented, or supported, or enabled."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}

_BAD_KEY_MESSAGE: Final = "API key not valid. Please pass a valid API key."
_NO_KEY_MESSAGE: Final = (
    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or "
    "other form of API consumer identity to call this API."
)

# Field names the API accepts (camelCase, or the snake_case spelling the proto3 JSON parser also takes).
_REQUEST_FIELDS: Final = frozenset(
    {"contents", "systemInstruction", "tools", "toolConfig", "safetySettings", "generationConfig", "cachedContent"}
)
_GENERATION_FIELDS: Final = frozenset(
    {
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "responseModalities",
        "candidateCount",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "enableEnhancedCivicAnswers",
        "speechConfig",
        "thinkingConfig",
        "imageConfig",
        "mediaResolution",
    }
)
_THINKING_FIELDS: Final = frozenset({"includeThoughts", "thinkingBudget", "thinkingLevel"})
_PART_DATA_FIELDS: Final = frozenset(
    {
        "text",
        "inlineData",
        "fileData",
        "functionCall",
        "functionResponse",
        "executableCode",
        "codeExecutionResult",
        "toolCall",
        "toolResponse",
    }
)
_PART_FIELDS: Final = _PART_DATA_FIELDS | {"thought", "thoughtSignature", "videoMetadata", "mediaResolution"}
_FINISH_REASONS: Final[Mapping[str, str]] = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "function_call": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}


def gemini_error(code: int, message: str, status: str, *, details: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A google.rpc ``Status`` error body: ``{"error": {"code", "message", "status"[, "details"]}}``."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = [dict(d) for d in details]
    return {"error": error}


@attrs.frozen(kw_only=True)
class ScriptedBlock:
    """A prompt the simulated safety filter blocks: ``promptFeedback.blockReason`` and no candidates."""

    reason: str = "SAFETY"
    message: str | None = None


GeminiReply = ScriptedReply | ScriptedBlock
ReplySource = GeminiReply | Callable[[Any], GeminiReply]


def estimate_gemini_prompt_tokens(body: Any) -> int:
    """The simulator's deterministic prompt token count: a quarter of the characters of every text (and of the
    JSON of function calls, responses and tools), 258 per media part."""
    if not isinstance(body, Mapping):
        return 0
    chars = 0
    media = 0
    contents = body.get("contents")
    system = body.get("systemInstruction") or body.get("system_instruction")
    for content in [*(contents if isinstance(contents, list) else []), system]:
        parts = content.get("parts") if isinstance(content, Mapping) else None
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, Mapping):
                continue
            if isinstance(part.get("text"), str):
                chars += len(part["text"])
            elif any(k in part for k in ("functionCall", "functionResponse", "function_call", "function_response")):
                chars += len(json.dumps(part, separators=(",", ":")))
            elif any(k in part for k in ("inlineData", "fileData", "inline_data", "file_data")):
                media += 1
    tools = body.get("tools")
    if tools:
        chars += len(json.dumps(tools, separators=(",", ":")))
    return max(1, math.ceil(chars / 4)) + media * _TOKENS_PER_MEDIA_PART


class GeminiUpstream(SimulatedUpstream):
    """Simulated ``https://generativelanguage.googleapis.com/v1beta`` (see the module docstring).

    ``models=None`` serves any model id; otherwise an unknown one gets the real 404. ``context_window`` turns on
    the 400 ``The input token count (N) exceeds the maximum number of tokens allowed (M).`` check against
    :func:`estimate_gemini_prompt_tokens`. ``thought_signatures`` attaches a signature to the first function call
    (or the first text) of each answer. ``retry_delay`` is the ``RetryInfo.retryDelay`` of 429 bodies when the
    fault gives no ``retry_after``. ``chunk_delay`` seconds pass between stream events.
    """

    name = "gemini"
    base_path = "/v1beta"

    def __init__(
        self,
        *,
        reply: ReplySource | None = None,
        context_window: int | None = None,
        chunk_delay: float = 0.0,
        thought_signatures: bool = True,
        retry_delay: float = 1.0,
        models: Sequence[str] | None = _DEFAULT_MODELS,
        api_key: str | None = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.reply: ReplySource = reply if reply is not None else ScriptedReply()
        self.context_window = context_window
        self.chunk_delay = chunk_delay
        self.thought_signatures = thought_signatures
        self.retry_delay = retry_delay
        self.models = tuple(models) if models is not None else None
        #: Every thoughtSignature this server handed out (replayed signatures are checked against it).
        self.issued_signatures: set[str] = set()
        self._pushed: deque[GeminiReply] = deque()

    def push_reply(self, reply: GeminiReply) -> None:
        """Queue a one-off reply; queued replies answer the next calls (FIFO) before the default ``reply``."""
        self._pushed.append(reply)

    # ----------------------------------------------------------------------------------------- endpoints

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        return (
            ("POST", "/v1beta/models/{target}", self._model_action),
            ("GET", "/v1beta/models", self._list_models),
        )

    async def _list_models(self, call: IncomingCall) -> web.StreamResponse:
        models = [
            {
                "name": f"models/{m}",
                "displayName": m,
                "inputTokenLimit": 1_048_576,
                "outputTokenLimit": 65_536,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            }
            for m in self.models or _DEFAULT_MODELS
        ]
        return await self._send_json(call, {"models": models})

    async def _model_action(self, call: IncomingCall) -> web.StreamResponse:
        model, _, method = call.request.match_info["target"].rpartition(":")
        if method not in ("generateContent", "streamGenerateContent") or not model:
            return await self._send_error(call, 404)
        if self.models is not None and model not in self.models:
            message = (
                f"models/{model} is not found for API version v1beta, or is not supported for {method}. Call "
                "ModelService.ListModels to see the list of available models and their supported methods."
            )
            return await self._send_json(call, gemini_error(404, message, "NOT_FOUND"), status=404)
        stream = method == "streamGenerateContent"
        body = call.recorded.json
        problem = _validate(body, model=model, issued=self.issued_signatures)
        if problem is None and stream and call.request.query.get("alt") != "sse":
            problem = "The simulated upstream streams with alt=sse only."
        if problem is not None:
            return await self._send_json(call, gemini_error(400, problem, "INVALID_ARGUMENT"), status=400)
        assert isinstance(body, dict)
        prompt_tokens = estimate_gemini_prompt_tokens(body)
        if self.context_window is not None and prompt_tokens > self.context_window:
            message = (
                f"The input token count ({prompt_tokens}) exceeds the maximum number of tokens allowed "
                f"({self.context_window})."
            )
            return await self._send_json(call, gemini_error(400, message, "INVALID_ARGUMENT"), status=400)
        answer = _Answer(
            body=body,
            model=model,
            reply=self._next_reply(body),
            prompt_tokens=prompt_tokens,
            sign=self.thought_signatures,
            issued=self.issued_signatures,
        )
        if stream:
            return await self._send_stream(
                call,
                answer.events(),
                chunk_delay=self.chunk_delay,
                error_event=_sse(self._in_band_error(call)),
                headers={"content-disposition": "attachment"},
                content_type="text/event-stream",
            )
        return await self._send_json(call, answer.response_body(), content_type="application/json; charset=UTF-8")

    def _next_reply(self, body: Any) -> GeminiReply:
        if self._pushed:
            return self._pushed.popleft()
        if isinstance(self.reply, ScriptedReply | ScriptedBlock):
            return self.reply
        return self.reply(body)

    # ----------------------------------------------------------------------------------------- hooks

    def _presented_key(self, request: web.Request) -> str | None:
        return request.headers.get("x-goog-api-key") or request.query.get("key")

    def _auth_failure(self, call: IncomingCall, presented: str | None) -> tuple[int, Any]:
        if presented is None:
            return 403, gemini_error(403, _NO_KEY_MESSAGE, "PERMISSION_DENIED")
        return 400, _bad_key_body()

    def _request_model(self, recorded: RecordedRequest) -> str | None:
        prefix = "/v1beta/models/"
        if not recorded.path.startswith(prefix):
            return None
        model, sep, _ = recorded.path[len(prefix) :].rpartition(":")
        return model if sep else None

    def _error_body(self, call: IncomingCall, status: int) -> Any:
        rpc, message = _STATUS_ERRORS.get(status) or (("INTERNAL" if status >= 500 else "FAILED_PRECONDITION"), "")
        message = message or f"Request failed with status {status}."
        if status == 429:
            model = self._request_model(call.recorded) or "gemini-2.5-flash"
            delay = call.fault.retry_after if call.fault is not None else None
            seconds = float(delay) if isinstance(delay, int | float) else self.retry_delay
            details: list[dict[str, Any]] = [
                {
                    "@type": _RPC_PREFIX + "QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                            "quotaDimensions": {"location": "global", "model": model},
                            "quotaValue": "10",
                        }
                    ],
                },
                {
                    "@type": _RPC_PREFIX + "Help",
                    "links": [
                        {"description": "Learn more", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}
                    ],
                },
                {"@type": _RPC_PREFIX + "RetryInfo", "retryDelay": f"{seconds:g}s"},
            ]
            return gemini_error(429, message, rpc, details=details)
        return gemini_error(status, message, rpc)

    def _response_headers(self, call: IncomingCall) -> Mapping[str, str]:
        return {"server-timing": "gfet4t7; dur=42", "vary": "Origin, X-Origin, Referer"}

    async def _unknown_route(self, call: IncomingCall) -> web.StreamResponse:
        return await self._send_json(
            call, gemini_error(404, "Requested entity was not found.", "NOT_FOUND"), status=404
        )


def _bad_key_body() -> dict[str, Any]:
    return gemini_error(
        400,
        _BAD_KEY_MESSAGE,
        "INVALID_ARGUMENT",
        details=[
            {
                "@type": _RPC_PREFIX + "ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {"@type": _RPC_PREFIX + "LocalizedMessage", "locale": "en-US", "message": _BAD_KEY_MESSAGE},
        ],
    )


def _sse(payload: Any) -> bytes:
    """One event the way Gemini frames it: ``data: <json>`` and CRLF CRLF."""
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ": ")).encode() + b"\r\n\r\n"


# --------------------------------------------------------------------------------------------------- validation


def _field(obj: Mapping[str, Any], camel: str) -> Any:
    """``obj[camel]`` or its snake_case spelling (the proto3 JSON parser accepts both)."""
    if camel in obj:
        return obj[camel]
    return obj.get("".join(f"_{c.lower()}" if c.isupper() else c for c in camel))


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _unknown(obj: Mapping[str, Any], known: frozenset[str], where: str) -> str | None:
    for key in obj:
        if _camel(key) not in known:
            return f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
    return None


def _validate(body: Any, *, model: str, issued: set[str]) -> str | None:
    """The first problem the real API would report for ``body``, or ``None``."""
    if not isinstance(body, dict):
        return "Invalid JSON payload received. Expected an object."
    problem = _unknown(body, _REQUEST_FIELDS, "")
    if problem:
        return problem
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified\n"
    gemini3 = model.startswith("gemini-3")
    for i, content in enumerate(contents):
        problem = _validate_content(content, f"contents[{i}]", gemini3=gemini3, issued=issued, block=i + 1)
        if problem:
            return problem
    system = _field(body, "systemInstruction")
    if system is not None:
        problem = _validate_content(system, "system_instruction", gemini3=False, issued=issued, block=0)
        if problem:
            return problem
    config = _field(body, "generationConfig")
    if config is not None:
        if not isinstance(config, Mapping):
            return "Invalid JSON payload received. generation_config must be an object."
        problem = _unknown(config, _GENERATION_FIELDS, "generation_config")
        if problem:
            return problem
        thinking = _field(config, "thinkingConfig")
        if isinstance(thinking, Mapping):
            problem = _unknown(thinking, _THINKING_FIELDS, "generation_config.thinking_config")
            if problem:
                return problem
            if _field(thinking, "thinkingBudget") is not None and _field(thinking, "thinkingLevel") is not None:
                return "You can only set only one of thinking budget and thinking level."
    return None


def _validate_content(content: Any, where: str, *, gemini3: bool, issued: set[str], block: int) -> str | None:
    if not isinstance(content, Mapping):
        return f"* GenerateContentRequest.{where}: must be an object\n"
    role = content.get("role")
    if role is not None and role not in ("user", "model") and where != "system_instruction":
        return f"Please use a valid role: user, model. (got {role!r} at {where})"
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        return f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.\n"
    signed_turn = False
    for j, part in enumerate(parts):
        if not isinstance(part, Mapping):
            return f"* GenerateContentRequest.{where}.parts[{j}]: must be an object\n"
        problem = _unknown(part, _PART_FIELDS, f"{where}.parts[{j}]")
        if problem:
            return problem
        if sum(1 for k in part if _camel(k) in _PART_DATA_FIELDS) != 1:
            return (
                f"* GenerateContentRequest.{where}.parts[{j}].data: required oneof field 'data' must have one "
                "initialized field\n"
            )
        response = _field(part, "functionResponse")
        if response is not None and not isinstance(_field(response, "response"), Mapping):
            return f"* GenerateContentRequest.{where}.parts[{j}].function_response.response: must be an object\n"
        signature = _field(part, "thoughtSignature")
        if signature is not None and signature != _DUMMY_SIGNATURE and signature not in issued:
            return "Thought signature is not valid."
        call = _field(part, "functionCall")
        if call is not None and role == "model":
            if signature is not None:
                signed_turn = True
            elif gemini3 and not signed_turn:
                # Only the first call of a turn carries the signature (parallel calls legitimately have none).
                name = call.get("name") if isinstance(call, Mapping) else "?"
                return f"Function call `{name}` in the `{block}.` content block is missing a `thought_signature`."
    return None


# --------------------------------------------------------------------------------------------------- answers


@attrs.define
class _Answer:
    """One generateContent answer being rendered as a JSON body or as SSE events."""

    body: Mapping[str, Any]
    model: str
    reply: GeminiReply
    prompt_tokens: int
    sign: bool
    issued: set[str]
    response_id: str = attrs.field(factory=lambda: "".join(secrets.choice(_ID_ALPHABET) for _ in range(22)))

    @property
    def _config(self) -> Mapping[str, Any]:
        config = _field(self.body, "generationConfig")
        return config if isinstance(config, Mapping) else {}

    @property
    def n(self) -> int:
        count = _field(self._config, "candidateCount")
        return count if isinstance(count, int) and count > 0 else 1

    @property
    def include_thoughts(self) -> bool:
        thinking = _field(self._config, "thinkingConfig")
        return isinstance(thinking, Mapping) and _field(thinking, "includeThoughts") is True

    def _signature(self, candidate: int) -> str:
        sig = base64.b64encode(f"sim-thought:{self.response_id}:{candidate}".encode()).decode()
        self.issued.add(sig)
        return sig

    def _finish_reason(self, reply: ScriptedReply) -> str:
        if reply.refusal is not None:
            return "SAFETY"
        reason = reply.finish_reason
        if reason is None:
            return "STOP"
        return _FINISH_REASONS.get(reason, reason)

    def _candidate_parts(self, reply: ScriptedReply, candidate: int) -> list[list[dict[str, Any]]]:
        """The parts of one candidate, grouped by stream event (a non-stream answer joins the groups)."""
        if reply.refusal is not None:
            return []
        size = reply.chunk_size
        groups: list[list[dict[str, Any]]] = []
        if self.include_thoughts and reply.reasoning_content:
            groups.extend([{"text": piece, "thought": True}] for piece in _pieces(reply.reasoning_content, size))
        groups.extend([{"text": piece}] for piece in _pieces(reply.content, size))
        groups.extend([{"functionCall": _function_call(call)}] for call in reply.tool_calls)
        if self.sign:
            target = next(
                (g[0] for g in groups if "functionCall" in g[0]),
                next((g[0] for g in groups if "text" in g[0] and not g[0].get("thought")), None),
            )
            if target is not None:
                target["thoughtSignature"] = self._signature(candidate)
        return groups

    def _usage(self, reply: ScriptedReply, *, visible_chars: int, reasoning_chars: int) -> dict[str, Any]:
        candidates = reply.completion_tokens
        if candidates is None:
            candidates = math.ceil(visible_chars / 4)
        candidates *= self.n
        thoughts = math.ceil(reasoning_chars / 4) * self.n
        prompt = reply.prompt_tokens if reply.prompt_tokens is not None else self.prompt_tokens
        usage: dict[str, Any] = {"promptTokenCount": prompt}
        if candidates:
            usage["candidatesTokenCount"] = candidates
        usage["totalTokenCount"] = prompt + candidates + thoughts
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        return usage

    def _envelope(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {**fields, "modelVersion": self.model, "responseId": self.response_id}

    def _blocked(self, block: ScriptedBlock) -> dict[str, Any]:
        feedback: dict[str, Any] = {"blockReason": block.reason}
        if block.message:
            feedback["blockReasonMessage"] = block.message
        feedback["safetyRatings"] = [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
        ]
        usage = {"promptTokenCount": self.prompt_tokens, "totalTokenCount": self.prompt_tokens}
        return self._envelope({"promptFeedback": feedback, "usageMetadata": usage})

    def response_body(self) -> dict[str, Any]:
        reply = self.reply
        if isinstance(reply, ScriptedBlock):
            return self._blocked(reply)
        candidates = []
        for index in range(self.n):
            parts = [part for group in self._candidate_parts(reply, index) for part in group]
            candidates.append(self._candidate(reply, index, parts, finished=True))
        usage = self._usage(reply, visible_chars=_visible_chars(reply), reasoning_chars=_reasoning_chars(reply))
        return self._envelope({"candidates": candidates, "usageMetadata": usage})

    def _candidate(
        self, reply: ScriptedReply, index: int, parts: list[dict[str, Any]], *, finished: bool
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"} if parts else {}}
        if finished:
            candidate["finishReason"] = self._finish_reason(reply)
            if reply.tool_calls and reply.refusal is None:
                candidate["finishMessage"] = "Model generated function call(s)."
            if reply.refusal is not None:
                candidate["safetyRatings"] = [
                    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": True}
                ]
        candidate["index"] = index
        return candidate

    def events(self) -> list[StreamEvent]:
        reply = self.reply
        if isinstance(reply, ScriptedBlock):
            return [StreamEvent(data=_sse(self._blocked(reply)), kind="content")]
        per_candidate = [self._candidate_parts(reply, index) for index in range(self.n)]
        steps = max(1, *(len(groups) for groups in per_candidate))
        final = self._usage(reply, visible_chars=_visible_chars(reply), reasoning_chars=_reasoning_chars(reply))
        events: list[StreamEvent] = []
        for step in range(steps):
            for index, groups in enumerate(per_candidate):
                count = max(1, len(groups))
                if step >= count:
                    continue
                parts = groups[step] if step < len(groups) else []
                last_event = step == steps - 1 and index == len(per_candidate) - 1
                chunk = {
                    "candidates": [self._candidate(reply, index, parts, finished=step == count - 1)],
                    "usageMetadata": final if last_event else _partial_usage(final, (step + 1) / steps),
                }
                events.append(StreamEvent(data=_sse(self._envelope(chunk)), kind="content"))
        return events


def _partial_usage(final: Mapping[str, Any], fraction: float) -> dict[str, Any]:
    """Running usage mid-stream: the prompt and thoughts are known, candidates grow (absent at first, as real)."""
    usage = dict(final)
    candidates = math.floor(final.get("candidatesTokenCount", 0) * fraction)
    if candidates:
        usage["candidatesTokenCount"] = candidates
    else:
        usage.pop("candidatesTokenCount", None)
    usage["totalTokenCount"] = final["totalTokenCount"] - final.get("candidatesTokenCount", 0) + candidates
    return usage


def _function_call(call: ScriptedToolCall) -> dict[str, Any]:
    try:
        args = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError:
        args = {"_raw": call.arguments}
    out: dict[str, Any] = {"name": call.name, "args": args if isinstance(args, dict) else {"value": args}}
    if call.id is not None:
        out["id"] = call.id
    return out


def _pieces(text: str | None, size: int) -> Iterable[str]:
    if not text:
        return []
    return [text[start : start + size] for start in range(0, len(text), size)]


def _visible_chars(reply: ScriptedReply) -> int:
    if reply.refusal is not None:
        return 0
    calls = sum(len(json.dumps(_function_call(c), separators=(",", ":"))) for c in reply.tool_calls)
    return len(reply.content or "") + calls


def _reasoning_chars(reply: ScriptedReply) -> int:
    return len(reply.reasoning_content or "") if reply.refusal is None else 0
