"""The Gemini chat provider: ``POST {base}/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``.

The API key goes in the ``x-goog-api-key`` header, never in the URL (URLs end up in logs and error messages).
``base_url`` can point at a relay that speaks the Gemini API.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

from polyrelay.errors import InvalidUpstreamResponse, Secret, StreamInterrupted, redact
from polyrelay.provider import CallContext, ModelCapabilities, ProviderSettings
from polyrelay.transport import HttpResponse, Transport
from polyrelay.types.chat import ChatRequest
from polyrelay.types.completion import CallWarning, ChatCompletion, ChatCompletionChunk, ResponseMeta
from polyrelay_gemini import _media
from polyrelay_gemini._errors import classify_error, error_status, is_error_payload
from polyrelay_gemini._models import model_info
from polyrelay_gemini._options import GeminiOptions, parse_options
from polyrelay_gemini._request import Translation, translate
from polyrelay_gemini._response import parse_response, to_completion
from polyrelay_gemini._stream import StreamTranslator
from polyrelay_gemini._wire import Blob, wire_converter

__all__ = ["DEFAULT_BASE_URL", "GeminiProvider", "build"]

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
# How much of a non-JSON error body is kept in the error message.
_SNIPPET_CHARS = 300


def build(settings: ProviderSettings, transport: Transport) -> GeminiProvider:
    """The factory behind ``SPEC``: validates the provider-specific options of the config table."""
    return GeminiProvider(settings, transport, parse_options(settings.options, settings.config_path))


class GeminiProvider:
    """One configured Gemini provider instance (implements :class:`~polyrelay.provider.ChatProvider`)."""

    #: Every wait of chat() (media downloads included) is a transport call given ctx.deadline
    #: (see polyrelay.provider.ENFORCES_DEADLINE).
    enforces_deadline = True
    #: chat() builds a new completion and meta on every call (see polyrelay.provider.FRESH_RESULTS).
    fresh_results = True

    def __init__(self, settings: ProviderSettings, transport: Transport, options: GeminiOptions) -> None:
        self.settings = settings
        self.transport = transport
        self.options = options
        self.base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._secrets: tuple[Secret | str, ...] = settings.secrets()

    def __repr__(self) -> str:
        return f"GeminiProvider(name={self.settings.name!r}, base_url={self.base_url!r})"

    # ------------------------------------------------------------------------------------------------ protocol

    def capabilities(self, model: str) -> ModelCapabilities:
        """Gemini does not continue a trailing assistant message; 2.x/3.x models have a 1M-token window."""
        return ModelCapabilities(accepts_prefill=False, context_window=model_info(model).context_window)

    async def chat(self, request: ChatRequest, ctx: CallContext) -> ChatCompletion:
        translation = await self._translate(request, ctx)
        resp = await self._post(translation, ctx, stream=False)
        try:
            if resp.status >= 400:
                raise await self._error(resp, ctx)
            data = await resp.json()
        finally:
            resp.close()
        if is_error_payload(data):  # an error inside a 200 body
            raise classify_error(
                error_status(data) or 500,
                data,
                provider=self.settings.name,
                request_id=resp.request_id,
                model=ctx.model,
                secrets=self._secrets,
            )
        response = parse_response(data, provider=self.settings.name)
        return to_completion(
            response,
            provider=self.settings.name,
            model=ctx.model,
            created=int(time.time()),
            meta=self._meta(ctx, translation.warnings, resp.request_id),
        )

    async def stream_chat(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[ChatCompletionChunk]:
        translation = await self._translate(request, ctx)
        resp = await self._post(translation, ctx, stream=True)
        try:
            if resp.status >= 400:
                raise await self._error(resp, ctx)
            state = StreamTranslator(
                provider=self.settings.name,
                model=ctx.model,
                created=int(time.time()),
                include_usage=request.include_usage,
                expected_choices=request.n or 1,
                meta=self._meta(ctx, translation.warnings, resp.request_id),
                secrets=self._secrets,
                request_id=resp.request_id,
            )
            events = resp.iter_sse()
            try:
                async for event in events:
                    if not event.data.strip():
                        continue
                    try:
                        data = event.json()
                    except InvalidUpstreamResponse as exc:
                        exc.provider = self.settings.name
                        raise
                    for chunk in state.feed(data):
                        yield chunk
                    if state.complete:
                        return  # Gemini sends nothing after the last finishReason: do not wait for EOF
            except StreamInterrupted as exc:  # the connection broke mid-body: say what had arrived
                exc.partial = exc.partial or state.partial_text
                exc.partial_reasoning = exc.partial_reasoning or state.partial_reasoning
                raise
            finally:
                await events.aclose()
            for chunk in state.end_of_stream():
                yield chunk
        finally:
            resp.close()

    # ------------------------------------------------------------------------------------------------ internals

    async def _translate(self, request: ChatRequest, ctx: CallContext) -> Translation:
        """Translate (raising before any network call), then fetch media that must be inlined and translate again."""
        name = self.settings.name
        translation = translate(request, model=ctx.model, options=self.options, provider=name)
        if not translation.downloads:
            return translation
        blobs = await asyncio.gather(
            *(
                _media.download(
                    self.transport,
                    d.url,
                    path=d.path,
                    provider=name,
                    timeouts=ctx.timeouts,
                    deadline=ctx.deadline,
                    max_bytes=self.options.max_inline_bytes,
                )
                for d in translation.downloads
            )
        )
        downloaded: Mapping[str, Blob] = {d.url: b for d, b in zip(translation.downloads, blobs, strict=True)}
        return translate(request, model=ctx.model, options=self.options, provider=name, downloaded=downloaded)

    def _url(self, model: str, stream: bool) -> str:
        # "gemini-2.5-flash" → models/gemini-2.5-flash; ids that name their collection ("tunedModels/x") stay.
        path = model if "/" in model else f"models/{model}"
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{self.base_url}/{quote(path, safe='/-._~')}:{method}"

    def _headers(self, ctx: CallContext) -> dict[str, str]:
        headers = dict(self.settings.headers)
        headers.update(ctx.extra_headers)
        if self.settings.api_key:
            headers["x-goog-api-key"] = self.settings.api_key.reveal()
        return headers

    async def _post(self, translation: Translation, ctx: CallContext, *, stream: bool) -> HttpResponse:
        body = wire_converter().unstructure(translation.body)
        return await self.transport.request(
            "POST",
            self._url(ctx.model, stream),
            provider=self.settings.name,
            timeouts=ctx.timeouts,
            headers=self._headers(ctx),
            json_body=body,
            deadline=ctx.deadline,
            secrets=self._secrets,
        )

    async def _error(self, resp: HttpResponse, ctx: CallContext) -> Exception:
        raw = await resp.read()
        text = raw.decode("utf-8", "replace")
        body: Any = None
        try:
            body = json.loads(text) if text.strip() else None
        except ValueError:
            body = None
        return classify_error(
            resp.status,
            body,
            provider=self.settings.name,
            headers=resp.headers,
            request_id=resp.request_id,
            model=ctx.model,
            secrets=self._secrets,
            text=redact(text[:_SNIPPET_CHARS], self._secrets),
        )

    def _meta(self, ctx: CallContext, warnings: tuple[CallWarning, ...], request_id: str | None) -> ResponseMeta:
        return ResponseMeta(
            provider=self.settings.name,
            model=ctx.model,
            requested_model=ctx.requested_model,
            warnings=warnings,
            request_id=request_id,
        )
