"""The Ideogram provider: OpenAI images API and (synchronous) generation tasks over the Ideogram API.

Ideogram answers synchronously: the HTTP response carries the finished images. :meth:`IdeogramProvider.submit`
therefore returns a *succeeded* snapshot at once, so Ideogram models work through the task API (and the chat bridge
built on it) like the asynchronous upstreams. Image links expire ("available for a limited period"); ask for
``response_format="b64_json"`` to have them downloaded right away.

Credentials go only to the configured base URL: input-image URLs and result URLs are fetched without them.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import attrs

from polyrelay.errors import (
    ConfigError,
    ContentPolicyViolation,
    InvalidRequest,
    InvalidUpstreamResponse,
    NotFound,
    UnsupportedFeature,
)
from polyrelay.policy import did_you_mean
from polyrelay.provider import CallContext, ProviderSettings
from polyrelay.types.completion import CallWarning, ResponseMeta
from polyrelay.types.media import Artifact, ImageData, ImageRequest, ImagesResponse, TaskRequest, TaskSnapshot
from polyrelay_ideogram._errors import error_from_response
from polyrelay_ideogram._request import (
    IdeogramCall,
    ImagePart,
    build_call,
    job_from_image_request,
    job_from_task_request,
)
from polyrelay_ideogram._wire import GenerateResponse, ImageObject, form_fields, parse_response, to_wire

if TYPE_CHECKING:
    from polyrelay.transport import HttpResponse, Transport

__all__ = ["AUTH_MODES", "DEFAULT_BASE_URL", "OPTION_KEYS", "IdeogramProvider", "create_provider"]

DEFAULT_BASE_URL = "https://api.ideogram.ai"
#: ``auth = "api-key"``: Ideogram's own ``Api-Key`` header; ``"bearer"``: relays (``Authorization: Bearer``).
AUTH_MODES = ("api-key", "bearer")
OPTION_KEYS = frozenset({"auth"})
#: Finished snapshots kept for :meth:`IdeogramProvider.poll` (Ideogram itself keeps no task to poll).
_KEPT_RESULTS = 512
_MEDIA_TYPES: Mapping[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}


def create_provider(settings: ProviderSettings, transport: Transport) -> IdeogramProvider:
    """The :class:`~polyrelay.provider.ProviderSpec` factory: validate the options, build the instance."""
    for key in settings.options:
        if key not in OPTION_KEYS:
            raise ConfigError(
                f"unknown option {key!r} for provider type 'ideogram'{did_you_mean(key, OPTION_KEYS)}",
                key=f"{settings.config_path}.{key}",
            )
    auth = settings.options.get("auth", "api-key")
    if auth not in AUTH_MODES:
        raise ConfigError(
            f"auth must be one of {', '.join(AUTH_MODES)}, got {auth!r}", key=f"{settings.config_path}.auth"
        )
    header_names = {name.lower() for name in settings.headers}
    if settings.api_key is None and not header_names & {"api-key", "authorization"}:
        raise ConfigError(
            "Ideogram needs an API key", key=f"{settings.config_path}.api_key", env_var="IDEOGRAM_API_KEY"
        )
    return IdeogramProvider(settings, transport, auth=auth)


@attrs.frozen(kw_only=True)
class _Answer:
    body: GenerateResponse
    request_id: str | None


class IdeogramProvider:
    """Implements :class:`~polyrelay.provider.ImageProvider` and :class:`~polyrelay.provider.TaskProvider`."""

    def __init__(
        self, settings: ProviderSettings, transport: Transport, *, auth: Literal["api-key", "bearer"] = "api-key"
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self.auth = auth
        self._transport = transport
        self._secrets = settings.secrets()
        self._results: OrderedDict[str, TaskSnapshot] = OrderedDict()

    def __repr__(self) -> str:
        return f"<IdeogramProvider {self.name!r} {self.base_url}>"

    # ------------------------------------------------------------------------------------------- images API

    async def generate_images(self, request: ImageRequest, ctx: CallContext) -> ImagesResponse:
        """``images.generate`` / ``edit``: one synchronous Ideogram call (validated before it is sent)."""
        call = build_call(job_from_image_request(attrs.evolve(request, model=ctx.model)), provider=self.name)
        answer = await self._send(call, ctx)
        images, warnings = self._kept_images(answer, call)
        data: list[ImageData] = []
        for image in images:
            assert image.url is not None
            extra = {
                k: v
                for k, v in (("seed", image.seed), ("resolution", image.resolution), ("style_type", image.style_type))
                if v is not None
            }
            if call.b64:
                raw = await self._download_result(image.url, ctx)
                data.append(
                    ImageData(b64_json=base64.b64encode(raw).decode("ascii"), revised_prompt=image.prompt, extra=extra)
                )
            else:
                data.append(ImageData(url=image.url, revised_prompt=image.prompt, extra=extra))
        return ImagesResponse(
            created=_unix_time(answer.body.created),
            data=tuple(data),
            meta=ResponseMeta(provider=self.name, model=ctx.model, warnings=warnings, request_id=answer.request_id),
        )

    # ------------------------------------------------------------------------------------------- tasks API

    async def submit(self, request: TaskRequest, ctx: CallContext) -> TaskSnapshot:
        """Generate now and report a finished task (Ideogram has no job queue)."""
        call = build_call(job_from_task_request(attrs.evolve(request, model=ctx.model)), provider=self.name)
        answer = await self._send(call, ctx)
        images, warnings = self._kept_images(answer, call)
        snapshot = TaskSnapshot(
            upstream_id=f"ideogram-{uuid.uuid4().hex}",
            status="succeeded",
            kind="image",
            progress=1.0,
            outputs=tuple(_artifact(image) for image in images),
            raw_status="COMPLETED",
            extra={
                "created": answer.body.created,
                "request_id": answer.request_id,
                "warnings": [w.message for w in warnings],
            },
        )
        self._results[snapshot.upstream_id] = snapshot
        while len(self._results) > _KEPT_RESULTS:
            self._results.popitem(last=False)
        return snapshot

    async def poll(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        """The finished snapshot :meth:`submit` returned (kept in this process only)."""
        snapshot = self._results.get(upstream_id)
        if snapshot is None:
            raise NotFound(
                f"task {upstream_id!r} is unknown here: Ideogram answers synchronously and keeps no task to poll; "
                "its result was returned by the call that created it",
                provider=self.name,
                code="task_not_found",
            )
        return snapshot

    async def cancel(self, upstream_id: str, ctx: CallContext) -> TaskSnapshot:
        raise UnsupportedFeature(
            "Ideogram tasks finish within the submit call; there is nothing to cancel", path="task", provider=self.name
        )

    def poll_interval(self, snapshot: TaskSnapshot, elapsed: float) -> float:
        return 1.0  # never needed: submit already returns a terminal snapshot

    # ------------------------------------------------------------------------------------------- wire

    def _auth_headers(self, ctx: CallContext) -> dict[str, str]:
        headers: dict[str, str] = {"Accept": "application/json"}
        key = self.settings.api_key
        if key is not None:
            if self.auth == "bearer":
                headers["Authorization"] = f"Bearer {key.reveal()}"
            else:
                headers["Api-Key"] = key.reveal()
        headers.update(self.settings.headers)
        headers.update(ctx.extra_headers)
        return headers

    async def _send(self, call: IdeogramCall, ctx: CallContext) -> _Answer:
        url = self.base_url + call.path
        if call.json_body is not None:
            response = await self._transport.request(
                "POST",
                url,
                provider=self.name,
                timeouts=ctx.timeouts,
                headers=self._auth_headers(ctx),
                json_body=to_wire(call.json_body),
                deadline=ctx.deadline,
                secrets=self._secrets,
            )
        else:
            form = await self._form(call, ctx)
            response = await self._transport.request(
                "POST",
                url,
                provider=self.name,
                timeouts=ctx.timeouts,
                headers=self._auth_headers(ctx),
                data=form,
                deadline=ctx.deadline,
                secrets=self._secrets,
            )
        return await self._answer(response, ctx)

    async def _form(self, call: IdeogramCall, ctx: CallContext) -> Any:
        import aiohttp

        # MultipartWriter, not FormData: FormData falls back to urlencoded when there is no file part, and the
        # 3.0 endpoints accept multipart only.
        form = aiohttp.MultipartWriter("form-data")
        assert call.fields is not None
        for name, value in form_fields(call.fields):
            form.append(value).set_content_disposition("form-data", name=name)
        for part in call.parts:
            data, content_type, filename = await self._part_bytes(part, ctx)
            payload = form.append(data, {"Content-Type": content_type})
            payload.set_content_disposition("form-data", name=part.field, filename=filename)
        return form

    async def _part_bytes(self, part: ImagePart, ctx: CallContext) -> tuple[bytes, str, str]:
        if part.data is not None:
            return part.data, part.content_type or "application/octet-stream", part.filename
        assert part.url is not None
        # The caller's image URL: fetched without our credentials (never send the key to another host).
        response = await self._transport.request(
            "GET", part.url, provider=self.name, timeouts=ctx.timeouts, deadline=ctx.deadline, secrets=self._secrets
        )
        if response.status != 200:
            response.close()
            raise InvalidRequest(f"could not download the image (HTTP {response.status})", path=part.path)
        data = await response.read()
        content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in ("image/png", "image/jpeg", "image/webp"):
            content_type = _MEDIA_TYPES.get(_suffix(part.url), "image/png")
        name = part.field + {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}[content_type]
        return data, content_type, name

    async def _answer(self, response: HttpResponse, ctx: CallContext) -> _Answer:
        if response.status != 200:
            body = await response.read()
            raise error_from_response(
                response.status,
                body,
                response.headers,
                provider=self.name,
                secrets=self._secrets,
                request_id=response.request_id,
                model=ctx.model,
            )
        data = await response.json()
        return _Answer(body=parse_response(data, provider=self.name), request_id=response.request_id)

    def _kept_images(self, answer: _Answer, call: IdeogramCall) -> tuple[list[ImageObject], tuple[CallWarning, ...]]:
        """The deliverable images; every one withheld as unsafe is a ContentPolicyViolation."""
        images = list(answer.body.data)
        kept = [image for image in images if image.url and image.is_image_safe is not False]
        warnings = list(call.warnings)
        if not images:
            raise InvalidUpstreamResponse(
                "Ideogram answered without any image", provider=self.name, request_id=answer.request_id
            )
        if not kept:
            raise ContentPolicyViolation(
                "Ideogram withheld the generated image(s): they failed its safety check (is_image_safe: false)",
                provider=self.name,
                status=200,
                code="image_unsafe",
                request_id=answer.request_id,
                model=call.model,
            )
        if len(kept) < len(images):
            withheld = len(images) - len(kept)
            warnings.append(
                CallWarning(
                    type="other",
                    setting="n",
                    message=(f"{withheld} of {len(images)} images were withheld by Ideogram's safety check"),
                )
            )
        return kept, tuple(warnings)

    async def _download_result(self, url: str, ctx: CallContext) -> bytes:
        # Result links live on Ideogram's image host: no credentials go there.
        response = await self._transport.request(
            "GET", url, provider=self.name, timeouts=ctx.timeouts, deadline=ctx.deadline, secrets=self._secrets
        )
        if response.status != 200:
            response.close()
            raise InvalidUpstreamResponse(
                f"could not download the generated image (HTTP {response.status})",
                provider=self.name,
                status=response.status,
                retryable=False,
            )
        return await response.read()


def _artifact(image: ImageObject) -> Artifact:
    width = height = None
    if image.resolution and "x" in image.resolution:
        w, _, h = image.resolution.partition("x")
        if w.isdigit() and h.isdigit():
            width, height = int(w), int(h)
    extra = {
        k: v
        for k, v in (("seed", image.seed), ("prompt", image.prompt), ("style_type", image.style_type))
        if v is not None
    }
    return Artifact(
        url=image.url, media_type=_MEDIA_TYPES.get(_suffix(image.url or "")), width=width, height=height, extra=extra
    )


def _suffix(url: str) -> str:
    path = urlsplit(url).path.lower()
    dot = path.rfind(".")
    return path[dot:] if dot > path.rfind("/") else ""


def _unix_time(created: str | None) -> int:
    """Ideogram's ISO-8601 ``created`` as Unix seconds (now when absent or unreadable: it is metadata only)."""
    if created:
        try:
            return int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
        except ValueError:
            pass
    return int(time.time())
