"""The OpenAI images API over every image upstream (``router.images``), and media download helpers.

:class:`ImagesService` answers ``generate`` / ``edit`` / ``create_variation`` with an OpenAI
:class:`~polyrelay.types.media.ImagesResponse` whatever the upstream:

- targets whose provider is an :class:`~polyrelay.provider.ImageProvider` (synchronous APIs such as OpenAI
  Images) are called directly;
- targets that only run tasks (:class:`~polyrelay.provider.TaskProvider`: Flux, Replicate, Midjourney, ...) get the
  request as a :class:`~polyrelay.types.media.TaskRequest`; the service submits it, waits for the task, and builds
  the response from the task's artifacts: ``url`` by default, or ``b64_json`` (downloaded through the provider,
  which never sends credentials to another origin) when ``response_format="b64_json"``.

Mapping to a task request: ``prompt``, ``n``, ``size`` and the input images map to the same fields;
``aspect_ratio``, ``seed`` and ``negative_prompt`` given as provider params map to their fields; ``quality``,
``style``, ``background``, ``output_format``, ``user`` and the edit ``mask`` go to ``params`` under their own names
(providers use them or report an ``unsupported-setting`` warning in ``response.meta.warnings``).

Targets are tried in failover order with the same rules as :class:`~polyrelay.tasks.TaskService` (retry on the
target, then the next target, see :func:`polyrelay.tasks.fails_over`); a task that fails also moves on to the next
target, unless it was a content-policy rejection; a task that times out does not.
Generic input checks (missing prompt, ``n``, ``size`` shape, ``response_format``) happen before anything else;
each provider checks model-specific values (sizes, qualities, ``n`` limits) before its network call.

Result URLs expire (Flux: 10 minutes, Replicate: 1 hour, dall-e: 60 minutes): use ``response_format="b64_json"``
or :meth:`ImagesService.download` when the bytes must outlive that.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import unquote, unquote_to_bytes, urljoin, urlsplit

import attrs

from polyrelay._budget import bounded, start_budget
from polyrelay._media_guard import TargetGuard, guarded, stop_when_open
from polyrelay.classify import error_for_status
from polyrelay.errors import (
    InvalidRequest,
    InvalidUpstreamResponse,
    Secret,
    UnsupportedFeature,
    redact,
)
from polyrelay.policy import Policy
from polyrelay.provider import CallContext, ImageProvider, TaskProvider
from polyrelay.routes import ResolvedTarget
from polyrelay.tasks import (
    GetProvider,
    MakeCtx,
    Resolve,
    Sleep,
    TaskService,
    check_task_request,
    retry_on_target,
    target_retry_policy,
    task_failed_error,
    with_failover,
)
from polyrelay.transport import Transport, same_origin
from polyrelay.types.completion import CallWarning, ResponseMeta
from polyrelay.types.media import ImageData, ImageRequest, ImagesResponse, TaskRequest

__all__ = [
    "ImageInput",
    "ImagesService",
    "MediaDownloader",
    "decode_data_uri",
    "download_media",
    "media_type_for_url",
    "sniff_media_type",
    "to_data_uri",
]

ImageInput = bytes | str
"""An input image: raw bytes, a ``data:`` URI, or an http(s) URL."""

#: Downloads larger than this are refused (InvalidUpstreamResponse): generated media, not arbitrary files.
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024
_MAX_REDIRECTS = 5
_RESPONSE_FORMATS = frozenset({"url", "b64_json"})
# Magic numbers of the formats image upstreams accept and return.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_EXTENSIONS: Mapping[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".ogg": "audio/ogg",
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
}
# ImageRequest fields forwarded to task providers in params under their own name.
_PASSED_AS_PARAMS = ("quality", "style", "background", "output_format", "user")
# Provider params that are fields of TaskRequest.
_TASK_FIELDS_FROM_PARAMS = ("aspect_ratio", "seed", "negative_prompt")


@runtime_checkable
class MediaDownloader(Protocol):
    """A provider that can fetch its own result URLs (credentials only to its configured origin)."""

    async def download(self, url: str, ctx: CallContext) -> bytes: ...


# -- bytes, data URIs and downloads ---------------------------------------------------------------------------------


def sniff_media_type(data: bytes, default: str = "application/octet-stream") -> str:
    """The media type of ``data`` from its magic number (PNG, JPEG, GIF, WebP), else ``default``."""
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return default


def media_type_for_url(url: str) -> str | None:
    """The media type a result URL's file extension implies (``None`` when it has none we know)."""
    if url.startswith("data:"):
        head = url[5:].split(",", 1)[0]
        return head.split(";", 1)[0] or None
    path = urlsplit(url).path.lower()
    for ext, media_type in _EXTENSIONS.items():
        if path.endswith(ext):
            return media_type
    return None


def to_data_uri(data: bytes, media_type: str | None = None) -> str:
    """``data:<type>;base64,<data>`` (the type sniffed when not given)."""
    kind = media_type or sniff_media_type(data)
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


def decode_data_uri(uri: str) -> tuple[bytes, str]:
    """``(bytes, media type)`` of a ``data:`` URI; :class:`ValueError` when it is not one."""
    if not uri.startswith("data:") or "," not in uri:
        raise ValueError("not a data: URI")
    head, payload = uri[5:].split(",", 1)
    parts = head.split(";")
    media_type = parts[0] or "text/plain"
    if "base64" in parts[1:]:
        text = "".join(unquote(payload).split())  # tolerate %-escapes and line breaks, nothing else
        try:
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True), media_type
        except (binascii.Error, ValueError) as exc:
            raise ValueError("the data: URI's base64 payload is invalid") from exc
    return unquote_to_bytes(payload), media_type


async def download_media(
    transport: Transport,
    url: str,
    *,
    provider: str,
    ctx: CallContext,
    credentials_origin: str | None = None,
    credentials: Mapping[str, str] | None = None,
    secrets: tuple[Secret | str, ...] = (),
    max_bytes: int = MAX_DOWNLOAD_BYTES,
) -> bytes:
    """The bytes behind a result URL (``data:`` URIs are decoded without a request).

    ``credentials`` (auth headers) are sent only while the URL — also after each redirect — is on
    ``credentials_origin``; redirects are followed by hand (at most 5) for exactly that reason.
    """
    if url.startswith("data:"):
        try:
            return decode_data_uri(url)[0]
        except ValueError as exc:
            raise InvalidUpstreamResponse(f"undecodable data: URI ({exc})", provider=provider) from exc
    current = url
    for _ in range(_MAX_REDIRECTS + 1):
        if urlsplit(current).scheme.lower() not in ("http", "https"):
            raise InvalidRequest(f"only http(s) and data: URLs can be downloaded, got {current[:40]!r}", path="url")
        headers = dict(ctx.extra_headers)
        if credentials and credentials_origin is not None and same_origin(current, credentials_origin):
            headers.update(credentials)
        response = await transport.request(
            "GET",
            current,
            provider=provider,
            timeouts=ctx.timeouts,
            headers=headers,
            deadline=ctx.deadline,
            secrets=secrets,
        )
        async with response:
            if response.status in (301, 302, 303, 307, 308) and response.headers.get("location"):
                current = urljoin(current, response.headers["location"])
                continue
            if response.status != 200:
                text = redact((await response.text())[:300], secrets)
                raise error_for_status(
                    response.status,
                    f"downloading a result failed: {text}",
                    provider=provider,
                    headers=response.headers,
                    request_id=response.request_id,
                    secrets=secrets,
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.iter_bytes(bulk=True):
                size += len(chunk)
                if size > max_bytes:
                    raise InvalidUpstreamResponse(f"result larger than {max_bytes} bytes", provider=provider)
                chunks.append(chunk)
            return b"".join(chunks)
    raise InvalidUpstreamResponse(f"more than {_MAX_REDIRECTS} redirects downloading a result", provider=provider)


# -- the service ----------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _Candidate:
    target: ResolvedTarget
    provider: object


def _image_inputs(value: ImageInput | Sequence[ImageInput] | None, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items: Sequence[ImageInput] = [value] if isinstance(value, bytes | str) else value
    out: list[str] = []
    for i, item in enumerate(items):
        where = path if isinstance(value, bytes | str) else f"{path}[{i}]"
        if isinstance(item, bytes):
            if not item:
                raise InvalidRequest("is empty", path=where)
            out.append(to_data_uri(item))
        elif isinstance(item, str) and item.startswith(("http://", "https://", "data:")):
            out.append(item)
        else:
            raise InvalidRequest("must be image bytes, a data: URI or an http(s) URL", path=where)
    return tuple(out)


def _check_str(value: object, path: str) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidRequest(f"must be a non-empty string, got {value!r}", path=path)


def _check_image_request(request: ImageRequest) -> None:
    if not isinstance(request.model, str) or not request.model:
        raise InvalidRequest("a model name is required", path="model")
    if request.operation == "variation":
        if request.prompt is not None:
            raise InvalidRequest("image variations take no prompt", path="prompt")
    elif not isinstance(request.prompt, str) or not request.prompt.strip():
        raise InvalidRequest("is required" if request.prompt is None else "must be a non-empty string", path="prompt")
    if request.operation != "generate" and not request.images:
        raise InvalidRequest("an input image is required", path="image")
    n = request.n
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InvalidRequest(f"must be a positive integer, got {n!r}", path="n")
    size = request.size
    if size is not None:
        _check_str(size, "size")
        w, x, h = size.partition("x")
        if size != "auto" and not (x and w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0):
            raise InvalidRequest(f"must look like '1024x1024' (or 'auto'), got {size!r}", path="size")
    if request.response_format is not None and request.response_format not in _RESPONSE_FORMATS:
        raise InvalidRequest(f"must be 'url' or 'b64_json', got {request.response_format!r}", path="response_format")
    for name in _PASSED_AS_PARAMS:
        _check_str(getattr(request, name), name)


class ImagesService:
    """``router.images``: ``generate``, ``edit``, ``create_variation`` and ``download``.

    ``tasks`` runs the task-based upstreams; ``resolve``/``get_provider``/``make_ctx`` are the router's (see
    :class:`~polyrelay.tasks.TaskService`). ``transport`` is used to download results of providers that have no
    ``download`` method of their own (anonymously). ``wait_timeout`` bounds the wait for task-based upstreams.
    """

    def __init__(
        self,
        tasks: TaskService,
        resolve: Resolve,
        get_provider: GetProvider,
        make_ctx: MakeCtx,
        *,
        sleep: Sleep | None = None,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
        transport: Transport | None = None,
        wait_timeout: float = 300.0,
        guard: TargetGuard | None = None,
    ) -> None:
        self._guard = guard
        self._tasks = tasks
        self._resolve = resolve
        self._get_provider = get_provider
        self._make_ctx = make_ctx
        self._sleep = sleep
        self._clock = clock or time.time
        self._rng = rng or random.Random()
        self._transport = transport
        self.wait_timeout = wait_timeout

    async def generate(
        self,
        *,
        model: str,
        prompt: str,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        style: str | None = None,
        response_format: Literal["url", "b64_json"] | None = None,
        background: str | None = None,
        output_format: str | None = None,
        user: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - bounds the task wait on the injected clock
        **provider_params: Any,
    ) -> ImagesResponse:
        """``images.generate``. Provider-specific parameters go in ``**provider_params``."""
        request = ImageRequest(
            model=model,
            prompt=prompt,
            n=n,
            size=size,
            quality=quality,
            style=style,
            response_format=response_format,
            background=background,
            output_format=output_format,
            user=user,
            params=provider_params,
        )
        return await self.run(request, timeout=timeout)

    async def edit(
        self,
        *,
        model: str,
        image: ImageInput | Sequence[ImageInput],
        prompt: str,
        mask: ImageInput | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        response_format: Literal["url", "b64_json"] | None = None,
        background: str | None = None,
        output_format: str | None = None,
        user: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
        **provider_params: Any,
    ) -> ImagesResponse:
        """``images.edit``: ``image`` is bytes, a data: URI or a URL (or a list of them for GPT image models)."""
        masks = _image_inputs(mask, "mask")
        request = ImageRequest(
            model=model,
            prompt=prompt,
            n=n,
            size=size,
            quality=quality,
            response_format=response_format,
            background=background,
            output_format=output_format,
            user=user,
            operation="edit",
            images=_image_inputs(image, "image"),
            mask=masks[0] if masks else None,
            params=provider_params,
        )
        return await self.run(request, timeout=timeout)

    async def create_variation(
        self,
        *,
        model: str,
        image: ImageInput,
        n: int | None = None,
        size: str | None = None,
        response_format: Literal["url", "b64_json"] | None = None,
        user: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
        **provider_params: Any,
    ) -> ImagesResponse:
        """``images.create_variation`` (OpenAI dall-e-2 only upstream)."""
        request = ImageRequest(
            model=model,
            n=n,
            size=size,
            response_format=response_format,
            user=user,
            operation="variation",
            images=_image_inputs(image, "image"),
            params=provider_params,
        )
        return await self.run(request, timeout=timeout)

    async def download(self, url: str, *, provider: str) -> bytes:
        """The bytes of a result URL, fetched through provider instance ``provider`` (``Task.provider``); the
        provider sends credentials only to its own configured origin."""
        instance = self._get_provider(provider)
        target = ResolvedTarget(provider=provider, model="", policy=Policy())
        return await self._download(url, target, instance)

    async def run(self, request: ImageRequest, *, timeout: float | None = None) -> ImagesResponse:  # noqa: ASYNC109
        """Run a prepared :class:`ImageRequest` with failover (what ``generate``/``edit``/... call)."""
        _check_image_request(request)
        candidates = self._candidates(request.model)

        async def on_target(candidate: _Candidate) -> ImagesResponse:
            provider = candidate.provider
            if isinstance(provider, ImageProvider):
                return await self._direct(request, candidate.target, provider)
            assert isinstance(provider, TaskProvider)
            return await self._via_task(request, candidate.target, provider, timeout)

        return await with_failover(
            request.model, candidates, on_target, guard=self._guard, target_of=lambda c: c.target
        )

    # -- internals ----------------------------------------------------------------------------------------------

    def _candidates(self, model: str) -> list[_Candidate]:
        out: list[_Candidate] = []
        for target in self._resolve(model):
            provider = self._get_provider(target.provider)
            if isinstance(provider, ImageProvider | TaskProvider):
                out.append(_Candidate(target=target, provider=provider))
        if not out:
            raise UnsupportedFeature(f"model {model!r} has no target that generates images", path="model")
        return out

    async def _direct(self, request: ImageRequest, target: ResolvedTarget, provider: ImageProvider) -> ImagesResponse:
        # Policy.deadline bounds this target's attempts, retry sleeps and result downloads (a task-based target's
        # submission has its own, and its generation the wait timeout).
        budget = start_budget(target, self._clock)
        ctx = bounded(self._make_ctx(target), budget)
        response = await retry_on_target(
            guarded(self._guard, target, lambda: provider.generate_images(request, ctx), budget),
            target_retry_policy(target),
            sleep=self._sleep_fn(),
            rng=self._rng,
            budget=budget,
            stop_also=stop_when_open(self._guard, target),
        )
        if request.response_format == "b64_json" and any(d.b64_json is None and d.url for d in response.data):
            data = []
            for item in response.data:
                if item.b64_json is None and item.url:
                    raw = await self._download(item.url, target, provider, ctx)
                    item = attrs.evolve(item, url=None, b64_json=base64.b64encode(raw).decode("ascii"))
                data.append(item)
            response = attrs.evolve(response, data=tuple(data))
        meta = response.meta
        warnings = meta.warnings if meta is not None else ()
        request_id = meta.request_id if meta is not None else None
        return attrs.evolve(response, meta=self._meta(request, target, warnings, request_id))

    async def _via_task(
        self, request: ImageRequest, target: ResolvedTarget, provider: TaskProvider, budget: float | None
    ) -> ImagesResponse:
        task_request = self._task_request(request, target)
        task = await self._tasks.submit_to(target, provider, task_request)
        # Providers report dropped settings on the submit snapshot; later polls do not repeat them.
        submitted_warnings = task.extra.get("warnings", ())
        if not task.done:
            wait_for = self.wait_timeout if budget is None else budget
            task = await self._tasks.wait(task.id, timeout=wait_for, resubmit=False)
        if task.status != "succeeded":
            raise task_failed_error(task)
        data: list[ImageData] = []
        for artifact in task.outputs:
            if not artifact.url:
                continue
            revised = artifact.extra.get("revised_prompt")
            revised_prompt = revised if isinstance(revised, str) else None
            if request.response_format == "b64_json":
                raw = await self._download(artifact.url, target, provider)
                data.append(ImageData(b64_json=base64.b64encode(raw).decode("ascii"), revised_prompt=revised_prompt))
            else:
                data.append(ImageData(url=artifact.url, revised_prompt=revised_prompt))
        if not data:
            raise InvalidUpstreamResponse(
                f"task {task.id} succeeded without any image output", provider=task.provider, retryable=False
            )
        reported = (*submitted_warnings, *task.extra.get("warnings", ()))
        warnings = tuple(dict.fromkeys(w for w in reported if isinstance(w, CallWarning)))
        created = int(task.updated_at or self._clock())
        return ImagesResponse(created=created, data=tuple(data), meta=self._meta(request, target, warnings, None))

    def _task_request(self, request: ImageRequest, target: ResolvedTarget) -> TaskRequest:
        if request.operation == "variation":
            raise UnsupportedFeature(
                "image variations need an images-API upstream (OpenAI dall-e-2)", path="model", provider=target.provider
            )
        params = dict(request.params)
        fields = {name: params.pop(name) for name in _TASK_FIELDS_FROM_PARAMS if name in params}
        for name in _PASSED_AS_PARAMS:
            value = getattr(request, name)
            if value is not None:
                params[name] = value
        if request.mask is not None:
            params["mask"] = request.mask
        task_request = TaskRequest(
            model=request.model,
            prompt=request.prompt,
            kind="image",
            images=request.images,
            n=request.n,
            size=request.size,
            params=params,
            **fields,
        )
        check_task_request(task_request)
        return task_request

    async def _download(
        self, url: str, target: ResolvedTarget, provider: object, ctx: CallContext | None = None
    ) -> bytes:
        if ctx is None:
            ctx = self._make_ctx(target)
        if isinstance(provider, MediaDownloader):
            return await provider.download(url, ctx)
        if self._transport is None:
            raise UnsupportedFeature(
                "this provider cannot download its results; ask for response_format='url'",
                path="response_format",
                provider=target.provider,
            )
        return await download_media(self._transport, url, provider=target.provider, ctx=ctx)

    def _meta(
        self,
        request: ImageRequest,
        target: ResolvedTarget,
        warnings: Sequence[CallWarning],
        request_id: str | None,
    ) -> ResponseMeta:
        return ResponseMeta(
            provider=target.provider,
            model=target.model,
            requested_model=request.model,
            warnings=tuple(warnings),
            request_id=request_id,
        )

    def _sleep_fn(self) -> Callable[[float], Awaitable[None]]:
        return self._sleep if self._sleep is not None else asyncio.sleep
