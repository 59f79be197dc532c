"""The Kling provider: create ``POST /v1/videos/<family>`` (or ``/v1/images/generations``), query
``GET <same path>/{task_id}`` (wire-video-audio-workflow.md §3).

**Hosts.** ``https://api-singapore.klingai.com`` (international, the default), ``https://api-beijing.klingai.com``
(China), ``https://api.klingai.com`` (legacy): option ``region`` = ``"singapore"`` | ``"beijing"`` | ``"legacy"``,
or any ``base_url`` (not both).

**Auth.** Options ``access_key`` and ``secret_key`` (use ``"${KLING_SECRET_KEY}"`` in config): every call sends
``Authorization: Bearer <JWT>`` (HS256, ``iss`` = access key, 30 min validity, ``nbf`` 5 s back), cached and
re-signed when less than 5 minutes remain (:class:`~polyrelay_kling._jwt.KlingToken`) or after Kling rejects it
with 1000/1003/1004. ``api_key = "AK|SK"`` (new-api's channel-key convention) works too. Relays that proxy Kling
under their own key (new-api / DMXAPI ``/kling/v1/...``: ``base_url = "https://relay.example.com/kling"``) take a
plain ``api_key``, sent as the bearer token as it is. The secret key never appears in reprs or errors.

**Statuses.** ``submitted`` → queued, ``processing`` → running (Kling reports no progress), ``succeed`` →
succeeded with ``task_result.videos[]`` (url, ``duration`` seconds, ``watermark_url`` and ``id`` in ``extra``) or
``images[]``, ``failed`` → failed with ``task_status_msg``. Output files are kept 30 days. Kling has no cancel.

**Cadence** 5 s between polls (§3.5: every 5–10 s); option ``poll_interval`` overrides it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from polyrelay.errors import ConfigError, InvalidRequest, InvalidUpstreamResponse, Secret, UnsupportedFeature
from polyrelay.images import download_media, media_type_for_url
from polyrelay.policy import did_you_mean
from polyrelay.provider import CallContext, ProviderSettings
from polyrelay.transport import HttpResponse, Transport
from polyrelay.types.media import Artifact, TaskKind, TaskRequest, TaskSnapshot
from polyrelay_kling._errors import RESIGN_CODES, STATUS_MAP, envelope_error, failure_info, raise_for_body
from polyrelay_kling._jwt import KlingToken
from polyrelay_kling._request import FAMILIES, build_call
from polyrelay_kling._wire import Envelope, TaskData, dump, parse

__all__ = ["REGIONS", "KlingProvider", "build"]

#: ``region`` option → base URL.
REGIONS: Mapping[str, str] = {
    "singapore": "https://api-singapore.klingai.com",
    "beijing": "https://api-beijing.klingai.com",
    "legacy": "https://api.klingai.com",
}
DEFAULT_BASE_URL = REGIONS["singapore"]
DEFAULT_POLL_INTERVAL = 5.0
_OPTIONS = frozenset({"access_key", "secret_key", "region", "poll_interval"})
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def build(settings: ProviderSettings, transport: Transport, *, clock: Callable[[], float] = time.time) -> KlingProvider:
    """The provider factory: validates the options and works out the credentials."""
    options = dict(settings.options)
    prefix = f"{settings.config_path}." if settings.config_path else ""
    for key in options:
        if key not in _OPTIONS:
            raise ConfigError(f"unknown option for a kling provider{did_you_mean(key, _OPTIONS)}", key=prefix + key)
    region = options.get("region")
    if region is not None:
        if region not in REGIONS:
            raise ConfigError(f"must be one of {sorted(REGIONS)}, got {region!r}", key=prefix + "region")
        if settings.base_url:
            raise ConfigError("give either region or base_url, not both", key=prefix + "region")
    base_url = settings.base_url or REGIONS[region or "singapore"]
    interval = options.get("poll_interval", DEFAULT_POLL_INTERVAL)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not 0 < interval <= 3600:
        raise ConfigError(f"must be a number of seconds (0-3600], got {interval!r}", key=prefix + "poll_interval")
    access_key = options.get("access_key")
    raw_secret = options.get("secret_key")
    secret = (
        raw_secret if isinstance(raw_secret, Secret) else Secret(raw_secret) if isinstance(raw_secret, str) else None
    )
    if (raw_secret is not None and secret is None) or (secret is not None and not secret):
        raise ConfigError("must be a non-empty string", key=prefix + "secret_key")
    if access_key is not None and (not isinstance(access_key, str) or not access_key):
        raise ConfigError("must be a non-empty string", key=prefix + "access_key")
    token: KlingToken | None = None
    if access_key or secret:
        if not (access_key and secret):
            missing = "secret_key" if access_key else "access_key"
            raise ConfigError("access_key and secret_key go together", key=prefix + missing)
        token = KlingToken(access_key, secret, clock=clock)
    elif settings.api_key and "|" in settings.api_key.reveal():
        ak, _, sk = settings.api_key.reveal().partition("|")
        if not ak or not sk:
            raise ConfigError("an 'AK|SK' api_key needs both parts", key=prefix + "api_key")
        token = KlingToken(ak, Secret(sk), clock=clock)
    elif not settings.api_key:
        raise ConfigError("Kling needs access_key and secret_key (or a relay's api_key)", key=prefix + "access_key")
    return KlingProvider(settings, transport, base_url=base_url, token=token, poll_interval=float(interval))


class KlingProvider:
    """A :class:`~polyrelay.provider.TaskProvider` for Kling (see the module docstring)."""

    def __init__(
        self,
        settings: ProviderSettings,
        transport: Transport,
        *,
        base_url: str = DEFAULT_BASE_URL,
        token: KlingToken | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        self.name = settings.name
        self.base_url = base_url.rstrip("/")
        self.interval = poll_interval
        self.token = token
        self._settings = settings
        self._transport = transport
        secrets = list(settings.secrets())
        if token is not None:
            secrets.append(token.secret_key)
        self._secrets = tuple(secrets)

    def __repr__(self) -> str:
        auth = "jwt" if self.token is not None else "bearer"
        return f"KlingProvider(name={self.name!r}, base_url={self.base_url!r}, auth={auth!r})"

    # -- TaskProvider -------------------------------------------------------------------------------------------

    async def submit(self, request: TaskRequest, ctx: CallContext) -> TaskSnapshot:
        call = build_call(request, ctx.model)
        response = await self._transport.request(
            "POST",
            self.base_url + call.path,
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=self._headers(ctx),
            json_body=dump(call.body),
            deadline=ctx.deadline,
            secrets=self._secrets,
        )
        data = await self._data(response, ctx)
        snapshot = self._snapshot(call.family, data, call.kind)
        if call.warnings:
            return TaskSnapshot(
                upstream_id=snapshot.upstream_id,
                status=snapshot.status,
                kind=snapshot.kind,
                raw_status=snapshot.raw_status,
                extra={**snapshot.extra, "warnings": call.warnings},
            )
        return snapshot

    async def poll(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        family, task_id = self._split(upstream_id)
        response = await self._transport.request(
            "GET",
            f"{self.base_url}{FAMILIES[family][0]}/{task_id}",
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=self._headers(ctx),
            deadline=ctx.deadline,
            secrets=self._secrets,
        )
        return self._snapshot(family, await self._data(response, ctx), None)

    async def cancel(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        raise UnsupportedFeature("Kling has no cancel endpoint", path="task_id", provider=self.name)

    def poll_interval(self, snapshot: TaskSnapshot, elapsed: float) -> float:
        return self.interval

    async def download(self, url: str, ctx: CallContext) -> bytes:
        """The bytes of an output URL (cdn.klingai.com files are public: no credentials are sent anywhere)."""
        return await download_media(self._transport, url, provider=self.name, ctx=ctx, secrets=self._secrets)

    # -- internals ----------------------------------------------------------------------------------------------

    def _headers(self, ctx: CallContext) -> dict[str, str]:
        headers = dict(self._settings.headers)
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token.token()}"
        elif self._settings.api_key:
            headers["Authorization"] = f"Bearer {self._settings.api_key.reveal()}"
        headers.update(ctx.extra_headers)
        return headers

    async def _data(self, response: HttpResponse, ctx: CallContext) -> TaskData:
        async with response:
            text = await response.text()
        if response.status == 200:
            envelope = parse(_json(text, self.name, response.status), Envelope, provider=self.name, what="answer")
            if envelope.code == 0:
                return parse(envelope.data, TaskData, provider=self.name, what="task data")
        try:
            raise_for_body(
                text,
                status=response.status,
                provider=self.name,
                headers=response.headers,
                request_id=response.request_id,
                model=ctx.model,
                secrets=self._secrets,
            )
        finally:
            code = envelope_error(_json_or_none(text))[0]
            if self.token is not None and code in RESIGN_CODES:
                self.token.invalidate()

    def _split(self, upstream_id: str) -> tuple[str, str]:
        family, sep, task_id = upstream_id.partition(":")
        if not sep or family not in FAMILIES or not _ID.match(task_id):
            raise InvalidRequest("the task id does not carry a Kling task id", path="task_id")
        return family, task_id

    def _snapshot(self, family: str, data: TaskData, kind: TaskKind | None) -> TaskSnapshot:
        status = STATUS_MAP.get(data.task_status, "running")
        task_kind: TaskKind = kind or FAMILIES[family][1]
        extra: dict[str, Any] = {"task_id": data.task_id}
        if data.created_at is not None:
            extra["created_at_ms"] = data.created_at
        if data.final_unit_deduction is not None:
            extra["final_unit_deduction"] = data.final_unit_deduction
        if data.task_info:
            extra["task_info"] = dict(data.task_info)
        upstream_id = f"{family}:{data.task_id}"
        if status == "succeeded":
            outputs = _artifacts(data)
            if not outputs:
                raise InvalidUpstreamResponse("Kling reported succeed without a task_result", provider=self.name)
            return TaskSnapshot(
                upstream_id=upstream_id,
                status="succeeded",
                kind=task_kind,
                progress=1.0,
                outputs=outputs,
                raw_status=data.task_status,
                extra=extra,
            )
        error = failure_info(data.task_status_msg, self._secrets) if status == "failed" else None
        return TaskSnapshot(
            upstream_id=upstream_id,
            status=status,
            kind=task_kind,
            error=error,
            raw_status=data.task_status,
            extra=extra,
        )


def _artifacts(data: TaskData) -> tuple[Artifact, ...]:
    result = data.task_result
    if result is None:
        return ()
    out: list[Artifact] = []
    for video in result.videos or ():
        extra: dict[str, Any] = {}
        if video.id:
            extra["id"] = video.id
        if video.watermark_url:
            extra["watermark_url"] = video.watermark_url
        out.append(
            Artifact(
                url=video.url,
                media_type=media_type_for_url(video.url) or "video/mp4",
                duration=_seconds(video.duration),
                extra=extra,
            )
        )
    for image in result.images or ():
        extra = {"index": image.index} if image.index is not None else {}
        if image.watermark_url:
            extra["watermark_url"] = image.watermark_url
        out.append(Artifact(url=image.url, media_type=media_type_for_url(image.url) or "image/png", extra=extra))
    return tuple(out)


def _seconds(value: str | float | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _json(text: str, provider: str, status: int) -> Any:
    data = _json_or_none(text)
    if data is None:
        raise InvalidUpstreamResponse(f"Kling answered {status} with a body that is not JSON", provider=provider)
    return data
