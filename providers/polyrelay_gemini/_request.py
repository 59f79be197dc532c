"""OpenAI ``ChatRequest`` → Gemini ``GenerateContentRequest``.

Everything is checked before any network call: features Gemini cannot represent raise
:class:`~polyrelay.errors.UnsupportedFeature`, settings it cannot honour become
:class:`~polyrelay.types.CallWarning`\\ s. Media URLs that must be downloaded are returned as
:class:`DownloadRequest`\\ s; the provider fetches them and translates again with the results (translation is
pure and cheap, so doing it twice is simpler than patching frozen wire objects).

Mapping rules (the ones with a choice in them):

- ``system`` and ``developer`` messages, wherever they are, become ``systemInstruction`` (one text part per
  message, in order). Gemma models have no system instruction: the text is put before the first user turn.
- ``assistant`` → ``model``; ``tool`` / ``function`` results → ``functionResponse`` parts of a ``user`` turn.
  Consecutive turns of the same role are merged, but function responses are never mixed with ordinary user
  parts in one turn. A history that starts with a model turn gets an empty user turn in front.
- A tool result's function name is recovered from the earlier assistant ``tool_calls`` with its id; ids are sent
  as ``functionCall.id`` / ``functionResponse.id``. The result text becomes ``response`` itself when it is a JSON
  object, else ``{"output": text}`` (Google's documented key).
- Thought signatures of an earlier Gemini answer (see :mod:`._response`) are sent back on the parts they came
  from; for Gemini 3, a function call without one (history from another model) gets Google's documented
  ``skip_thought_signature_validator`` placeholder, because Gemini 3 rejects unsigned calls.
- ``reasoning_effort`` → ``thinkingConfig``: ``thinkingBudget`` for Gemini 2.5 (:data:`EFFORT_BUDGETS`, capped
  per model; ``none`` → 0, or the minimum with a warning on Pro, which cannot turn thinking off) and
  ``thinkingLevel`` for Gemini 3 (:func:`_thinking_level`; ``none`` → the lowest level, with a warning);
  ``includeThoughts`` is on unless the effort is ``none``. Models not known to think get a warning instead.
- ``response_format: json_schema`` → ``responseMimeType: application/json`` plus ``responseSchema`` (converted,
  see :mod:`._schema`) or, with ``json_schema_mode = "passthrough"``, ``responseJsonSchema`` (untouched).
- Vendor keys read from ``request.extra``: ``top_k``, ``include_thoughts``, ``thinking_budget``,
  ``thinking_level``, ``safety_settings``, ``cached_content``, and OpenAI's ``web_search_options`` (→ the
  ``googleSearch`` tool). Other unknown keys are dropped with a warning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from polyrelay.errors import InvalidRequest, UnsupportedFeature
from polyrelay.types.chat import (
    ChatRequest,
    ContentPart,
    FilePart,
    FunctionDefinition,
    ImagePart,
    InputAudioPart,
    Message,
    NamedToolChoice,
    RefusalPart,
    TextPart,
    ToolCall,
    UnknownPart,
)
from polyrelay.types.completion import CallWarning
from polyrelay_gemini import _media
from polyrelay_gemini._models import ModelInfo, model_info
from polyrelay_gemini._options import GeminiOptions, check_safety_settings
from polyrelay_gemini._response import EXTRA_KEY, GOOGLE
from polyrelay_gemini._schema import to_gemini_schema
from polyrelay_gemini._wire import (
    Blob,
    Content,
    FileData,
    FunctionCallingConfig,
    FunctionDeclaration,
    GenerateContentRequest,
    GenerationConfig,
    Part,
    ThinkingConfig,
    Tool,
    ToolConfig,
    WireFunctionCall,
    WireFunctionResponse,
)

__all__ = ["DownloadRequest", "EFFORT_BUDGETS", "Translation", "translate"]

#: Google's documented placeholder for a function call whose real signature is unavailable.
DUMMY_SIGNATURE: Final = "skip_thought_signature_validator"
#: litellm's way of carrying a signature inside a tool call id: ``call_x__thought__<signature>``.
_ID_SIGNATURE_SEP: Final = "__thought__"

#: reasoning_effort → thinkingBudget (Gemini 2.5), before capping to the model's range.
EFFORT_BUDGETS: Final[Mapping[str, int]] = {"minimal": 128, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768}
_EFFORTS: Final = frozenset({"none", *EFFORT_BUDGETS})
_FUNCTION_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")
_MAX_STOP_SEQUENCES: Final = 5
#: request.extra keys this provider reads (everything else there is dropped with a warning).
EXTRA_KEYS: Final = frozenset(
    {
        "top_k",
        "include_thoughts",
        "thinking_budget",
        "thinking_level",
        "safety_settings",
        "cached_content",
        "web_search_options",
    }
)
#: OpenAI request keys that ask for something Gemini chat cannot give: refused, not dropped.
_UNSUPPORTED_EXTRA: Final[Mapping[str, str]] = {
    "functions": "legacy `functions` are not supported; use `tools`",
    "function_call": "legacy `function_call` is not supported; use `tool_choice`",
    "audio": "audio output is not supported by the Gemini chat provider",
}


@attrs.frozen(kw_only=True)
class DownloadRequest:
    """A media URL to fetch and inline before the request can be sent. ``path`` names it for errors."""

    url: str
    path: str


@attrs.frozen(kw_only=True)
class Translation:
    """The upstream body (complete only when ``downloads`` is empty) and the warnings for the result."""

    body: GenerateContentRequest
    warnings: tuple[CallWarning, ...]
    downloads: tuple[DownloadRequest, ...]


def translate(
    request: ChatRequest,
    *,
    model: str,
    options: GeminiOptions,
    provider: str,
    downloaded: Mapping[str, Blob] | None = None,
) -> Translation:
    """Translate ``request`` for upstream model ``model``. ``downloaded`` holds the fetched media by URL."""
    return _Translator(request, model_info(model), options, provider, downloaded or {}).run()


@attrs.define
class _Turn:
    role: str
    function_responses: bool
    parts: list[Part]


class _Translator:
    def __init__(
        self,
        request: ChatRequest,
        info: ModelInfo,
        options: GeminiOptions,
        provider: str,
        downloaded: Mapping[str, Blob],
    ) -> None:
        self.request = request
        self.info = info
        self.options = options
        self.provider = provider
        self.downloaded = downloaded
        self.turns: list[_Turn] = []
        self.system: list[Part] = []
        self.warnings: dict[str, CallWarning] = {}
        self.downloads: dict[str, DownloadRequest] = {}
        self.call_names: dict[str, str] = {}

    # ------------------------------------------------------------------------------------------------ helpers

    def unsupported(self, message: str, path: str) -> UnsupportedFeature:
        return UnsupportedFeature(message, path=path, provider=self.provider)

    def warn(self, setting: str, message: str) -> None:
        self.warnings.setdefault(setting, CallWarning(setting=setting, message=message))

    def add(self, role: str, parts: Sequence[Part], *, function_responses: bool = False) -> None:
        if not parts:
            return
        last = self.turns[-1] if self.turns else None
        if last is not None and last.role == role and last.function_responses == function_responses:
            last.parts.extend(parts)
        else:
            self.turns.append(_Turn(role=role, function_responses=function_responses, parts=list(parts)))

    # ------------------------------------------------------------------------------------------------ main

    def run(self) -> Translation:
        req = self.request
        self.check_extra()
        for i, msg in enumerate(req.messages):
            self.message(msg, f"messages[{i}]")
        if not self.turns:
            raise InvalidRequest("needs at least one user, assistant or tool message", path="messages")
        if self.turns[0].role == "model":
            # Gemini wants a conversation to open with a user turn.
            self.turns.insert(0, _Turn(role="user", function_responses=False, parts=[Part(text="")]))
        system = None
        if self.system:
            if self.info.gemma:  # Gemma has no systemInstruction: put the text before the first user turn
                first_user = next(t for t in self.turns if t.role == "user")
                first_user.parts[:0] = self.system
            else:
                system = Content(parts=tuple(self.system))
        tools, tool_config = self.tools()
        body = GenerateContentRequest(
            contents=tuple(Content(role=t.role, parts=tuple(t.parts)) for t in self.turns),
            system_instruction=system,
            tools=tools,
            tool_config=tool_config,
            safety_settings=self.safety_settings(),
            generation_config=self.generation_config(),
            cached_content=self.cached_content(),
        )
        return Translation(body=body, warnings=tuple(self.warnings.values()), downloads=tuple(self.downloads.values()))

    def check_extra(self) -> None:
        req = self.request
        for key in req.extra:
            if key in _UNSUPPORTED_EXTRA:
                raise self.unsupported(_UNSUPPORTED_EXTRA[key], key)
            if key not in EXTRA_KEYS:
                self.warn(key, f"`{key}` is not supported by Gemini and was ignored")
        if req.modalities is not None:
            for j, modality in enumerate(req.modalities):
                if modality != "text":
                    raise self.unsupported(f"output modality {modality!r} is not supported", f"modalities[{j}]")
        if req.logit_bias:
            self.warn("logit_bias", "Gemini has no logit bias; it was ignored")
        if req.user is not None:
            self.warn("user", "Gemini has no end-user id field; `user` was ignored")
        if req.parallel_tool_calls is False:
            self.warn("parallel_tool_calls", "Gemini cannot be limited to one tool call per turn")

    # ------------------------------------------------------------------------------------------------ messages

    def message(self, msg: Message, path: str) -> None:
        role = msg.role
        if role in ("system", "developer"):
            self.system.extend(self.text_parts(msg, path, what=f"a {role} message"))
        elif role == "user":
            if msg.name:
                self.warn("messages.name", "Gemini has no participant names; `name` was ignored")
            self.add("user", self.user_parts(msg, path))
        elif role == "assistant":
            self.add("model", self.assistant_parts(msg, path))
        elif role in ("tool", "function"):
            self.add("user", [self.function_response(msg, path)], function_responses=True)
        else:  # pragma: no cover - the Role literal is closed
            raise InvalidRequest(f"unknown role {role!r}", path=f"{path}.role")

    def text_parts(self, msg: Message, path: str, *, what: str) -> list[Part]:
        content = msg.content
        if content is None:
            return []
        if isinstance(content, str):
            return [Part(text=content)] if content else []
        out = []
        for j, part in enumerate(content):
            if isinstance(part, TextPart):
                if part.text:
                    out.append(Part(text=part.text))
            else:
                raise self.unsupported(f"{what} may only hold text parts for Gemini", f"{path}.content[{j}]")
        return out

    def user_parts(self, msg: Message, path: str) -> list[Part]:
        content = msg.content
        if content is None or isinstance(content, str):
            return [Part(text=content)] if content else []
        out = []
        for j, part in enumerate(content):
            converted = self.content_part(part, f"{path}.content[{j}]", for_tool=False)
            if converted is not None:
                out.append(converted)
        return out

    def content_part(self, part: ContentPart, path: str, *, for_tool: bool) -> Part | None:
        if isinstance(part, TextPart):
            return Part(text=part.text) if part.text else None
        if isinstance(part, ImagePart):
            detail = part.image_url.detail
            if detail not in (None, "auto"):
                self.warn("image_url.detail", "Gemini has no per-image detail setting; `detail` was ignored")
            return self.media_url(part.image_url.url, f"{path}.image_url.url", for_tool=for_tool)
        if isinstance(part, InputAudioPart):
            return self.audio(part, f"{path}.input_audio")
        if isinstance(part, FilePart):
            return self.file(part, f"{path}.file", for_tool=for_tool)
        if isinstance(part, RefusalPart):
            return Part(text=part.refusal) if part.refusal else None
        if isinstance(part, UnknownPart):
            raise self.unsupported(f"content parts of type {part.type!r} cannot be sent to Gemini", path)
        raise self.unsupported("this content part cannot be sent to Gemini", path)  # pragma: no cover

    def media_url(self, url: str, path: str, *, for_tool: bool) -> Part:
        if url[:5].lower() == "data:":
            return Part(inline_data=_media.parse_data_uri(url, path))
        kind = _media.url_kind(url)
        if kind is None:
            raise InvalidRequest("must be an http(s) URL, a gs:// URI or a data: URI", path=path)
        mime = _media.guess_mime(url)
        if not for_tool:
            if kind == "youtube":
                return Part(file_data=FileData(file_uri=url, mime_type=_media.YOUTUBE_MIME))
            if kind in ("files_api", "gcs"):
                return Part(file_data=FileData(file_uri=url, mime_type=mime))
        mode = self.options.download_urls
        fetchable = kind == "https" and mime in _media.FILE_URI_MIME_TYPES and self.info.external_urls
        if for_tool or mode == "always" or (mode == "auto" and not fetchable):
            if kind not in ("http", "https"):
                raise self.unsupported("this URL cannot be downloaded and inlined", path)
            if mode == "never":
                raise self.unsupported("function results need inline media, and download_urls is never", path)
            return self.download(url, path)
        if not fetchable:
            raise self.unsupported(
                "Gemini cannot fetch this URL itself (it needs HTTPS, a known media type from the extension and "
                'Gemini 2.5+) and download_urls is "never"',
                path,
            )
        return Part(file_data=FileData(file_uri=url, mime_type=mime))

    def download(self, url: str, path: str) -> Part:
        blob = self.downloaded.get(url)
        if blob is None:
            self.downloads.setdefault(url, DownloadRequest(url=url, path=path))
            blob = Blob(mime_type="application/octet-stream", data="")  # placeholder until downloaded
        return Part(inline_data=blob)

    def audio(self, part: InputAudioPart, path: str) -> Part:
        audio = part.input_audio
        if audio.data[:5].lower() == "data:":
            return Part(inline_data=_media.parse_data_uri(audio.data, f"{path}.data"))
        fmt = audio.format.lower()
        mime = _media.AUDIO_FORMATS.get(fmt)
        if mime is None:
            if not fmt.isalnum():
                raise InvalidRequest(f"unknown audio format {audio.format!r}", path=f"{path}.format")
            mime = f"audio/{fmt}"
        return Part(inline_data=Blob(mime_type=mime, data=audio.data))

    def file(self, part: FilePart, path: str, *, for_tool: bool) -> Part:
        ref = part.file
        if ref.file_data:
            data = ref.file_data
            if data[:5].lower() == "data:":
                blob = _media.parse_data_uri(data, f"{path}.file_data")
                if blob.mime_type == "application/octet-stream" and ref.filename:
                    blob = attrs.evolve(blob, mime_type=_media.guess_mime(ref.filename) or blob.mime_type)
                return Part(inline_data=blob)
            mime = _media.guess_mime(ref.filename) if ref.filename else None
            if mime is None:
                raise self.unsupported(
                    "the file's media type is unknown: send file_data as a data:<mime>;base64,... URI",
                    f"{path}.file_data",
                )
            return Part(inline_data=Blob(mime_type=mime, data=data))
        if ref.file_id:
            fid = ref.file_id
            if fid.startswith("files/"):
                uri = f"https://generativelanguage.googleapis.com/v1beta/{fid}"
                mime = _media.guess_mime(ref.filename) if ref.filename else None
                return Part(file_data=FileData(file_uri=uri, mime_type=mime))
            if "://" in fid:
                return self.media_url(fid, f"{path}.file_id", for_tool=for_tool)
            raise self.unsupported("only Gemini Files-API ids (files/...) can be used as file_id", f"{path}.file_id")
        raise InvalidRequest("a file part needs file_data or file_id", path=path)

    # ------------------------------------------------------------------------------------------------ assistant

    def assistant_parts(self, msg: Message, path: str) -> list[Part]:
        google = _google(msg.extra)
        parts: list[Part] = []
        if msg.reasoning_content:
            reasoning_sig = _str(google.get("reasoning_signature"))
            parts.append(Part(text=msg.reasoning_content, thought=True, thought_signature=reasoning_sig))
        text = self.assistant_text(msg, path)
        text_sig = _str(google.get("thought_signature"))
        calls = msg.tool_calls or ()
        if text:
            parts.append(Part(text=text, thought_signature=text_sig))
            text_sig = None
        signed_call = False
        for j, call in enumerate(calls):
            part = self.function_call(call, f"{path}.tool_calls[{j}]")
            signed_call = signed_call or part.thought_signature is not None
            parts.append(part)
        if calls and not signed_call and self.info.gemini3:
            # Gemini 3 rejects a turn whose first function call is unsigned; say the signature is unavailable.
            first = next(i for i, p in enumerate(parts) if p.function_call is not None)
            parts[first] = attrs.evolve(parts[first], thought_signature=DUMMY_SIGNATURE)
        if text_sig is not None:
            # A signature that came on an empty text part (Gemini sends one after the answer): keep it there.
            parts.append(Part(text="", thought_signature=text_sig))
        return parts

    def assistant_text(self, msg: Message, path: str) -> str:
        content = msg.content
        pieces = []
        if isinstance(content, str):
            pieces.append(content)
        elif content is not None:
            for j, part in enumerate(content):
                if isinstance(part, TextPart):
                    pieces.append(part.text)
                elif isinstance(part, RefusalPart):
                    pieces.append(part.refusal)
                else:
                    raise self.unsupported("assistant messages may only hold text for Gemini", f"{path}.content[{j}]")
        if msg.refusal and not pieces:
            pieces.append(msg.refusal)
        return "".join(pieces)

    def function_call(self, call: ToolCall, path: str) -> Part:
        call_id, id_sig = _split_id(call.id)
        name = call.function.name
        self.call_names[call.id] = name
        if call_id != call.id:
            self.call_names.setdefault(call_id, name)
        try:
            args = json.loads(call.function.arguments) if call.function.arguments.strip() else {}
        except ValueError as exc:
            raise InvalidRequest(f"is not valid JSON ({exc})", path=f"{path}.function.arguments") from exc
        if not isinstance(args, dict):
            raise InvalidRequest("must be a JSON object", path=f"{path}.function.arguments")
        sig = _str(_google(call.extra).get("thought_signature")) or id_sig
        return Part(function_call=WireFunctionCall(name=name, args=args, id=call_id), thought_signature=sig)

    # ------------------------------------------------------------------------------------------------ tool results

    def function_response(self, msg: Message, path: str) -> Part:
        if msg.role == "function":  # legacy: the name is on the message, there is no id
            if not msg.name:
                raise InvalidRequest("a function message needs `name`", path=f"{path}.name")
            name, call_id = msg.name, None
        else:
            if not msg.tool_call_id:
                raise InvalidRequest("a tool message needs `tool_call_id`", path=f"{path}.tool_call_id")
            found = self.call_names.get(msg.tool_call_id)
            if found is None:
                raise InvalidRequest(
                    f"no earlier assistant tool call has id {msg.tool_call_id!r}; Gemini needs the function name "
                    "of every tool result",
                    path=f"{path}.tool_call_id",
                )
            name, call_id = found, _split_id(msg.tool_call_id)[0]
        text, media = self.tool_content(msg, path)
        response = _response_object(text)
        return Part(
            function_response=WireFunctionResponse(name=name, response=response, id=call_id, parts=tuple(media) or None)
        )

    def tool_content(self, msg: Message, path: str) -> tuple[str, list[Part]]:
        content = msg.content
        if content is None or isinstance(content, str):
            return content or "", []
        texts: list[str] = []
        media: list[Part] = []
        for j, part in enumerate(content):
            if isinstance(part, TextPart):
                texts.append(part.text)
                continue
            part_path = f"{path}.content[{j}]"
            if not self.info.gemini3:
                raise self.unsupported("only Gemini 3 models accept media in function results", part_path)
            converted = self.content_part(part, part_path, for_tool=True)
            if converted is not None:
                media.append(converted)
        return "".join(texts), media

    # ------------------------------------------------------------------------------------------------ tools

    def tools(self) -> tuple[tuple[Tool, ...] | None, ToolConfig | None]:
        req = self.request
        decls: list[FunctionDeclaration] = []
        for i, tool in enumerate(req.tools or ()):
            decls.append(self.declaration(tool.function.name, tool.function, f"tools[{i}].function"))
        tools: list[Tool] = []
        if decls:
            tools.append(Tool(function_declarations=tuple(decls)))
        if req.extra.get("web_search_options") is not None:
            tools.append(Tool(extra={"googleSearch": {}}))
        return (tuple(tools) or None), self.tool_config({d.name for d in decls})

    def declaration(self, name: str, fn: FunctionDefinition, path: str) -> FunctionDeclaration:
        if not _FUNCTION_NAME.match(name):
            raise self.unsupported(
                "Gemini function names must start with a letter or underscore and use only letters, digits, "
                "'_', '.', ':' or '-' (at most 128 characters)",
                f"{path}.name",
            )
        params = fn.parameters
        if params is None:
            return FunctionDeclaration(name=name, description=fn.description)
        if self.options.json_schema_mode == "passthrough":
            return FunctionDeclaration(name=name, description=fn.description, parameters_json_schema=dict(params))
        converted = to_gemini_schema(params, path=f"{path}.parameters", provider=self.provider)
        if converted.get("type") == "OBJECT" and not converted.get("properties") and len(converted) == 1:
            # A function without arguments: Gemini rejects an OBJECT with no properties, so send none.
            return FunctionDeclaration(name=name, description=fn.description)
        return FunctionDeclaration(name=name, description=fn.description, parameters=converted)

    def tool_config(self, names: set[str]) -> ToolConfig | None:
        choice = self.request.tool_choice
        if choice is None:
            return None
        if isinstance(choice, NamedToolChoice):
            wanted = choice.function.name
            if wanted not in names:
                raise InvalidRequest(f"names no tool in `tools`: {wanted!r}", path="tool_choice.function.name")
            cfg = FunctionCallingConfig(mode="ANY", allowed_function_names=(wanted,))
        else:
            mode = {"none": "NONE", "auto": "AUTO", "required": "ANY", "any": "ANY"}.get(choice)
            if mode is None:
                raise InvalidRequest(f"unknown tool_choice {choice!r}", path="tool_choice")
            if mode == "ANY" and not names:
                raise InvalidRequest(f"tool_choice {choice!r} needs function tools", path="tool_choice")
            if not names:
                return None
            cfg = FunctionCallingConfig(mode=mode)
        return ToolConfig(function_calling_config=cfg)

    # ------------------------------------------------------------------------------------------------ config

    def generation_config(self) -> GenerationConfig | None:
        req = self.request
        extra = req.extra
        stop: tuple[str, ...] | None = None
        if req.stop is not None:
            stop = (req.stop,) if isinstance(req.stop, str) else tuple(req.stop)
            if len(stop) > _MAX_STOP_SEQUENCES:
                raise self.unsupported(f"Gemini accepts at most {_MAX_STOP_SEQUENCES} stop sequences", "stop")
            stop = stop or None
        top_k = extra.get("top_k")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise InvalidRequest("must be a positive integer", path="top_k")
        presence, frequency = req.presence_penalty, req.frequency_penalty
        if self.info.gemini3 and (presence is not None or frequency is not None):
            self.warn("presence_penalty/frequency_penalty", "Gemini 3 models do not support penalties; dropped")
            presence = frequency = None
        mime, schema, json_schema = self.response_format()
        config = GenerationConfig(
            stop_sequences=stop,
            response_mime_type=mime,
            response_schema=schema,
            response_json_schema=json_schema,
            candidate_count=req.n if req.n is not None and req.n != 1 else None,
            max_output_tokens=req.output_limit,
            temperature=req.temperature,
            top_p=req.top_p,
            top_k=top_k,
            seed=req.seed,
            presence_penalty=presence,
            frequency_penalty=frequency,
            response_logprobs=True if req.logprobs else None,
            logprobs=req.top_logprobs if req.logprobs and req.top_logprobs else None,
            thinking_config=self.thinking_config(),
        )
        return None if config == GenerationConfig() else config

    def response_format(self) -> tuple[str | None, dict[str, Any] | None, dict[str, Any] | None]:
        fmt = self.request.response_format
        if fmt is None or fmt.type == "text":
            return None, None, None
        if fmt.type == "json_object":
            return "application/json", None, None
        spec = fmt.json_schema
        if spec is None or spec.schema is None:
            return "application/json", None, None
        if self.options.json_schema_mode == "passthrough":
            return "application/json", None, dict(spec.schema)
        converted = to_gemini_schema(
            spec.schema, path="response_format.json_schema.schema", provider=self.provider, property_ordering=True
        )
        return "application/json", converted, None

    def thinking_config(self) -> ThinkingConfig | None:
        req = self.request
        extra = req.extra
        effort = req.reasoning_effort
        budget = extra.get("thinking_budget")
        level = extra.get("thinking_level")
        include = extra.get("include_thoughts")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
            raise InvalidRequest("must be an integer (-1: dynamic, 0: off)", path="thinking_budget")
        if level is not None and not isinstance(level, str):
            raise InvalidRequest("must be a string (minimal, low, medium, high)", path="thinking_level")
        if include is not None and not isinstance(include, bool):
            raise InvalidRequest("must be true or false", path="include_thoughts")
        if effort is not None and budget is None and level is None:
            if effort not in _EFFORTS:
                raise InvalidRequest(
                    f"must be one of {', '.join(sorted(_EFFORTS))}, got {effort!r}", path="reasoning_effort"
                )
            style = self.info.thinking
            if style is None:
                self.warn("reasoning_effort", f"{self.info.name!r} is not known to be a thinking model; ignored")
            elif style == "budget":
                budget = self.budget_for(effort)
            else:
                level = self.level_for(effort)
            if include is None and style is not None and effort != "none":
                include = True  # thought summaries become reasoning_content (off is the API default)
        if budget is None and level is None and include is None:
            return None
        return ThinkingConfig(include_thoughts=include, thinking_budget=budget, thinking_level=level)

    def budget_for(self, effort: str) -> int:
        info = self.info
        floor = 512 if info.lite else 128
        cap = 32768 if info.pro else 24576
        if effort == "none":
            if info.pro:
                self.warn("reasoning_effort", "Gemini 2.5 Pro cannot turn thinking off; using the minimum budget")
                return floor
            return 0
        return max(floor, min(EFFORT_BUDGETS[effort], cap))

    def level_for(self, effort: str) -> str:
        info = self.info
        if effort == "none":
            self.warn("reasoning_effort", "Gemini 3 cannot turn thinking off; using the lowest thinking level")
        return _thinking_level(effort, flash=info.flash, medium=info.flash or (info.version or (0, 0)) >= (3, 1))

    def safety_settings(self) -> tuple[Mapping[str, Any], ...] | None:
        value = self.request.extra.get("safety_settings")
        if value is None:
            return self.options.safety_settings
        return check_safety_settings(value, "safety_settings", config=False)

    def cached_content(self) -> str | None:
        value = self.request.extra.get("cached_content")
        if value is not None and not isinstance(value, str):
            raise InvalidRequest("must be a cachedContents/... name", path="cached_content")
        return value


def _thinking_level(effort: str, *, flash: bool, medium: bool) -> str:
    """reasoning_effort → thinkingLevel. Flash models know minimal..high; Pro knows low/high (3.1 Pro: medium)."""
    if effort in ("none", "minimal"):
        return "minimal" if flash else "low"
    if effort == "medium":
        return "medium" if medium else "high"
    if effort == "low":
        return "low"
    return "high"


def _google(extra: Mapping[str, Any]) -> Mapping[str, Any]:
    """``extra["extra_content"]["google"]`` or ``{}``."""
    ec = extra.get(EXTRA_KEY)
    if isinstance(ec, Mapping):
        g = ec.get(GOOGLE)
        if isinstance(g, Mapping):
            return g
    return {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _split_id(call_id: str) -> tuple[str, str | None]:
    """``call_x__thought__SIG`` → (``call_x``, ``SIG``); other ids are returned unchanged."""
    head, sep, sig = call_id.partition(_ID_SIGNATURE_SEP)
    return (head, sig or None) if sep and head else (call_id, None)


def _response_object(text: str) -> dict[str, Any]:
    """A tool result as a ``functionResponse.response`` object (the API takes only objects)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"output": text}
