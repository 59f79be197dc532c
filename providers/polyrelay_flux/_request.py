"""TaskRequest → BFL request body, with per-model validation (wire-images.md §3.3).

Every check runs before the network call and raises :class:`InvalidRequest` naming the field:

- ``size`` (``"WxH"``) becomes ``width``/``height`` on width/height models (flux-pro-1.1, flux-pro, flux-dev:
  256–1440 in multiples of 32; FLUX.2: multiples of 16, at least 64, at most 4 megapixels). On aspect-ratio models
  (flux-pro-1.1-ultra 21:9…9:21, flux-kontext-* 3:7…7:3) it is reduced to a ratio, with a warning.
- ``aspect_ratio`` goes as is to aspect-ratio models; on width/height models it becomes the ~1 megapixel
  width/height of that ratio.
- input images: ``image_prompt`` (base64 only) for flux-pro-1.1 / -ultra / flux-pro / flux-dev, ``input_image``,
  ``input_image_2``… for Kontext (4) and FLUX.2 (8), ``image`` (+ ``mask``) for fill and expand.
- ``n`` must be 1 (one image per BFL request). ``steps``/``guidance``/``interval`` only where the model takes them
  (as BFL's official client checks), with their documented ranges.
- OpenAI params BFL has no equivalent for (``quality``, ``style``, ``background``, ``user``, ``negative_prompt``,
  ``duration``) are dropped with an ``unsupported-setting`` warning.

Models not in the table get the generic mapping without range checks (new BFL models work before we list them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from polyrelay.errors import InvalidRequest, UnsupportedFeature
from polyrelay.images import decode_data_uri
from polyrelay.types.completion import CallWarning
from polyrelay.types.media import TaskRequest
from polyrelay_flux._wire import BODY_FIELDS, GenerationBody

Dims = Literal["width_height", "aspect_ratio", "from_image"]


@attrs.frozen(kw_only=True)
class FluxModel:
    dims: Dims
    dim_min: int = 256
    dim_max: int | None = 1440
    multiple: int = 32
    max_pixels: int | None = None
    max_ratio: float = 21 / 9
    image_fields: tuple[str, ...] = ("image_prompt",)
    base64_images: bool = True
    images_required: bool = False
    prompt_required: bool = True
    ranges: Mapping[str, tuple[float, float]] = attrs.field(factory=dict)
    output_formats: frozenset[str] = frozenset({"jpeg", "png"})


_COMMON_RANGES: Mapping[str, tuple[float, float]] = {"safety_tolerance": (0, 6)}
_STEPS = (1, 50)
_INPUT_IMAGES_4 = ("input_image", "input_image_2", "input_image_3", "input_image_4")
_INPUT_IMAGES_8 = (*_INPUT_IMAGES_4, "input_image_5", "input_image_6", "input_image_7", "input_image_8")
_FLUX2 = FluxModel(
    dims="width_height",
    dim_min=64,
    dim_max=None,
    multiple=16,
    max_pixels=4 * 1024 * 1024,
    image_fields=_INPUT_IMAGES_8,
    base64_images=False,
    ranges=_COMMON_RANGES,
)

#: The documented models. Parameters with ranges are the ones each model takes (others are refused).
MODELS: Mapping[str, FluxModel] = {
    "flux-pro-1.1": FluxModel(dims="width_height", ranges=_COMMON_RANGES),
    "flux-pro": FluxModel(
        dims="width_height",
        ranges={**_COMMON_RANGES, "steps": _STEPS, "guidance": (1.5, 5), "interval": (1, 4)},
    ),
    "flux-dev": FluxModel(dims="width_height", ranges={**_COMMON_RANGES, "steps": _STEPS, "guidance": (1.5, 5)}),
    "flux-pro-1.1-ultra": FluxModel(
        dims="aspect_ratio", max_ratio=21 / 9, ranges={**_COMMON_RANGES, "image_prompt_strength": (0, 1)}
    ),
    "flux-kontext-pro": FluxModel(
        dims="aspect_ratio", max_ratio=7 / 3, image_fields=_INPUT_IMAGES_4, base64_images=False, ranges=_COMMON_RANGES
    ),
    "flux-kontext-max": FluxModel(
        dims="aspect_ratio", max_ratio=7 / 3, image_fields=_INPUT_IMAGES_4, base64_images=False, ranges=_COMMON_RANGES
    ),
    "flux-pro-1.0-fill": FluxModel(
        dims="from_image",
        image_fields=("image",),
        images_required=True,
        ranges={**_COMMON_RANGES, "steps": _STEPS, "guidance": (1.5, 100)},
    ),
    "flux-pro-1.0-expand": FluxModel(
        dims="from_image",
        image_fields=("image",),
        images_required=True,
        prompt_required=False,
        ranges={**_COMMON_RANGES, "steps": _STEPS, "guidance": (1.5, 100)},
    ),
    "flux-2-pro": _FLUX2,
    "flux-2-max": _FLUX2,
    "flux-2-klein-4b": _FLUX2,
    "flux-2-klein-9b": _FLUX2,
    "flux-2-flex": attrs.evolve(_FLUX2, ranges={**_COMMON_RANGES, "steps": _STEPS, "guidance": (1.5, 10)}),
}

#: Numeric parameters some model takes; a model whose table lacks one refuses it.
_MODEL_SPECIFIC = frozenset({"steps", "guidance", "interval", "image_prompt_strength"})
_GENERIC = FluxModel(
    dims="width_height",
    dim_min=1,
    dim_max=None,
    multiple=1,
    image_fields=_INPUT_IMAGES_8,
    base64_images=False,
    ranges={},
)
#: OpenAI images params (passed by the images service) and generic task fields BFL cannot honour.
_IGNORED = ("quality", "style", "background", "user")
_BOOL_PARAMS = frozenset({"prompt_upsampling", "raw"})
_ONE_MEGAPIXEL = 1024 * 1024


def model_info(model: str) -> FluxModel:
    return MODELS.get(model, _GENERIC)


def build_body(request: TaskRequest, model: str, *, provider: str) -> tuple[GenerationBody, tuple[CallWarning, ...]]:
    """The submit body for ``model`` and the warnings for settings dropped on the way."""
    info = model_info(model)
    known = model in MODELS
    warnings: list[CallWarning] = []
    if request.kind not in (None, "image"):
        raise UnsupportedFeature(f"Flux generates images, not {request.kind}", path="kind", provider=provider)
    if request.n not in (None, 1):
        raise InvalidRequest(f"Flux makes one image per request; got n={request.n}", path="n")
    if request.prompt is None and info.prompt_required:
        raise InvalidRequest(f"{model} needs a prompt", path="prompt")
    fields: dict[str, Any] = {"prompt": request.prompt, "seed": request.seed}
    for name, value in (("negative_prompt", request.negative_prompt), ("duration", request.duration)):
        if value is not None:
            warnings.append(_ignored(name, model))
    fields.update(_dimensions(request, model, info, known, warnings))
    fields.update(_images(request, model, info))
    extra: dict[str, Any] = {}
    for name, value in request.params.items():
        if name in _IGNORED:
            warnings.append(_ignored(name, model))
        elif name == "mask":
            fields["mask"] = _image_value(value, "mask", base64_only=True, model=model)
        elif name in BODY_FIELDS:
            fields[name] = _checked_param(name, value, model, info, known)
        else:
            extra[name] = value  # a parameter BFL added after this table: pass it through
    return GenerationBody(**{k: v for k, v in fields.items() if v is not None}, extra=extra), tuple(warnings)


def _ignored(name: str, model: str) -> CallWarning:
    return CallWarning(setting=name, message=f"{name} is not supported by Flux ({model}); it was not sent")


def _parse_size(size: str) -> tuple[int, int]:
    w, _, h = size.partition("x")
    return int(w), int(h)


def _dimensions(
    request: TaskRequest, model: str, info: FluxModel, known: bool, warnings: list[CallWarning]
) -> dict[str, Any]:
    size = None if request.size in (None, "auto") else request.size
    ratio = request.aspect_ratio
    if size is not None and ratio is not None:
        raise InvalidRequest("give size or aspect_ratio, not both", path="aspect_ratio")
    if info.dims == "from_image":
        if size is not None or ratio is not None:
            warnings.append(
                CallWarning(setting="size", message=f"{model} takes its size from the input image; size was ignored")
            )
        return {}
    if info.dims == "aspect_ratio":
        if size is not None:
            w, h = _parse_size(size)
            g = math.gcd(w, h)
            ratio = f"{w // g}:{h // g}"
            warnings.append(CallWarning(setting="size", message=f"{model} takes an aspect ratio; sent {ratio}"))
            _check_ratio(ratio, info, model, "size")
        elif ratio is not None:
            _check_ratio(ratio, info, model, "aspect_ratio")
        return {"aspect_ratio": ratio}
    if size is not None:
        w, h = _parse_size(size)
        if known:
            _check_dims(w, h, info, model, "size")
        return {"width": w, "height": h}
    if ratio is not None:
        w, h = _dims_for_ratio(ratio, info)
        if known:
            _check_dims(w, h, info, model, "aspect_ratio")
        return {"width": w, "height": h}
    return {}


def _check_ratio(ratio: str, info: FluxModel, model: str, path: str) -> None:
    a, _, b = ratio.partition(":")
    value = int(a) / int(b)
    if not 1 / info.max_ratio - 1e-9 <= value <= info.max_ratio + 1e-9:
        raise InvalidRequest(
            f"{model} takes aspect ratios between {_ratio_text(info.max_ratio)}, got {ratio}", path=path
        )


def _ratio_text(max_ratio: float) -> str:
    for a, b in ((21, 9), (7, 3), (3, 1), (16, 9)):
        if math.isclose(a / b, max_ratio):
            return f"{a}:{b} and {b}:{a}"
    return f"1:{max_ratio:g} and {max_ratio:g}:1"


def _dims_for_ratio(ratio: str, info: FluxModel) -> tuple[int, int]:
    """About one megapixel in the ratio, rounded to the model's multiple and clamped to its range."""
    a, _, b = ratio.partition(":")
    r = int(a) / int(b)
    m = info.multiple

    def fit(x: float) -> int:
        v = max(info.dim_min, round(x / m) * m)
        return min(v, info.dim_max) if info.dim_max is not None else v

    return fit(math.sqrt(_ONE_MEGAPIXEL * r)), fit(math.sqrt(_ONE_MEGAPIXEL / r))


def _check_dims(w: int, h: int, info: FluxModel, model: str, path: str) -> None:
    lo, hi, m = info.dim_min, info.dim_max, info.multiple
    for v in (w, h):
        if v < lo or (hi is not None and v > hi) or v % m:
            span = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
            raise InvalidRequest(f"{model} needs width and height {span} in multiples of {m}, got {w}x{h}", path=path)
    if info.max_pixels is not None and w * h > info.max_pixels:
        raise InvalidRequest(
            f"{model} takes at most {info.max_pixels / 1_048_576:g} megapixels, got {w}x{h}", path=path
        )


def _images(request: TaskRequest, model: str, info: FluxModel) -> dict[str, Any]:
    images = request.images
    if info.images_required and not images:
        raise InvalidRequest(f"{model} needs an input image", path="images")
    if len(images) > len(info.image_fields):
        raise InvalidRequest(f"{model} takes at most {len(info.image_fields)} input image(s)", path="images")
    return {
        field: _image_value(image, f"images[{i}]", base64_only=info.base64_images, model=model)
        for i, (field, image) in enumerate(zip(info.image_fields, images, strict=False))
    }


def _image_value(value: Any, path: str, *, base64_only: bool, model: str) -> str:
    """BFL takes raw base64 (no ``data:`` prefix) or, where documented, a URL."""
    if isinstance(value, str) and value.startswith("data:"):
        try:
            decode_data_uri(value)
        except ValueError as exc:
            raise InvalidRequest(f"invalid data: URI ({exc})", path=path) from exc
        return value.split(",", 1)[1]
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        if base64_only:
            raise InvalidRequest(f"{model} takes image data, not a URL: pass bytes or a data: URI", path=path)
        return value
    raise InvalidRequest("must be a data: URI or an http(s) URL", path=path)


def _checked_param(name: str, value: Any, model: str, info: FluxModel, known: bool) -> Any:
    if name in _BOOL_PARAMS:
        if not isinstance(value, bool):
            raise InvalidRequest(f"must be true or false, got {value!r}", path=name)
        return value
    if name == "output_format":
        if known and value not in info.output_formats:
            raise InvalidRequest(
                f"{model} returns {' or '.join(sorted(info.output_formats))}, got {value!r}", path=name
            )
        return value
    if not known:
        return value
    if name in _MODEL_SPECIFIC and name not in info.ranges:
        raise InvalidRequest(f"{model} does not take {name}", path=name)
    bounds = info.ranges.get(name)
    if bounds is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(f"must be a number, got {value!r}", path=name)
        lo, hi = bounds
        if not lo <= value <= hi:
            raise InvalidRequest(f"must be between {lo:g} and {hi:g} for {model}, got {value!r}", path=name)
    return value
