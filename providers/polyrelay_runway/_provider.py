"""The Runway provider: ``POST /v1/<task type>`` → ``{"id"}``, poll ``GET /v1/tasks/{id}``, cancel with
``DELETE /v1/tasks/{id}`` (wire-video-audio-workflow.md §1).

Every call carries ``Authorization: Bearer <key>`` and ``X-Runway-Version`` (option ``version``, default
``2024-11-06``, the only version the official SDK has ever sent). Which endpoint a request goes to, and how its
fields map, is documented in :mod:`polyrelay_runway._request`.

**Statuses.** PENDING and THROTTLED (the organization is at its concurrency limit; the task starts by itself) →
``queued`` (``extra["throttled"]``), RUNNING → ``running`` with Runway's ``progress`` (0..1), SUCCEEDED →
``succeeded`` with one artifact per ``output`` URL (they expire after 24–48 h: download them, or poll again for
fresh URLs), FAILED → ``failed`` (:mod:`polyrelay_runway._errors` maps ``failureCode``), CANCELLED → ``canceled``.

**Cadence.** 5 s between polls (the core adds up to 20 % jitter: 5–6 s; the official SDK sleeps 6 s ± 1.5 s);
option ``poll_interval`` overrides it.

**Cancel.** ``DELETE`` cancels a pending or running task (and deletes a finished one); Runway answers 204 and the
task cannot be fetched afterwards, so the returned snapshot is ``canceled`` without a poll.

Relay variants ("Runway" on Chinese relays: ``/runway/pro/generate`` + ``/runway/feed``, §1.7) speak a different,
reverse-engineered web API (other bodies, a ``{code, msg, data}`` envelope, string status codes whose meaning is
not confirmed) and are not supported by this provider.
"""

from __future__ import annotations

import re
from typing import Any

from polyrelay.errors import ConfigError, InvalidRequest, Secret
from polyrelay.images import download_media, media_type_for_url
from polyrelay.policy import did_you_mean
from polyrelay.provider import CallContext, ProviderSettings
from polyrelay.transport import Transport
from polyrelay.types.media import Artifact, TaskKind, TaskRequest, TaskSnapshot
from polyrelay_runway._errors import STATUS_MAP, classify_failure, failure_info, raise_for_response
from polyrelay_runway._request import build_call
from polyrelay_runway._wire import CreateTaskResponse, TaskObject, dump, parse

__all__ = ["DEFAULT_VERSION", "RunwayProvider", "build"]

DEFAULT_BASE_URL = "https://api.dev.runwayml.com/v1"
#: ``X-Runway-Version`` (required on every call).
DEFAULT_VERSION = "2024-11-06"
DEFAULT_POLL_INTERVAL = 5.0
_OPTIONS = frozenset({"version", "poll_interval"})
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def build(settings: ProviderSettings, transport: Transport) -> RunwayProvider:
    """The provider factory: validates the instance's options."""
    options = dict(settings.options)
    prefix = f"{settings.config_path}." if settings.config_path else ""
    for key in options:
        if key not in _OPTIONS:
            raise ConfigError(f"unknown option for a runway provider{did_you_mean(key, _OPTIONS)}", key=prefix + key)
    version = options.get("version", DEFAULT_VERSION)
    if not isinstance(version, str) or not _VERSION.match(version):
        raise ConfigError(
            f"must be an API version date like {DEFAULT_VERSION!r}, got {version!r}", key=prefix + "version"
        )
    interval = options.get("poll_interval", DEFAULT_POLL_INTERVAL)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not 0 < interval <= 3600:
        raise ConfigError(f"must be a number of seconds (0-3600], got {interval!r}", key=prefix + "poll_interval")
    return RunwayProvider(settings, transport, version=version, poll_interval=float(interval))


class RunwayProvider:
    """A :class:`~polyrelay.provider.TaskProvider` for the Runway API (see the module docstring)."""

    def __init__(
        self,
        settings: ProviderSettings,
        transport: Transport,
        *,
        version: str = DEFAULT_VERSION,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        self.name = settings.name
        self.base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.version = version
        self.interval = poll_interval
        self._settings = settings
        self._transport = transport
        self._key: Secret | None = settings.api_key
        self._secrets = settings.secrets()

    def __repr__(self) -> str:
        return f"RunwayProvider(name={self.name!r}, base_url={self.base_url!r}, version={self.version!r})"

    # -- TaskProvider -------------------------------------------------------------------------------------------

    async def submit(self, request: TaskRequest, ctx: CallContext) -> TaskSnapshot:
        call = build_call(request, ctx.model)
        response = await self._transport.request(
            "POST",
            f"{self.base_url}/{call.endpoint}",
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
            created = parse(await response.json(), CreateTaskResponse, provider=self.name, what="create response")
        extra: dict[str, Any] = {"endpoint": call.endpoint}
        if call.warnings:
            extra["warnings"] = call.warnings
        return TaskSnapshot(upstream_id=created.id, status="queued", kind=call.kind, raw_status="PENDING", extra=extra)

    async def poll(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        response = await self._transport.request(
            "GET",
            f"{self.base_url}/tasks/{self._checked_id(upstream_id)}",
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=self._headers(ctx),
            deadline=ctx.deadline,
            secrets=self._secrets,
        )
        async with response:
            if response.status != 200:
                await raise_for_response(response, provider=self.name, model=ctx.model, secrets=self._secrets)
            task = parse(await response.json(), TaskObject, provider=self.name, what="task")
        return self._snapshot(task)

    async def cancel(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        headers = self._headers(ctx)
        headers["Accept"] = "*/*"  # as the SDK sends it: the answer is an empty 204
        response = await self._transport.request(
            "DELETE",
            f"{self.base_url}/tasks/{self._checked_id(upstream_id)}",
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=headers,
            deadline=ctx.deadline,
            secrets=self._secrets,
        )
        async with response:
            if response.status not in (200, 202, 204):
                await raise_for_response(response, provider=self.name, model=ctx.model, secrets=self._secrets)
            await response.read()
        return TaskSnapshot(upstream_id=upstream_id, status="canceled", kind="video", raw_status="CANCELLED")

    def poll_interval(self, snapshot: TaskSnapshot, elapsed: float) -> float:
        return self.interval

    async def download(self, url: str, ctx: CallContext) -> bytes:
        """The bytes of an output URL (the key goes only to the configured origin, never to the CDN)."""
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
        headers["X-Runway-Version"] = self.version
        headers.update(ctx.extra_headers)
        return headers

    def _checked_id(self, upstream_id: str) -> str:
        # The id comes from a caller-supplied task id: keep it to one path segment.
        if not _ID.match(upstream_id):
            raise InvalidRequest("the task id does not carry a Runway task id", path="task_id")
        return upstream_id

    def _snapshot(self, task: TaskObject) -> TaskSnapshot:
        status = STATUS_MAP.get(task.status, "running")
        extra: dict[str, Any] = {}
        if task.created_at:
            extra["created_at"] = task.created_at
        if task.status == "THROTTLED":
            extra["throttled"] = True
        if status == "succeeded":
            outputs = tuple(
                Artifact(url=url, media_type=media_type_for_url(url), extra={"index": index})
                for index, url in enumerate(task.output or ())
            )
            return TaskSnapshot(
                upstream_id=task.id,
                status="succeeded",
                kind=_kind_of(outputs),
                progress=1.0,
                outputs=outputs,
                raw_status=task.status,
                extra=extra,
            )
        if status == "failed":
            failure_class = classify_failure(task.failure_code)
            extra["retryable"] = failure_class.retryable
            if task.failure_code:
                extra["failure_code"] = task.failure_code
            return TaskSnapshot(
                upstream_id=task.id,
                status="failed",
                error=failure_info(task.failure, task.failure_code, self._secrets),
                raw_status=task.status,
                extra=extra,
            )
        progress = _fraction(task.progress) if status == "running" else None
        return TaskSnapshot(upstream_id=task.id, status=status, progress=progress, raw_status=task.status, extra=extra)


def _fraction(value: float | None) -> float | None:
    if value is None:
        return None
    return min(1.0, max(0.0, float(value)))


def _kind_of(outputs: tuple[Artifact, ...]) -> TaskKind:
    for artifact in outputs:
        major = (artifact.media_type or "").split("/", 1)[0]
        if major == "image":
            return "image"
        if major == "audio":
            return "audio"
    return "video"
