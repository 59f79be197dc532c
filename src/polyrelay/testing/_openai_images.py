"""A simulated OpenAI Images upstream: ``POST /v1/images/generations`` (JSON), ``/v1/images/edits`` and
``/v1/images/variations`` (multipart/form-data), plus the generated files at ``GET /files/{name}``.

Shapes follow the API reference and recorded bodies (wire-images.md §5): dall-e answers
``{"created", "data": [{"url" | "b64_json", "revised_prompt" (dall-e-3)}]}``; GPT image models answer with
``b64_json`` only plus ``background``/``output_format``/``quality``/``size``/``usage``, and reject
``response_format`` with the real 400 ``unknown_parameter``. A prompt containing one of ``blocked_words`` gets the
safety rejection: 400 ``content_policy_violation`` (dall-e) or ``moderation_blocked`` /
``image_generation_user_error`` (GPT image). Generated images are tiny valid PNGs; their URLs are on this server
and, like real signed blob URLs, need no key.

Also home of :func:`tiny_png` and :func:`parse_form`, which the other media simulators and tests use.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import secrets
import struct
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from aiohttp import web

from polyrelay.testing._openai import openai_error
from polyrelay.testing._server import Handler, IncomingCall, RecordedRequest, SimulatedUpstream

__all__ = ["FormFile", "OpenAIImagesUpstream", "ParsedForm", "parse_form", "tiny_png"]

_SIZES: Mapping[str, frozenset[str]] = {
    "dall-e-2": frozenset({"256x256", "512x512", "1024x1024"}),
    "dall-e-3": frozenset({"1024x1024", "1792x1024", "1024x1792"}),
    "gpt-image-1": frozenset({"1024x1024", "1536x1024", "1024x1536", "auto"}),
    "gpt-image-1-mini": frozenset({"1024x1024", "1536x1024", "1024x1536", "auto"}),
    "gpt-image-1.5": frozenset({"1024x1024", "1536x1024", "1024x1536", "auto"}),
}
_MAX_N: Mapping[str, int] = {"dall-e-3": 1}
_DALLE_SAFETY = (
    "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed "
    "by our safety system."
)
_GPT_SAFETY = (
    "Your request was rejected by the safety system. If you believe this is an error, contact us at "
    "help.openai.com and include the request ID. safety_violations=[violence]."
)
_FILES_PREFIX = "/files/"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def tiny_png(width: int = 1, height: int = 1, rgb: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """A valid RGB PNG of one colour (``width`` x ``height``)."""
    row = b"\x00" + bytes(rgb) * width
    raw = row * height
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


@attrs.frozen(kw_only=True)
class FormFile:
    name: str
    filename: str | None
    content_type: str
    data: bytes


@attrs.frozen(kw_only=True)
class ParsedForm:
    """A multipart/form-data body: text fields (each name may repeat) and file parts in order."""

    fields: Mapping[str, tuple[str, ...]]
    files: tuple[FormFile, ...]

    def field(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None


def parse_form(recorded: RecordedRequest) -> ParsedForm:
    """Parse a recorded multipart/form-data request (empty when it is not one)."""
    content_type = recorded.headers.get("Content-Type", "")
    if not content_type.startswith("multipart/form-data"):
        return ParsedForm(fields={}, files=())
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + recorded.body
    )
    fields: dict[str, list[str]] = {}
    files: list[FormFile] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files.append(FormFile(name=name, filename=filename, content_type=part.get_content_type(), data=data))
        else:
            fields.setdefault(name, []).append(data.decode())
    return ParsedForm(fields={k: tuple(v) for k, v in fields.items()}, files=tuple(files))


class OpenAIImagesUpstream(SimulatedUpstream):
    """Simulated ``https://api.openai.com/v1`` images endpoints (``Authorization: Bearer <api_key>``)."""

    name = "openai-images"
    base_path = "/v1"

    def __init__(
        self,
        *,
        blocked_words: Sequence[str] = ("forbidden",),
        api_key: str | None = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.blocked_words = tuple(w.lower() for w in blocked_words)
        #: Generated files by name (served at ``/files/{name}``).
        self.files: dict[str, bytes] = {}

    # ----------------------------------------------------------------------------------------- endpoints

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        return (
            ("POST", "/v1/images/generations", self._generations),
            ("POST", "/v1/images/edits", self._edits),
            ("POST", "/v1/images/variations", self._variations),
            ("GET", _FILES_PREFIX + "{name}", self._file),
        )

    async def _file(self, call: IncomingCall) -> web.StreamResponse:
        data = self.files.get(call.request.match_info["name"])
        if data is None:
            return await self._send_json(call, "<Error><Code>BlobNotFound</Code></Error>", status=404)
        return await self._send_json(call, data, content_type="image/png")

    async def _generations(self, call: IncomingCall) -> web.StreamResponse:
        body = call.recorded.json
        if not isinstance(body, dict):
            return await self._send_json(
                call, openai_error("We could not parse the JSON body of your request."), status=400
            )
        return await self._answer(call, {k: v for k, v in body.items()}, images=0)

    async def _edits(self, call: IncomingCall) -> web.StreamResponse:
        form = parse_form(call.recorded)
        params: dict[str, Any] = {k: v[0] for k, v in form.fields.items()}
        images = [f for f in form.files if f.name in ("image", "image[]")]
        if not images:
            return await self._send_json(
                call,
                openai_error("Missing required parameter: 'image'.", param="image", code="missing_required_parameter"),
                status=400,
            )
        return await self._answer(call, params, images=len(images))

    async def _variations(self, call: IncomingCall) -> web.StreamResponse:
        form = parse_form(call.recorded)
        params: dict[str, Any] = {k: v[0] for k, v in form.fields.items()}
        if not any(f.name == "image" for f in form.files):
            return await self._send_json(
                call,
                openai_error("Missing required parameter: 'image'.", param="image", code="missing_required_parameter"),
                status=400,
            )
        params.setdefault("model", "dall-e-2")
        if params["model"] != "dall-e-2":
            return await self._send_json(
                call,
                openai_error("Invalid value for 'model': only dall-e-2 supports variations.", param="model"),
                status=400,
            )
        params["prompt"] = "variation"
        return await self._answer(call, params, images=1)

    async def _answer(self, call: IncomingCall, params: dict[str, Any], *, images: int) -> web.StreamResponse:
        model = str(params.get("model") or "dall-e-2")
        gpt = model.startswith("gpt-image-")
        problem = self._validate(model, params, gpt)
        if problem is not None:
            return await self._send_json(call, problem, status=400)
        prompt = str(params["prompt"])
        if any(word in prompt.lower() for word in self.blocked_words):
            error = (
                openai_error(_GPT_SAFETY, type="image_generation_user_error", code="moderation_blocked")
                if gpt
                else openai_error(_DALLE_SAFETY, code="content_policy_violation")
            )
            return await self._send_json(call, error, status=400)
        n = int(params.get("n") or 1)
        png = tiny_png()
        data: list[dict[str, Any]] = []
        for _ in range(n):
            if gpt or params.get("response_format") == "b64_json":
                item: dict[str, Any] = {"b64_json": base64.b64encode(png).decode()}
            else:
                name = f"img-{secrets.token_hex(8)}.png"
                self.files[name] = png
                item = {"url": f"{self.origin}{_FILES_PREFIX}{name}"}
            if model == "dall-e-3":
                item["revised_prompt"] = f"A detailed rendering of: {prompt}"
            data.append(item)
        payload: dict[str, Any] = {"created": int(time.time()), "data": data}
        if gpt:
            payload.update(
                background=params.get("background", "opaque"),
                output_format=params.get("output_format", "png"),
                quality=params.get("quality", "high"),
                size=params.get("size", "1024x1024"),
                usage={
                    "input_tokens": 10 + 65 * images,
                    "input_tokens_details": {"image_tokens": 65 * images, "text_tokens": 10},
                    "output_tokens": 4160 * n,
                    "total_tokens": 10 + 65 * images + 4160 * n,
                },
            )
        return await self._send_json(call, payload)

    def _validate(self, model: str, params: Mapping[str, Any], gpt: bool) -> dict[str, Any] | None:
        if not params.get("prompt"):
            return openai_error(
                "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter"
            )
        if model not in _SIZES and not gpt:
            return openai_error(f"Invalid value for 'model' = {model}.", param="model", code="invalid_value")
        if gpt and "response_format" in params:
            return openai_error(
                "Unknown parameter: 'response_format'.", param="response_format", code="unknown_parameter"
            )
        size = params.get("size")
        allowed = _SIZES.get(model)
        if size is not None and allowed is not None and size not in allowed:
            return openai_error(
                f"'{size}' is not one of {sorted(allowed)} - 'size'", param="size", code="invalid_value"
            )
        n = int(params.get("n") or 1)
        limit = _MAX_N.get(model, 10)
        if not 1 <= n <= limit:
            return openai_error(
                f"Invalid 'n': integer above maximum value. Expected a value <= {limit}, but got {n} instead.",
                param="n",
                code="integer_above_max_value",
            )
        return None

    # ----------------------------------------------------------------------------------------- hooks

    def _presented_key(self, request: web.Request) -> str | None:
        if request.path.startswith(_FILES_PREFIX):
            return self.api_key  # signed blob URLs: no key
        header = request.headers.get("Authorization", "")
        scheme, _, rest = header.partition(" ")
        return rest.strip() if scheme.lower() == "bearer" and rest.strip() else None

    def _auth_failure(self, call: IncomingCall, presented: str | None) -> tuple[int, Any]:
        if presented is None:
            return 401, openai_error("You didn't provide an API key.")
        return 401, openai_error("Incorrect API key provided.", code="invalid_api_key")

    def _error_body(self, call: IncomingCall, status: int) -> Any:
        if status == 429:
            return openai_error(
                "Rate limit reached for images per minute.", type="requests", code="rate_limit_exceeded"
            )
        kind = "server_error" if status >= 500 else "invalid_request_error"
        return openai_error(f"simulated {status} error", type=kind)

    def _response_headers(self, call: IncomingCall) -> Mapping[str, str]:
        return {"x-request-id": f"req_{secrets.token_hex(16)}"}

    def _request_model(self, recorded: RecordedRequest) -> str | None:
        return super()._request_model(recorded) or parse_form(recorded).field("model")
