"""The Luma provider: create a generation, poll ``GET /generations/{id}``, delete (wire-video-audio-workflow.md §2).

Auth is ``Authorization: Bearer <key>``. Request mapping: :mod:`polyrelay_luma._request`.

**States.** ``queued`` → queued, ``dreaming`` → running (Luma reports no numeric progress; an interim
``assets.progress_video`` preview, when present, is in ``extra["progress_video"]``), ``completed`` → succeeded with
``assets.video`` (video) and/or ``assets.image`` (image) as artifacts, ``failed`` → failed with
``failure_reason`` (failed generations are refunded).

**Cancel** is ``DELETE /generations/{id}`` (204): Luma deletes the generation (it cannot be fetched afterwards), so
the snapshot returned is ``canceled`` without a poll.

**Cadence** 5 s between polls (the docs suggest 5–10 s); option ``poll_interval`` overrides it.

**Relay variant** (option ``format = "relay"``): the relays' reverse-engineered web API (§2.6) under a base URL
ending in ``/luma`` (``https://relay.example.com/luma``): ``POST /generations`` with ``user_prompt`` /
``image_url`` / ``image_end_url``, poll ``GET /generations/{id}``, states ``pending`` / ``processing`` /
``completed`` / ``failed``, the result in ``video.url``. Relays have no delete: cancel is unsupported there.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from polyrelay.errors import ConfigError, InvalidRequest, InvalidUpstreamResponse, Secret, UnsupportedFeature
from polyrelay.images import download_media, media_type_for_url
from polyrelay.policy import did_you_mean
from polyrelay.provider import CallContext, ProviderSettings
from polyrelay.transport import Transport
from polyrelay.types.media import Artifact, TaskKind, TaskRequest, TaskSnapshot
from polyrelay_luma._errors import RELAY_STATUS_MAP, STATUS_MAP, failure_info, raise_for_response
from polyrelay_luma._request import build_call, build_relay_call
from polyrelay_luma._wire import Generation, RelayGeneration, dump, parse

__all__ = ["LumaProvider", "build"]

DEFAULT_BASE_URL = "https://api.lumalabs.ai/dream-machine/v1"
DEFAULT_POLL_INTERVAL = 5.0
Format = Literal["official", "relay"]
_FORMATS = frozenset({"official", "relay"})
_OPTIONS = frozenset({"format", "poll_interval"})
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def build(settings: ProviderSettings, transport: Transport) -> LumaProvider:
    """The provider factory: validates the instance's options."""
    options = dict(settings.options)
    prefix = f"{settings.config_path}." if settings.config_path else ""
    for key in options:
        if key not in _OPTIONS:
            raise ConfigError(f"unknown option for a luma provider{did_you_mean(key, _OPTIONS)}", key=prefix + key)
    fmt = options.get("format", "official")
    if fmt not in _FORMATS:
        raise ConfigError(f"must be one of {sorted(_FORMATS)}, got {fmt!r}", key=prefix + "format")
    if fmt == "relay" and not settings.base_url:
        raise ConfigError("the relay format needs the relay's base_url (ending in /luma)", key=prefix + "base_url")
    interval = options.get("poll_interval", DEFAULT_POLL_INTERVAL)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not 0 < interval <= 3600:
        raise ConfigError(f"must be a number of seconds (0-3600], got {interval!r}", key=prefix + "poll_interval")
    return LumaProvider(settings, transport, format=fmt, poll_interval=float(interval))


class LumaProvider:
    """A :class:`~polyrelay.provider.TaskProvider` for Luma Dream Machine (see the module docstring)."""

    def __init__(
        self,
        settings: ProviderSettings,
        transport: Transport,
        *,
        format: Format = "official",
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        self.name = settings.name
        self.base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.format: Format = format
        self.interval = poll_interval
        self._settings = settings
        self._transport = transport
        self._key: Secret | None = settings.api_key
        self._secrets = settings.secrets()

    def __repr__(self) -> str:
        return f"LumaProvider(name={self.name!r}, base_url={self.base_url!r}, format={self.format!r})"

    # -- TaskProvider -------------------------------------------------------------------------------------------

    async def submit(self, request: TaskRequest, ctx: CallContext) -> TaskSnapshot:
        relay = self.format == "relay"
        call = build_relay_call(request, ctx.model) if relay else build_call(request, ctx.model)
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
        async with response:
            if response.status not in (200, 201):
                await raise_for_response(response, provider=self.name, model=ctx.model, secrets=self._secrets)
            data = await response.json()
        snapshot = self._relay_snapshot(_one(data, self.name)) if relay else self._snapshot(data, call.kind)
        if not call.warnings:
            return snapshot
        return TaskSnapshot(
            upstream_id=snapshot.upstream_id,
            status=snapshot.status,
            kind=call.kind,
            progress=snapshot.progress,
            outputs=snapshot.outputs,
            error=snapshot.error,
            raw_status=snapshot.raw_status,
            extra={**snapshot.extra, "warnings": call.warnings},
        )

    async def poll(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        response = await self._transport.request(
            "GET",
            f"{self.base_url}/generations/{self._checked_id(upstream_id)}",
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=self._headers(ctx),
            deadline=ctx.deadline,
            secrets=self._secrets,
        )
        async with response:
            if response.status != 200:
                await raise_for_response(response, provider=self.name, model=ctx.model, secrets=self._secrets)
            data = await response.json()
        if self.format == "relay":
            return self._relay_snapshot(_one(data, self.name))
        return self._snapshot(data, None)

    async def cancel(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        if self.format == "relay":
            raise UnsupportedFeature("Luma relays have no delete endpoint", path="task_id", provider=self.name)
        response = await self._transport.request(
            "DELETE",
            f"{self.base_url}/generations/{self._checked_id(upstream_id)}",
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=self._headers(ctx),
            deadline=ctx.deadline,
            secrets=self._secrets,
        )
        async with response:
            if response.status not in (200, 202, 204):
                await raise_for_response(response, provider=self.name, model=ctx.model, secrets=self._secrets)
            await response.read()
        return TaskSnapshot(upstream_id=upstream_id, status="canceled", kind="video", raw_status="deleted")

    def poll_interval(self, snapshot: TaskSnapshot, elapsed: float) -> float:
        return self.interval

    async def download(self, url: str, ctx: CallContext) -> bytes:
        """The bytes of an asset URL (the key goes only to the configured origin, never to the CDN)."""
        credentials = {"Authorization": f"Bearer {self._key.reveal()}"} if self._key else None
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

    def _headers(self, ctx: CallContext) -> dict[str, str]:
        headers = dict(self._settings.headers)
        if self._key:
            headers["Authorization"] = f"Bearer {self._key.reveal()}"
        headers.update(ctx.extra_headers)
        return headers

    def _checked_id(self, upstream_id: str) -> str:
        # The id comes from a caller-supplied task id: keep it to one path segment.
        if not _ID.match(upstream_id):
            raise InvalidRequest("the task id does not carry a Luma generation id", path="task_id")
        return upstream_id

    def _snapshot(self, data: Any, kind: TaskKind | None) -> TaskSnapshot:
        generation = parse(data, Generation, provider=self.name, what="generation")
        status = STATUS_MAP.get(generation.state, "running")
        assets = generation.assets
        gen_kind: TaskKind = kind or ("image" if generation.generation_type == "image" else "video")
        extra: dict[str, Any] = {}
        if generation.created_at:
            extra["created_at"] = generation.created_at
        if assets is not None and assets.progress_video:
            extra["progress_video"] = assets.progress_video
        if status == "succeeded":
            outputs = []
            if assets is not None and assets.video:
                outputs.append(Artifact(url=assets.video, media_type=media_type_for_url(assets.video) or "video/mp4"))
            if assets is not None and assets.image:
                outputs.append(Artifact(url=assets.image, media_type=media_type_for_url(assets.image) or "image/jpeg"))
            if not outputs:
                raise InvalidUpstreamResponse("Luma reported completed without assets", provider=self.name)
            return TaskSnapshot(
                upstream_id=generation.id,
                status="succeeded",
                kind=gen_kind,
                progress=1.0,
                outputs=tuple(outputs),
                raw_status=generation.state,
                extra=extra,
            )
        error = failure_info(generation.failure_reason, self._secrets) if status == "failed" else None
        return TaskSnapshot(
            upstream_id=generation.id,
            status=status,
            kind=gen_kind,
            error=error,
            raw_status=generation.state,
            extra=extra,
        )

    def _relay_snapshot(self, data: Any) -> TaskSnapshot:
        generation = parse(data, RelayGeneration, provider=self.name, what="relay generation")
        status = RELAY_STATUS_MAP.get(generation.state, "running")
        extra: dict[str, Any] = {}
        if generation.estimate_wait_seconds is not None:
            extra["estimate_wait_seconds"] = generation.estimate_wait_seconds
        if generation.thumbnail is not None and generation.thumbnail.url:
            extra["thumbnail"] = generation.thumbnail.url
        if status == "succeeded":
            video = generation.video
            if video is None or not video.url:
                raise InvalidUpstreamResponse("the relay reported completed without video.url", provider=self.name)
            artifact = Artifact(
                url=video.url,
                media_type=media_type_for_url(video.url) or "video/mp4",
                width=video.width,
                height=video.height,
                extra={"download_url": video.download_url} if video.download_url else {},
            )
            return TaskSnapshot(
                upstream_id=generation.id,
                status="succeeded",
                kind="video",
                progress=1.0,
                outputs=(artifact,),
                raw_status=generation.state,
                extra=extra,
            )
        error = failure_info(generation.failure_reason, self._secrets) if status == "failed" else None
        return TaskSnapshot(
            upstream_id=generation.id,
            status=status,
            kind="video",
            error=error,
            raw_status=generation.state,
            extra=extra,
        )


def _one(data: Any, provider: str) -> Any:
    """Some relays answer with a one-element list instead of the object."""
    if isinstance(data, list):
        if len(data) != 1:
            raise InvalidUpstreamResponse(f"expected one generation, got a list of {len(data)}", provider=provider)
        return data[0]
    return data
