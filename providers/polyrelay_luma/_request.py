"""TaskRequest → a Luma generation request (wire-video-audio-workflow.md §2.3, §2.6).

**Kind.** ``kind`` decides (``image`` → ``POST /generations/image``, ``video`` → ``POST /generations/video``); without
one, ``photon-*`` models make images and every other model (``ray-2``, ``ray-flash-2``, ...) video.

**Video.** ``prompt``; ``aspect_ratio`` (one of :data:`ASPECT_RATIOS`; a ``size`` is reduced to its ratio, which
must be one of them); ``duration`` → ``"5s"``; keyframes: ``images[0]`` → ``frame0`` (start frame) and
``images[1]`` → ``frame1`` (end frame), both ``{"type": "image", "url"}``; ``params["frame0"]`` /
``params["frame1"]`` override them with a URL (an image) or a generation id (``{"type": "generation", "id"}``:
extend or chain a previous generation); ``params["concepts"]`` (keys or ``{"key"}`` objects). Luma fetches images
by URL: ``data:`` URIs are refused. Other params (``loop``, ``resolution``, ``callback_url``, ...) pass through.

**Image.** ``prompt``, ``aspect_ratio``, ``images`` → ``image_ref`` (``params["image_weight"]`` sets their weight);
other params (``style_ref``, ``character_ref``, ``modify_image_ref``, ``format``, ...) pass through.

Luma has no seed or negative prompt (dropped with a warning); ``n`` > 1 is unsupported.

**Relay format** (``format = "relay"``, the relays' ``/luma/generations``): ``prompt`` → ``user_prompt``,
``images`` → ``image_url`` / ``image_end_url`` (URLs or base64), the model → ``model_name``, ``duration`` → ``"5s"``;
other params pass through (``expand_prompt``, ``loop``, ``notify_hook``, ``resolution``, ...). Video only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from polyrelay.errors import InvalidRequest, UnsupportedFeature
from polyrelay.types.completion import CallWarning
from polyrelay.types.media import TaskKind, TaskRequest
from polyrelay_luma._wire import Concept, ImageRef, ImageRequest, Keyframe, Keyframes, RelayRequest, VideoRequest

ASPECT_RATIOS = frozenset({"1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21"})
_IGNORED = ("seed", "negative_prompt")


@attrs.frozen(kw_only=True)
class LumaCall:
    path: str
    """Path under the base URL (``/generations/video``)."""
    kind: TaskKind
    body: VideoRequest | ImageRequest | RelayRequest
    warnings: tuple[CallWarning, ...] = ()


def kind_for(request: TaskRequest, model: str) -> TaskKind:
    if request.kind in (None, "video", "image"):
        return request.kind or ("image" if model.startswith("photon") else "video")
    raise UnsupportedFeature(f"Luma generates video and images, not {request.kind}", path="kind", provider="luma")


def build_call(request: TaskRequest, model: str) -> LumaCall:
    """The official request for ``request`` on ``model`` (:class:`InvalidRequest` naming the field otherwise)."""
    kind = kind_for(request, model)
    _common_checks(request)
    warnings = _warnings(request)
    params = dict(request.params)
    ratio = _aspect_ratio(request)
    if kind == "image":
        weight = params.pop("image_weight", None)
        refs = tuple(ImageRef(url=_url(u, i), weight=weight) for i, u in enumerate(request.images)) or None
        body: VideoRequest | ImageRequest = ImageRequest(
            model=model, prompt=request.prompt, aspect_ratio=ratio, image_ref=refs, extra=params
        )
        return LumaCall(path="/generations/image", kind="image", body=body, warnings=warnings)
    if len(request.images) > 2:
        raise InvalidRequest("Luma takes a start and an end frame at most", path="images")
    frames: list[Keyframe | None] = [None, None]
    for index, uri in enumerate(request.images):
        frames[index] = Keyframe(type="image", url=_url(uri, index))
    for index in (0, 1):
        override = params.pop(f"frame{index}", None)
        if override is not None:
            frames[index] = _keyframe(override, f"params.frame{index}")
    keyframes = Keyframes(frame0=frames[0], frame1=frames[1]) if any(frames) else None
    concepts = params.pop("concepts", None)
    body = VideoRequest(
        model=model,
        prompt=request.prompt,
        aspect_ratio=ratio,
        duration=_duration(request.duration),
        keyframes=keyframes,
        concepts=_concepts(concepts) if concepts is not None else None,
        extra=params,
    )
    return LumaCall(path="/generations/video", kind="video", body=body, warnings=warnings)


def build_relay_call(request: TaskRequest, model: str) -> LumaCall:
    """The relay request (``POST /generations`` under a relay's ``/luma`` base)."""
    if kind_for(request, model) != "video":
        raise UnsupportedFeature("the Luma relay format generates video only", path="kind", provider="luma")
    _common_checks(request)
    if not request.prompt:
        raise InvalidRequest("the Luma relay format needs a prompt", path="prompt")
    if len(request.images) > 2:
        raise InvalidRequest("Luma takes a start and an end frame at most", path="images")
    images: list[str | None] = [*request.images, None, None]
    body = RelayRequest(
        user_prompt=request.prompt,
        aspect_ratio=_aspect_ratio(request),
        image_url=images[0],
        image_end_url=images[1],
        model_name=model or None,
        duration=_duration(request.duration),
        extra=dict(request.params),
    )
    return LumaCall(path="/generations", kind="video", body=body, warnings=_warnings(request))


def _common_checks(request: TaskRequest) -> None:
    if request.n is not None and request.n > 1:
        raise UnsupportedFeature("Luma makes one generation per request; submit several", path="n")


def _warnings(request: TaskRequest) -> tuple[CallWarning, ...]:
    return tuple(
        CallWarning(setting=name, message=f"Luma has no {name.replace('_', ' ')}; it was not sent")
        for name in _IGNORED
        if getattr(request, name) is not None
    )


def _aspect_ratio(request: TaskRequest) -> str | None:
    ratio = request.aspect_ratio
    path = "aspect_ratio"
    if request.size not in (None, "auto"):
        assert request.size is not None
        width, _, height = request.size.partition("x")
        w, h = int(width), int(height)
        divisor = math.gcd(w, h)
        size_ratio = f"{w // divisor}:{h // divisor}"
        if ratio is not None and ratio != size_ratio:
            raise InvalidRequest(f"size {request.size} is {size_ratio}, not {ratio}", path="size")
        ratio, path = size_ratio, "size"
    if ratio is not None and ratio not in ASPECT_RATIOS:
        raise InvalidRequest(f"Luma takes the aspect ratios {sorted(ASPECT_RATIOS)}, got {ratio}", path=path)
    return ratio


def _duration(duration: float | None) -> str | None:
    if duration is None:
        return None
    if not float(duration).is_integer():
        raise InvalidRequest(f"Luma durations are whole seconds ('5s', '9s'), got {duration!r}", path="duration")
    return f"{int(duration)}s"


def _url(uri: str, index: int) -> str:
    if not uri.startswith(("https://", "http://")):
        raise InvalidRequest("Luma fetches images by URL (no data: URIs or uploads)", path=f"images[{index}]")
    return uri


def _keyframe(value: Any, path: str) -> Keyframe:
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind == "image" and isinstance(value.get("url"), str):
            return Keyframe(type="image", url=str(value["url"]))
        if kind == "generation" and isinstance(value.get("id"), str):
            return Keyframe(type="generation", id=str(value["id"]))
    elif isinstance(value, str) and value:
        if value.startswith(("https://", "http://")):
            return Keyframe(type="image", url=value)
        if not value.startswith("data:"):
            return Keyframe(type="generation", id=value)
    raise InvalidRequest("must be an image URL, a generation id, or a keyframe object", path=path)


def _concepts(value: Any) -> tuple[Concept, ...]:
    if isinstance(value, list | tuple):
        out = []
        for item in value:
            if isinstance(item, str):
                out.append(Concept(key=item))
            elif isinstance(item, Mapping) and isinstance(item.get("key"), str):
                out.append(Concept(key=str(item["key"])))
            else:
                break
        else:
            return tuple(out)
    raise InvalidRequest("must be a list of concept keys", path="params.concepts")
