"""The OpenAI Images provider: ``/images/generations`` (JSON), ``/images/edits`` and ``/images/variations``
(multipart/form-data), validated per model before any network call (see :mod:`._models`).

Edits send each input image as a file part, ``image`` for one and repeated ``image[]`` parts for several (the
openai-python "brackets" array format); ``data:`` URIs are decoded, http(s) URLs are downloaded first (without
credentials unless they are on the configured origin). Results: dall-e URLs are valid 60 minutes,
:meth:`OpenAIImagesProvider.download` fetches them anonymously.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from polyrelay.errors import ConfigError, InvalidRequest, Secret
from polyrelay.images import decode_data_uri, download_media, sniff_media_type
from polyrelay.policy import did_you_mean
from polyrelay.provider import CallContext, ProviderSettings
from polyrelay.transport import Transport
from polyrelay.types.completion import ResponseMeta
from polyrelay.types.media import ImageRequest, ImagesResponse
from polyrelay_openai_images._errors import raise_for_response
from polyrelay_openai_images._models import Checked, check
from polyrelay_openai_images._wire import GenerationBody, dump, parse

__all__ = ["OpenAIImagesProvider", "build"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_OPTIONS = frozenset({"organization", "project"})
_GENERATION_FIELDS = frozenset(
    {
        "n",
        "size",
        "quality",
        "style",
        "response_format",
        "background",
        "output_format",
        "output_compression",
        "moderation",
        "user",
    }
)
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
_PATHS = {"generate": "/images/generations", "edit": "/images/edits", "variation": "/images/variations"}


def build(settings: ProviderSettings, transport: Transport) -> OpenAIImagesProvider:
    """The provider factory: validates the instance's options."""
    prefix = f"{settings.config_path}." if settings.config_path else ""
    for key, value in settings.options.items():
        if key not in _OPTIONS:
            raise ConfigError(
                f"unknown option for an openai-images provider{did_you_mean(key, _OPTIONS)}", key=prefix + key
            )
        if not isinstance(value, str) or not value:
            raise ConfigError("must be a non-empty string", key=prefix + key)
    return OpenAIImagesProvider(settings, transport)


class OpenAIImagesProvider:
    """An :class:`~polyrelay.provider.ImageProvider` for the OpenAI Images API."""

    def __init__(self, settings: ProviderSettings, transport: Transport) -> None:
        self.name = settings.name
        self.base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._settings = settings
        self._transport = transport
        self._key: Secret | None = settings.api_key
        self._secrets = settings.secrets()

    def __repr__(self) -> str:
        return f"OpenAIImagesProvider(name={self.name!r}, base_url={self.base_url!r})"

    async def generate_images(self, request: ImageRequest, ctx: CallContext) -> ImagesResponse:
        checked = check(request, ctx.model, provider=self.name)
        if request.operation == "generate":
            payload: Any = dump(self._generation_body(checked, ctx.model))
            data = None
        else:
            payload, data = None, await self._form(request, checked, ctx)
        response = await self._transport.request(
            "POST",
            self.base_url + _PATHS[request.operation],
            provider=self.name,
            timeouts=ctx.timeouts,
            headers=self._headers(ctx),
            json_body=payload,
            data=data,
            deadline=ctx.deadline,
            secrets=self._secrets,
        )
        async with response:
            if response.status != 200:
                await raise_for_response(response, provider=self.name, model=ctx.model, secrets=self._secrets)
            result = parse(await response.json(), ImagesResponse, provider=self.name, what="images response")
            request_id = response.request_id
        meta = ResponseMeta(provider=self.name, model=ctx.model, warnings=checked.warnings, request_id=request_id)
        return ImagesResponse(
            created=result.created, data=result.data, usage=result.usage, extra=result.extra, meta=meta
        )

    async def download(self, url: str, ctx: CallContext) -> bytes:
        """The bytes of a result URL (``Authorization`` only to the configured origin)."""
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
        options = self._settings.options
        if "organization" in options:
            headers["OpenAI-Organization"] = str(options["organization"])
        if "project" in options:
            headers["OpenAI-Project"] = str(options["project"])
        headers.update(ctx.extra_headers)
        return headers

    def _generation_body(self, checked: Checked, model: str) -> GenerationBody:
        fields = {k: v for k, v in checked.fields.items() if v is not None}
        prompt = fields.pop("prompt")
        known = {k: fields.pop(k) for k in list(fields) if k in _GENERATION_FIELDS}
        return GenerationBody(model=model, prompt=prompt, **known, extra=fields)

    async def _form(self, request: ImageRequest, checked: Checked, ctx: CallContext) -> aiohttp.FormData:
        form = aiohttp.FormData()
        form.add_field("model", ctx.model)
        for name, value in checked.fields.items():
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            form.add_field(name, str(value))
        many = len(request.images) > 1
        for index, image in enumerate(request.images):
            raw, media_type = await self._image_bytes(image, f"image[{index}]" if many else "image", ctx)
            ext = _EXTENSIONS.get(media_type, "png")
            form.add_field(
                "image[]" if many else "image", raw, filename=f"image_{index}.{ext}", content_type=media_type
            )
        if request.mask is not None:
            raw, media_type = await self._image_bytes(request.mask, "mask", ctx)
            form.add_field("mask", raw, filename="mask.png", content_type=media_type)
        return form

    async def _image_bytes(self, image: str, path: str, ctx: CallContext) -> tuple[bytes, str]:
        if image.startswith("data:"):
            try:
                raw, _declared = decode_data_uri(image)
            except ValueError as exc:
                raise InvalidRequest(f"invalid data: URI ({exc})", path=path) from exc
        else:
            raw = await self.download(image, ctx)
        if not raw:
            raise InvalidRequest("the image is empty", path=path)
        return raw, sniff_media_type(raw, default="image/png")
