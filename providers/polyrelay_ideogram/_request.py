"""OpenAI images request (or generic task request) → one Ideogram call, validated before any network call.

Both front doors are first turned into an :class:`ImageJob` (which also remembers where each value came from, so an
error names the caller's own field: ``size``, ``params.aspect_ratio``, ``images[0]``...), then :func:`build_call`
picks the endpoint and writes the wire body:

- legacy models (``V_1`` ... ``V_2A_TURBO``, ``AUTO``) → ``POST /generate`` with JSON; they only generate here;
- ``V_3`` (optionally ``V_3_FLASH|TURBO|DEFAULT|QUALITY`` for the default rendering speed) → the 3.0 multipart
  endpoints: ``generate``; ``edit`` (with a mask; ``params.endpoint = "inpaint"`` for its successor path);
  ``remix`` (edit without a mask); ``reframe`` and ``replace-background`` by ``params.endpoint``.

``size`` becomes ``resolution`` when Ideogram has exactly that resolution, else ``aspect_ratio`` when the ratio is
exactly one Ideogram supports; anything else is an :class:`InvalidRequest` (Ideogram would pick another shape).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from polyrelay.errors import InvalidRequest, UnsupportedFeature
from polyrelay.policy import did_you_mean
from polyrelay.types.completion import CallWarning
from polyrelay.types.media import ImageRequest, TaskRequest
from polyrelay_ideogram import _tables as t
from polyrelay_ideogram._wire import GenerateRequest, LegacyImageRequest, V3Fields

__all__ = [
    "IdeogramCall",
    "ImageJob",
    "ImagePart",
    "PARAM_KEYS",
    "build_call",
    "job_from_image_request",
    "job_from_task_request",
    "resolve_model",
]

#: Provider-specific keys accepted in ``params``.
PARAM_KEYS = frozenset(
    {
        "endpoint",
        "aspect_ratio",
        "resolution",
        "rendering_speed",
        "magic_prompt",
        "magic_prompt_option",
        "style_type",
        "style_preset",
        "style_codes",
        "color_palette",
        "negative_prompt",
        "seed",
        "num_images",
        "image_weight",
        "custom_model_uri",
        "style_reference_images",
        "character_reference_images",
    }
)
#: Extra keys a task request may carry in ``params`` (the images API has ``mask`` as a field).
_TASK_PARAM_KEYS = PARAM_KEYS | {"mask"}

MAX_IMAGES = 8  # num_images upper bound ([R] 1–8)
MAX_SEED = 2_147_483_647
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # "max size 10MB" on every image part
_IMAGE_TYPES: Mapping[str, str] = {"image/png": "png", "image/jpeg": "jpg", "image/jpg": "jpg", "image/webp": "webp"}
_STYLE_CODE = re.compile(r"^[0-9A-Fa-f]{8}$")
_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")
_RATIO = re.compile(r"^\s*(?:ASPECT_)?(\d+)\s*[:xX_]\s*(\d+)\s*$", re.IGNORECASE)
_RESOLUTION = re.compile(r"^\s*(?:RESOLUTION_)?(\d+)\s*[xX_]\s*(\d+)\s*$", re.IGNORECASE)
_IGNORED_OPENAI_FIELDS = ("style", "background", "output_format", "user")

Operation = Literal["generate", "edit", "variation"]


@attrs.frozen(kw_only=True)
class ImageJob:
    """What the caller asked for, front-door neutral. ``paths`` maps a field to the caller's name for it."""

    model: str
    operation: Operation = "generate"
    prompt: str | None = None
    n: int | None = None
    size: str | None = None
    quality: str | None = None
    aspect_ratio: Any = None
    negative_prompt: Any = None
    seed: Any = None
    images: tuple[str, ...] = ()
    mask: str | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict)
    b64: bool = False
    paths: Mapping[str, str] = attrs.field(factory=dict)
    warnings: tuple[CallWarning, ...] = ()

    def path(self, name: str) -> str:
        return self.paths.get(name, name)


@attrs.frozen(kw_only=True)
class ImagePart:
    """One image part of a multipart body: decoded bytes, or a URL still to be downloaded (without credentials)."""

    field: str
    path: str
    filename: str
    content_type: str | None = None
    data: bytes | None = attrs.field(default=None, repr=False)
    url: str | None = None


@attrs.frozen(kw_only=True)
class IdeogramCall:
    """One upstream call: legacy JSON (``json_body``) or 3.0 multipart (``fields`` + ``parts``)."""

    path: str
    model: str
    json_body: GenerateRequest | None = None
    fields: V3Fields | None = None
    parts: tuple[ImagePart, ...] = ()
    warnings: tuple[CallWarning, ...] = ()
    b64: bool = False


# ------------------------------------------------------------------------------------------------ front doors


def job_from_image_request(request: ImageRequest) -> ImageJob:
    """The job of an OpenAI ``images.generate`` / ``edit`` / ``variation`` call."""
    params = dict(request.params)
    _check_keys(params, PARAM_KEYS)
    warnings = [
        CallWarning(setting=name, message=f"Ideogram has no equivalent of {name!r}; it was not sent")
        for name in _IGNORED_OPENAI_FIELDS
        if getattr(request, name) is not None
    ]
    return ImageJob(
        model=request.model,
        operation=request.operation,
        prompt=request.prompt,
        n=request.n,
        size=request.size,
        quality=request.quality,
        aspect_ratio=params.pop("aspect_ratio", None),
        negative_prompt=params.pop("negative_prompt", None),
        seed=params.pop("seed", None),
        images=request.images,
        mask=request.mask,
        params=params,
        b64=request.response_format == "b64_json",
        paths={
            "aspect_ratio": "params.aspect_ratio",
            "negative_prompt": "params.negative_prompt",
            "seed": "params.seed",
        },
        warnings=tuple(warnings),
    )


def job_from_task_request(request: TaskRequest) -> ImageJob:
    """The job of a generic task request (``router.tasks.create``): images make it an edit (remix, or with
    ``params.mask`` an edit with a mask)."""
    if request.kind not in (None, "image"):
        raise InvalidRequest(f"Ideogram generates images, not {request.kind!r}", path="kind")
    if request.duration is not None:
        raise UnsupportedFeature("Ideogram images have no duration", path="duration", provider="ideogram")
    params = dict(request.params)
    _check_keys(params, _TASK_PARAM_KEYS)
    paths = {"mask": "params.mask"}
    values: dict[str, Any] = {}
    for name in ("aspect_ratio", "negative_prompt", "seed"):
        top, in_params = getattr(request, name), params.pop(name, None)
        if top is not None and in_params is not None:
            raise InvalidRequest(f"given both as {name!r} and as 'params.{name}'", path=f"params.{name}")
        values[name] = top if top is not None else in_params
        paths[name] = name if in_params is None else f"params.{name}"
    mask = params.pop("mask", None)
    if mask is not None and not isinstance(mask, str):
        raise InvalidRequest("expected a data: URI or an http(s) URL", path="params.mask")
    return ImageJob(
        model=request.model,
        operation="edit" if request.images else "generate",
        prompt=request.prompt,
        n=request.n,
        size=request.size,
        images=request.images,
        mask=mask,
        params=params,
        paths=paths,
        **values,
    )


# ------------------------------------------------------------------------------------------------ the builder


def resolve_model(model: str) -> str:
    """The canonical Ideogram model of ``model`` (``V_2``, ``V_3_TURBO``...; friendly ``ideogram-v3`` too)."""
    canonical = t.MODEL_ALIASES.get(model.strip().lower(), model.strip().upper().replace("-", "_"))
    if canonical in t.LEGACY_MODELS or canonical in t.V3_MODELS:
        return canonical
    known = sorted(t.LEGACY_MODELS | set(t.V3_MODELS) | set(t.MODEL_ALIASES))
    raise InvalidRequest(
        f"unknown Ideogram model {model!r}{did_you_mean(model, known)}; known: {', '.join(known)}", path="model"
    )


def build_call(job: ImageJob, *, provider: str = "ideogram") -> IdeogramCall:
    """Validate ``job`` and write its upstream call. Raises :class:`InvalidRequest` / :class:`UnsupportedFeature`."""
    model = resolve_model(job.model)
    if job.operation == "variation":
        raise UnsupportedFeature(
            "Ideogram has no prompt-less variation endpoint; use operation 'edit' (remix) with a prompt",
            path="operation",
            provider=provider,
        )
    endpoint = _endpoint_name(job)
    if model in t.LEGACY_MODELS:
        if endpoint != "generate":
            raise UnsupportedFeature(
                f"{endpoint!r} is served by the Ideogram 3.0 API only; use model 'V_3'",
                path="params.endpoint" if "endpoint" in job.params else "operation",
                provider=provider,
            )
        return _legacy_call(job, model, provider)
    return _v3_call(job, model, endpoint, provider)


def _endpoint_name(job: ImageJob) -> str:
    explicit = job.params.get("endpoint")
    if explicit is None:
        if job.operation == "generate":
            return "generate"
        return "edit" if job.mask is not None else "remix"
    if not isinstance(explicit, str) or explicit not in t.ENDPOINTS:
        raise InvalidRequest(
            f"unknown endpoint {explicit!r}{did_you_mean(str(explicit), t.ENDPOINTS)}; one of {', '.join(t.ENDPOINTS)}",
            path="params.endpoint",
        )
    if explicit == "generate" and job.operation != "generate":
        raise InvalidRequest("'generate' takes no input image; use operation 'generate'", path="params.endpoint")
    if explicit != "generate" and job.operation == "generate":
        raise InvalidRequest(f"{explicit!r} edits an input image: use operation 'edit'", path="params.endpoint")
    return explicit


class _Fields:
    """Collects wire fields with where each came from: an explicit ``params`` key (an error when the endpoint does
    not take it) or a generic setting (dropped with a warning)."""

    def __init__(self, job: ImageJob) -> None:
        self.job = job
        self.values: dict[str, Any] = {}
        self.origin: dict[str, tuple[str, bool]] = {}
        self.warnings: list[CallWarning] = list(job.warnings)

    def set(self, name: str, value: Any, path: str, *, explicit: bool) -> None:
        if value is not None:
            self.values[name] = value
            self.origin[name] = (path, explicit)

    def restrict(self, allowed: Iterable[str], where: str, provider: str) -> None:
        allowed = frozenset(allowed)
        for name in list(self.values):
            if name in allowed:
                continue
            path, explicit = self.origin[name]
            if explicit:
                raise UnsupportedFeature(f"{where} does not take {name!r}", path=path, provider=provider)
            del self.values[name]
            self.warnings.append(CallWarning(setting=path, message=f"{where} does not take {name!r}; it was not sent"))


def _common(job: ImageJob, legacy: bool) -> _Fields:
    f = _Fields(job)
    p = job.params
    if job.prompt is not None:
        if not isinstance(job.prompt, str) or not job.prompt.strip():
            raise InvalidRequest("must be a non-empty string", path="prompt")
        f.set("prompt", job.prompt, "prompt", explicit=False)
    if job.n is not None and "num_images" in p:
        raise InvalidRequest("given both as 'n' and as 'params.num_images'", path="params.num_images")
    n_path = "n" if job.n is not None else "params.num_images"
    n = job.n if job.n is not None else p.get("num_images")
    f.set("num_images", _int(n, n_path, 1, MAX_IMAGES), n_path, explicit=n_path != "n")
    seed_path, negative_path = job.path("seed"), job.path("negative_prompt")
    f.set("seed", _int(job.seed, seed_path, 0, MAX_SEED), seed_path, explicit=seed_path.startswith("params."))
    if job.negative_prompt is not None:
        f.set(
            "negative_prompt",
            _str(job.negative_prompt, negative_path),
            negative_path,
            explicit=negative_path.startswith("params."),
        )
    magic_key = "magic_prompt" if "magic_prompt" in p else "magic_prompt_option"
    if "magic_prompt" in p and "magic_prompt_option" in p:
        raise InvalidRequest("give only one of 'magic_prompt' and 'magic_prompt_option'", path="params.magic_prompt")
    magic = p.get(magic_key)
    if isinstance(magic, bool):
        magic = "ON" if magic else "OFF"
    f.set(
        "magic_prompt",
        _enum(magic, f"params.{magic_key}", t.MAGIC_PROMPT_OPTIONS),
        f"params.{magic_key}",
        explicit=True,
    )
    styles = t.LEGACY_STYLE_TYPES if legacy else t.V3_STYLE_TYPES
    f.set("style_type", _enum(p.get("style_type"), "params.style_type", styles), "params.style_type", explicit=True)
    palette = p.get("color_palette")
    if palette is not None and (
        not isinstance(palette, Mapping) or not ({"name", "members"} & set(palette)) or len(palette) != 1
    ):
        raise InvalidRequest("expected {'name': preset} or {'members': [...]}", path="params.color_palette")
    f.set("color_palette", dict(palette) if palette is not None else None, "params.color_palette", explicit=True)
    return f


def _legacy_call(job: ImageJob, model: str, provider: str) -> IdeogramCall:
    f = _common(job, True)
    if "prompt" not in f.values:
        raise InvalidRequest("Ideogram needs a prompt", path="prompt")
    if job.images:
        raise UnsupportedFeature("the legacy /generate endpoint takes no input image", path="images", provider=provider)
    allow_resolution = model not in t.NO_RESOLUTION_MODELS
    aspect, resolution = _shape(
        job, t.LEGACY_ASPECTS, t.LEGACY_RESOLUTIONS, allow_resolution=allow_resolution, allow_aspect=True, model=model
    )
    if aspect is not None:
        f.set("aspect_ratio", f"ASPECT_{aspect[0]}_{aspect[1]}", aspect[2], explicit=False)
    if resolution is not None:
        f.set("resolution", f"RESOLUTION_{resolution[0]}_{resolution[1]}", resolution[2], explicit=False)
    if job.quality is not None:
        f.warnings.append(CallWarning(setting="quality", message=f"model {model} has no rendering speed; not sent"))
    for name, banned in (
        ("style_type", t.NO_STYLE_TYPE_MODELS),
        ("color_palette", t.NO_PALETTE_MODELS),
        ("negative_prompt", t.NO_NEGATIVE_PROMPT_MODELS),
    ):
        if name in f.values and model in banned:
            raise UnsupportedFeature(f"model {model} does not take {name!r}", path=f.origin[name][0], provider=provider)
    f.restrict(
        {
            "prompt",
            "num_images",
            "seed",
            "negative_prompt",
            "magic_prompt",
            "style_type",
            "color_palette",
            "aspect_ratio",
            "resolution",
        },
        "the legacy /generate endpoint",
        provider,
    )
    for key in (
        "rendering_speed",
        "style_preset",
        "style_codes",
        "image_weight",
        "custom_model_uri",
        "style_reference_images",
        "character_reference_images",
    ):
        if key in job.params:
            raise UnsupportedFeature(
                f"model {model} (legacy API) does not take {key!r}; use model 'V_3'",
                path=f"params.{key}",
                provider=provider,
            )
    v = f.values
    body = GenerateRequest(
        image_request=LegacyImageRequest(
            prompt=v["prompt"],
            aspect_ratio=v.get("aspect_ratio"),
            model=model,
            magic_prompt_option=v.get("magic_prompt"),
            seed=v.get("seed"),
            style_type=v.get("style_type"),
            negative_prompt=v.get("negative_prompt"),
            num_images=v.get("num_images"),
            resolution=v.get("resolution"),
            color_palette=v.get("color_palette"),
        )
    )
    return IdeogramCall(
        path=t.LEGACY_GENERATE_PATH, model=model, json_body=body, warnings=tuple(f.warnings), b64=job.b64
    )


def _v3_call(job: ImageJob, model: str, endpoint_name: str, provider: str) -> IdeogramCall:
    endpoint = t.ENDPOINTS[endpoint_name]
    where = endpoint.path
    f = _common(job, False)
    p = job.params
    takes_shape = "aspect_ratio" in endpoint.fields or "resolution" in endpoint.fields
    if takes_shape:
        aspect, resolution = _shape(
            job,
            t.V3_ASPECTS,
            t.V3_RESOLUTIONS,
            allow_resolution=True,
            allow_aspect="aspect_ratio" in endpoint.fields,
            model=model,
        )
        if aspect is not None:
            f.set("aspect_ratio", f"{aspect[0]}x{aspect[1]}", aspect[2], explicit=aspect[2].startswith("params."))
        if resolution is not None:
            f.set(
                "resolution",
                f"{resolution[0]}x{resolution[1]}",
                resolution[2],
                explicit=resolution[2].startswith("params."),
            )
    else:
        for name, value in (
            ("size", job.size),
            ("aspect_ratio", job.aspect_ratio),
            ("resolution", p.get("resolution")),
        ):
            if value is None:
                continue
            path = job.path(name) if name != "resolution" else "params.resolution"
            if path.startswith("params."):
                raise UnsupportedFeature(
                    f"{where} keeps the input image's shape; it takes no {name!r}", path=path, provider=provider
                )
            f.warnings.append(CallWarning(setting=path, message=f"{where} keeps the input image's shape; not sent"))
    speed = p.get("rendering_speed")
    if speed is not None:
        f.set(
            "rendering_speed",
            _enum(speed, "params.rendering_speed", t.RENDERING_SPEEDS),
            "params.rendering_speed",
            explicit=True,
        )
    elif job.quality is not None:
        mapped = t.QUALITY_TO_SPEED.get(str(job.quality).lower())
        if mapped is None:
            raise InvalidRequest(
                f"unknown quality {job.quality!r}; one of {', '.join(t.QUALITY_TO_SPEED)}", path="quality"
            )
        f.set("rendering_speed", mapped, "quality", explicit=False)
    else:
        f.set("rendering_speed", t.V3_MODELS[model], "model", explicit=False)
    if "style_preset" in p:
        f.set("style_preset", _str(p["style_preset"], "params.style_preset"), "params.style_preset", explicit=True)
    if "custom_model_uri" in p:
        f.set(
            "custom_model_uri",
            _str(p["custom_model_uri"], "params.custom_model_uri"),
            "params.custom_model_uri",
            explicit=True,
        )
    f.set(
        "image_weight", _int(p.get("image_weight"), "params.image_weight", 1, 100), "params.image_weight", explicit=True
    )
    codes = p.get("style_codes")
    if codes is not None:
        if isinstance(codes, str) or not isinstance(codes, list | tuple):
            raise InvalidRequest("expected a list of 8-character hexadecimal codes", path="params.style_codes")
        for i, code in enumerate(codes):
            if not isinstance(code, str) or not _STYLE_CODE.match(code):
                raise InvalidRequest("expected an 8-character hexadecimal code", path=f"params.style_codes[{i}]")
        if "style_type" in f.values:
            raise InvalidRequest("style_codes cannot be combined with style_type", path="params.style_codes")
        f.set("style_codes", tuple(codes), "params.style_codes", explicit=True)
    for name in endpoint.required:
        if name not in f.values:
            path = "prompt" if name == "prompt" else "size"
            raise InvalidRequest(
                f"{where} needs {'a prompt' if name == 'prompt' else 'an exact resolution'}", path=path
            )
    if "prompt" in f.values and "prompt" not in endpoint.fields:
        del f.values["prompt"]
        f.warnings.append(CallWarning(setting="prompt", message=f"{where} takes no prompt; it was not sent"))
    f.restrict(endpoint.fields, where, provider)
    parts = _image_parts(job, endpoint_name, endpoint, provider)
    return IdeogramCall(
        path=endpoint.path,
        model=model,
        fields=V3Fields(**f.values),
        parts=parts,
        warnings=tuple(f.warnings),
        b64=job.b64,
    )


def _image_parts(job: ImageJob, name: str, endpoint: t.Endpoint, provider: str) -> tuple[ImagePart, ...]:
    parts: list[ImagePart] = []
    if endpoint.image:
        if not job.images:
            raise InvalidRequest(f"Ideogram {name!r} needs an input image", path="images")
        if len(job.images) > 1:
            raise InvalidRequest(f"Ideogram {name!r} takes one input image", path="images[1]")
        parts.append(decode_image(job.images[0], field="image", path="images[0]"))
    elif job.images:
        raise UnsupportedFeature(
            "text-to-image takes no input image; use operation 'edit', or params.style_reference_images",
            path="images",
            provider=provider,
        )
    if endpoint.mask:
        if job.mask is None:
            raise InvalidRequest(f"Ideogram {name!r} needs a mask (black = the region to edit)", path=job.path("mask"))
        parts.append(decode_image(job.mask, field="mask", path=job.path("mask")))
    elif job.mask is not None:
        raise UnsupportedFeature(f"Ideogram {name!r} takes no mask", path=job.path("mask"), provider=provider)
    for key, allowed in (
        ("style_reference_images", endpoint.style_refs),
        ("character_reference_images", endpoint.character_refs),
    ):
        refs = job.params.get(key)
        if refs is None:
            continue
        if not allowed:
            raise UnsupportedFeature(
                f"Ideogram {name!r} does not take {key!r}", path=f"params.{key}", provider=provider
            )
        if isinstance(refs, str) or not isinstance(refs, list | tuple) or not refs:
            raise InvalidRequest("expected a non-empty list of images", path=f"params.{key}")
        if key == "character_reference_images" and len(refs) > 1:
            raise InvalidRequest("Ideogram supports one character reference image", path=f"params.{key}[1]")
        for i, ref in enumerate(refs):
            parts.append(decode_image(ref, field=key, path=f"params.{key}[{i}]"))
    return tuple(parts)


# ------------------------------------------------------------------------------------------------ shapes


def _shape(
    job: ImageJob,
    aspects: frozenset[tuple[int, int]],
    resolutions: frozenset[tuple[int, int]],
    *,
    allow_resolution: bool,
    allow_aspect: bool,
    model: str,
) -> tuple[tuple[int, int, str] | None, tuple[int, int, str] | None]:
    """``(aspect, resolution)`` as ``(w, h, source path)``; at most one is set."""
    given = [
        (name, value, path)
        for name, value, path in (
            ("size", job.size, "size"),
            ("aspect_ratio", job.aspect_ratio, job.path("aspect_ratio")),
            ("resolution", job.params.get("resolution"), "params.resolution"),
        )
        if value is not None and not (name == "size" and str(value).strip().lower() == "auto")
    ]
    if len(given) > 1:
        raise InvalidRequest(f"cannot be combined with {given[0][2]!r} (Ideogram takes one shape)", path=given[1][2])
    if not given:
        return None, None
    name, value, path = given[0]
    if name == "resolution":
        w, h = _parse(value, _RESOLUTION, path, "a resolution like '1024x1024'")
        if not allow_resolution:
            raise UnsupportedFeature(
                f"model {model} takes no resolution; use aspect_ratio", path=path, provider="ideogram"
            )
        if (w, h) not in resolutions:
            raise InvalidRequest(f"{w}x{h} is not a resolution Ideogram supports", path=path)
        return None, (w, h, path)
    if name == "aspect_ratio":
        w, h = _parse(value, _RATIO, path, "an aspect ratio like '16:9'")
        match = _ratio_match(w, h, aspects)
        if match is None:
            raise InvalidRequest(
                f"{w}:{h} is not an aspect ratio Ideogram supports; one of {_ratios(aspects)}", path=path
            )
        if not allow_aspect:
            raise UnsupportedFeature(
                "this endpoint takes an exact resolution, not an aspect ratio", path=path, provider="ideogram"
            )
        return (*match, path), None
    w, h = _parse(value, _SIZE, path, "'WIDTHxHEIGHT', e.g. '1024x1024'")
    if allow_resolution and (w, h) in resolutions:
        return None, (w, h, path)
    match = _ratio_match(w, h, aspects) if allow_aspect else None
    if match is None:
        what = (
            "an exact Ideogram resolution"
            if not allow_aspect
            else (f"an Ideogram resolution, and its aspect ratio is not one Ideogram supports ({_ratios(aspects)})")
        )
        raise InvalidRequest(f"{w}x{h} is not {what}", path=path)
    return (*match, path), None


def _parse(value: Any, pattern: re.Pattern[str], path: str, what: str) -> tuple[int, int]:
    m = pattern.match(value) if isinstance(value, str) else None
    if m is None or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise InvalidRequest(f"expected {what}, got {value!r}", path=path)
    return int(m.group(1)), int(m.group(2))


def _ratio_match(w: int, h: int, aspects: frozenset[tuple[int, int]]) -> tuple[int, int] | None:
    for a, b in aspects:
        if w * b == h * a:
            return a, b
    return None


def _ratios(aspects: frozenset[tuple[int, int]]) -> str:
    return ", ".join(f"{a}:{b}" for a, b in sorted(aspects, key=lambda p: (p[0] / p[1], p)))


# ------------------------------------------------------------------------------------------------ images


def decode_image(value: Any, *, field: str, path: str) -> ImagePart:
    """A ``data:image/...;base64,`` URI (decoded and checked now) or an http(s) URL (downloaded at send time)."""
    if not isinstance(value, str):
        raise InvalidRequest("expected a data: URI or an http(s) URL", path=path)
    if value.startswith(("http://", "https://")):
        return ImagePart(field=field, path=path, filename=f"{field}", url=value)
    if not value.startswith("data:"):
        raise InvalidRequest("expected a data: URI or an http(s) URL", path=path)
    header, sep, payload = value.partition(",")
    mime = header[5:].split(";")[0].strip().lower()
    if not sep or not header.endswith(";base64"):
        raise InvalidRequest("expected a base64 data: URI (data:image/png;base64,...)", path=path)
    ext = _IMAGE_TYPES.get(mime)
    if ext is None:
        raise InvalidRequest(f"Ideogram takes JPEG, PNG or WebP images, not {mime or 'untyped data'}", path=path)
    if math.ceil(len(payload) * 3 / 4) > MAX_UPLOAD_BYTES + 3:
        raise InvalidRequest("the image is larger than Ideogram's 10 MB limit", path=path)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("the data: URI is not valid base64", path=path) from exc
    if not data:
        raise InvalidRequest("the image is empty", path=path)
    return ImagePart(field=field, path=path, filename=f"{field}.{ext}", content_type=mime, data=data)


# ------------------------------------------------------------------------------------------------ scalars


def _check_keys(params: Mapping[str, Any], allowed: frozenset[str]) -> None:
    for key in params:
        if key not in allowed:
            raise InvalidRequest(
                f"unknown Ideogram parameter {key!r}{did_you_mean(key, allowed)}", path=f"params.{key}"
            )


def _int(value: Any, path: str, lo: int, hi: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"expected an integer, got {value!r}", path=path)
    if not lo <= value <= hi:
        raise InvalidRequest(f"must be between {lo} and {hi}, got {value}", path=path)
    return value


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRequest("expected a non-empty string", path=path)
    return value


def _enum(value: Any, path: str, choices: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value.upper() in choices:
        return value.upper()
    raise InvalidRequest(f"expected one of {', '.join(choices)}, got {value!r}", path=path)
