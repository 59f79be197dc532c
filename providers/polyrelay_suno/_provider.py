"""The Suno provider over the two relay formats in use (wire-video-audio-workflow.md §4).

**new-api** (``format = "newapi"``, the default; also the Suno-API backend new-api relays to): ``POST
/suno/submit/music`` or ``/suno/submit/lyrics`` → ``{"code": "success", "data": "<task id>"}``; poll ``GET
/suno/fetch/{id}`` (option ``fetch = "batch"``: ``POST /suno/fetch {"ids": [id], "action"}`` for relays that only
serve the batch form). Task statuses NOT_START/SUBMITTED/QUEUED → queued, IN_PROGRESS → running (``progress``
``"NN%"``), SUCCESS → succeeded, FAILURE/UNKNOWN → failed (``fail_reason``). A Suno-API backend answers the fetch
with only the task's payload (the clips): the status is then derived from the clips as Suno-API does.
``Authorization: Bearer <relay key>``.

**gcui-art/suno-api** (``format = "suno-api"``): ``POST /api/generate`` (description) or ``/api/custom_generate``
(lyrics) with ``wait_audio: false`` → the two clips at once; poll ``GET /api/get?ids=a,b``; lyrics from ``POST
/api/generate_lyrics`` come back in the answer, so that task is finished at submit (a later poll is answered from
memory in this process; elsewhere it is gone). No key of its own: option ``cookie`` (a Suno session cookie) is sent
as ``Cookie`` to override the deployment's ``SUNO_COOKIE``; an ``api_key``, if set, goes as a bearer token for a
proxy in front. Clip statuses submitted/queued → queued, streaming → running, complete → succeeded, error → failed;
Suno reports no progress for clips, so it is synthesized from the clip statuses.

**Outputs.** Each clip is an audio artifact: ``url`` = ``audio_url``, ``media_type`` ``audio/mpeg``, ``title``,
``duration`` (seconds), ``extra`` with ``id``, ``image_url`` (cover), ``video_url``, ``tags``, ``lyrics``,
``model_name``. Lyrics are one artifact without a URL: ``media_type`` ``text/plain``, ``title``,
``extra["text"]``. Request mapping: :mod:`polyrelay_suno._request`. Suno cannot cancel. Cadence: 5 s (Suno-API and
gcui poll Suno every 5 s); option ``poll_interval`` overrides it.
"""

from __future__ import annotations

import re
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from polyrelay.errors import ConfigError, InvalidRequest, InvalidUpstreamResponse, Secret, UnsupportedFeature
from polyrelay.images import download_media, media_type_for_url
from polyrelay.policy import did_you_mean
from polyrelay.provider import CallContext, ProviderSettings
from polyrelay.transport import HttpResponse, Transport
from polyrelay.types.media import Artifact, TaskRequest, TaskSnapshot, TaskStatus
from polyrelay_suno._errors import (
    CLIP_PROGRESS,
    CLIP_STATUS_MAP,
    TASK_STATUS_MAP,
    clip_status,
    envelope_error,
    failure_info,
    raise_for_response,
)
from polyrelay_suno._request import Format, build_call
from polyrelay_suno._wire import AudioInfo, Clip, ClipMetadata, Envelope, FetchBatch, LyricsResult, TaskDto, dump, parse

__all__ = ["SunoProvider", "build"]

DEFAULT_POLL_INTERVAL = 5.0
Fetch = Literal["get", "batch"]
_FORMATS = frozenset({"newapi", "suno-api"})
_FETCHES = frozenset({"get", "batch"})
_OPTIONS = frozenset({"format", "fetch", "cookie", "poll_interval"})
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_LYRICS = "lyrics:"
_CLIPS = "clips:"
# gcui lyrics kept for polls from this process (the answer is the only copy).
_MAX_REMEMBERED = 256


def build(settings: ProviderSettings, transport: Transport) -> SunoProvider:
    """The provider factory: validates the instance's options."""
    options = dict(settings.options)
    prefix = f"{settings.config_path}." if settings.config_path else ""
    for key in options:
        if key not in _OPTIONS:
            raise ConfigError(f"unknown option for a suno provider{did_you_mean(key, _OPTIONS)}", key=prefix + key)
    fmt = options.get("format", "newapi")
    if fmt not in _FORMATS:
        raise ConfigError(f"must be one of {sorted(_FORMATS)}, got {fmt!r}", key=prefix + "format")
    fetch = options.get("fetch", "get")
    if fetch not in _FETCHES:
        raise ConfigError(f"must be one of {sorted(_FETCHES)}, got {fetch!r}", key=prefix + "fetch")
    cookie = options.get("cookie")
    if cookie is not None and not isinstance(cookie, str | Secret):
        raise ConfigError("must be the Cookie header value (a string)", key=prefix + "cookie")
    if not settings.base_url:
        raise ConfigError("Suno has no official API: set the relay's base_url", key=prefix + "base_url")
    interval = options.get("poll_interval", DEFAULT_POLL_INTERVAL)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not 0 < interval <= 3600:
        raise ConfigError(f"must be a number of seconds (0-3600], got {interval!r}", key=prefix + "poll_interval")
    secret_cookie = cookie if isinstance(cookie, Secret) else Secret(cookie) if cookie else None
    return SunoProvider(
        settings, transport, format=fmt, fetch=fetch, cookie=secret_cookie, poll_interval=float(interval)
    )


class SunoProvider:
    """A :class:`~polyrelay.provider.TaskProvider` for Suno relays (see the module docstring)."""

    def __init__(
        self,
        settings: ProviderSettings,
        transport: Transport,
        *,
        format: Format = "newapi",
        fetch: Fetch = "get",
        cookie: Secret | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        self.name = settings.name
        self.base_url = (settings.base_url or "").rstrip("/")
        self.format: Format = format
        self.fetch: Fetch = fetch
        self.interval = poll_interval
        self._cookie = cookie
        self._settings = settings
        self._transport = transport
        self._key: Secret | None = settings.api_key
        self._secrets = settings.secrets() + ((cookie,) if cookie else ())
        self._lyrics: OrderedDict[str, TaskSnapshot] = OrderedDict()

    def __repr__(self) -> str:
        return f"SunoProvider(name={self.name!r}, base_url={self.base_url!r}, format={self.format!r})"

    # -- TaskProvider -------------------------------------------------------------------------------------------

    async def submit(self, request: TaskRequest, ctx: CallContext) -> TaskSnapshot:
        call = build_call(request, ctx.model, self.format)
        data = await self._call("POST", call.path, ctx, json_body=dump(call.body))
        extra: dict[str, Any] = {"action": call.action}
        if call.warnings:
            extra["warnings"] = call.warnings
        if self.format == "newapi":
            task_id = self._envelope(data).data
            if not isinstance(task_id, str) or not task_id:
                raise InvalidUpstreamResponse("the relay's submit answer carries no task id", provider=self.name)
            upstream_id = _LYRICS + task_id if call.action == "lyrics" else task_id
            return TaskSnapshot(
                upstream_id=upstream_id, status="queued", kind="audio", raw_status="SUBMITTED", extra=extra
            )
        if call.action == "lyrics":
            lyrics = parse(data, LyricsResult, provider=self.name, what="lyrics")
            snapshot = _lyrics_snapshot(_LYRICS + (lyrics.id or uuid.uuid4().hex), lyrics, extra)
            self._remember(snapshot)
            return snapshot
        clips = self._gcui_clips(data)
        if not clips:
            raise InvalidUpstreamResponse("the suno-api answer carries no clips", provider=self.name)
        return self._clips_snapshot(_CLIPS + ",".join(c.id for c in clips), clips, extra)

    async def poll(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        if upstream_id.startswith(_LYRICS) and self.format == "suno-api":
            remembered = self._lyrics.get(upstream_id)
            if remembered is None:
                raise UnsupportedFeature(
                    "suno-api returns lyrics in the submit answer only; they cannot be fetched again",
                    path="task_id",
                    provider=self.name,
                )
            return remembered
        if self.format == "suno-api":
            ids = self._ids(upstream_id.removeprefix(_CLIPS))
            data = await self._call("GET", "/api/get", ctx, params={"ids": ",".join(ids)})
            clips = self._gcui_clips(data)
            if not clips:
                raise InvalidUpstreamResponse("suno-api returned none of the task's clips", provider=self.name)
            return self._clips_snapshot(upstream_id, clips, {})
        action = "LYRICS" if upstream_id.startswith(_LYRICS) else "MUSIC"
        (task_id,) = self._ids(upstream_id.removeprefix(_LYRICS))
        if self.fetch == "batch":
            body = dump(FetchBatch(ids=(task_id,), action=action))
            tasks = self._envelope(await self._call("POST", "/suno/fetch", ctx, json_body=body)).data
            if not isinstance(tasks, list) or not tasks:
                raise InvalidUpstreamResponse(f"the relay does not know task {task_id}", provider=self.name)
            payload = tasks[0]
        else:
            payload = self._envelope(await self._call("GET", f"/suno/fetch/{task_id}", ctx)).data
        return self._newapi_snapshot(upstream_id, payload)

    async def cancel(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        raise UnsupportedFeature("Suno relays cannot cancel a song", path="task_id", provider=self.name)

    def poll_interval(self, snapshot: TaskSnapshot, elapsed: float) -> float:
        return self.interval

    async def download(self, url: str, ctx: CallContext) -> bytes:
        """The bytes of a clip's audio/video/cover URL (no credentials go anywhere: Suno's CDN is public)."""
        return await download_media(self._transport, url, provider=self.name, ctx=ctx, secrets=self._secrets)

    # -- internals ----------------------------------------------------------------------------------------------

    def _headers(self, ctx: CallContext) -> dict[str, str]:
        headers = dict(self._settings.headers)
        if self._key:
            headers["Authorization"] = f"Bearer {self._key.reveal()}"
        if self._cookie is not None:
            headers["Cookie"] = self._cookie.reveal()
        headers.update(ctx.extra_headers)
        return headers

    async def _call(
        self,
        method: str,
        path: str,
        ctx: CallContext,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        response: HttpResponse = await self._transport.request(
            method,
            self.base_url + path,
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=self._headers(ctx),
            json_body=json_body,
            params=params,
            deadline=ctx.deadline,
            secrets=self._secrets,
        )
        async with response:
            if response.status not in (200, 201):
                await raise_for_response(response, provider=self.name, model=ctx.model, secrets=self._secrets)
            return await response.json()

    def _envelope(self, data: Any) -> Envelope:
        envelope = parse(data, Envelope, provider=self.name, what="answer")
        if envelope.code != "success":
            raise envelope_error(
                envelope.code, envelope.message or "", status=200, provider=self.name, body=data, secrets=self._secrets
            )
        return envelope

    def _ids(self, joined: str) -> list[str]:
        # Ids come from a caller-supplied task id: keep each to one safe token.
        ids = joined.split(",")
        if not ids or not all(_ID.match(i) for i in ids):
            raise InvalidRequest("the task id does not carry Suno relay ids", path="task_id")
        return ids

    def _remember(self, snapshot: TaskSnapshot) -> None:
        self._lyrics[snapshot.upstream_id] = snapshot
        while len(self._lyrics) > _MAX_REMEMBERED:
            self._lyrics.popitem(last=False)

    def _gcui_clips(self, data: Any) -> list[Clip]:
        if not isinstance(data, list):
            raise InvalidUpstreamResponse(
                "suno-api answered with something other than a list of clips", provider=self.name
            )
        return [_clip_of(parse(item, AudioInfo, provider=self.name, what="clip")) for item in data]

    def _newapi_snapshot(self, upstream_id: str, payload: Any) -> TaskSnapshot:
        if isinstance(payload, list):  # a Suno-API backend: only the clips
            clips = [parse(item, Clip, provider=self.name, what="clip") for item in payload]
            return self._clips_snapshot(upstream_id, clips, {})
        if isinstance(payload, Mapping) and "task_id" not in payload and "text" in payload:
            lyrics = parse(payload, LyricsResult, provider=self.name, what="lyrics")
            return _lyrics_snapshot(upstream_id, lyrics, {})
        task = parse(payload, TaskDto, provider=self.name, what="task")
        status = TASK_STATUS_MAP.get(task.status, "running")
        extra: dict[str, Any] = {"task_id": task.task_id}
        if task.action:
            extra["action"] = task.action
        if status == "succeeded":
            if isinstance(task.data, Mapping):
                lyrics = parse(task.data, LyricsResult, provider=self.name, what="lyrics")
                return _lyrics_snapshot(upstream_id, lyrics, extra)
            clips = [parse(item, Clip, provider=self.name, what="clip") for item in task.data or ()]
            return TaskSnapshot(
                upstream_id=upstream_id,
                status="succeeded",
                kind="audio",
                progress=1.0,
                outputs=tuple(_artifact(clip) for clip in clips),
                raw_status=task.status,
                extra=extra,
            )
        if status == "failed":
            return TaskSnapshot(
                upstream_id=upstream_id,
                status="failed",
                kind="audio",
                error=failure_info(task.fail_reason, self._secrets),
                raw_status=task.status,
                extra=extra,
            )
        if isinstance(task.data, list) and task.data:
            clips = [parse(item, Clip, provider=self.name, what="clip") for item in task.data]
            extra["clips"] = _clip_states(clips)
        return TaskSnapshot(
            upstream_id=upstream_id,
            status=status,
            kind="audio",
            progress=_percent(task.progress) if status == "running" else None,
            raw_status=task.status,
            extra=extra,
        )

    def _clips_snapshot(self, upstream_id: str, clips: Sequence[Clip], extra: Mapping[str, Any]) -> TaskSnapshot:
        raw = clip_status([clip.status for clip in clips])
        status: TaskStatus = CLIP_STATUS_MAP.get(raw, "running")
        out = {**extra, "clips": _clip_states(clips)}
        if status == "succeeded":
            return TaskSnapshot(
                upstream_id=upstream_id,
                status="succeeded",
                kind="audio",
                progress=1.0,
                outputs=tuple(_artifact(clip) for clip in clips),
                raw_status=raw,
                extra=out,
            )
        if status == "failed":
            reason = next(
                (c.metadata.error_message for c in clips if c.metadata is not None and c.metadata.error_message), None
            )
            return TaskSnapshot(
                upstream_id=upstream_id,
                status="failed",
                kind="audio",
                error=failure_info(reason, self._secrets),
                raw_status=raw,
                extra=out,
            )
        progress = sum(CLIP_PROGRESS.get(c.status, 0.0) for c in clips) / len(clips) if clips else None
        return TaskSnapshot(
            upstream_id=upstream_id, status=status, kind="audio", progress=progress, raw_status=raw, extra=out
        )


def _clip_of(info: AudioInfo) -> Clip:
    """gcui's AudioInfo in the shape of a Suno clip (metadata holds tags, lyrics, duration, error)."""
    duration: float | None
    try:
        duration = float(info.duration) if info.duration not in (None, "") else None
    except ValueError:
        duration = None
    return Clip(
        id=info.id,
        status=info.status,
        title=info.title,
        audio_url=info.audio_url or None,
        video_url=info.video_url or None,
        image_url=info.image_url or None,
        model_name=info.model_name,
        created_at=info.created_at,
        metadata=ClipMetadata(
            tags=info.tags,
            prompt=info.lyric or info.prompt,
            gpt_description_prompt=info.gpt_description_prompt,
            type=info.type,
            duration=duration,
            error_message=info.error_message or None,
        ),
    )


def _artifact(clip: Clip) -> Artifact:
    meta = clip.metadata
    extra: dict[str, Any] = {"id": clip.id}
    for name, value in (
        ("image_url", clip.image_url),
        ("image_large_url", clip.image_large_url),
        ("video_url", clip.video_url),
        ("tags", meta.tags if meta else None),
        ("lyrics", meta.prompt if meta else None),
        ("model_name", clip.model_name),
    ):
        if value:
            extra[name] = value
    url = clip.audio_url
    return Artifact(
        url=url,
        media_type=(media_type_for_url(url) if url else None) or "audio/mpeg",
        duration=meta.duration if meta else None,
        title=clip.title,
        extra=extra,
    )


def _clip_states(clips: Sequence[Clip]) -> list[dict[str, Any]]:
    """Per-clip status while the song is made (``audio_url`` is already playable while ``streaming``)."""
    return [{"id": c.id, "status": c.status, "audio_url": c.audio_url} for c in clips]


def _lyrics_snapshot(upstream_id: str, lyrics: LyricsResult, extra: Mapping[str, Any]) -> TaskSnapshot:
    artifact = Artifact(media_type="text/plain", title=lyrics.title, extra={"text": lyrics.text})
    return TaskSnapshot(
        upstream_id=upstream_id,
        status="succeeded",
        kind="audio",
        progress=1.0,
        outputs=(artifact,),
        raw_status=lyrics.status or "complete",
        extra={**extra, "action": "lyrics"},
    )


def _percent(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(1.0, max(0.0, float(value.strip().rstrip("%")) / 100.0))
    except ValueError:
        return None
