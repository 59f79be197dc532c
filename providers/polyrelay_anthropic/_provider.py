"""The Anthropic Messages chat provider: ``POST {base_url}/messages``, plain and streamed.

Config options (``[providers.NAME]`` keys besides ``type``, ``base_url``, ``api_key``, ``headers``):

- ``version`` — the ``anthropic-version`` header (default ``2023-06-01``);
- ``beta`` — ``anthropic-beta`` feature names: a string (comma-separated) or a list of strings;
- ``auth`` — ``"x-api-key"`` (default, Anthropic's own scheme) or ``"bearer"`` (``Authorization: Bearer``, for
  relays that front Anthropic with OpenAI-style keys);
- ``default_max_tokens`` — ``max_tokens`` when the request gives none (default: the model family's output limit);
- ``structured_output`` — how JSON-schema output is requested: ``"auto"`` (default: native ``output_config.format``
  where the model has it, a forced tool otherwise), ``"tool"`` or ``"native"``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from typing import Any, Final

from polyrelay.errors import ConfigError, InvalidUpstreamResponse
from polyrelay.policy import did_you_mean
from polyrelay.provider import CallContext, ModelCapabilities, ProviderSettings
from polyrelay.sse import ServerSentEvent
from polyrelay.transport import HttpResponse, Transport
from polyrelay.types.chat import ChatRequest
from polyrelay.types.completion import ChatCompletion, ChatCompletionChunk
from polyrelay_anthropic._errors import error_from_response
from polyrelay_anthropic._models import CONTEXT_WINDOW, model_profile
from polyrelay_anthropic._request import PreparedRequest, TranslateOptions, build_request
from polyrelay_anthropic._response import completion_from_message
from polyrelay_anthropic._stream import StreamTranslator
from polyrelay_anthropic._wire import parse_event, parse_message, to_wire

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_VERSION", "OPTION_KEYS", "AnthropicProvider", "create_provider"]

DEFAULT_BASE_URL: Final = "https://api.anthropic.com/v1"
DEFAULT_VERSION: Final = "2023-06-01"
OPTION_KEYS: Final = frozenset({"version", "beta", "auth", "default_max_tokens", "structured_output"})
_AUTH_SCHEMES: Final = ("x-api-key", "bearer")
_STRUCTURED_MODES: Final = ("auto", "tool", "native")


class AnthropicProvider:
    """One configured Anthropic (or Anthropic-compatible relay) endpoint. Build it with :func:`create_provider`."""

    #: Every wait of chat() is a transport call given ctx.deadline (see polyrelay.provider.ENFORCES_DEADLINE).
    enforces_deadline = True

    def __init__(
        self,
        settings: ProviderSettings,
        transport: Transport,
        *,
        version: str = DEFAULT_VERSION,
        betas: tuple[str, ...] = (),
        bearer: bool = False,
        translate: TranslateOptions | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self._transport = transport
        self._url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/") + "/messages"
        self._translate = translate or TranslateOptions()
        self._secrets = settings.secrets()
        headers: dict[str, str] = {"anthropic-version": version, "accept": "application/json"}
        if betas:
            headers["anthropic-beta"] = ",".join(betas)
        if settings.api_key:
            key = settings.api_key.reveal()  # the one place the key goes onto the wire
            if bearer:
                headers["Authorization"] = f"Bearer {key}"
            else:
                headers["x-api-key"] = key
        headers.update(settings.headers)
        self._headers: Mapping[str, str] = headers

    def __repr__(self) -> str:
        return f"<AnthropicProvider {self.name!r} {self._url}>"

    def capabilities(self, model: str) -> ModelCapabilities:
        """Every Claude model continues an assistant prefill, sees images and calls tools; JSON schemas work
        natively or through the forced-tool emulation."""
        profile = model_profile(model)
        return ModelCapabilities(
            accepts_prefill=True,
            vision=True,
            tools=True,
            json_schema=True,
            context_window=CONTEXT_WINDOW if profile.known else None,
        )

    # ----------------------------------------------------------------------------------------- calls

    async def chat(self, request: ChatRequest, ctx: CallContext) -> ChatCompletion:
        """One non-streamed completion."""
        prepared = self._prepare(request, ctx, stream=False)
        async with await self._post(prepared, ctx) as resp:
            body = await resp.read()
            if resp.status >= 400:
                raise self._error(resp, body, ctx)
            data = self._json(resp, body)
        if isinstance(data, Mapping) and data.get("type") == "error":
            raise self._error(resp, body, ctx)  # an error envelope inside a 200 (some relays do this)
        message = parse_message(data, provider=self.name)
        return completion_from_message(
            message,
            plan=prepared.plan,
            provider=self.name,
            model=ctx.model,
            warnings=prepared.warnings,
            request_id=resp.request_id,
        )

    async def stream_chat(self, request: ChatRequest, ctx: CallContext) -> AsyncGenerator[ChatCompletionChunk, None]:
        """Stream the completion as OpenAI chunks (see :mod:`._stream`)."""
        prepared = self._prepare(request, ctx, stream=True)
        async with await self._post(prepared, ctx) as resp:
            if resp.status >= 400 or "text/event-stream" not in resp.headers.get("content-type", ""):
                body = await resp.read()
                if resp.status >= 400:
                    raise self._error(resp, body, ctx)
                data = self._json(resp, body)
                if isinstance(data, Mapping) and data.get("type") == "error":
                    raise self._error(resp, body, ctx)
                raise InvalidUpstreamResponse(
                    "expected an event stream, got a JSON body", provider=self.name, request_id=resp.request_id
                )
            translator = StreamTranslator(
                plan=prepared.plan,
                provider=self.name,
                model=ctx.model,
                include_usage=request.include_usage,
                warnings=prepared.warnings,
                request_id=resp.request_id,
            )
            events = resp.iter_sse()
            try:
                async for sse in events:
                    for chunk in translator.feed(parse_event(self._event_json(sse), provider=self.name)):
                        yield chunk
                    if translator.done:
                        return  # message_stop: do not wait for the connection to close
            finally:
                # Release the connection also when the caller stops early (aclose) or is cancelled.
                aclose = getattr(events, "aclose", None)
                if aclose is not None:
                    await aclose()
            for chunk in translator.end_of_stream():
                yield chunk

    # ----------------------------------------------------------------------------------------- helpers

    def _prepare(self, request: ChatRequest, ctx: CallContext, *, stream: bool) -> PreparedRequest:
        return build_request(request, model=ctx.model, provider=self.name, stream=stream, options=self._translate)

    async def _post(self, prepared: PreparedRequest, ctx: CallContext) -> HttpResponse:
        headers = dict(self._headers)
        headers.update(ctx.extra_headers)
        return await self._transport.request(
            "POST",
            self._url,
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=headers,
            json_body=to_wire(prepared.body),
            deadline=ctx.deadline,
            secrets=self._secrets,
        )

    def _error(self, resp: HttpResponse, body: bytes, ctx: CallContext) -> Exception:
        return error_from_response(
            resp.status, body, resp.headers, provider=self.name, model=ctx.model, secrets=self._secrets
        )

    def _json(self, resp: HttpResponse, body: bytes) -> Any:
        try:
            return json.loads(body)
        except ValueError as exc:
            raise InvalidUpstreamResponse(
                f"Anthropic returned a body that is not JSON (status {resp.status}, {len(body)} bytes)",
                provider=self.name,
                status=resp.status,
                request_id=resp.request_id,
            ) from exc

    def _event_json(self, sse: ServerSentEvent) -> Any:
        try:
            return sse.json()
        except InvalidUpstreamResponse as exc:
            raise InvalidUpstreamResponse(exc.message, provider=self.name, body=exc.body) from exc


def create_provider(settings: ProviderSettings, transport: Transport) -> AnthropicProvider:
    """The spec's factory: validate the options (``ConfigError`` naming the key), build the provider."""
    options = settings.options
    for key in options:
        if key not in OPTION_KEYS:
            raise ConfigError(f"unknown option{did_you_mean(key, OPTION_KEYS)}", key=_key(settings, key))
    version = options.get("version", DEFAULT_VERSION)
    if not isinstance(version, str) or not version.strip():
        raise ConfigError("must be a non-empty string such as '2023-06-01'", key=_key(settings, "version"))
    betas = _betas(options.get("beta"), settings)
    auth = options.get("auth", "x-api-key")
    if auth not in _AUTH_SCHEMES:
        raise ConfigError(f"must be one of {', '.join(_AUTH_SCHEMES)}", key=_key(settings, "auth"))
    default_max = options.get("default_max_tokens")
    if default_max is not None and (
        isinstance(default_max, bool) or not isinstance(default_max, int) or default_max < 1
    ):
        raise ConfigError("must be a positive integer", key=_key(settings, "default_max_tokens"))
    structured = options.get("structured_output", "auto")
    if structured not in _STRUCTURED_MODES:
        raise ConfigError(f"must be one of {', '.join(_STRUCTURED_MODES)}", key=_key(settings, "structured_output"))
    return AnthropicProvider(
        settings,
        transport,
        version=version.strip(),
        betas=betas,
        bearer=auth == "bearer",
        translate=TranslateOptions(default_max_tokens=default_max, structured_output=structured),
    )


def _betas(value: Any, settings: ProviderSettings) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(b, str) for b in items):
        raise ConfigError("must be a string or a list of strings", key=_key(settings, "beta"))
    return tuple(b.strip() for b in items if b.strip())


def _key(settings: ProviderSettings, option: str) -> str:
    return f"{settings.config_path}.{option}" if settings.config_path else option
