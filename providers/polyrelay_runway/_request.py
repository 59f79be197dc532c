"""TaskRequest → a Runway create-task call: which endpoint, and its camelCase body (wire-video-audio-workflow.md
§1.2–1.3, runwayml/sdk-python ``types/*_create_params.py``).

**Endpoint.** ``params["task"]`` names it explicitly (any of :data:`TASKS`). Otherwise the model decides when it
serves one endpoint only (:data:`MODEL_TASKS`: ``gen4_image`` → ``text_to_image``, ``gen4_aleph`` →
``video_to_video``, ``act_two`` → ``character_performance``, ``upscale_v1`` → ``video_upscale``,
``eleven_text_to_sound_v2`` → ``sound_effect``, ``eleven_multilingual_v2``/``eleven_v3`` → ``text_to_speech``),
then ``kind``: ``image`` → ``text_to_image``; ``audio`` → ``text_to_speech`` when a ``voice`` param is given, else
``sound_effect``; ``video`` (the default) → ``image_to_video`` with reference images, ``video_to_video`` with a
``video`` param, else ``text_to_video``.

**Fields.** ``prompt`` → ``promptText``; ``images`` → ``promptImage`` (image_to_video: one image as a string, two
as first/last keyframes), ``referenceImages`` (text_to_image; tags from ``params["reference_tags"]``),
``references`` (video_to_video) or ``character`` (Act-Two, whose driving video is ``params["reference_video"]``);
``params["video"]`` → ``videoUri``; ``size`` ``"1280x720"`` → ``ratio`` ``"1280:720"``, ``aspect_ratio`` →
``ratio`` via :data:`VIDEO_RATIOS` / :data:`IMAGE_RATIOS` (``params["ratio"]`` wins); ``duration`` → integer
seconds for video (float for sound effects); ``seed``; ``negative_prompt`` → ``negativePrompt`` (text/image to
video only); ``params["voice"]`` (a preset name or an object) → ``voice``. Every other param is sent as is, its
name camelCased (``content_moderation`` → ``contentModeration``). ``n`` > 1 is unsupported (one output per task).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from polyrelay.errors import InvalidRequest, UnsupportedFeature
from polyrelay.types.completion import CallWarning
from polyrelay.types.media import TaskKind, TaskRequest
from polyrelay_runway._wire import CreateTaskBody, MediaRef, PromptImage, ReferenceImage, VoicePreset, camel

#: Task endpoints (``POST /v1/<name>``) and the kind of output each produces.
TASKS: Mapping[str, TaskKind] = {
    "image_to_video": "video",
    "text_to_video": "video",
    "video_to_video": "video",
    "text_to_image": "image",
    "character_performance": "video",
    "video_upscale": "video",
    "sound_effect": "audio",
    "text_to_speech": "audio",
}
#: Models that serve exactly one endpoint.
MODEL_TASKS: Mapping[str, str] = {
    "gen4_image": "text_to_image",
    "gen4_image_turbo": "text_to_image",
    "gemini_2.5_flash": "text_to_image",
    "gen4_aleph": "video_to_video",
    "act_two": "character_performance",
    "upscale_v1": "video_upscale",
    "eleven_text_to_sound_v2": "sound_effect",
    "eleven_multilingual_v2": "text_to_speech",
    "eleven_v3": "text_to_speech",
}
#: ``aspect_ratio`` → video ``ratio`` (gen4_turbo / gen4.5 / veo pixel ratios).
VIDEO_RATIOS: Mapping[str, str] = {
    "16:9": "1280:720",
    "9:16": "720:1280",
    "1:1": "960:960",
    "4:3": "1104:832",
    "3:4": "832:1104",
    "21:9": "1584:672",
}
#: ``aspect_ratio`` → ``text_to_image`` ``ratio``.
IMAGE_RATIOS: Mapping[str, str] = {
    "16:9": "1920:1080",
    "9:16": "1080:1920",
    "1:1": "1024:1024",
    "4:3": "1440:1080",
    "3:4": "1080:1440",
    "21:9": "2112:912",
}
_NEEDS_PROMPT = frozenset({"text_to_video", "text_to_image", "sound_effect", "text_to_speech"})
_NEGATIVE_PROMPT = frozenset({"text_to_video", "image_to_video"})
_NO_RATIO = frozenset({"video_upscale", "sound_effect", "text_to_speech"})
_MAX_SEED = 4_294_967_295
# Params consumed by the mapping (never forwarded as they are).
_CONSUMED = ("task", "video", "reference_video", "reference_tags", "voice", "ratio")


@attrs.frozen(kw_only=True)
class RunwayCall:
    endpoint: str
    """``image_to_video``, ``text_to_image``, ...: the path under the base URL."""
    kind: TaskKind
    body: CreateTaskBody
    warnings: tuple[CallWarning, ...] = ()


def select_endpoint(request: TaskRequest, model: str) -> str:
    """Which endpoint runs ``request`` (see the module docstring)."""
    explicit = request.params.get("task")
    if explicit is not None:
        if explicit not in TASKS:
            raise InvalidRequest(f"must be one of {sorted(TASKS)}, got {explicit!r}", path="params.task")
        endpoint = str(explicit)
    elif model in MODEL_TASKS:
        endpoint = MODEL_TASKS[model]
    elif request.kind == "image":
        endpoint = "text_to_image"
    elif request.kind == "audio":
        endpoint = "text_to_speech" if "voice" in request.params else "sound_effect"
    elif request.kind == "workflow":
        raise UnsupportedFeature("Runway tasks are video, image or audio generations", path="kind", provider="runway")
    elif request.images:
        endpoint = "image_to_video"
    elif "video" in request.params:
        endpoint = "video_to_video"
    else:
        endpoint = "text_to_video"
    if request.kind is not None and request.kind != TASKS[endpoint]:
        raise InvalidRequest(f"{endpoint} produces {TASKS[endpoint]}, not {request.kind}", path="kind")
    return endpoint


def build_call(request: TaskRequest, model: str) -> RunwayCall:
    """The endpoint and body for ``request`` on ``model``; :class:`InvalidRequest` naming the field otherwise."""
    endpoint = select_endpoint(request, model)
    kind = TASKS[endpoint]
    params = dict(request.params)
    consumed = {name: params.pop(name) for name in _CONSUMED if name in params}
    warnings: list[CallWarning] = []
    if request.n is not None and request.n > 1:
        raise UnsupportedFeature("Runway produces one output per task; submit several tasks", path="n")
    if endpoint in _NEEDS_PROMPT and not request.prompt:
        raise InvalidRequest(f"{endpoint} needs a prompt", path="prompt")
    fields: dict[str, Any] = {"model": model, "prompt_text": request.prompt}
    images = request.images
    if endpoint == "image_to_video":
        fields["prompt_image"] = _keyframes(images)
    elif endpoint == "text_to_image" and images:
        tags = consumed.get("reference_tags") or ()
        fields["reference_images"] = tuple(
            ReferenceImage(uri=uri, tag=str(tags[i]) if i < len(tags) else None) for i, uri in enumerate(images)
        )
    elif endpoint == "video_to_video":
        fields["video_uri"] = _video(consumed, endpoint)
        if images:
            fields["references"] = tuple(MediaRef(type="image", uri=uri) for uri in images)
    elif endpoint == "video_upscale":
        fields["video_uri"] = _video(consumed, endpoint)
        fields["prompt_text"] = None
    elif endpoint == "character_performance":
        if not images:
            raise InvalidRequest("character_performance needs the character image as the first image", path="images")
        reference = consumed.get("reference_video")
        if not isinstance(reference, str) or not reference:
            raise InvalidRequest("character_performance needs the performance video URL", path="params.reference_video")
        fields["character"] = MediaRef(type="image", uri=images[0])
        fields["reference"] = MediaRef(type="video", uri=reference)
        fields["prompt_text"] = None
    elif images:
        raise InvalidRequest(f"{endpoint} takes no reference images", path="images")
    if endpoint == "text_to_speech":
        fields["voice"] = _voice(consumed.get("voice"))
    ratio = _ratio(request, consumed.get("ratio"), kind)
    if ratio is not None:
        if endpoint in _NO_RATIO:
            warnings.append(CallWarning(setting="ratio", message=f"{endpoint} takes no ratio; it was not sent"))
        else:
            fields["ratio"] = ratio
    if request.duration is not None:
        fields["duration"] = _duration(request.duration, endpoint)
    if request.seed is not None:
        if not 0 <= request.seed <= _MAX_SEED:
            raise InvalidRequest(f"must be between 0 and {_MAX_SEED}", path="seed")
        fields["seed"] = request.seed
    if request.negative_prompt is not None:
        if endpoint in _NEGATIVE_PROMPT:
            fields["negative_prompt"] = request.negative_prompt
        else:
            warnings.append(
                CallWarning(setting="negative_prompt", message=f"{endpoint} takes no negative prompt; it was not sent")
            )
    extra = {camel(name): value for name, value in params.items()}
    body = CreateTaskBody(**fields, extra=extra)
    return RunwayCall(endpoint=endpoint, kind=kind, body=body, warnings=tuple(warnings))


def _keyframes(images: tuple[str, ...]) -> str | tuple[PromptImage, ...]:
    if not images:
        raise InvalidRequest("image_to_video needs a start image", path="images")
    if len(images) == 1:
        return images[0]
    if len(images) > 2:
        raise InvalidRequest("image_to_video takes a first and a last frame at most", path="images")
    return (PromptImage(uri=images[0], position="first"), PromptImage(uri=images[1], position="last"))


def _video(consumed: Mapping[str, Any], endpoint: str) -> str:
    video = consumed.get("video")
    if not isinstance(video, str) or not video.startswith(("https://", "http://", "data:")):
        raise InvalidRequest(f"{endpoint} needs the input video as an https URL or data URI", path="params.video")
    return video


def _voice(value: Any) -> VoicePreset | None:
    if value is None:
        return None
    if isinstance(value, str) and value:
        return VoicePreset(preset_id=value)
    if isinstance(value, Mapping) and isinstance(value.get("presetId", value.get("preset_id")), str):
        return VoicePreset(preset_id=str(value.get("presetId", value.get("preset_id"))))
    raise InvalidRequest("must be a preset voice name such as 'Maya' or {'presetId': ...}", path="params.voice")


def _ratio(request: TaskRequest, explicit: Any, kind: TaskKind) -> str | None:
    if explicit is not None:
        if not isinstance(explicit, str) or ":" not in explicit:
            raise InvalidRequest(f"must look like '1280:720', got {explicit!r}", path="params.ratio")
        return explicit
    if request.size not in (None, "auto"):
        assert request.size is not None
        width, _, height = request.size.partition("x")
        return f"{width}:{height}"
    if request.aspect_ratio is not None:
        table = IMAGE_RATIOS if kind == "image" else VIDEO_RATIOS
        ratio = table.get(request.aspect_ratio)
        if ratio is None:
            raise InvalidRequest(
                f"Runway takes {sorted(table)} (or a size / params.ratio), got {request.aspect_ratio!r}",
                path="aspect_ratio",
            )
        return ratio
    return None


def _duration(duration: float, endpoint: str) -> int | float:
    if endpoint == "sound_effect":
        return float(duration)
    if endpoint in ("text_to_image", "text_to_speech", "video_upscale", "character_performance"):
        raise InvalidRequest(f"{endpoint} takes no duration", path="duration")
    if not float(duration).is_integer():
        raise InvalidRequest(f"Runway video durations are whole seconds, got {duration!r}", path="duration")
    return int(duration)
