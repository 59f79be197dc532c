"""Runway wire models (runwayml/sdk-python ``types/*_create_params.py``, ``task_retrieve_response.py``;
wire-video-audio-workflow.md §1.3–1.4) and their one converter. The wire is camelCase (``promptText``)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs
import cattrs

from polyrelay.errors import InvalidUpstreamResponse
from polyrelay.serde import WireConverter, first_error
from polyrelay.serde import explicit_nulls_field as _nulls
from polyrelay.serde import extra_field as _extra

T = TypeVar("T")


def camel(name: str) -> str:
    """``prompt_text`` → ``promptText`` (names already in camelCase pass through unchanged)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@attrs.frozen(kw_only=True)
class PromptImage:
    """One keyframe of ``image_to_video``: ``position`` is ``first`` or ``last``."""

    uri: str
    position: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ReferenceImage:
    """``text_to_image`` ``referenceImages[]``: the ``tag`` names it in the prompt (``@tag``)."""

    uri: str
    tag: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class MediaRef:
    """``{"type": "image"|"video", "uri"}``: video_to_video ``references[]``, Act-Two ``character``/``reference``."""

    type: str
    uri: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class VoicePreset:
    """``text_to_speech`` ``voice``: ``{"type": "runway-preset", "presetId": "Maya"}``."""

    preset_id: str
    type: str = "runway-preset"
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class CreateTaskBody:
    """The body of every ``POST /v1/<task type>``: each endpoint uses a subset of these fields (unset ones are
    not sent); provider-specific fields without a slot here travel in ``extra`` (camelCased)."""

    model: str
    prompt_text: str | None = None
    prompt_image: str | tuple[PromptImage, ...] | None = None
    video_uri: str | None = None
    ratio: str | None = None
    duration: int | float | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    audio: bool | None = None
    loop: bool | None = None
    references: tuple[MediaRef, ...] | None = None
    reference_images: tuple[ReferenceImage, ...] | None = None
    character: MediaRef | None = None
    reference: MediaRef | None = None
    voice: VoicePreset | None = None
    content_moderation: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class CreateTaskResponse:
    """Every create endpoint answers only ``{"id": "<uuid>"}``."""

    id: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class TaskObject:
    """``GET /v1/tasks/{id}``: a union discriminated on ``status`` (PENDING, THROTTLED, RUNNING with ``progress``,
    SUCCEEDED with ``output``, FAILED with ``failure``/``failureCode``, CANCELLED)."""

    id: str
    status: str
    created_at: str | None = None
    progress: float | None = None
    output: tuple[str, ...] | None = None
    failure: str | None = None
    failure_code: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@functools.cache
def converter() -> WireConverter:
    """The Runway wire converter (camelCase; built once)."""
    conv = WireConverter(rename=camel)

    def prompt_image(value: Any, _: Any) -> str | tuple[PromptImage, ...]:
        if isinstance(value, str):
            return value
        if isinstance(value, list | tuple):
            return tuple(conv.structure(item, PromptImage) for item in value)
        raise TypeError(f"expected a string or a list of keyframes, got {type(value).__name__}")

    conv.register_structure_hook(
        str | tuple[PromptImage, ...] | None, lambda v, t: None if v is None else prompt_image(v, t)
    )
    conv.register_structure_hook(int | float | None, lambda v, _: v)
    return conv


def parse(data: Any, cls: type[T], *, provider: str, what: str) -> T:
    """Structure an upstream body; :class:`InvalidUpstreamResponse` naming the bad field otherwise."""
    try:
        return converter().structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        path, message = first_error(exc)
        raise InvalidUpstreamResponse(
            f"unexpected {what} from Runway: {path or 'body'}: {message}", provider=provider
        ) from exc


def dump(body: CreateTaskBody) -> dict[str, Any]:
    out: dict[str, Any] = converter().unstructure(body)
    return out
