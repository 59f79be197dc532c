"""The OpenAI-compatible chat provider: config → :class:`OpenAICompatProvider`, and its two calls.

Config keys (``[providers.NAME]`` besides ``type``, ``base_url``, ``api_key``, ``headers``):

- ``preset``: a row of :data:`polyrelay_openai._rows.ROWS` (default: the spec's own row; for ``type = "openai"``
  detected from the ``base_url`` host, else ``openai``);
- ``quirks``: a table overriding fields of that row (:func:`polyrelay_openai._rows.apply_quirks`);
- ``auth`` (``bearer`` | ``raw`` | ``header`` | ``none``) and ``auth_header``: where the key goes;
- ``api_version``: adds ``?api-version=...`` (Azure deployment URLs).

The key is sent only to the configured base URL's origin: the request URL is always built from it and the
transport never follows redirects.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Coroutine, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import attrs

from polyrelay.errors import ConfigError, InvalidUpstreamResponse
from polyrelay.policy import did_you_mean
from polyrelay.provider import CallContext, ModelCapabilities, ProviderSettings
from polyrelay.serde import json_kind
from polyrelay.sse import SSEDecoder
from polyrelay.transport import HttpResponse, Transport, same_origin
from polyrelay.types.chat import ChatRequest
from polyrelay.types.completion import (
    CallWarning,
    ChatCompletion,
    ChatCompletionChunk,
    ResponseMeta,
    new_response_meta,
)
from polyrelay_openai._errors import error_from_response, inband_error, is_inband_error
from polyrelay_openai._request import WireRequest, build_request
from polyrelay_openai._response import normalize_completion
from polyrelay_openai._rows import DEFAULT_PRESET, ROWS, CompatRow, apply_quirks, detect_preset
from polyrelay_openai._stream import StreamAssembler

__all__ = ["OPTION_KEYS", "OpenAICompatProvider", "create"]

#: Provider-specific config keys this plugin accepts.
OPTION_KEYS: frozenset[str] = frozenset({"preset", "quirks", "auth", "auth_header", "api_version"})

# Response headers worth handing to the caller on ResponseMeta (rate-limit state, request ids, timings).
_META_HEADER_PREFIXES = ("x-ratelimit-", "openai-", "x-request-id", "x-generation-id", "retry-after")


@functools.lru_cache(maxsize=512)
def _lower_name(name: str) -> str:
    # Response header names repeat on every response: lower-case each distinct one once.
    return name.lower()


class _KeptHeaders(Mapping[str, str]):
    """The response headers worth handing to the caller (rate-limit state, request ids), picked out of all of them
    on first use: most callers never look, and the filtering was a measurable part of every call. Names are
    case-insensitive, as in the response."""

    __slots__ = ("_kept", "_raw")

    def __init__(self, raw: Mapping[str, str]) -> None:
        self._raw = raw
        self._kept: Mapping[str, str] | None = None

    def _dict(self) -> Mapping[str, str]:
        kept = self._kept
        if kept is None:
            from multidict import CIMultiDict

            lower = _lower_name
            kept = self._kept = CIMultiDict(
                [(k, v) for k, v in self._raw.items() if lower(k).startswith(_META_HEADER_PREFIXES)]
            )
        return kept

    def __getitem__(self, key: str) -> str:
        return self._dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def __repr__(self) -> str:
        return repr(dict(self._dict()))


def _parsed_url(url: str, query: Mapping[str, str] | None) -> Any:
    """``url`` with ``query`` as a ``yarl.URL`` (aiohttp's own URL type): parsed once instead of on every call."""
    import yarl

    parsed = yarl.URL(url)
    return parsed.extend_query(query) if query else parsed


def _int_or_one(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def _key(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def create(settings: ProviderSettings, transport: Transport, *, preset: str | None = None) -> OpenAICompatProvider:
    """Build a provider from its config table. ``preset`` is the row of the spec that was chosen (``None`` for
    ``type = "openai"``: detect from the base URL). Raises :class:`ConfigError` naming the offending key."""
    path = settings.config_path
    options: Mapping[str, Any] = settings.options
    for name in options:
        if name not in OPTION_KEYS:
            raise ConfigError(f"unknown option{did_you_mean(str(name), OPTION_KEYS)}", key=_key(path, str(name)))
    chosen = options.get("preset", preset)
    if chosen is None:
        chosen = detect_preset(settings.base_url) if settings.base_url else DEFAULT_PRESET
    if not isinstance(chosen, str) or chosen not in ROWS:
        raise ConfigError(
            f"unknown preset {chosen!r}{did_you_mean(str(chosen), ROWS)}; known: {', '.join(sorted(ROWS))}",
            key=_key(path, "preset"),
        )
    row = ROWS[chosen]
    if "quirks" in options:
        row = apply_quirks(row, options["quirks"], key=_key(path, "quirks"))
    top = {k: options[k] for k in ("auth", "auth_header") if k in options}
    if top:
        row = apply_quirks(row, top, key=path)
    if "api_version" in options:
        version = options["api_version"]
        if not isinstance(version, str) or not version:
            raise ConfigError("must be a non-empty string", key=_key(path, "api_version"))
        row = attrs.evolve(row, query={**row.query, "api-version": version})
    if row.auth == "header" and not row.auth_header.strip():
        raise ConfigError("is required when auth = 'header'", key=_key(path, "auth_header"))
    base_url = settings.base_url or row.base_url
    if not base_url:
        raise ConfigError(f"is required for preset {row.name!r}", key=_key(path, "base_url"))
    return OpenAICompatProvider(settings=settings, transport=transport, row=row, base_url=base_url.rstrip("/"))


class OpenAICompatProvider:
    """A :class:`~polyrelay.provider.ChatProvider` for one OpenAI-compatible upstream, described by a
    :class:`~polyrelay_openai._rows.CompatRow`."""

    #: Every wait of chat() is a transport call given ctx.deadline (see polyrelay.provider.ENFORCES_DEADLINE).
    enforces_deadline = True
    #: chat() builds a new completion and meta on every call (see polyrelay.provider.FRESH_RESULTS).
    fresh_results = True

    def __init__(self, *, settings: ProviderSettings, transport: Transport, row: CompatRow, base_url: str) -> None:
        self.settings = settings
        self.row = row
        self.base_url = base_url
        self.name = settings.name
        self._transport = transport
        self._secrets = settings.secrets()
        # Only a {model} placeholder can make a request URL leave the base URL's origin.
        self._templated = "{model}" in base_url
        self._query = dict(row.query) or None
        # Built once: the URL (parsed once, when it does not depend on the model) and the headers of a call that
        # adds none of its own.
        self._url: Any = None if self._templated else _parsed_url(self.url_for(""), self._query)
        self._plain_headers = self._build_headers({})

    def __repr__(self) -> str:
        return f"OpenAICompatProvider(name={self.name!r}, preset={self.row.name!r}, base_url={self.base_url!r})"

    # -- ChatProvider --------------------------------------------------------------------------------------------
    def capabilities(self, model: str) -> ModelCapabilities:
        """Prefill per row (DeepSeek only on its /beta base URL); context windows are not known here."""
        return ModelCapabilities(
            accepts_prefill=self.row.prefill_supported(self.base_url),
            json_schema=self.row.json_schema,
            context_window=None,
        )

    async def chat(self, request: ChatRequest, ctx: CallContext) -> ChatCompletion:
        """One completion. ``request.model`` is the public name; ``ctx.model`` is sent upstream."""
        wire = build_request(request, self.row, model=ctx.model, stream=False, base_url=self.base_url)
        sending = self._send(wire, ctx)
        # The transport encodes the body before it waits; nothing here keeps it alive while the upstream answers.
        warnings, ids_back = wire.warnings, wire.ids_back
        del wire
        resp = await sending
        if resp.status >= 300:
            try:
                raise await self._status_error(resp, ctx)
            finally:
                resp.close()
        # Reading the body gives the connection back, or drops it on any error (HttpResponse.read): no close after.
        data = await resp.json()
        if not isinstance(data, dict):
            raise InvalidUpstreamResponse(
                f"expected a JSON object, got {json_kind(data)}", provider=self.name, status=resp.status
            )
        request_id = resp.request_id
        completion = normalize_completion(
            data,
            self.row,
            ids_back=ids_back,
            provider=self.name,
            headers=resp.headers,
            request_id=request_id,
            model=ctx.model,
            secrets=self._secrets,
        )
        # The completion was just built here and nobody else holds it: set its meta in place rather than copy it.
        object.__setattr__(completion, "meta", self._meta(ctx, warnings, resp, request_id))
        return completion

    async def stream_chat(self, request: ChatRequest, ctx: CallContext) -> AsyncGenerator[ChatCompletionChunk, None]:
        """Stream a completion as OpenAI chunks (see :mod:`polyrelay_openai._stream` for the guarantees)."""
        wire = build_request(request, self.row, model=ctx.model, stream=True, base_url=self.base_url)
        resp = await self._send(wire, ctx)
        try:
            if resp.status >= 300:
                raise await self._status_error(resp, ctx)
            if resp.headers.get("Content-Type", "").startswith("application/json"):
                raise await self._json_instead_of_stream(resp, ctx)
            request_id = resp.request_id
            state = StreamAssembler(
                self.row,
                provider=self.name,
                include_usage=request.include_usage,
                expected_choices=_int_or_one(wire.body.get("n")),  # after the row dropped an unsupported n
                ids_back=wire.ids_back,
                headers=resp.headers,
                request_id=request_id,
                model=ctx.model,
                secrets=self._secrets,
            )
            meta: ResponseMeta | None = self._meta(ctx, wire.warnings, resp, request_id)

            def emit(chunks: list[ChatCompletionChunk]) -> list[ChatCompletionChunk]:
                nonlocal meta
                if meta is not None and chunks:  # the first chunk carries the provider's meta
                    # The assembler just built it and nobody else holds it: set in place rather than copy (as chat()).
                    object.__setattr__(chunks[0], "meta", meta)
                    meta = None
                return chunks

            # The SSE decoder runs here over the raw pieces (not through resp.iter_sse()): one async generator
            # fewer between the socket and the caller, on the path every chunk takes.
            decoder = SSEDecoder()
            pieces = resp.iter_bytes()
            try:
                ended = False
                async for piece in pieces:
                    for event in decoder.feed(piece):
                        for chunk in emit(state.feed(event)):
                            yield chunk
                        if state.done or state.complete:
                            ended = True
                            break
                    if ended:
                        break
                else:
                    # End of body: a last event without its blank line still counts (see SSEDecoder.close).
                    for event in decoder.close():
                        for chunk in emit(state.feed(event)):
                            yield chunk
            finally:
                # Close the byte iterator now, so the transport releases or drops the connection at once.
                await pieces.aclose()
            for chunk in emit(state.end()):
                yield chunk
        finally:
            resp.close()

    # -- internals -----------------------------------------------------------------------------------------------
    def url_for(self, model: str) -> str:
        """The request URL: base URL (``{model}`` replaced, for Azure deployment URLs) + the row's path."""
        base = self.base_url
        if "{model}" in base:
            base = base.replace("{model}", quote(model, safe=""))
        return base + self.row.path

    def _headers(self, ctx: CallContext) -> dict[str, str]:
        return self._build_headers(ctx.extra_headers) if ctx.extra_headers else self._plain_headers

    def _build_headers(self, extra: Mapping[str, str]) -> dict[str, str]:
        # Like the OpenAI SDKs: Accept application/json for streams too (some gateways refuse other values).
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        headers.update(self.settings.headers)
        headers.update(extra)
        key = self.settings.api_key
        if key and self.row.auth != "none":
            name = self.row.auth_header if self.row.auth == "header" else "Authorization"
            for existing in [h for h in headers if h.lower() == name.lower()]:
                del headers[existing]
            headers[name] = f"Bearer {key.reveal()}" if self.row.auth == "bearer" else key.reveal()
        return headers

    def _send(self, wire: WireRequest, ctx: CallContext) -> Coroutine[Any, Any, HttpResponse]:
        # A plain function returning the transport's coroutine: one frame fewer on every resume of the call.
        url = self._url
        params = None
        if url is None:
            url = self.url_for(ctx.model)
            params = self._query
            if not same_origin(url, self.base_url):
                # Only possible with a {model} placeholder in the host: never send the key elsewhere.
                raise ConfigError(
                    "the model id would change the base URL's origin", key=_key(self.settings.config_path, "base_url")
                )
        return self._transport.request(
            "POST",
            url,
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=self._headers(ctx),
            json_body=wire.body,
            params=params,
            deadline=ctx.deadline,
            secrets=self._secrets,
        )

    async def _status_error(self, resp: HttpResponse, ctx: CallContext) -> Exception:
        return await error_from_response(resp, provider=self.name, model=ctx.model, secrets=self._secrets)

    async def _json_instead_of_stream(self, resp: HttpResponse, ctx: CallContext) -> Exception:
        """A stream request answered with a JSON body: an error object (some relays), or a protocol error."""
        data = await resp.json()
        if is_inband_error(data):
            return inband_error(
                data,
                provider=self.name,
                headers=resp.headers,
                request_id=resp.request_id,
                model=ctx.model,
                secrets=self._secrets,
            )
        return InvalidUpstreamResponse(
            "a stream was requested but the upstream answered with a JSON body",
            provider=self.name,
            status=resp.status,
            request_id=resp.request_id,
        )

    def _meta(
        self, ctx: CallContext, warnings: tuple[CallWarning, ...], resp: HttpResponse, request_id: str | None
    ) -> ResponseMeta:
        return new_response_meta(
            self.name, ctx.model, ctx.requested_model, (), warnings, request_id, _KeptHeaders(resp.headers)
        )
