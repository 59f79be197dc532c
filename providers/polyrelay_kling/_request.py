"""TaskRequest → a Kling create call: endpoint family and body (wire-video-audio-workflow.md §3.3).

**Endpoint.** ``params["task"]`` picks one of :data:`FAMILIES` explicitly; otherwise ``kind == "image"`` →
``/v1/images/generations``; video: one or two images → ``/v1/videos/image2video`` (first and end frame), three or
four → ``/v1/videos/multi-image2video``, none → ``/v1/videos/text2video``. The family is stored in the upstream id
(``"image2video:<task_id>"``) because a task is queried on its own path family.

**Fields.** ``model_name`` = the model; ``prompt``; ``negative_prompt``; ``aspect_ratio`` (a ``size`` is reduced to
its ratio); ``duration`` → the string ``"5"``/``"10"``; images → ``image`` / ``image_tail`` / ``image_list`` (Kling
takes a URL, or raw base64 without the ``data:`` prefix, which is stripped here); ``n`` (images only); every other
param is sent as is (``mode``, ``cfg_scale``, ``camera_control``, ``sound``, ``callback_url``,
``external_task_id``, ``image_reference``, ``resolution``, ...). Kling has no seed (dropped with a warning).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from polyrelay.errors import InvalidRequest, UnsupportedFeature
from polyrelay.types.completion import CallWarning
from polyrelay.types.media import TaskKind, TaskRequest
from polyrelay_kling._wire import CreateBody, ImageItem

#: Endpoint families: name in the upstream id → (path, output kind).
FAMILIES: Mapping[str, tuple[str, TaskKind]] = {
    "text2video": ("/v1/videos/text2video", "video"),
    "image2video": ("/v1/videos/image2video", "video"),
    "multi-image2video": ("/v1/videos/multi-image2video", "video"),
    "video-extend": ("/v1/videos/video-extend", "video"),
    "images": ("/v1/images/generations", "image"),
}
VIDEO_RATIOS = frozenset({"16:9", "9:16", "1:1"})
IMAGE_RATIOS = frozenset({"16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9"})
_MAX_IMAGES = 9


@attrs.frozen(kw_only=True)
class KlingCall:
    family: str
    path: str
    kind: TaskKind
    body: CreateBody
    warnings: tuple[CallWarning, ...] = ()


def select_family(request: TaskRequest) -> str:
    explicit = request.params.get("task")
    if explicit is not None:
        if explicit not in FAMILIES:
            raise InvalidRequest(f"must be one of {sorted(FAMILIES)}, got {explicit!r}", path="params.task")
        family = str(explicit)
    elif request.kind == "image":
        family = "images"
    elif request.kind not in (None, "video"):
        raise UnsupportedFeature(f"Kling generates video and images, not {request.kind}", path="kind", provider="kling")
    elif len(request.images) > 2:
        family = "multi-image2video"
    elif request.images:
        family = "image2video"
    else:
        family = "text2video"
    if request.kind is not None and request.kind != FAMILIES[family][1]:
        raise InvalidRequest(f"{family} produces {FAMILIES[family][1]}, not {request.kind}", path="kind")
    return family


def build_call(request: TaskRequest, model: str) -> KlingCall:
    """The endpoint and body for ``request`` on ``model``; :class:`InvalidRequest` naming the field otherwise."""
    family = select_family(request)
    path, kind = FAMILIES[family]
    params = dict(request.params)
    params.pop("task", None)
    warnings: list[CallWarning] = []
    if request.seed is not None:
        warnings.append(CallWarning(setting="seed", message="Kling has no seed; it was not sent"))
    images = tuple(_image(uri) for uri in request.images)
    fields: dict[str, Any] = {"model_name": model, "prompt": request.prompt, "negative_prompt": request.negative_prompt}
    if kind == "image":
        if request.n is not None and request.n > _MAX_IMAGES:
            raise InvalidRequest(f"Kling makes 1 to {_MAX_IMAGES} images per task", path="n")
        if len(images) > 1:
            raise InvalidRequest("Kling image generation takes one reference image", path="images")
        fields.update(n=request.n, image=images[0] if images else None)
        if request.duration is not None:
            raise InvalidRequest("image generation takes no duration", path="duration")
    else:
        if request.n is not None and request.n > 1:
            raise UnsupportedFeature("Kling makes one video per task; submit several", path="n")
        fields["duration"] = _duration(request.duration)
        if family == "text2video":
            if not request.prompt:
                raise InvalidRequest("text2video needs a prompt", path="prompt")
            if images:
                raise InvalidRequest("text2video takes no images", path="images")
        elif family == "image2video":
            if not images and "image" not in params:
                raise InvalidRequest("image2video needs a start image", path="images")
            if len(images) > 2:
                raise InvalidRequest("image2video takes a start and an end frame at most", path="images")
            fields.update(image=images[0] if images else None, image_tail=images[1] if len(images) > 1 else None)
        elif family == "multi-image2video":
            if not 1 <= len(images) <= 4:
                raise InvalidRequest("multi-image2video takes 1 to 4 images", path="images")
            fields["image_list"] = tuple(ImageItem(image=image) for image in images)
        elif family == "video-extend":
            video_id = params.pop("video_id", None)
            if not isinstance(video_id, str) or not video_id:
                raise InvalidRequest("video-extend needs the id of a Kling video", path="params.video_id")
            fields.update(video_id=video_id, model_name=None, duration=None)
    fields["aspect_ratio"] = _aspect_ratio(request, IMAGE_RATIOS if kind == "image" else VIDEO_RATIOS)
    body = CreateBody(**fields, extra=params)
    return KlingCall(family=family, path=path, kind=kind, body=body, warnings=tuple(warnings))


def _image(uri: str) -> str:
    """Kling takes an image URL or raw base64: a data: URI loses its prefix."""
    if uri.startswith("data:"):
        head, _, payload = uri.partition(",")
        if ";base64" not in head or not payload:
            raise InvalidRequest("data: URIs must be base64-encoded", path="images")
        return payload
    return uri


def _duration(duration: float | None) -> str | None:
    if duration is None:
        return None
    if not float(duration).is_integer():
        raise InvalidRequest(f"Kling durations are whole seconds ('5', '10'), got {duration!r}", path="duration")
    return str(int(duration))


def _aspect_ratio(request: TaskRequest, allowed: frozenset[str]) -> str | None:
    ratio, path = request.aspect_ratio, "aspect_ratio"
    if request.size not in (None, "auto"):
        assert request.size is not None
        width, _, height = request.size.partition("x")
        w, h = int(width), int(height)
        divisor = math.gcd(w, h)
        ratio, path = f"{w // divisor}:{h // divisor}", "size"
    if ratio is not None and ratio not in allowed:
        raise InvalidRequest(f"Kling takes the aspect ratios {sorted(allowed)} here, got {ratio}", path=path)
    return ratio
