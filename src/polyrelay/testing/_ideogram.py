"""A simulated Ideogram upstream: the legacy ``POST /generate`` (JSON) and the Ideogram 3.0 multipart endpoints.

Shapes follow the Ideogram OpenAPI (developer.ideogram.ai; wire-images.md §6): ``Api-Key`` auth, synchronous
answers ``{"created": "<ISO-8601>", "data": [{"url", "prompt", "resolution", "upscaled_resolution",
"is_image_safe", "seed", "style_type"}]}``, 422 ``{"error": "..."}`` for a prompt that fails the safety check, and
``url: null`` with ``is_image_safe: false`` for a withheld image. Result URLs point back at this server
(``/api/images/ephemeral/<id>.png?exp=...&sig=...``, like the real ephemeral links) and serve a tiny PNG without
credentials. The bodies of 400/401/429 are "any type" in the OpenAPI; this simulator sends ``{"error": "..."}``.

Scripting::

    async with IdeogramUpstream(blocked_words=("gore",)) as upstream:
        upstream.withhold(1)          # the next response withholds its first image as unsafe
        upstream.push_body({...})     # the next response is this body, verbatim
        ...
        upstream.received[-1].fields  # the multipart text fields of the last call
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import re
import struct
import time
import zlib
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
from aiohttp import web

from polyrelay.testing._server import Handler, IncomingCall, SimulatedUpstream

__all__ = ["IdeogramUpstream", "ReceivedCall", "UploadedFile", "tiny_png"]

_LEGACY_MODELS = ("V_1", "V_1_TURBO", "V_2", "V_2_TURBO", "V_2A", "V_2A_TURBO", "AUTO")
_LEGACY_ASPECTS = {
    f"ASPECT_{r}": r for r in ["10_16", "16_10", "9_16", "16_9", "3_2", "2_3", "4_3", "3_4", "1_1", "1_3", "3_1"]
}
_V3_ASPECTS = frozenset(
    ["1x3", "3x1", "1x2", "2x1", "9x16", "16x9", "10x16", "16x10", "2x3", "3x2", "3x4", "4x3", "4x5", "5x4", "1x1"]
)
_MAGIC = ("AUTO", "ON", "OFF")
_LEGACY_STYLES = ("AUTO", "GENERAL", "REALISTIC", "DESIGN", "RENDER_3D", "ANIME", "FICTION")
_V3_STYLES = ("AUTO", "GENERAL", "REALISTIC", "DESIGN", "FICTION")
_SPEEDS = ("FLASH", "TURBO", "DEFAULT", "QUALITY")
# The resolution an aspect ratio renders at (what the real API reports for ASPECT_16_9 / 16x9 and so on).
_ASPECT_RESOLUTION: Mapping[str, str] = {
    "1x1": "1024x1024", "16x9": "1312x736", "9x16": "736x1312", "4x3": "1152x864", "3x4": "864x1152",
    "3x2": "1248x832", "2x3": "832x1248", "16x10": "1280x800", "10x16": "800x1280", "3x1": "1536x512",
    "1x3": "512x1536", "2x1": "1408x704", "1x2": "704x1408", "5x4": "1120x896", "4x5": "896x1120",
}  # fmt: skip
_RESOLUTION = re.compile(r"^(\d+)x(\d+)$")
_STYLE_CODE = re.compile(r"^[0-9A-Fa-f]{8}$")
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
_MAX_IMAGES = 8
_MAX_SEED = 2_147_483_647
# Every 3.0 endpoint: its text fields, required fields and image parts (OpenAPI request bodies).
_STYLE_FIELDS = frozenset({"color_palette", "style_codes", "style_preset"})
_EDIT = (
    _STYLE_FIELDS | {"prompt", "magic_prompt", "num_images", "seed", "rendering_speed", "style_type"},
    frozenset({"prompt", "image", "mask"}),
    frozenset({"image", "mask", "style_reference_images", "character_reference_images",
               "character_reference_images_mask"}),
)  # fmt: skip
_V3: Mapping[str, tuple[frozenset[str], frozenset[str], frozenset[str]]] = {
    "generate": (
        _STYLE_FIELDS | {"prompt", "seed", "resolution", "aspect_ratio", "rendering_speed", "magic_prompt",
                         "negative_prompt", "num_images", "style_type", "custom_model_uri"},
        frozenset({"prompt"}),
        frozenset({"style_reference_images", "character_reference_images", "character_reference_images_mask"}),
    ),
    "edit": _EDIT,
    "inpaint": _EDIT,  # the successor path of /edit takes the same body
    "remix": (
        _STYLE_FIELDS | {"prompt", "image_weight", "seed", "resolution", "aspect_ratio", "rendering_speed",
                         "magic_prompt", "negative_prompt", "num_images", "style_type"},
        frozenset({"prompt", "image"}),
        frozenset({"image", "style_reference_images", "character_reference_images",
                   "character_reference_images_mask"}),
    ),
    "reframe": (
        _STYLE_FIELDS | {"resolution", "num_images", "seed", "rendering_speed"},
        frozenset({"image", "resolution"}),
        frozenset({"image", "style_reference_images"}),
    ),
    "replace-background": (
        _STYLE_FIELDS | {"prompt", "magic_prompt", "num_images", "seed", "rendering_speed"},
        frozenset({"prompt", "image"}),
        frozenset({"image", "style_reference_images"}),
    ),
}  # fmt: skip

# The OpenAPI's descriptions of each documented error status.
_STATUS_MESSAGES: Mapping[int, str] = {
    400: "Invalid input provided.",
    401: "Not authorized to generate an image.",
    403: "Not authorized to generate an image.",
    422: "Prompt failed the safety check.",
    429: "Too many requests.",
    500: "Internal server error.",
    503: "Service temporarily unavailable.",
}
_IMAGE_PATH = "/api/images/ephemeral/"
_LINK_LIFETIME_SECONDS = 24 * 3600


def tiny_png() -> bytes:
    """A valid 1×1 RGB PNG (what every result URL serves)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x4f\x7a\xc8"))
        + chunk(b"IEND", b"")
    )


_PNG = tiny_png()


@attrs.frozen(kw_only=True)
class UploadedFile:
    """A file part of a multipart request."""

    filename: str | None
    content_type: str
    data: bytes = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class ReceivedCall:
    """One generation call as the simulator understood it: the JSON body (legacy) or the multipart parts (3.0)."""

    path: str
    json: Any = None
    fields: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    files: Mapping[str, tuple[UploadedFile, ...]] = attrs.field(factory=dict)

    def field(self, name: str) -> str | None:
        """The single value of a text field (``None`` when absent)."""
        values = self.fields.get(name)
        return values[0] if values else None


class _Invalid(Exception):
    """A 400 the simulator answers (message in ``args[0]``)."""


class IdeogramUpstream(SimulatedUpstream):
    """Simulated ``https://api.ideogram.ai``.

    ``blocked_words``: a prompt containing one gets the 422 safety error. ``withheld_words``: every image of a
    prompt containing one comes back ``is_image_safe: false`` with ``url: null``. ``accept_bearer=True`` also takes
    ``Authorization: Bearer <key>`` (what relays use).
    """

    name = "ideogram"
    base_path = ""

    def __init__(
        self,
        *,
        blocked_words: Sequence[str] = ("forbidden",),
        withheld_words: Sequence[str] = ("withheld",),
        accept_bearer: bool = False,
        api_key: str | None = "test-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, host=host, port=port)
        self.blocked_words = tuple(w.lower() for w in blocked_words)
        self.withheld_words = tuple(w.lower() for w in withheld_words)
        self.accept_bearer = accept_bearer
        #: Every generation call that reached an endpoint (after auth), parsed.
        self.received: list[ReceivedCall] = []
        #: Result image ids served by ``/api/images/ephemeral/``.
        self.images: set[str] = set()
        self._withhold_next = 0
        self._counter = 0
        self._pushed: deque[Any] = deque()

    def withhold(self, count: int) -> None:
        """The next generation response withholds its first ``count`` images as unsafe."""
        self._withhold_next = count

    def push_body(self, body: Any) -> None:
        """Answer the next valid generation call with ``body`` verbatim (e.g. a documented example), FIFO."""
        self._pushed.append(body)

    # ----------------------------------------------------------------------------------------- endpoints

    def _routes(self) -> Sequence[tuple[str, str, Handler]]:
        routes: list[tuple[str, str, Handler]] = [
            ("POST", "/generate", self._legacy_generate),
            ("GET", _IMAGE_PATH + "{name}", self._image),
        ]
        for endpoint in _V3:
            routes.append(("POST", f"/v1/ideogram-v3/{endpoint}", self._v3))
        return routes

    async def _image(self, call: IncomingCall) -> web.StreamResponse:
        name = call.request.match_info["name"]
        if name.removesuffix(".png") not in self.images:
            return await self._send_json(call, {"error": "Not found."}, status=404)
        return await self._send_json(call, _PNG, content_type="image/png")

    async def _legacy_generate(self, call: IncomingCall) -> web.StreamResponse:
        body = call.recorded.json
        self.received.append(ReceivedCall(path=call.recorded.path, json=body))
        try:
            request = _legacy_request(body)
        except _Invalid as exc:
            return await self._send_json(call, {"error": str(exc.args[0])}, status=400)
        prompt = request["prompt"]
        if self._blocked(prompt):
            return await self._send_json(call, {"error": _STATUS_MESSAGES[422]}, status=422)
        aspect = request.get("aspect_ratio")
        resolution = request.get("resolution")
        if resolution is not None:
            shape = resolution.removeprefix("RESOLUTION_").replace("_", "x")
        else:
            shape = _ASPECT_RESOLUTION[_LEGACY_ASPECTS[aspect or "ASPECT_1_1"].replace("_", "x")]
        if self._pushed:
            return await self._send_json(call, self._pushed.popleft())
        data = self._images(
            call,
            prompt=prompt,
            magic=request.get("magic_prompt_option", "AUTO"),
            count=request.get("num_images", 1),
            seed=request.get("seed"),
            resolution=shape,
            style_type=request.get("style_type"),
        )
        return await self._send_json(call, {"created": _now_iso(), "data": data})

    async def _v3(self, call: IncomingCall) -> web.StreamResponse:
        endpoint = call.recorded.path.rsplit("/", 1)[-1]
        try:
            fields, files = _multipart(call)
        except _Invalid as exc:
            return await self._send_json(call, {"error": str(exc.args[0])}, status=400)
        self.received.append(ReceivedCall(path=call.recorded.path, fields=fields, files=files))
        try:
            values = _v3_request(endpoint, fields, files)
        except _Invalid as exc:
            return await self._send_json(call, {"error": str(exc.args[0])}, status=400)
        prompt = values.get("prompt", "")
        if self._blocked(prompt):
            message = "Prompt or provided image failed the safety checks"
            return await self._send_json(call, {"error": message}, status=422)
        if "resolution" in values:
            shape = values["resolution"]
        else:
            shape = _ASPECT_RESOLUTION[values.get("aspect_ratio", "1x1")]
        if self._pushed:
            return await self._send_json(call, self._pushed.popleft())
        data = self._images(
            call,
            prompt=prompt,
            magic=values.get("magic_prompt", "AUTO"),
            count=values.get("num_images", 1),
            seed=values.get("seed"),
            resolution=shape,
            style_type=values.get("style_type", "GENERAL"),
        )
        return await self._send_json(call, {"created": _now_iso(), "data": data})

    def _images(
        self,
        call: IncomingCall,
        *,
        prompt: str,
        magic: str,
        count: int,
        seed: int | None,
        resolution: str,
        style_type: str | None,
    ) -> list[dict[str, Any]]:
        withheld = self._withhold_next if not self._withheld(prompt) else count
        self._withhold_next = 0
        final_prompt = f"{prompt}, crisp detail, balanced composition" if magic == "ON" and prompt else prompt
        out: list[dict[str, Any]] = []
        for index in range(count):
            self._counter += 1
            safe = index >= withheld
            url = None
            if safe:
                image_id = hashlib.sha1(f"{self._counter}-{prompt}".encode()).hexdigest()[:22]
                self.images.add(image_id)
                expires = int(time.time()) + _LINK_LIFETIME_SECONDS
                sig = hashlib.sha256(f"{image_id}{expires}".encode()).hexdigest()[:32]
                url = f"{self.origin}{_IMAGE_PATH}{image_id}.png?exp={expires}&sig={sig}"
            out.append(
                {
                    "url": url,
                    "prompt": final_prompt,
                    "resolution": resolution,
                    "upscaled_resolution": None,
                    "is_image_safe": safe,
                    "seed": seed if seed is not None else 1_700_000_000 + self._counter,
                    "style_type": style_type,
                }
            )
        return out

    def _blocked(self, prompt: str) -> bool:
        return any(word in prompt.lower() for word in self.blocked_words)

    def _withheld(self, prompt: str) -> bool:
        return any(word in prompt.lower() for word in self.withheld_words)

    # ----------------------------------------------------------------------------------------- hooks

    def _presented_key(self, request: web.Request) -> str | None:
        if request.method == "GET" and request.path.startswith(_IMAGE_PATH):
            # Result links are public (signed in the query string): they never need the key.
            return self.api_key
        key = request.headers.get("Api-Key")
        if key is not None:
            return key
        if self.accept_bearer:
            scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and rest.strip():
                return rest.strip()
        return None

    def _auth_failure(self, call: IncomingCall, presented: str | None) -> tuple[int, Any]:
        # The OpenAPI: remix (and upscale) answer 403 where the other endpoints answer 401.
        status = 403 if call.recorded.path.endswith("/remix") else 401
        return status, {"error": _STATUS_MESSAGES[status]}

    def _error_body(self, call: IncomingCall, status: int) -> Any:
        return {"error": _STATUS_MESSAGES.get(status, f"Request failed with status {status}.")}


# --------------------------------------------------------------------------------------------- request checks


def _legacy_request(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("image_request"), dict):
        raise _Invalid("The request body must be a JSON object with an 'image_request' object.")
    request: dict[str, Any] = body["image_request"]
    prompt = request.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _Invalid("image_request.prompt is required.")
    _choice(request, "model", _LEGACY_MODELS)
    _choice(request, "aspect_ratio", tuple(_LEGACY_ASPECTS))
    _choice(request, "magic_prompt_option", _MAGIC)
    _choice(request, "style_type", _LEGACY_STYLES)
    resolution = request.get("resolution")
    if resolution is not None:
        if not isinstance(resolution, str) or not re.match(r"^RESOLUTION_\d+_\d+$", resolution):
            raise _Invalid(f"Invalid resolution: {resolution!r}.")
        if request.get("aspect_ratio") is not None:
            raise _Invalid("resolution cannot be used in conjunction with aspect_ratio.")
        if request.get("model", "V_2") in ("V_1", "V_1_TURBO"):
            raise _Invalid("resolution is only supported for model versions V_2 and above.")
    _number(request, "num_images", 1, _MAX_IMAGES)
    _number(request, "seed", 0, _MAX_SEED)
    return request


def _v3_request(
    endpoint: str, fields: Mapping[str, tuple[str, ...]], files: Mapping[str, tuple[UploadedFile, ...]]
) -> dict[str, Any]:
    allowed, required, file_fields = _V3[endpoint]
    for name in fields:
        if name not in allowed:
            raise _Invalid(f"Unexpected field {name!r} for this endpoint.")
    for name in files:
        if name not in file_fields:
            raise _Invalid(f"Unexpected file {name!r} for this endpoint.")
    for name in required:
        if name not in fields and name not in files:
            raise _Invalid(f"Field required: {name!r}.")
    for name, uploads in files.items():
        for upload in uploads:
            if upload.content_type not in _IMAGE_TYPES or not upload.data:
                raise _Invalid(f"{name}: only JPEG, WebP and PNG formats are supported at this time.")
    values: dict[str, Any] = {}
    for name, items in fields.items():
        if name != "style_codes" and len(items) != 1:
            raise _Invalid(f"Field {name!r} was given more than once.")
        values[name] = items[0] if name != "style_codes" else list(items)
    if "prompt" in values and not values["prompt"].strip():
        raise _Invalid("prompt must not be empty.")
    _choice(values, "rendering_speed", _SPEEDS)
    _choice(values, "magic_prompt", _MAGIC)
    _choice(values, "style_type", _V3_STYLES)
    _choice(values, "aspect_ratio", tuple(_V3_ASPECTS))
    resolution = values.get("resolution")
    if resolution is not None:
        if not _RESOLUTION.match(resolution):
            raise _Invalid(f"Invalid resolution: {resolution!r}.")
        if "aspect_ratio" in values:
            raise _Invalid("resolution cannot be used in conjunction with aspect_ratio.")
    for name, lo, hi in (("num_images", 1, _MAX_IMAGES), ("seed", 0, _MAX_SEED), ("image_weight", 1, 100)):
        if name in values:
            try:
                values[name] = int(values[name])
            except ValueError as exc:
                raise _Invalid(f"{name} must be an integer.") from exc
            _number(values, name, lo, hi)
    for code in values.get("style_codes", ()):
        if not _STYLE_CODE.match(code):
            raise _Invalid(f"Invalid style code {code!r}.")
    if "style_codes" in values and "style_type" in values:
        raise _Invalid("style_codes cannot be used in conjunction with style_type.")
    if "color_palette" in values:
        try:
            palette = json.loads(values["color_palette"])
        except ValueError as exc:
            raise _Invalid("color_palette must be a JSON object.") from exc
        if not isinstance(palette, dict) or not ({"name", "members"} & set(palette)):
            raise _Invalid("color_palette needs a preset name or members.")
    return values


def _choice(values: Mapping[str, Any], name: str, choices: Sequence[str]) -> None:
    value = values.get(name)
    if value is not None and value not in choices:
        raise _Invalid(f"Invalid {name}: {value!r}. Expected one of {', '.join(choices)}.")


def _number(values: Mapping[str, Any], name: str, lo: int, hi: int) -> None:
    value = values.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _Invalid(f"{name} must be an integer between {lo} and {hi}.")


def _multipart(call: IncomingCall) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[UploadedFile, ...]]]:
    content_type = call.request.headers.get("Content-Type", "")
    if not content_type.startswith("multipart/form-data"):
        raise _Invalid("This endpoint expects multipart/form-data.")
    raw = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + call.recorded.body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    fields: dict[str, list[str]] = {}
    files: dict[str, list[UploadedFile]] = {}
    if not message.is_multipart():
        raise _Invalid("Malformed multipart body.")
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise _Invalid("A multipart part has no name.")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None or part.get_content_type() != "text/plain":
            files.setdefault(name, []).append(
                UploadedFile(filename=filename, content_type=part.get_content_type(), data=data)
            )
        else:
            fields.setdefault(name, []).append(data.decode(part.get_content_charset() or "utf-8"))
    return {k: tuple(v) for k, v in fields.items()}, {k: tuple(v) for k, v in files.items()}


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()
