"""The Flux provider: ``POST {base}/{model}`` → ``{id, polling_url}`` → poll ``polling_url`` until ``Ready``.

Credentials (wire-images.md §3.1, §10): BFL answers with a ``polling_url`` that is often on another host
(``api.us1.bfl.ai``, ``gateway.bfl.ai``) and must be used as given. The ``x-key`` is sent **only** to URLs on the
configured origin (scheme, host and port of ``base_url``), or to https hosts listed in the ``trusted_hosts``
option (exact names, or ``"*.bfl.ai"`` for subdomains). For a polling URL elsewhere, the ``foreign_polling`` option
decides:

- ``"anonymous"`` (default): poll it without ``x-key`` (BFL's get_result does not require the key);
- ``"rewrite"``: poll ``{base_url}/get_result?id=<id>`` on the configured origin instead (relays that hand out
  BFL's own polling URLs but proxy get_result);
- ``"refuse"``: fail (non-retryable :class:`~polyrelay.errors.InvalidUpstreamResponse`, code
  ``foreign_polling_url``) at submit and at poll.

Result URLs (``result.sample``) are signed and expire after 10 minutes: fetch them with :meth:`FluxProvider.download`
(or ``response_format="b64_json"`` in the images API); the key is never sent to delivery hosts.

Task upstream ids are the ``polling_url`` itself (BFL says never to construct it); when a gateway returns no
polling URL, the BFL id, polled at ``{base_url}/get_result?id=<id>``. BFL has no cancel endpoint.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from polyrelay.errors import ConfigError, InvalidUpstreamResponse, Secret, UnsupportedFeature
from polyrelay.images import download_media, media_type_for_url
from polyrelay.policy import did_you_mean
from polyrelay.provider import CallContext, ProviderSettings
from polyrelay.transport import Transport, same_origin
from polyrelay.types.media import Artifact, TaskRequest, TaskSnapshot
from polyrelay_flux._errors import STATUS_MAP, failure_info, foreign_origin_error, raise_for_response
from polyrelay_flux._request import build_body
from polyrelay_flux._wire import ResultResponse, SubmitResponse, dump, parse

__all__ = ["FluxProvider", "build"]

DEFAULT_BASE_URL = "https://api.bfl.ai/v1"
ForeignPolling = Literal["anonymous", "rewrite", "refuse"]
_FOREIGN_MODES = frozenset({"anonymous", "rewrite", "refuse"})
_OPTIONS = frozenset({"foreign_polling", "trusted_hosts"})
#: BFL result URLs are valid for 10 minutes (docs.bfl.ai).
RESULT_URL_LIFETIME = 600
# Poll cadence: BFL's sample loop polls every 0.5 s; slow down for long tasks (ultra, kontext-max, FLUX.2 max).
_CADENCE: tuple[tuple[float, float], ...] = ((5.0, 0.5), (60.0, 1.0))
_SLOW_CADENCE = 2.0


def build(settings: ProviderSettings, transport: Transport) -> FluxProvider:
    """The provider factory: validates the instance's options."""
    options = dict(settings.options)
    prefix = f"{settings.config_path}." if settings.config_path else ""
    for key in options:
        if key not in _OPTIONS:
            raise ConfigError(f"unknown option for a flux provider{did_you_mean(key, _OPTIONS)}", key=prefix + key)
    mode = options.get("foreign_polling", "anonymous")
    if mode not in _FOREIGN_MODES:
        raise ConfigError(f"must be one of {sorted(_FOREIGN_MODES)}, got {mode!r}", key=prefix + "foreign_polling")
    hosts = options.get("trusted_hosts", ())
    if isinstance(hosts, str) or not all(isinstance(h, str) and h for h in hosts):
        raise ConfigError("must be a list of host names", key=prefix + "trusted_hosts")
    return FluxProvider(settings, transport, foreign_polling=mode, trusted_hosts=tuple(h.lower() for h in hosts))


class FluxProvider:
    """A :class:`~polyrelay.provider.TaskProvider` for the BFL API (see the module docstring)."""

    def __init__(
        self,
        settings: ProviderSettings,
        transport: Transport,
        *,
        foreign_polling: ForeignPolling = "anonymous",
        trusted_hosts: tuple[str, ...] = (),
    ) -> None:
        self.name = settings.name
        self.base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._settings = settings
        self._transport = transport
        self._key: Secret | None = settings.api_key
        self._secrets = settings.secrets()
        self.foreign_polling: ForeignPolling = foreign_polling
        self.trusted_hosts = trusted_hosts

    def __repr__(self) -> str:
        return f"FluxProvider(name={self.name!r}, base_url={self.base_url!r})"

    # -- TaskProvider -------------------------------------------------------------------------------------------

    async def submit(self, request: TaskRequest, ctx: CallContext) -> TaskSnapshot:
        body, warnings = build_body(request, ctx.model, provider=self.name)
        url = f"{self.base_url}/{quote(ctx.model, safe='-._~')}"
        response = await self._transport.request(
            "POST",
            url,
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=self._headers(ctx, auth=True),
            json_body=dump(body),
            deadline=ctx.deadline,
            secrets=self._secrets,
        )
        async with response:
            if response.status != 200:
                await raise_for_response(response, provider=self.name, model=ctx.model, secrets=self._secrets)
            submitted = parse(await response.json(), SubmitResponse, provider=self.name, what="submit response")
        upstream_id = submitted.polling_url or submitted.id
        if submitted.polling_url is not None:
            self._poll_target(submitted.polling_url)  # refuse mode fails here, before anyone waits on it
        extra: dict[str, Any] = {"id": submitted.id}
        if submitted.cost is not None:
            extra["cost"] = submitted.cost
        if warnings:
            extra["warnings"] = warnings
        return TaskSnapshot(upstream_id=upstream_id, status="queued", kind="image", extra=extra)

    async def poll(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        url, with_key = self._poll_target(upstream_id)
        response = await self._transport.request(
            "GET",
            url,
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=self._headers(ctx, auth=with_key),
            deadline=ctx.deadline,
            secrets=self._secrets,
        )
        async with response:
            if response.status != 200:
                await raise_for_response(response, provider=self.name, model=ctx.model, secrets=self._secrets)
            result = parse(await response.json(), ResultResponse, provider=self.name, what="get_result response")
        return self._snapshot(upstream_id, result)

    async def cancel(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        raise UnsupportedFeature(
            "BFL has no cancel endpoint; a submitted task holds its slot until it ends",
            path="task_id",
            provider=self.name,
        )

    def poll_interval(self, snapshot: TaskSnapshot, elapsed: float) -> float:
        for until, interval in _CADENCE:
            if elapsed < until:
                return interval
        return _SLOW_CADENCE

    async def download(self, url: str, ctx: CallContext) -> bytes:
        """The bytes of a result URL (the key goes only to the configured origin, never to delivery hosts)."""
        credentials = {"x-key": self._key.reveal()} if self._key else None
        return await download_media(
            self._transport,
            url,
            provider=self.name,
            ctx=ctx,
            credentials_origin=self.base_url,
            credentials=credentials,
            secrets=self._secrets,
        )

    # -- internals ----------------------------------------------------------------------------------------------

    def _headers(self, ctx: CallContext, *, auth: bool) -> dict[str, str]:
        headers = {"accept": "application/json"}
        if auth:
            headers.update(self._settings.headers)
            if self._key:
                headers["x-key"] = self._key.reveal()
        headers.update(ctx.extra_headers)
        return headers

    def _may_send_key(self, url: str) -> bool:
        if same_origin(url, self.base_url):
            return True
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        return parts.scheme == "https" and any(fnmatch.fnmatchcase(host, pattern) for pattern in self.trusted_hosts)

    def _poll_target(self, upstream_id: str) -> tuple[str, bool]:
        """The URL to poll and whether the key may go with it."""
        if not upstream_id.startswith(("http://", "https://")):
            return f"{self.base_url}/get_result?{urlencode({'id': upstream_id})}", True
        if self._may_send_key(upstream_id):
            return upstream_id, True
        if self.foreign_polling == "refuse":
            raise foreign_origin_error(upstream_id, provider=self.name)
        if self.foreign_polling == "rewrite":
            ids = parse_qs(urlsplit(upstream_id).query).get("id")
            if not ids:
                raise InvalidUpstreamResponse(
                    "the polling URL carries no id to rewrite onto the configured origin",
                    provider=self.name,
                    retryable=False,
                )
            return f"{self.base_url}/get_result?{urlencode({'id': ids[0]})}", True
        return upstream_id, False

    def _snapshot(self, upstream_id: str, result: ResultResponse) -> TaskSnapshot:
        raw = result.status or result.state or ""
        status = STATUS_MAP.get(raw, "running")
        progress = _progress(result.progress)
        extra: dict[str, Any] = {}
        if result.id:
            extra["id"] = result.id
        if result.details:
            extra["details"] = result.details
        if status == "succeeded":
            sample = result.result.sample if result.result is not None else None
            if not sample:
                raise InvalidUpstreamResponse("BFL reported Ready without result.sample", provider=self.name)
            res = result.result
            assert res is not None
            artifact_extra: dict[str, Any] = {"expires_in": RESULT_URL_LIFETIME}
            if res.prompt:
                artifact_extra["revised_prompt"] = res.prompt
            if res.seed is not None:
                artifact_extra["seed"] = res.seed
            artifact = Artifact(url=sample, media_type=media_type_for_url(sample) or "image/jpeg", extra=artifact_extra)
            return TaskSnapshot(
                upstream_id=upstream_id,
                status="succeeded",
                progress=1.0,
                outputs=(artifact,),
                raw_status=raw,
                extra=extra,
            )
        if status == "failed":
            return TaskSnapshot(
                upstream_id=upstream_id,
                status="failed",
                raw_status=raw,
                extra=extra,
                error=failure_info(raw, result.details, self._secrets),
            )
        return TaskSnapshot(upstream_id=upstream_id, status=status, progress=progress, raw_status=raw, extra=extra)


def _progress(value: float | None) -> float | None:
    """BFL's ``progress`` is documented only as a number; read values above 1 as percentages."""
    if value is None:
        return None
    fraction = value / 100.0 if value > 1.0 else value
    return min(1.0, max(0.0, fraction))
