"""The Replicate provider: create a prediction (``Prefer: wait``), poll ``GET /predictions/{id}``, cancel.

**Blocking create.** Creates send ``Prefer: wait=N`` (option ``wait``, default 60, the documented maximum; 0
disables it). N is lowered when the call's first-byte timeout would not leave 5 s of margin. Replicate then holds
the response until the prediction finished or N passed. A ``201`` whose ``output`` is already set is treated as
finished even if ``status`` still says ``processing``: for file outputs Replicate answers as soon as every file
exists (documented, and visible in recorded traffic). Otherwise the task is polled.

**Polling** always goes to ``{base_url}/predictions/{id}`` (not ``urls.get``): behind a relay ``urls.get`` may
point at ``api.replicate.com``, where the relay key must not go. Cadence 0.5 s for 5 s (the official SDK's
default), then 1 s, then 2 s after a minute.

**Outputs.** A URI string or a list of URIs becomes one artifact per URI (``data:`` URIs too, which sync mode
briefly returned in 2024); a list of strings that are not URIs (language models) becomes one artifact with
``extra["text"]``; any other JSON one artifact with ``extra["output"]``. Files are deleted an hour after
creation: :meth:`ReplicateProvider.download` fetches them (no credentials: delivery hosts are other origins).

**Progress** comes from the logs: the last tqdm percentage (``" 45%|████▌     | 9/20"``) while ``processing``,
as the official SDK does. Statuses: ``starting`` → queued, ``processing`` → running, ``succeeded``, ``failed``,
``canceled``; ``aborted`` (Cancel-After passed before start) → failed with code ``aborted``.
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
from polyrelay_replicate._errors import STATUS_MAP, failure_info, raise_for_response
from polyrelay_replicate._request import build_body, route_for
from polyrelay_replicate._wire import Prediction, dump, parse

__all__ = ["ReplicateProvider", "build"]

DEFAULT_BASE_URL = "https://api.replicate.com/v1"
_OPTIONS = frozenset({"wait", "image_key"})
_MAX_WAIT = 60
_WAIT_MARGIN = 5.0
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# tqdm progress bars in the logs: " 45%|████▌     | 9/20 [00:01<00:01, 7.8it/s]".
_TQDM = re.compile(r"(\d{1,3})%\|")
_CADENCE: tuple[tuple[float, float], ...] = ((5.0, 0.5), (60.0, 1.0))
_SLOW_CADENCE = 2.0
_MEDIA_KINDS: tuple[tuple[str, TaskKind], ...] = (("image/", "image"), ("video/", "video"), ("audio/", "audio"))


def build(settings: ProviderSettings, transport: Transport) -> ReplicateProvider:
    """The provider factory: validates the instance's options."""
    options = dict(settings.options)
    prefix = f"{settings.config_path}." if settings.config_path else ""
    for key in options:
        if key not in _OPTIONS:
            raise ConfigError(f"unknown option for a replicate provider{did_you_mean(key, _OPTIONS)}", key=prefix + key)
    wait = options.get("wait", _MAX_WAIT)
    if wait is False:
        wait = 0
    if isinstance(wait, bool) or not isinstance(wait, int) or not 0 <= wait <= _MAX_WAIT:
        raise ConfigError(f"must be an integer from 0 (off) to {_MAX_WAIT} seconds, got {wait!r}", key=prefix + "wait")
    image_key = options.get("image_key", "input_image")
    if not isinstance(image_key, str) or not image_key:
        raise ConfigError("must be the name of the model's image input", key=prefix + "image_key")
    return ReplicateProvider(settings, transport, wait=wait, image_key=image_key)


class ReplicateProvider:
    """A :class:`~polyrelay.provider.TaskProvider` for Replicate predictions (see the module docstring)."""

    def __init__(
        self, settings: ProviderSettings, transport: Transport, *, wait: int = _MAX_WAIT, image_key: str = "input_image"
    ) -> None:
        self.name = settings.name
        self.base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.wait = wait
        self.image_key = image_key
        self._settings = settings
        self._transport = transport
        self._key: Secret | None = settings.api_key
        self._secrets = settings.secrets()

    def __repr__(self) -> str:
        return f"ReplicateProvider(name={self.name!r}, base_url={self.base_url!r})"

    # -- TaskProvider -------------------------------------------------------------------------------------------

    async def submit(self, request: TaskRequest, ctx: CallContext) -> TaskSnapshot:
        route = route_for(ctx.model)
        body, warnings = build_body(request, route, image_key=self.image_key)
        headers = self._headers(ctx)
        wait = self._wait_seconds(ctx)
        if wait:
            headers["Prefer"] = f"wait={wait}"
        response = await self._transport.request(
            "POST",
            self.base_url + route.path,
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=headers,
            json_body=dump(body),
            deadline=ctx.deadline,
            secrets=self._secrets,
        )
        async with response:
            if response.status not in (200, 201, 202):
                await raise_for_response(response, provider=self.name, model=ctx.model, secrets=self._secrets)
            prediction = parse(await response.json(), Prediction, provider=self.name, what="prediction")
            created_complete = bool(wait) and response.status == 201
        kind: TaskKind = request.kind or "image"
        return self._snapshot(prediction, kind=kind, outputs_complete=created_complete, warnings=warnings)

    async def poll(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        return await self._prediction_call("GET", f"/predictions/{self._checked_id(upstream_id)}", ctx)

    async def cancel(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        return await self._prediction_call("POST", f"/predictions/{self._checked_id(upstream_id)}/cancel", ctx)

    def poll_interval(self, snapshot: TaskSnapshot, elapsed: float) -> float:
        for until, interval in _CADENCE:
            if elapsed < until:
                return interval
        return _SLOW_CADENCE

    async def download(self, url: str, ctx: CallContext) -> bytes:
        """The bytes of an output URL (``Authorization`` only to the configured origin; delivery hosts get none)."""
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

    async def _prediction_call(self, method: str, path: str, ctx: CallContext) -> TaskSnapshot:
        response = await self._transport.request(
            method,
            self.base_url + path,
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=self._headers(ctx),
            deadline=ctx.deadline,
            secrets=self._secrets,
        )
        async with response:
            if response.status != 200:
                await raise_for_response(response, provider=self.name, model=ctx.model, secrets=self._secrets)
            prediction = parse(await response.json(), Prediction, provider=self.name, what="prediction")
        return self._snapshot(prediction, kind=None, outputs_complete=False, warnings=())

    def _headers(self, ctx: CallContext) -> dict[str, str]:
        headers = dict(self._settings.headers)
        if self._key:
            headers["Authorization"] = f"Bearer {self._key.reveal()}"
        headers.update(ctx.extra_headers)
        return headers

    def _wait_seconds(self, ctx: CallContext) -> int:
        wait = self.wait
        first_byte = ctx.timeouts.first_byte
        if wait and first_byte is not None:
            wait = min(wait, int(first_byte - _WAIT_MARGIN))
        return max(0, wait)

    def _checked_id(self, upstream_id: str) -> str:
        # The id comes from a caller-supplied task id: keep it to one path segment.
        if not _ID.match(upstream_id):
            raise InvalidRequest("the task id does not carry a Replicate prediction id", path="task_id")
        return upstream_id

    def _snapshot(
        self,
        prediction: Prediction,
        *,
        kind: TaskKind | None,
        outputs_complete: bool,
        warnings: tuple[Any, ...],
    ) -> TaskSnapshot:
        status = STATUS_MAP.get(prediction.status, "running")
        outputs = _artifacts(prediction.output)
        if outputs_complete and status in ("queued", "running") and prediction.output is not None:
            status = "succeeded"
        extra: dict[str, Any] = {}
        if prediction.metrics:
            extra["metrics"] = dict(prediction.metrics)
        if prediction.data_removed:
            extra["data_removed"] = True
        if prediction.urls is not None and prediction.urls.web:
            extra["web_url"] = prediction.urls.web
        if warnings:
            extra["warnings"] = warnings
        progress: float | None = None
        if status == "succeeded":
            progress = 1.0
        elif status == "running":
            progress = _log_progress(prediction.logs)
        error = failure_info(prediction.status, prediction.error, self._secrets) if status == "failed" else None
        return TaskSnapshot(
            upstream_id=prediction.id,
            status=status,
            kind=kind or _kind_of(outputs),
            progress=progress,
            outputs=outputs if status == "succeeded" else (),
            error=error,
            raw_status=prediction.status,
            extra=extra,
        )


def _is_uri(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://", "data:"))


def _artifacts(output: Any) -> tuple[Artifact, ...]:
    if output is None:
        return ()
    items = output if isinstance(output, list) else [output]
    if items and all(_is_uri(item) for item in items):
        return tuple(Artifact(url=item, media_type=media_type_for_url(item)) for item in items)
    if all(isinstance(item, str) for item in items):
        return (Artifact(media_type="text/plain", extra={"text": "".join(items)}),)
    return (Artifact(extra={"output": output}),)


def _kind_of(outputs: tuple[Artifact, ...]) -> TaskKind:
    for artifact in outputs:
        for prefix, kind in _MEDIA_KINDS:
            if (artifact.media_type or "").startswith(prefix):
                return kind
    return "image"


def _log_progress(logs: str | None) -> float | None:
    if not logs:
        return None
    matches = _TQDM.findall(logs)
    if not matches:
        return None
    return min(100, int(matches[-1])) / 100.0
