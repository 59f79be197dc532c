"""The relay Runway provider: the reverse-engineered Runway web API Chinese relays expose
(wire-video-audio-workflow.md §1.7), configured with the relay's root URL (``https://relay.example.com``).

**Submit.** ``POST /runway/pro/generate`` (text) or ``POST /runway/pro/img2video`` (when the request has an image:
``image`` = its URL) with ``{prompt, ratio, style, model, callback_url?, options: {seconds, motion_vector}}``:
``aspect_ratio`` → ``ratio`` (one of :data:`RATIOS`; a ``size`` is reduced to its ratio), ``duration`` →
``options.seconds`` (5 or 10), ``ctx.model`` (``gen2`` / ``gen3``) → ``model``, ``params["style"]`` (default
``cinematic``), ``params["motion_vector"]``, ``params["callback_url"]``; other params pass through. The answer is
``{"code": 200, "msg": "成功", "data": {"task_id"}}``. Runway here has no seed or negative prompt: dropped with a
warning (``extra["warnings"]``).

**Poll** ``POST /runway/feed {task_id}``. Classic relays answer ``data.status`` ``"0"`` queued, ``"1"`` running,
``"3"`` succeeded (``video_url``; ``poster`` / ``last_frame`` in the artifact's ``extra``), ``"2"`` failed with
``msg`` (refunded: ``refund`` in ``extra``). CometAPI answers the new-api task wrapper instead (told apart by its
word statuses and ``action`` field): QUEUED / IN_PROGRESS / SUCCESS / FAILURE,
``progress`` ``"40%"``, ``fail_reason``, the official Runway task (``output: [url]``) in ``data.data``. CometAPI
may answer ``task_not_exist`` for a few seconds right after submit: within :data:`NOT_EXIST_GRACE` seconds of a
submit made by this instance that counts as ``queued``.

**Cancel** is not offered by the relays (:class:`~polyrelay.errors.UnsupportedFeature`). **Cadence** 5 s between
polls; option ``poll_interval`` overrides it. Auth is ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from polyrelay.errors import (
    ConfigError,
    InvalidRequest,
    InvalidUpstreamResponse,
    NotFound,
    Secret,
    UnsupportedFeature,
)
from polyrelay.images import download_media, media_type_for_url
from polyrelay.policy import did_you_mean
from polyrelay.provider import CallContext, ProviderSettings
from polyrelay.transport import Transport
from polyrelay.types.completion import CallWarning
from polyrelay.types.media import Artifact, TaskRequest, TaskSnapshot
from polyrelay_runway_relay._errors import (
    FEED_STATUS_MAP,
    TASK_NOT_EXIST,
    WRAPPED_STATUS_MAP,
    failure_info,
    read_envelope,
)
from polyrelay_runway_relay._wire import (
    FeedTask,
    GenerateOptions,
    GenerateRequest,
    SubmitData,
    WrappedTask,
    dump,
    parse,
)

__all__ = ["RunwayRelayProvider", "build", "build_request"]

RATIOS = frozenset({"16:9", "9:16", "1:1", "4:3", "21:9"})
SECONDS = frozenset({5, 10})
DEFAULT_STYLE = "cinematic"
DEFAULT_POLL_INTERVAL = 5.0
#: Seconds after a submit during which ``task_not_exist`` means "not stored yet" (§1.7: "a few seconds").
NOT_EXIST_GRACE = 10.0
GENERATE_PATH = "/runway/pro/generate"
IMG2VIDEO_PATH = "/runway/pro/img2video"
FEED_PATH = "/runway/feed"
_OPTIONS = frozenset({"poll_interval"})
_IGNORED = ("seed", "negative_prompt")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# Submit times remembered for the task_not_exist grace; old entries fall out (they are past the grace anyway).
_MAX_REMEMBERED = 1024


def build(settings: ProviderSettings, transport: Transport) -> RunwayRelayProvider:
    """The provider factory: validates the instance's options (the relay's base_url is required)."""
    prefix = f"{settings.config_path}." if settings.config_path else ""
    for key in settings.options:
        if key not in _OPTIONS:
            raise ConfigError(
                f"unknown option for a runway-relay provider{did_you_mean(key, _OPTIONS)}", key=prefix + key
            )
    if not settings.base_url:
        raise ConfigError("runway-relay needs the relay's base_url (its root URL)", key=prefix + "base_url")
    interval = settings.options.get("poll_interval", DEFAULT_POLL_INTERVAL)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not 0 < interval <= 3600:
        raise ConfigError(f"must be a number of seconds (0-3600], got {interval!r}", key=prefix + "poll_interval")
    return RunwayRelayProvider(settings, transport, poll_interval=float(interval))


def build_request(request: TaskRequest, model: str) -> tuple[str, GenerateRequest, tuple[CallWarning, ...]]:
    """The submit path, body and warnings for ``request`` (InvalidRequest naming the field, before any call)."""
    if request.kind not in (None, "video"):
        raise UnsupportedFeature("Runway relays generate video only", path="kind", provider="runway-relay")
    if request.n is not None and request.n > 1:
        raise UnsupportedFeature("one video per request; submit several", path="n", provider="runway-relay")
    if not request.prompt:
        raise InvalidRequest("Runway relays need a prompt", path="prompt")
    if len(request.images) > 1:
        raise InvalidRequest("Runway relays take one start image", path="images")
    image = request.images[0] if request.images else None
    if image is not None and not image.startswith(("https://", "http://")):
        raise InvalidRequest("Runway relays fetch the image by URL (no data: URIs)", path="images[0]")
    ratio = _ratio(request)
    seconds = _seconds(request.duration)
    params = dict(request.params)
    style = params.pop("style", DEFAULT_STYLE)
    callback_url = params.pop("callback_url", None)
    motion_vector = params.pop("motion_vector", None)
    if motion_vector is not None and not isinstance(motion_vector, Mapping):
        raise InvalidRequest("must be an object {x, y, z, r, bg_x_pan, bg_y_pan}", path="params.motion_vector")
    options = GenerateOptions(seconds=seconds, motion_vector=motion_vector)
    body = GenerateRequest(
        prompt=request.prompt,
        ratio=ratio,
        style=style,
        model=model or None,
        image=image,
        callback_url=callback_url,
        options=options if seconds is not None or motion_vector is not None else None,
        extra=params,
    )
    warnings = tuple(
        CallWarning(setting=name, message=f"Runway relays have no {name.replace('_', ' ')}; it was not sent")
        for name in _IGNORED
        if getattr(request, name) is not None
    )
    return (IMG2VIDEO_PATH if image else GENERATE_PATH), body, warnings


class RunwayRelayProvider:
    """A :class:`~polyrelay.provider.TaskProvider` for relays' Runway web API (see the module docstring)."""

    def __init__(
        self,
        settings: ProviderSettings,
        transport: Transport,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = settings.name
        self.base_url = (settings.base_url or "").rstrip("/")
        self.interval = poll_interval
        self._settings = settings
        self._transport = transport
        self._key: Secret | None = settings.api_key
        self._secrets = settings.secrets()
        self._clock = clock
        self._submitted: OrderedDict[str, float] = OrderedDict()

    def __repr__(self) -> str:
        return f"RunwayRelayProvider(name={self.name!r}, base_url={self.base_url!r})"

    # -- TaskProvider -------------------------------------------------------------------------------------------

    async def submit(self, request: TaskRequest, ctx: CallContext) -> TaskSnapshot:
        path, body, warnings = build_request(request, ctx.model)
        data = await self._post(path, dump(body), ctx)
        # new-api style relays may answer the bare id as ``data``.
        task_id = data if isinstance(data, str) and data else None
        if task_id is None:
            task_id = parse(data, SubmitData, provider=self.name, what="submit answer").task_id
        self._submitted[task_id] = self._clock()
        while len(self._submitted) > _MAX_REMEMBERED:
            self._submitted.popitem(last=False)
        extra: dict[str, Any] = {"warnings": warnings} if warnings else {}
        return TaskSnapshot(upstream_id=task_id, status="queued", kind="video", raw_status="submitted", extra=extra)

    async def poll(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        if not _ID.match(upstream_id):
            raise InvalidRequest("the task id does not carry a Runway relay task id", path="task_id")
        try:
            data = await self._post(FEED_PATH, {"task_id": upstream_id}, ctx)
        except NotFound as exc:
            submitted = self._submitted.get(upstream_id)
            if exc.code == TASK_NOT_EXIST and submitted is not None and self._clock() - submitted < NOT_EXIST_GRACE:
                return TaskSnapshot(upstream_id=upstream_id, status="queued", kind="video", raw_status=TASK_NOT_EXIST)
            raise
        # CometAPI's new-api wrapper is told apart by shape: its word statuses and its ``action`` field.
        if isinstance(data, Mapping) and ("action" in data or data.get("status") in WRAPPED_STATUS_MAP):
            return self._wrapped_snapshot(parse(data, WrappedTask, provider=self.name, what="task"))
        return self._feed_snapshot(parse(data, FeedTask, provider=self.name, what="feed answer"))

    async def cancel(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        raise UnsupportedFeature("Runway relays have no cancel endpoint", path="task_id", provider=self.name)

    def poll_interval(self, snapshot: TaskSnapshot, elapsed: float) -> float:
        return self.interval

    async def download(self, url: str, ctx: CallContext) -> bytes:
        """The bytes of a result URL (the key goes only to the relay's origin, never to the CDN)."""
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

    async def _post(self, path: str, body: Mapping[str, Any], ctx: CallContext) -> Any:
        headers = dict(self._settings.headers)
        if self._key:
            headers["Authorization"] = f"Bearer {self._key.reveal()}"
        headers.update(ctx.extra_headers)
        response = await self._transport.request(
            "POST",
            self.base_url + path,
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=headers,
            json_body=dict(body),
            deadline=ctx.deadline,
            secrets=self._secrets,
        )
        async with response:
            return await read_envelope(response, provider=self.name, model=ctx.model, secrets=self._secrets)

    def _feed_snapshot(self, feed: FeedTask) -> TaskSnapshot:
        status = FEED_STATUS_MAP.get(feed.status)
        if status is None:
            raise InvalidUpstreamResponse(f"unknown Runway relay task status {feed.status!r}", provider=self.name)
        extra = {k: v for k, v in (("create_time", feed.create_time), ("update_time", feed.update_time)) if v}
        if status == "succeeded":
            if not feed.video_url:
                raise InvalidUpstreamResponse("the relay reported success without video_url", provider=self.name)
            artifact_extra = {k: v for k, v in (("poster", feed.poster), ("last_frame", feed.last_frame)) if v}
            artifact = Artifact(url=feed.video_url, media_type=_video_type(feed.video_url), extra=artifact_extra)
            return TaskSnapshot(
                upstream_id=feed.task_id,
                status="succeeded",
                kind="video",
                progress=1.0,
                outputs=(artifact,),
                raw_status=feed.status,
                extra=extra,
            )
        if status == "failed" and feed.refund is not None:
            extra["refund"] = feed.refund
        return TaskSnapshot(
            upstream_id=feed.task_id,
            status=status,
            kind="video",
            error=failure_info(feed.msg, self._secrets) if status == "failed" else None,
            raw_status=feed.status,
            extra=extra,
        )

    def _wrapped_snapshot(self, task: WrappedTask) -> TaskSnapshot:
        status = WRAPPED_STATUS_MAP.get(task.status)
        if status is None:
            raise InvalidUpstreamResponse(f"unknown Runway relay task status {task.status!r}", provider=self.name)
        inner = task.data
        extra: dict[str, Any] = {"action": task.action} if task.action else {}
        if status == "succeeded":
            urls = inner.output if inner is not None and inner.output else ()
            if not urls:
                raise InvalidUpstreamResponse("the relay reported SUCCESS without output URLs", provider=self.name)
            return TaskSnapshot(
                upstream_id=task.task_id,
                status="succeeded",
                kind="video",
                progress=1.0,
                outputs=tuple(Artifact(url=url, media_type=_video_type(url)) for url in urls),
                raw_status=task.status,
                extra=extra,
            )
        reason = task.fail_reason or (inner.failure if inner is not None else None)
        return TaskSnapshot(
            upstream_id=task.task_id,
            status=status,
            kind="video",
            progress=_percent(task.progress),
            error=failure_info(reason, self._secrets) if status == "failed" else None,
            raw_status=task.status,
            extra=extra,
        )


def _ratio(request: TaskRequest) -> str | None:
    ratio, path = request.aspect_ratio, "aspect_ratio"
    if ratio is None and request.size not in (None, "auto"):
        assert request.size is not None
        width, _, height = request.size.partition("x")
        divisor = math.gcd(int(width), int(height))
        ratio, path = f"{int(width) // divisor}:{int(height) // divisor}", "size"
    if ratio is not None and ratio not in RATIOS:
        raise InvalidRequest(f"Runway relays take the ratios {sorted(RATIOS)}, got {ratio}", path=path)
    return ratio


def _seconds(duration: float | None) -> int | None:
    if duration is None:
        return None
    if duration not in SECONDS:
        raise InvalidRequest(f"Runway relays make 5 or 10 second videos, got {duration!r}", path="duration")
    return int(duration)


def _percent(value: str | None) -> float | None:
    """``"40%"`` → 0.4; empty or unreadable → ``None``."""
    try:
        return max(0.0, min(1.0, float((value or "").strip().rstrip("%")) / 100))
    except ValueError:
        return None


def _video_type(url: str) -> str:
    return media_type_for_url(url) or "video/mp4"
