"""Media generation types: the OpenAI images shape and the normalized generation task.

Image, video, music and workflow upstreams mostly work as submit → poll → fetch. Providers report a
:class:`TaskSnapshot` (upstream id, status, progress, outputs); the router wraps it into a :class:`Task` whose ``id``
is an opaque string encoding the provider instance, the model and the upstream id, so any process with the same
config can poll a task another process created.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from polyrelay.serde import NOT_WIRE
from polyrelay.serde import explicit_nulls_field as _nulls
from polyrelay.serde import extra_field as _extra
from polyrelay.types.completion import ResponseMeta

__all__ = [
    "Artifact",
    "ImageData",
    "ImageRequest",
    "ImagesResponse",
    "ImagesUsage",
    "Task",
    "TaskErrorInfo",
    "TaskKind",
    "TaskRequest",
    "TaskSnapshot",
    "TaskStatus",
    "TERMINAL_STATUSES",
]

TaskKind = Literal["image", "video", "audio", "workflow"]
TaskStatus = Literal["queued", "running", "succeeded", "failed", "canceled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "canceled"})


# -- OpenAI images API ------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ImageData:
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ImagesUsage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ImagesResponse:
    """``{"created": ..., "data": [{"url" | "b64_json", "revised_prompt"}], "usage": ...}``."""

    created: int
    data: tuple[ImageData, ...] = ()
    usage: ImagesUsage | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()
    meta: ResponseMeta | None = attrs.field(default=None, repr=False, eq=False, metadata=NOT_WIRE)

    def to_dict(self) -> dict[str, Any]:
        from polyrelay.types._converters import to_json

        out: dict[str, Any] = to_json(self)
        return out


@attrs.frozen(kw_only=True)
class ImageRequest:
    """``images.generate`` arguments. Provider-specific parameters go in ``params``.

    For edits and variations, ``images`` holds the input images (data URIs or URLs) and ``mask`` the mask.
    """

    model: str
    prompt: str | None = None
    n: int | None = None
    size: str | None = None
    quality: str | None = None
    style: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    background: str | None = None
    output_format: str | None = None
    user: str | None = None
    operation: Literal["generate", "edit", "variation"] = "generate"
    images: tuple[str, ...] = ()
    mask: str | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict)


# -- generation tasks ------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Artifact:
    """One output of a task. ``url`` may expire (Flux: 10 minutes); ``extra`` keeps upstream details
    (Suno title / cover image / lyrics, Midjourney grid index, ...)."""

    url: str | None = None
    media_type: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    title: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class TaskErrorInfo:
    code: str | None = None
    message: str = ""


@attrs.frozen(kw_only=True)
class TaskRequest:
    """``router.tasks.create`` arguments. ``images`` are reference images (URLs or data URIs); everything
    provider-specific goes in ``params``."""

    model: str
    prompt: str | None = None
    kind: TaskKind | None = None
    images: tuple[str, ...] = ()
    n: int | None = None
    size: str | None = None
    aspect_ratio: str | None = None
    duration: float | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class TaskSnapshot:
    """What a provider reports about an upstream task at one moment."""

    upstream_id: str
    status: TaskStatus
    kind: TaskKind = "image"
    progress: float | None = None
    """0..1 when the upstream reports it."""
    outputs: tuple[Artifact, ...] = ()
    error: TaskErrorInfo | None = None
    raw_status: str | None = None
    actions: tuple[str, ...] = ()
    """Follow-up actions the upstream offers (Midjourney buttons' custom ids, ...)."""
    extra: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Task:
    """A generation task as the caller sees it. ``id`` is opaque; pass it to ``router.tasks.get/wait/cancel``."""

    id: str
    model: str
    provider: str
    kind: TaskKind
    status: TaskStatus
    upstream_id: str
    progress: float | None = None
    outputs: tuple[Artifact, ...] = ()
    error: TaskErrorInfo | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    raw_status: str | None = None
    actions: tuple[str, ...] = ()
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES
