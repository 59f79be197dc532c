"""Per-model rules of the OpenAI Images API (wire-images.md §5.2–5.4, openai-python types) and the validation
that runs before any network call.

============================  =========  =========  ====================================================
                              dall-e-2   dall-e-3   GPT image (gpt-image-1, -1-mini, -1.5, -2)
============================  =========  =========  ====================================================
prompt (characters)           1000       4000       32000
n                             1–10       1          1–10
size                          256/512/   1024², 1792x1024, 1024x1792   1024², 1536x1024, 1024x1536, auto
                              1024²                 (gpt-image-2: any WxH, multiples of 16, ratio ≤ 3:1,
                                                    edges ≤ 3840, at most 3840x2160 pixels)
quality                       standard   standard, hd   low, medium, high, auto
style                         —          vivid, natural  —
response_format               url, b64   url, b64   not sent (always b64_json; ``url`` → warning)
background/output_format/...  —          —          background, output_format, output_compression,
                                                    moderation (edits: input_fidelity, not on -mini)
edits                         1 image    —          up to 16 images
variations                    yes        —          —
============================  =========  =========  ====================================================

A bad *value* for a model raises :class:`InvalidRequest` naming the field; a *parameter* the model does not have
(``style`` on gpt-image-1, ``background`` on dall-e-3, ...) is dropped with an ``unsupported-setting`` warning.
Models not in the table (another ``gpt-image-*``: GPT rules without the size list; anything else, e.g. a relay's
model name: no checks) pass their parameters through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from polyrelay.errors import InvalidRequest, UnsupportedFeature
from polyrelay.types.completion import CallWarning
from polyrelay.types.media import ImageRequest


@attrs.frozen(kw_only=True)
class ImageModel:
    name: str
    max_prompt: int | None
    max_n: int | None
    sizes: frozenset[str] | None
    qualities: frozenset[str] | None
    styles: frozenset[str] = frozenset()
    response_format: bool = True
    gpt_params: bool = False
    max_edit_images: int = 0
    variations: bool = False
    input_fidelity: bool = False
    free_size: bool = False


_GPT_SIZES = frozenset({"1024x1024", "1536x1024", "1024x1536", "auto"})
_GPT_QUALITIES = frozenset({"low", "medium", "high", "auto"})
_GPT = ImageModel(
    name="gpt-image-1",
    max_prompt=32000,
    max_n=10,
    sizes=_GPT_SIZES,
    qualities=_GPT_QUALITIES,
    response_format=False,
    gpt_params=True,
    max_edit_images=16,
    input_fidelity=True,
)

MODELS: Mapping[str, ImageModel] = {
    "dall-e-2": ImageModel(
        name="dall-e-2",
        max_prompt=1000,
        max_n=10,
        sizes=frozenset({"256x256", "512x512", "1024x1024"}),
        qualities=frozenset({"standard"}),
        max_edit_images=1,
        variations=True,
    ),
    "dall-e-3": ImageModel(
        name="dall-e-3",
        max_prompt=4000,
        max_n=1,
        sizes=frozenset({"1024x1024", "1792x1024", "1024x1792"}),
        qualities=frozenset({"standard", "hd"}),
        styles=frozenset({"vivid", "natural"}),
    ),
    "gpt-image-1": _GPT,
    "gpt-image-1.5": attrs.evolve(_GPT, name="gpt-image-1.5"),
    "gpt-image-1-mini": attrs.evolve(_GPT, name="gpt-image-1-mini", input_fidelity=False),
    "gpt-image-2": attrs.evolve(_GPT, name="gpt-image-2", sizes=None, free_size=True),
}

_BACKGROUNDS = frozenset({"transparent", "opaque", "auto"})
_OUTPUT_FORMATS = frozenset({"png", "jpeg", "webp"})
_MODERATION = frozenset({"low", "auto"})
_FIDELITY = frozenset({"high", "low"})
# gpt-image-2 free sizes: multiples of 16, long/short edge ≤ 3, edges ≤ 3840, at most 3840x2160 pixels.
_FREE_MULTIPLE = 16
_FREE_MAX_EDGE = 3840
_FREE_MAX_PIXELS = 3840 * 2160
_FREE_MAX_RATIO = 3.0


def model_rules(model: str) -> ImageModel | None:
    """The rules of ``model``; GPT rules without a size list for unknown ``gpt-image-*``; None otherwise."""
    rules = MODELS.get(model)
    if rules is None and model.startswith("gpt-image-"):
        rules = attrs.evolve(_GPT, name=model, sizes=None)
    return rules


@attrs.frozen(kw_only=True)
class Checked:
    """The values to send for a request, after validation."""

    fields: Mapping[str, Any]
    """Wire fields (model-independent names) with values to send; ``None`` values are not sent."""
    warnings: tuple[CallWarning, ...] = ()


def _warn(name: str, model: str) -> CallWarning:
    return CallWarning(setting=name, message=f"{model} does not take {name}; it was not sent")


def _one_of(value: str, allowed: frozenset[str], path: str, model: str) -> None:
    if value not in allowed:
        raise InvalidRequest(f"{model} supports {', '.join(sorted(allowed))}; got {value!r}", path=path)


def check(request: ImageRequest, model: str, *, provider: str) -> Checked:
    """Validate ``request`` for ``model`` and return what to send (see the module docstring)."""
    rules = model_rules(model)
    params = dict(request.params)
    if params.get("stream") or params.get("partial_images"):
        raise UnsupportedFeature("streamed partial images are not supported", path="stream", provider=provider)
    params.pop("stream", None)
    params.pop("partial_images", None)
    fields: dict[str, Any] = {
        "prompt": request.prompt,
        "n": request.n,
        "size": request.size,
        "quality": request.quality,
        "style": request.style,
        "response_format": request.response_format,
        "background": request.background,
        "output_format": request.output_format,
        "user": request.user,
        **params,
    }
    if rules is None:
        return Checked(fields=fields)
    warnings: list[CallWarning] = []
    _check_operation(request, rules, provider)
    if rules.max_prompt is not None and request.prompt is not None and len(request.prompt) > rules.max_prompt:
        raise InvalidRequest(f"{model} takes prompts up to {rules.max_prompt} characters", path="prompt")
    if rules.max_n is not None and request.n is not None and request.n > rules.max_n:
        raise InvalidRequest(
            f"{model} generates {'only 1 image' if rules.max_n == 1 else f'1 to {rules.max_n} images'} per request",
            path="n",
        )
    if request.size is not None:
        _check_size(request.size, rules, model)
    if request.quality is not None and rules.qualities is not None:
        _one_of(request.quality, rules.qualities, "quality", model)
    if request.style is not None:
        if rules.styles:
            _one_of(request.style, rules.styles, "style", model)
        else:
            warnings.append(_warn("style", model))
            fields["style"] = None
    if not rules.response_format:
        # GPT image models always answer with b64_json and reject the parameter (400 unknown_parameter).
        if request.response_format == "url":
            warnings.append(
                CallWarning(setting="response_format", message=f"{model} returns b64_json only; no URL was produced")
            )
        fields["response_format"] = None
    if rules.gpt_params:
        _check_gpt_params(request, fields, rules, model)
    else:
        for name in ("background", "output_format", "output_compression", "moderation", "input_fidelity"):
            if fields.get(name) is not None:
                warnings.append(_warn(name, model))
                fields[name] = None
    return Checked(fields=fields, warnings=tuple(warnings))


def _check_operation(request: ImageRequest, rules: ImageModel, provider: str) -> None:
    if request.operation == "edit":
        if not rules.max_edit_images:
            raise UnsupportedFeature(f"{rules.name} cannot edit images", path="image", provider=provider)
        if len(request.images) > rules.max_edit_images:
            raise InvalidRequest(f"{rules.name} edits take at most {rules.max_edit_images} image(s)", path="image")
    elif request.operation == "variation" and not rules.variations:
        raise UnsupportedFeature(
            f"{rules.name} cannot make variations (only dall-e-2 can)", path="image", provider=provider
        )
    if request.mask is not None and request.operation != "edit":
        raise InvalidRequest("a mask applies to edits only", path="mask")


def _check_size(size: str, rules: ImageModel, model: str) -> None:
    if rules.sizes is not None:
        _one_of(size, rules.sizes, "size", model)
        return
    if not rules.free_size or size == "auto":
        return
    w, _, h = size.partition("x")
    width, height = int(w), int(h)
    ok = (
        width % _FREE_MULTIPLE == 0
        and height % _FREE_MULTIPLE == 0
        and max(width, height) <= _FREE_MAX_EDGE
        and width * height <= _FREE_MAX_PIXELS
        and max(width, height) / min(width, height) <= _FREE_MAX_RATIO
    )
    if not ok:
        raise InvalidRequest(
            f"{model} sizes are WxH in multiples of 16, ratio at most 3:1, up to 3840x2160; got {size!r}",
            path="size",
        )


def _check_gpt_params(request: ImageRequest, fields: dict[str, Any], rules: ImageModel, model: str) -> None:
    if request.background is not None:
        _one_of(request.background, _BACKGROUNDS, "background", model)
    if request.output_format is not None:
        _one_of(request.output_format, _OUTPUT_FORMATS, "output_format", model)
    if request.background == "transparent" and request.output_format == "jpeg":
        raise InvalidRequest("a transparent background needs output_format png or webp", path="background")
    compression = fields.get("output_compression")
    if compression is not None and (
        isinstance(compression, bool) or not isinstance(compression, int) or not 0 <= compression <= 100
    ):
        raise InvalidRequest(f"must be an integer from 0 to 100, got {compression!r}", path="output_compression")
    moderation = fields.get("moderation")
    if moderation is not None:
        _one_of(str(moderation), _MODERATION, "moderation", model)
    fidelity = fields.get("input_fidelity")
    if fidelity is not None:
        if request.operation != "edit" or not rules.input_fidelity:
            raise InvalidRequest(f"input_fidelity applies to {model} edits only (not -mini)", path="input_fidelity")
        _one_of(str(fidelity), _FIDELITY, "input_fidelity", model)
