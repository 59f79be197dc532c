"""Generic task requests and action parameters → midjourney-proxy request bodies, validated before any network call.

``params["operation"]`` picks the submit endpoint: ``imagine`` (default), ``blend`` or ``describe``.

Imagine: Midjourney takes its settings as flags inside the prompt, so ``aspect_ratio`` (or ``size``, reduced by gcd)
becomes ``--ar W:H``, ``negative_prompt`` ``--no ...`` and ``seed`` ``--seed N``. When the prompt already sets a
flag, an explicit field for it is an error, while ``size`` quietly defers to the prompt's ``--ar`` (wire-images.md
§2.9). Reference images: ``data:`` URIs go in ``base64Array``, http(s) URLs are put at the front of the prompt
(Midjourney's image-prompt syntax). ``n`` cannot be honoured: Midjourney always renders one 2×2 grid.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from polyrelay.errors import InvalidRequest, UnsupportedFeature
from polyrelay.policy import did_you_mean
from polyrelay.types.media import TaskRequest
from polyrelay_midjourney._buttons import MODAL_ACTION, NEEDS_MODAL

__all__ = [
    "ACTION_PARAM_KEYS",
    "BOT_TYPES",
    "MODES",
    "OPERATIONS",
    "SUBMIT_PARAM_KEYS",
    "ActionInputs",
    "ImageRef",
    "SubmitPlan",
    "action_inputs",
    "modal_prompt",
    "plan_submit",
]

Operation = Literal["imagine", "blend", "describe"]
OPERATIONS: tuple[Operation, ...] = ("imagine", "blend", "describe")
BOT_TYPES = ("MID_JOURNEY", "NIJI_JOURNEY")
#: Speed modes, as the relay path prefix ``/mj-{mode}``.
MODES = ("fast", "relax", "turbo")
#: Blend ``dimensions`` by aspect ratio.
DIMENSIONS: Mapping[tuple[int, int], str] = {(2, 3): "PORTRAIT", (1, 1): "SQUARE", (3, 2): "LANDSCAPE"}
_CAMEL: Mapping[str, str] = {
    "botType": "bot_type",
    "notifyHook": "notify_hook",
    "accountFilter": "account_filter",
    "enableRemix": "enable_remix",
    "chooseSameChannel": "choose_same_channel",
}
SUBMIT_PARAM_KEYS = frozenset({"operation", "bot_type", "state", "notify_hook", "account_filter", "dimensions", "mode"})
ACTION_PARAM_KEYS = frozenset(
    {"prompt", "mask", "zoom", "enable_remix", "choose_same_channel", "state", "notify_hook", "account_filter"}
)
MAX_SEED = 4_294_967_295
MAX_ZOOM = 2.0  # Custom Zoom takes --zoom 1..2
_BLEND_IMAGES = (2, 5)
_FLAG = r"(?:^|\s)--{}(?:\s|$)"
_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
_RATIO = re.compile(r"^\s*(\d+)\s*[:xX]\s*(\d+)\s*$")
_ZOOM_FLAG = re.compile(r"\s*--zoom\s+\S+")


@attrs.frozen(kw_only=True)
class ImageRef:
    """A reference image: a ``data:`` URI (``data``) or a URL still to download (``url``) for blend/describe."""

    path: str
    data: str | None = attrs.field(default=None, repr=False)
    url: str | None = None


@attrs.frozen(kw_only=True)
class SubmitPlan:
    """One submit call: the endpoint, the prompt (imagine), the images to inline and the common fields."""

    operation: Operation
    prompt: str | None = None
    images: tuple[ImageRef, ...] = ()
    dimensions: str | None = None
    bot_type: str | None = None
    mode: str | None = None
    state: str | None = None
    notify_hook: str | None = None
    account_filter: Mapping[str, Any] | None = None


@attrs.frozen(kw_only=True)
class ActionInputs:
    """The validated parameters of a follow-up action."""

    prompt: str | None = None
    mask: str | None = attrs.field(default=None, repr=False)
    zoom: float | None = None
    enable_remix: bool | None = None
    choose_same_channel: bool | None = None
    state: str | None = None
    notify_hook: str | None = None
    account_filter: Mapping[str, Any] | None = None

    @property
    def has_modal_input(self) -> bool:
        return self.prompt is not None or self.mask is not None or self.zoom is not None


# ------------------------------------------------------------------------------------------------ submit


def plan_submit(request: TaskRequest, *, provider: str = "midjourney") -> SubmitPlan:
    """Validate ``request`` and plan its submit call. Raises :class:`InvalidRequest` / :class:`UnsupportedFeature`."""
    if request.kind not in (None, "image"):
        raise InvalidRequest(f"Midjourney generates images, not {request.kind!r}", path="kind")
    if request.duration is not None:
        raise UnsupportedFeature("Midjourney images have no duration", path="duration", provider=provider)
    if request.n not in (None, 1, 4):
        raise UnsupportedFeature("Midjourney always renders one 2x2 grid of 4 images", path="n", provider=provider)
    params = _normalized(request.params, SUBMIT_PARAM_KEYS)
    operation = params.get("operation", "imagine")
    if operation not in OPERATIONS:
        raise InvalidRequest(
            f"unknown operation {operation!r}{did_you_mean(str(operation), OPERATIONS)}; "
            f"one of {', '.join(OPERATIONS)}",
            path="params.operation",
        )
    mode = params.get("mode")
    if mode is not None and mode not in MODES:
        raise InvalidRequest(f"mode must be one of {', '.join(MODES)}, got {mode!r}", path="params.mode")
    bot_type = params.get("bot_type")
    if bot_type is not None:
        if not isinstance(bot_type, str) or bot_type.upper() not in BOT_TYPES:
            raise InvalidRequest(f"bot_type must be one of {', '.join(BOT_TYPES)}", path="params.bot_type")
        bot_type = bot_type.upper()
    elif "niji" in request.model.lower():
        bot_type = "NIJI_JOURNEY"
    common: dict[str, Any] = {
        "operation": operation,
        "bot_type": bot_type,
        "mode": mode,
        "state": _opt_str(params.get("state"), "params.state"),
        "notify_hook": _opt_str(params.get("notify_hook"), "params.notify_hook"),
        "account_filter": _opt_mapping(params.get("account_filter"), "params.account_filter"),
    }
    images = tuple(_image_ref(image, f"images[{i}]") for i, image in enumerate(request.images))
    if operation == "imagine":
        if "dimensions" in params:
            raise InvalidRequest(
                "dimensions is for operation 'blend'; imagine takes aspect_ratio", path="params.dimensions"
            )
        return SubmitPlan(prompt=_imagine_prompt(request, images), images=images, **common)
    for name in ("prompt", "negative_prompt", "seed"):
        if getattr(request, name) is not None:
            raise UnsupportedFeature(f"Midjourney {operation} takes no {name}", path=name, provider=provider)
    if operation == "describe":
        if len(images) != 1:
            raise InvalidRequest("describe takes exactly one image", path="images")
        for name in ("size", "aspect_ratio"):
            if getattr(request, name) is not None:
                raise UnsupportedFeature(f"Midjourney describe takes no {name}", path=name, provider=provider)
        return SubmitPlan(images=images, **common)
    lo, hi = _BLEND_IMAGES
    if not lo <= len(images) <= hi:
        raise InvalidRequest(f"blend takes {lo} to {hi} images, got {len(images)}", path="images")
    return SubmitPlan(images=images, dimensions=_blend_dimensions(request, params), **common)


def _imagine_prompt(request: TaskRequest, images: tuple[ImageRef, ...]) -> str:
    prompt = request.prompt
    if prompt is None or not prompt.strip():
        raise InvalidRequest("Midjourney imagine needs a prompt", path="prompt")
    prompt = prompt.strip()
    flags: list[str] = []
    if request.aspect_ratio is not None and request.size is not None:
        raise InvalidRequest("give aspect_ratio or size, not both", path="size")
    if request.aspect_ratio is not None:
        w, h = _pair(request.aspect_ratio, _RATIO, "aspect_ratio", "'W:H', e.g. '16:9'")
        if _has_flag(prompt, "ar") or _has_flag(prompt, "aspect"):
            raise InvalidRequest("the prompt already sets --ar", path="aspect_ratio")
        flags.append(f"--ar {w}:{h}")
    elif request.size is not None and request.size.strip().lower() != "auto":
        w, h = _pair(request.size, _SIZE, "size", "'WIDTHxHEIGHT'")
        if not (_has_flag(prompt, "ar") or _has_flag(prompt, "aspect")):
            g = math.gcd(w, h)
            flags.append(f"--ar {w // g}:{h // g}")
    if request.negative_prompt is not None:
        if _has_flag(prompt, "no"):
            raise InvalidRequest("the prompt already sets --no", path="negative_prompt")
        if request.negative_prompt.strip():
            flags.append(f"--no {request.negative_prompt.strip()}")
    if request.seed is not None:
        seed = request.seed
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise InvalidRequest(f"must be an integer between 0 and {MAX_SEED}", path="seed")
        if _has_flag(prompt, "seed"):
            raise InvalidRequest("the prompt already sets --seed", path="seed")
        flags.append(f"--seed {seed}")
    urls = [ref.url for ref in images if ref.url is not None]
    return " ".join([*(u for u in urls if u), prompt, *flags])


def _blend_dimensions(request: TaskRequest, params: Mapping[str, Any]) -> str | None:
    given = [
        (path, value)
        for path, value in (
            ("params.dimensions", params.get("dimensions")),
            ("aspect_ratio", request.aspect_ratio),
            ("size", request.size),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise InvalidRequest(f"cannot be combined with {given[0][0]!r}", path=given[1][0])
    if not given:
        return None
    path, value = given[0]
    if path == "params.dimensions":
        if not isinstance(value, str) or value.upper() not in DIMENSIONS.values():
            raise InvalidRequest(f"one of {', '.join(DIMENSIONS.values())}", path=path)
        return value.upper()
    w, h = _pair(value, _RATIO if path == "aspect_ratio" else _SIZE, path, "a ratio like '2:3'")
    g = math.gcd(w, h)
    dims = DIMENSIONS.get((w // g, h // g))
    if dims is None:
        raise InvalidRequest("blend renders 2:3 (PORTRAIT), 1:1 (SQUARE) or 3:2 (LANDSCAPE) only", path=path)
    return dims


# ------------------------------------------------------------------------------------------------ actions


def action_inputs(action: str, params: Mapping[str, Any]) -> ActionInputs:
    """Validate the parameters of ``action`` (a normalized friendly name, ``"modal"``, or a raw customId)."""
    p = _normalized(params, ACTION_PARAM_KEYS)
    inputs = ActionInputs(
        prompt=_opt_str(p.get("prompt"), "params.prompt"),
        mask=_mask(p.get("mask")),
        zoom=_zoom(p.get("zoom")),
        enable_remix=_opt_bool(p.get("enable_remix"), "params.enable_remix"),
        choose_same_channel=_opt_bool(p.get("choose_same_channel"), "params.choose_same_channel"),
        state=_opt_str(p.get("state"), "params.state"),
        notify_hook=_opt_str(p.get("notify_hook"), "params.notify_hook"),
        account_filter=_opt_mapping(p.get("account_filter"), "params.account_filter"),
    )
    if action.startswith("MJ::"):
        return inputs  # a raw button: the caller knows what it needs
    if action == "vary:region" and inputs.mask is None:
        raise InvalidRequest("Vary (Region) needs a mask (a data: URI; the region to repaint)", path="params.mask")
    if action == "zoom:custom" and inputs.zoom is None and inputs.prompt is None:
        raise InvalidRequest("Custom Zoom needs a zoom factor (1-2) or a prompt with --zoom", path="params.zoom")
    modal = action in NEEDS_MODAL or action == MODAL_ACTION
    if inputs.mask is not None and action not in ("vary:region", MODAL_ACTION):
        raise InvalidRequest(f"{action!r} takes no mask", path="params.mask")
    if inputs.zoom is not None and action not in ("zoom:custom", MODAL_ACTION):
        raise InvalidRequest(f"{action!r} takes no zoom", path="params.zoom")
    if inputs.prompt is not None and not modal and not inputs.enable_remix:
        raise InvalidRequest(f"{action!r} takes no prompt (unless enable_remix is on)", path="params.prompt")
    return inputs


def modal_prompt(inputs: ActionInputs, fallback: str | None) -> str | None:
    """The prompt to send with ``/submit/modal``: the caller's, else the one the upstream proposed, with
    ``--zoom`` set when a zoom factor was given."""
    prompt = inputs.prompt if inputs.prompt is not None else fallback
    if inputs.zoom is None:
        return prompt
    base = _ZOOM_FLAG.sub("", prompt or "").strip()
    return f"{base} --zoom {inputs.zoom:g}".strip()


# ------------------------------------------------------------------------------------------------ scalars


def _normalized(params: Mapping[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = _CAMEL.get(key, key)
        if name not in allowed:
            known = sorted(allowed | {k for k, v in _CAMEL.items() if v in allowed})
            raise InvalidRequest(
                f"unknown Midjourney parameter {key!r}{did_you_mean(key, known)}; known: {', '.join(known)}",
                path=f"params.{key}",
            )
        if name in out:
            raise InvalidRequest(f"given twice (as {name!r} and {key!r})", path=f"params.{key}")
        out[name] = value
    return out


def _image_ref(value: Any, path: str) -> ImageRef:
    if not isinstance(value, str):
        raise InvalidRequest("expected a data: URI or an http(s) URL", path=path)
    if value.startswith(("http://", "https://")):
        return ImageRef(path=path, url=value)
    _check_data_uri(value, path)
    return ImageRef(path=path, data=value)


def _check_data_uri(value: str, path: str) -> None:
    header, sep, payload = value.partition(",")
    if not value.startswith("data:image/") or not sep or not header.endswith(";base64"):
        raise InvalidRequest("expected a base64 image data: URI (data:image/png;base64,...)", path=path)
    try:
        base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("the data: URI is not valid base64", path=path) from exc


def _mask(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest("expected a data: URI", path="params.mask")
    _check_data_uri(value, "params.mask")
    return value


def _zoom(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1.0 <= value <= MAX_ZOOM:
        raise InvalidRequest(f"must be a number between 1 and {MAX_ZOOM:g}", path="params.zoom")
    return float(value)


def _has_flag(prompt: str, flag: str) -> bool:
    return re.search(_FLAG.format(re.escape(flag)), prompt) is not None


def _pair(value: Any, pattern: re.Pattern[str], path: str, what: str) -> tuple[int, int]:
    m = pattern.match(value) if isinstance(value, str) else None
    if m is None or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise InvalidRequest(f"expected {what}, got {value!r}", path=path)
    return int(m.group(1)), int(m.group(2))


def _opt_str(value: Any, path: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidRequest("expected a string", path=path)
    return value


def _opt_bool(value: Any, path: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise InvalidRequest("expected true or false", path=path)
    return value


def _opt_mapping(value: Any, path: str) -> Mapping[str, Any] | None:
    if value is not None and not isinstance(value, Mapping):
        raise InvalidRequest("expected an object", path=path)
    return dict(value) if value is not None else None
