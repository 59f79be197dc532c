"""OpenAI chat request → Anthropic Messages request.

Everything here runs before the network call, so every problem surfaces as :class:`InvalidRequest` /
:class:`UnsupportedFeature` naming the field, or as a :class:`CallWarning` for a setting that was dropped.

Mapping rules (wire-chat.md §3.7), with the choices this provider makes:

- ``system`` / ``developer`` messages (anywhere in the list) → top-level ``system``: one string message stays a
  string; several, or text parts, become a list of text blocks (so part-level ``cache_control`` survives).
- Consecutive ``user`` and ``tool`` messages merge into one ``user`` turn with the ``tool_result`` blocks first;
  consecutive ``assistant`` messages merge too. Empty text is dropped (Anthropic rejects empty text blocks) and a
  turn left empty is skipped. A trailing ``assistant`` message is sent as the prefill the answer continues; its
  trailing whitespace is trimmed (the API rejects a prefill ending in whitespace).
- Parts: text → text; ``image_url`` with a ``data:`` URI → base64 image (jpeg/png/gif/webp) or, for
  ``application/pdf``, a base64 document; an http(s) URL → ``{"type": "url"}`` image source (a URL ending in
  ``.pdf`` → URL document); ``file`` with ``file_data`` → base64 PDF document / plain-text document / image, with
  ``file_id`` → a Files-API document (``filename`` becomes the document ``title``); ``input_audio`` → unsupported.
  ``detail`` has no equivalent and is ignored.
- Assistant history: ``extra["thinking_blocks"]`` (thinking with signature, redacted_thinking — what this provider
  returns) go first, then ``extra["server_tool_blocks"]``, text, and ``tool_use`` blocks. ``reasoning_content``
  without a signature cannot be sent back (Anthropic rejects unsigned thinking) and is left out.
- Tool results: ``tool_call_id`` → ``tool_use_id``; ``extra["is_error"]`` → ``is_error``. Tool-call ids and tool
  names outside Anthropic's ``[a-zA-Z0-9_-]`` are rewritten deterministically (names are mapped back on the reply).
- ``tool_choice``: auto → auto, required → any, none → none, a named function → tool; ``parallel_tool_calls=false``
  → ``disable_parallel_tool_use``.
- JSON output: ``json_schema`` uses native ``output_config.format`` on models that support it (Sonnet/Haiku 4.5,
  Opus 4.1+); otherwise, and for ``json_object``, a forced tool named :data:`JSON_TOOL_NAME` whose input schema is
  the schema — the reply's tool input is returned as the message content with ``finish_reason`` ``"stop"``.
  Provider option ``structured_output`` (``auto`` / ``tool`` / ``native``) overrides the choice.
- ``max_tokens`` (required by Anthropic): ``max_completion_tokens`` or ``max_tokens``, else the model family's
  output limit (see :mod:`._models`) or the provider option ``default_max_tokens``; capped at the family limit.
- ``reasoning_effort`` → ``thinking: {type: enabled, budget_tokens}`` per :data:`REASONING_BUDGETS`; when the limit
  is not above the budget, ``max_tokens`` becomes budget + limit. With thinking on, ``temperature`` (≠ 1),
  ``top_k`` and ``top_p`` < 0.95 are dropped with a warning (the API rejects them), and forced tool use is refused.
  ``extra["thinking"]`` passes through verbatim instead (e.g. ``{"type": "adaptive"}``).
- ``stop`` → ``stop_sequences`` (whitespace-only ones dropped); ``temperature`` clamped to 1; ``top_p``;
  ``extra["top_k"]``; ``user`` → ``metadata.user_id``; ``n`` > 1 and non-text ``modalities`` → unsupported;
  penalties, ``logit_bias``, ``seed``, ``logprobs`` → dropped with a warning.
- ``extra`` keys that are Anthropic parameters (:data:`PASSTHROUGH_KEYS`) are sent as they are; others are dropped
  with a warning.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import attrs

from polyrelay.errors import InvalidRequest, UnsupportedFeature
from polyrelay.types.chat import (
    ChatRequest,
    ContentPart,
    FilePart,
    ImagePart,
    InputAudioPart,
    Message,
    NamedToolChoice,
    RefusalPart,
    TextPart,
    UnknownPart,
)
from polyrelay.types.completion import CallWarning
from polyrelay_anthropic._models import ModelProfile, model_profile
from polyrelay_anthropic._wire import (
    Base64Source,
    ContentBlock,
    DocumentBlock,
    FileSource,
    ImageBlock,
    MessagesRequest,
    OutputConfig,
    OutputFormat,
    RedactedThinkingBlock,
    RequestMetadata,
    Source,
    TextBlock,
    TextSource,
    ThinkingBlock,
    ThinkingConfig,
    ToolChoiceSpec,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    UnknownBlock,
    URLSource,
    WireMessage,
)

__all__ = [
    "JSON_TOOL_NAME",
    "PASSTHROUGH_KEYS",
    "REASONING_BUDGETS",
    "PreparedRequest",
    "ResponsePlan",
    "TranslateOptions",
    "build_request",
]

#: ``reasoning_effort`` → ``thinking.budget_tokens`` (litellm's table; 1,024 is Anthropic's minimum budget).
REASONING_BUDGETS: Final[Mapping[str, int]] = {
    "minimal": 1_024,
    "low": 1_024,
    "medium": 2_048,
    "high": 4_096,
    "xhigh": 8_192,
    "max": 16_384,
}
#: The forced tool that carries JSON output on models without native structured output.
JSON_TOOL_NAME: Final = "json_output"
_JSON_TOOL_DESCRIPTION: Final = "Respond with the final answer as a JSON object that matches this tool's input schema."
#: ``extra`` keys sent to Anthropic as they are (``top_k``, ``thinking``, ``metadata`` and ``output_config`` are
#: merged with what the OpenAI fields produce).
PASSTHROUGH_KEYS: Final = frozenset(
    {
        "top_k",
        "thinking",
        "metadata",
        "output_config",
        "cache_control",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
        "inference_geo",
    }
)
_SERVICE_TIERS: Final = frozenset({"auto", "standard_only"})
_IMAGE_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_MEDIA_ALIASES: Final[Mapping[str, str]] = {"image/jpg": "image/jpeg"}
_EXTENSION_TYPES: Final[Mapping[str, str]] = {
    ".pdf": "application/pdf",
    ".txt": "text/plain",
    ".md": "text/plain",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
#: Part/tool keys worth carrying to the Anthropic block (anything else an OpenAI client put there would be a 400).
_BLOCK_KEYS: Final = frozenset({"cache_control"})
_DOCUMENT_KEYS: Final = frozenset({"cache_control", "title", "context", "citations"})
#: Below this ``top_p`` the API refuses extended thinking.
_THINKING_MIN_TOP_P: Final = 0.95
_ID_OK: Final = re.compile(r"^[a-zA-Z0-9_-]+$")
_NAME_OK: Final = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_NOT_ALLOWED: Final = re.compile(r"[^a-zA-Z0-9_-]")
_UNSUPPORTED_PARAMS: Final = ("presence_penalty", "frequency_penalty", "logit_bias", "seed", "top_logprobs")


@attrs.frozen(kw_only=True)
class TranslateOptions:
    """Provider options that shape the request."""

    default_max_tokens: int | None = None
    structured_output: Literal["auto", "tool", "native"] = "auto"


@attrs.frozen(kw_only=True)
class ResponsePlan:
    """What reading the reply needs to know about the request."""

    json_tool: str | None = None
    """Name of the forced JSON-output tool, when JSON mode went through a tool."""
    tool_names: Mapping[str, str] = attrs.field(factory=dict)
    """Wire tool name → the caller's name, for names that had to be rewritten."""

    def caller_name(self, wire_name: str) -> str:
        return self.tool_names.get(wire_name, wire_name)


@attrs.frozen(kw_only=True)
class PreparedRequest:
    body: MessagesRequest
    plan: ResponsePlan
    warnings: tuple[CallWarning, ...] = ()


def build_request(
    request: ChatRequest,
    *,
    model: str,
    provider: str,
    stream: bool,
    options: TranslateOptions | None = None,
) -> PreparedRequest:
    """Translate ``request`` for upstream model ``model``. Raises before any I/O on input that cannot be sent."""
    return _Builder(request, model=model, provider=provider, options=options or TranslateOptions()).build(stream)


@attrs.define
class _Turn:
    role: Literal["user", "assistant"]
    results: list[ContentBlock] = attrs.field(factory=list)
    blocks: list[ContentBlock] = attrs.field(factory=list)

    @property
    def content(self) -> list[ContentBlock]:
        # Anthropic wants the tool_result blocks of a user turn before anything else in it.
        return [*self.results, *self.blocks]


class _Builder:
    def __init__(self, request: ChatRequest, *, model: str, provider: str, options: TranslateOptions) -> None:
        self.request = request
        self.model = model
        self.provider = provider
        self.options = options
        self.profile: ModelProfile = model_profile(model)
        self.warnings: dict[str, CallWarning] = {}
        self.names: dict[str, str] = {}  # caller's tool name → wire name
        self.taken: set[str] = set()

    # ----------------------------------------------------------------------------------------- helpers

    def warn(self, setting: str, message: str) -> None:
        self.warnings.setdefault(setting, CallWarning(setting=setting, message=message))

    def unsupported(self, message: str, path: str) -> UnsupportedFeature:
        return UnsupportedFeature(message, path=path, provider=self.provider)

    def wire_name(self, name: str) -> str:
        """The Anthropic-safe spelling of a tool name (stable within the request, unique)."""
        known = self.names.get(name)
        if known is not None:
            return known
        wire = name
        if not _NAME_OK.match(name) or wire in self.taken:
            wire = _NOT_ALLOWED.sub("_", name)[:119] or "tool"
            if wire in self.taken:
                wire = f"{wire}_{_short_hash(name)}"
        self.names[name] = wire
        self.taken.add(wire)
        return wire

    # ----------------------------------------------------------------------------------------- top level

    def build(self, stream: bool) -> PreparedRequest:
        r = self.request
        if r.n is not None and r.n > 1:
            raise self.unsupported("several choices (n > 1) are not supported by the Messages API", "n")
        if r.modalities and any(m != "text" for m in r.modalities):
            raise self.unsupported("only text output is supported", "modalities")
        for name in _UNSUPPORTED_PARAMS:
            if getattr(r, name) is not None:
                self.warn(name, f"Anthropic has no equivalent of {name}; it was not sent")
        if r.logprobs:
            self.warn("logprobs", "Anthropic does not return log probabilities; it was not sent")

        # Declared names that are already valid keep their spelling; rewritten ones must not collide with them.
        declared = [tool.function.name for tool in r.tools or ()]
        for name in sorted(declared, key=lambda n: not _NAME_OK.match(n)):
            self.wire_name(name)
        thinking = self._thinking()
        thinking_on = thinking is not None and thinking.type in ("enabled", "adaptive")
        system, messages = self._messages()
        tools, tool_choice, output_format, json_tool = self._tools(thinking_on)
        max_tokens = self._max_tokens(thinking)
        temperature, top_p, top_k = self._sampling(thinking_on)
        extra, metadata, output_config = self._extra(output_format)

        body = MessagesRequest(
            model=self.model,
            max_tokens=max_tokens,
            messages=tuple(messages),
            system=system,
            stop_sequences=self._stop(),
            stream=stream,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            tools=tuple(tools) if tools else None,
            tool_choice=tool_choice,
            thinking=thinking,
            metadata=metadata,
            output_config=output_config,
            extra=extra,
        )
        reverse = {wire: name for name, wire in self.names.items() if wire != name}
        plan = ResponsePlan(json_tool=json_tool, tool_names=reverse)
        return PreparedRequest(body=body, plan=plan, warnings=tuple(self.warnings.values()))

    # ----------------------------------------------------------------------------------------- messages

    def _messages(self) -> tuple[str | tuple[TextBlock, ...] | None, list[WireMessage]]:
        system: list[TextBlock] = []
        plain_system = 0  # system messages whose content is a plain string
        turns: list[_Turn] = []
        for i, message in enumerate(self.request.messages):
            path = f"messages[{i}]"
            role = message.role
            if role in ("system", "developer"):
                system.extend(self._system_blocks(message, path))
                plain_system += isinstance(message.content, str)
            elif role == "user":
                _turn(turns, "user").blocks.extend(self._user_blocks(message, path))
            elif role == "tool":
                _turn(turns, "user").results.append(self._tool_result(message, path))
            elif role == "assistant":
                _turn(turns, "assistant").blocks.extend(self._assistant_blocks(message, path))
            else:
                raise self.unsupported("the legacy 'function' role is not supported; use tool messages", path)
        merged: list[_Turn] = []
        for turn in turns:  # skipping an empty turn can bring two turns of one role together: merge again
            if not turn.content:
                continue
            if merged and merged[-1].role == turn.role:
                merged[-1].results.extend(turn.results)
                merged[-1].blocks.extend(turn.blocks)
            else:
                merged.append(turn)
        if merged and merged[-1].role == "assistant":
            _trim_prefill(merged[-1])
            if not merged[-1].content:
                merged.pop()
        if not merged:
            raise InvalidRequest("needs at least one user or assistant message with content", path="messages")
        wire = [WireMessage(role=t.role, content=tuple(t.content)) for t in merged]
        if len(system) == 1 and plain_system == 1 and not system[0].extra:
            return system[0].text, wire
        return (tuple(system) or None), wire

    def _system_blocks(self, message: Message, path: str) -> list[TextBlock]:
        content = message.content
        blocks: list[TextBlock] = []
        if isinstance(content, str):
            if content:
                blocks.append(TextBlock(text=content))
        else:
            for j, part in enumerate(content or ()):
                if not isinstance(part, TextPart):
                    raise self.unsupported("system messages can only hold text", f"{path}.content[{j}]")
                if part.text:
                    blocks.append(TextBlock(text=part.text, extra=_pick(part.extra, _BLOCK_KEYS)))
        return _with_message_cache_control(blocks, message)

    def _user_blocks(self, message: Message, path: str) -> list[ContentBlock]:
        content = message.content
        blocks: list[ContentBlock] = []
        if isinstance(content, str):
            if content.strip():
                blocks.append(TextBlock(text=content))
        else:
            for j, part in enumerate(content or ()):
                block = self._part(part, f"{path}.content[{j}]")
                if block is not None:
                    blocks.append(block)
        return _with_message_cache_control(blocks, message)

    def _part(self, part: ContentPart, path: str) -> ContentBlock | None:
        if isinstance(part, TextPart):
            if not part.text.strip():
                return None
            return TextBlock(text=part.text, extra=_pick(part.extra, _BLOCK_KEYS))
        if isinstance(part, ImagePart):
            return self._image(part.image_url.url, f"{path}.image_url", _pick(part.extra, _BLOCK_KEYS))
        if isinstance(part, FilePart):
            return self._file(part, f"{path}.file")
        if isinstance(part, InputAudioPart):
            raise self.unsupported("audio input is not supported by the Messages API", path)
        if isinstance(part, RefusalPart):
            return TextBlock(text=part.refusal) if part.refusal.strip() else None
        if isinstance(part, UnknownPart) and part.type in ("image", "document", "search_result"):
            return UnknownBlock(type=part.type, data=part.data)  # already an Anthropic block: pass it on
        raise self.unsupported(f"content part type {part.type!r} is not supported", path)

    def _image(self, url: str, path: str, extra: Mapping[str, Any]) -> ContentBlock:
        if url.startswith("data:"):
            media_type, data = _data_uri(url, path)
            return self._media(media_type, data, path, extra, title=None)
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise InvalidRequest("expected an http(s) URL or a data: URI", path=path)
        if urlsplit(url).path.lower().endswith(".pdf"):
            return DocumentBlock(source=URLSource(url=url), extra=extra)
        return ImageBlock(source=URLSource(url=url), extra=extra)

    def _file(self, part: FilePart, path: str) -> ContentBlock:
        ref = part.file
        extra = _pick(part.extra, _DOCUMENT_KEYS)
        if ref.file_data:
            data = ref.file_data
            if data.startswith("data:"):
                media_type, payload = _data_uri(data, f"{path}.file_data")
            else:
                ext = "." + ref.filename.rsplit(".", 1)[-1].lower() if ref.filename and "." in ref.filename else ""
                media_type = _EXTENSION_TYPES.get(ext, "")
                if not media_type:
                    raise self.unsupported(
                        "file_data without a data: URI media type needs a .pdf, .txt or image filename", path
                    )
                payload = data
            return self._media(media_type, payload, f"{path}.file_data", extra, title=ref.filename)
        if ref.file_id:
            return DocumentBlock(source=FileSource(file_id=ref.file_id), title=ref.filename, extra=extra)
        raise InvalidRequest("a file part needs file_data or file_id", path=path)

    def _media(
        self, media_type: str, data: str, path: str, extra: Mapping[str, Any], *, title: str | None
    ) -> ContentBlock:
        if media_type in _IMAGE_TYPES:
            return ImageBlock(source=Base64Source(media_type=media_type, data=data), extra=_pick(extra, _BLOCK_KEYS))
        if media_type == "application/pdf":
            return DocumentBlock(source=Base64Source(media_type=media_type, data=data), title=title, extra=extra)
        if media_type == "text/plain":
            try:
                text = base64.b64decode(data, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise InvalidRequest("text/plain data is not base64 UTF-8 text", path=path) from exc
            source: Source = TextSource(data=text)
            return DocumentBlock(source=source, title=title, extra=extra)
        raise self.unsupported(
            f"media type {media_type!r} is not supported (images: jpeg/png/gif/webp; documents: PDF, plain text)",
            path,
        )

    def _tool_result(self, message: Message, path: str) -> ContentBlock:
        if not message.tool_call_id:
            raise InvalidRequest("is required", path=f"{path}.tool_call_id")
        content: str | tuple[ContentBlock, ...] | None
        if isinstance(message.content, str) or message.content is None:
            content = message.content or None
        else:
            blocks: list[ContentBlock] = []
            for j, part in enumerate(message.content):
                part_path = f"{path}.content[{j}]"
                if isinstance(part, TextPart | ImagePart | UnknownPart):
                    block = self._part(part, part_path)
                    if block is not None:
                        blocks.append(block)
                else:
                    raise self.unsupported("tool results can hold text and images only", part_path)
            content = tuple(blocks) or None
        is_error = message.extra.get("is_error")
        if is_error is not None and not isinstance(is_error, bool):
            raise InvalidRequest("must be true or false", path=f"{path}.is_error")
        extra = _pick(message.extra, _BLOCK_KEYS)
        return ToolResultBlock(
            tool_use_id=_wire_id(message.tool_call_id), content=content, is_error=is_error, extra=extra
        )

    def _assistant_blocks(self, message: Message, path: str) -> list[ContentBlock]:
        blocks: list[ContentBlock] = [*self._thinking_history(message.extra.get("thinking_blocks"), path)]
        server = message.extra.get("server_tool_blocks")
        for j, raw in enumerate(_object_list(server, f"{path}.server_tool_blocks")):
            kind = raw.get("type")
            if not isinstance(kind, str):
                raise InvalidRequest("needs a string 'type'", path=f"{path}.server_tool_blocks[{j}]")
            blocks.append(UnknownBlock(type=kind, data=raw))
        content = message.content
        if isinstance(content, str):
            if content:
                blocks.append(TextBlock(text=content))
        else:
            for j, part in enumerate(content or ()):
                if isinstance(part, TextPart | RefusalPart):
                    text = part.text if isinstance(part, TextPart) else part.refusal
                    if text:
                        blocks.append(TextBlock(text=text, extra=_pick(part.extra, _BLOCK_KEYS)))
                else:
                    raise self.unsupported("assistant messages can hold text only", f"{path}.content[{j}]")
        if message.refusal and not content:
            blocks.append(TextBlock(text=message.refusal))
        for j, call in enumerate(message.tool_calls or ()):
            blocks.append(
                ToolUseBlock(
                    id=_wire_id(call.id),
                    name=self.wire_name(call.function.name),
                    input=self._tool_input(call.function.arguments, f"{path}.tool_calls[{j}].function.arguments"),
                )
            )
        return blocks

    def _thinking_history(self, raw_blocks: Any, path: str) -> list[ContentBlock]:
        out: list[ContentBlock] = []
        for j, raw in enumerate(_object_list(raw_blocks, f"{path}.thinking_blocks")):
            where = f"{path}.thinking_blocks[{j}]"
            kind = raw.get("type")
            if kind == "thinking":
                thinking, signature = raw.get("thinking"), raw.get("signature")
                if not isinstance(thinking, str) or not isinstance(signature, str):
                    raise InvalidRequest("a thinking block needs string 'thinking' and 'signature'", path=where)
                out.append(ThinkingBlock(thinking=thinking, signature=signature))
            elif kind == "redacted_thinking":
                data = raw.get("data")
                if not isinstance(data, str):
                    raise InvalidRequest("a redacted_thinking block needs a string 'data'", path=where)
                out.append(RedactedThinkingBlock(data=data))
            else:
                raise InvalidRequest("expected type 'thinking' or 'redacted_thinking'", path=where)
        return out

    def _tool_input(self, arguments: str, path: str) -> Any:
        if not arguments.strip():
            return {}
        try:
            value = json.loads(arguments)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
        # Anthropic needs an object; a model can emit broken arguments (cut off at max_tokens) and the caller sends
        # them back in history: keep the text rather than fail the conversation (vercel's convention).
        self.warn(path, "tool-call arguments were not a JSON object; sent as {'rawInvalidInput': <text>}")
        return {"rawInvalidInput": arguments}

    # ----------------------------------------------------------------------------------------- tools & JSON

    def _tools(
        self, thinking_on: bool
    ) -> tuple[list[ToolSpec], ToolChoiceSpec | None, OutputFormat | None, str | None]:
        r = self.request
        tools: list[ToolSpec] = []
        for i, tool in enumerate(r.tools or ()):
            fn = tool.function
            strict: bool | None = None
            if fn.strict:
                if self.profile.native_structured_output:
                    strict = True
                else:
                    self.warn(f"tools[{i}].function.strict", f"model {self.model!r} has no strict tool schemas")
            tools.append(
                ToolSpec(
                    name=self.wire_name(fn.name),
                    description=fn.description,
                    input_schema=_object_schema(fn.parameters),
                    strict=strict,
                    extra=_pick(tool.extra, _BLOCK_KEYS),
                )
            )
        choice = self._tool_choice(bool(tools))
        output_format: OutputFormat | None = None
        json_tool: str | None = None
        rf = r.response_format
        if rf is not None and rf.type != "text":
            schema = rf.json_schema.schema if rf.type == "json_schema" and rf.json_schema else None
            mode = self.options.structured_output
            if schema is not None and (mode == "native" or (mode == "auto" and self.profile.native_structured_output)):
                output_format = OutputFormat(schema=schema)
            else:
                if any(t.name == JSON_TOOL_NAME for t in tools):
                    raise InvalidRequest(
                        f"JSON output uses a tool named {JSON_TOOL_NAME!r}; a declared tool has that name",
                        path="response_format",
                    )
                if schema is not None and schema.get("type", "object") != "object":
                    raise self.unsupported("a JSON schema whose root is not an object", "response_format.json_schema")
                description = (rf.json_schema.description if rf.json_schema else None) or _JSON_TOOL_DESCRIPTION
                json_tool = JSON_TOOL_NAME
                choice = _json_choice(choice, has_user_tools=bool(tools))
                tools.append(ToolSpec(name=json_tool, description=description, input_schema=_object_schema(schema)))
        if thinking_on and choice is not None and choice.type in ("any", "tool"):
            what = "response_format" if json_tool is not None and choice.name == json_tool else "tool_choice"
            raise self.unsupported(
                "forced tool use (tool_choice required / a named tool, or JSON output through a tool) cannot be "
                "combined with extended thinking",
                what,
            )
        return tools, choice, output_format, json_tool

    def _tool_choice(self, has_tools: bool) -> ToolChoiceSpec | None:
        r = self.request
        tc = r.tool_choice
        if not has_tools:
            return None  # Anthropic rejects tool_choice without tools; with no tools there is nothing to choose
        disable = True if r.parallel_tool_calls is False else None
        if tc is None:
            return ToolChoiceSpec(type="auto", disable_parallel_tool_use=True) if disable else None
        if isinstance(tc, NamedToolChoice):
            if not any(t.function.name == tc.function.name for t in r.tools or ()):
                raise InvalidRequest("names no declared tool", path="tool_choice.function.name")
            return ToolChoiceSpec(type="tool", name=self.wire_name(tc.function.name), disable_parallel_tool_use=disable)
        if tc == "none":
            return ToolChoiceSpec(type="none")
        if tc == "auto":
            return ToolChoiceSpec(type="auto", disable_parallel_tool_use=disable)
        if tc in ("required", "any"):
            return ToolChoiceSpec(type="any", disable_parallel_tool_use=disable)
        raise InvalidRequest(
            f"unknown tool_choice {tc!r}; expected none, auto, required or a function", path="tool_choice"
        )

    # ----------------------------------------------------------------------------------------- limits & sampling

    def _thinking(self) -> ThinkingConfig | None:
        r = self.request
        raw = r.extra.get("thinking")
        if raw is not None:
            if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
                raise InvalidRequest("must be an object with a string 'type'", path="thinking")
            budget = raw.get("budget_tokens")
            if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
                raise InvalidRequest("must be an integer", path="thinking.budget_tokens")
            if r.reasoning_effort is not None:
                self.warn("reasoning_effort", "ignored: the request passes an explicit 'thinking' configuration")
            rest = {k: v for k, v in raw.items() if k not in ("type", "budget_tokens")}
            return ThinkingConfig(type=raw["type"], budget_tokens=budget, extra=rest)
        effort = r.reasoning_effort
        if effort is None or effort == "none":
            return None
        budget = REASONING_BUDGETS.get(effort)
        if budget is None:
            choices = ", ".join(["none", *REASONING_BUDGETS])
            raise InvalidRequest(
                f"unknown reasoning effort {effort!r}; expected one of {choices}", path="reasoning_effort"
            )
        if not self.profile.thinking:
            self.warn("reasoning_effort", f"model {self.model!r} has no extended thinking; it was not enabled")
            return None
        return ThinkingConfig(type="enabled", budget_tokens=budget)

    def _max_tokens(self, thinking: ThinkingConfig | None) -> int:
        limit = self.request.output_limit
        default = self.options.default_max_tokens or self.profile.default_max_tokens
        wanted = default if limit is None else limit
        budget = thinking.budget_tokens if thinking is not None and thinking.type == "enabled" else None
        if budget and wanted <= budget:
            wanted = budget + wanted  # thinking counts against max_tokens: leave room for the answer
        cap = self.profile.max_output
        if cap is not None and wanted > cap:
            if limit is not None and limit > cap:
                field = "max_completion_tokens" if self.request.max_completion_tokens is not None else "max_tokens"
                self.warn(field, f"lowered to {cap}, the output limit of {self.model!r}")
            wanted = cap
        return wanted

    def _sampling(self, thinking_on: bool) -> tuple[float | None, float | None, int | None]:
        r = self.request
        temperature, top_p = r.temperature, r.top_p
        top_k = r.extra.get("top_k")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)):
            raise InvalidRequest("must be an integer", path="top_k")
        if temperature is not None and temperature > 1:
            self.warn("temperature", "Anthropic accepts 0 to 1; clamped to 1")
            temperature = 1.0
        if thinking_on:
            if temperature is not None and temperature != 1:
                self.warn("temperature", "not accepted together with extended thinking; it was not sent")
                temperature = None
            if top_k is not None:
                self.warn("top_k", "not accepted together with extended thinking; it was not sent")
                top_k = None
            if top_p is not None and top_p < _THINKING_MIN_TOP_P:
                self.warn("top_p", "below 0.95 it is not accepted with extended thinking; it was not sent")
                top_p = None
        return temperature, top_p, top_k

    def _stop(self) -> tuple[str, ...] | None:
        stop = self.request.stop
        if stop is None:
            return None
        items = (stop,) if isinstance(stop, str) else stop
        kept = tuple(s for s in items if s.strip())
        if len(kept) != len(items):
            self.warn("stop", "whitespace-only stop sequences are rejected by Anthropic; they were not sent")
        return kept or None

    def _extra(
        self, output_format: OutputFormat | None
    ) -> tuple[dict[str, Any], RequestMetadata | None, OutputConfig | None]:
        r = self.request
        extra: dict[str, Any] = {}
        for key, value in r.extra.items():
            if key not in PASSTHROUGH_KEYS:
                self.warn(key, f"{key!r} is not an Anthropic Messages parameter; it was not sent")
            elif key == "service_tier" and value not in _SERVICE_TIERS:
                self.warn(key, f"Anthropic's service tiers are {sorted(_SERVICE_TIERS)}; {value!r} was not sent")
            elif key not in ("top_k", "thinking", "metadata", "output_config"):
                extra[key] = value
        metadata: RequestMetadata | None = None
        raw_meta = r.extra.get("metadata")
        if raw_meta is not None and not isinstance(raw_meta, Mapping):
            raise InvalidRequest("must be an object", path="metadata")
        if r.user is not None or raw_meta:
            rest = {k: v for k, v in (raw_meta or {}).items() if k != "user_id"}
            user_id = r.user if r.user is not None else (raw_meta or {}).get("user_id")
            metadata = RequestMetadata(user_id=user_id, extra=rest)
        raw_config = r.extra.get("output_config")
        if raw_config is not None and not isinstance(raw_config, Mapping):
            raise InvalidRequest("must be an object", path="output_config")
        config_extra = dict(raw_config or {})
        if output_format is not None:
            config_extra.pop("format", None)
        config = OutputConfig(format=output_format, extra=config_extra) if output_format or config_extra else None
        return extra, metadata, config


# ---------------------------------------------------------------------------------------------------- helpers


def _turn(turns: list[_Turn], role: Literal["user", "assistant"]) -> _Turn:
    if turns and turns[-1].role == role:
        return turns[-1]
    turn = _Turn(role=role)
    turns.append(turn)
    return turn


def _trim_prefill(turn: _Turn) -> None:
    last = turn.blocks[-1] if turn.blocks else None
    if isinstance(last, TextBlock):
        text = last.text.rstrip()
        if text:
            turn.blocks[-1] = attrs.evolve(last, text=text)
        else:
            turn.blocks.pop()


def _json_choice(choice: ToolChoiceSpec | None, *, has_user_tools: bool) -> ToolChoiceSpec:
    """The tool choice when JSON output goes through :data:`JSON_TOOL_NAME`."""
    if has_user_tools and choice is not None and choice.type in ("any", "tool"):
        return choice  # the caller forced a tool of theirs: that comes first
    if has_user_tools and (choice is None or choice.type == "auto"):
        # Some tool must be called: one of the caller's, or the JSON tool for the final answer.
        disable = choice.disable_parallel_tool_use if choice else None
        return ToolChoiceSpec(type="any", disable_parallel_tool_use=disable)
    return ToolChoiceSpec(type="tool", name=JSON_TOOL_NAME)


def _object_schema(schema: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not schema:
        return {"type": "object", "properties": {}}
    if "type" not in schema:
        return {"type": "object", **schema}
    return schema


def _data_uri(uri: str, path: str) -> tuple[str, str]:
    """``data:<media type>;base64,<data>`` → (media type, base64 data)."""
    header, sep, data = uri.partition(",")
    if not sep:
        raise InvalidRequest("a data: URI needs a comma before its data", path=path)
    params = header[len("data:") :].split(";")
    if "base64" not in (p.strip().lower() for p in params[1:]):
        raise InvalidRequest("only base64 data: URIs are supported", path=path)
    media_type = params[0].strip().lower() or "text/plain"
    return _MEDIA_ALIASES.get(media_type, media_type), data


def _wire_id(call_id: str) -> str:
    """A tool-call id Anthropic accepts (``^[a-zA-Z0-9_-]+$``); the same input always gives the same id, so a
    ``tool_use`` and its ``tool_result`` still match."""
    if _ID_OK.match(call_id):
        return call_id
    cleaned = _NOT_ALLOWED.sub("_", call_id)[:48]
    return f"{cleaned}_{_short_hash(call_id)}" if cleaned else f"toolu_{_short_hash(call_id)}"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _pick(extra: Mapping[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in extra.items() if k in keys}


def _with_message_cache_control(blocks: list[Any], message: Message) -> list[Any]:
    """Message-level ``cache_control`` (a litellm/OpenRouter convention) marks the message's last block."""
    marker = message.extra.get("cache_control")
    if marker is None or not blocks:
        return blocks
    last = blocks[-1]
    if isinstance(last, TextBlock | ImageBlock | DocumentBlock | ToolResultBlock):
        blocks[-1] = attrs.evolve(last, extra={**last.extra, "cache_control": marker})
    return blocks


def _object_list(value: Any, path: str) -> Sequence[Mapping[str, Any]]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, Mapping) for v in value):
        raise InvalidRequest("must be a list of objects", path=path)
    return value
