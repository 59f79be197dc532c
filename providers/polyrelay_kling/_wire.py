"""Kling wire models (official doc copies: common-info, text-to-video, image-to-video, image-generation;
wire-video-audio-workflow.md §3.2–3.3) and their one converter. The wire is snake_case; every answer is the
envelope ``{"code", "message", "request_id", "data"}`` with ``code == 0`` on success."""

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


@attrs.frozen(kw_only=True)
class ImageItem:
    """``multi-image2video`` ``image_list[]``."""

    image: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class CreateBody:
    """The body of ``POST /v1/videos/{text2video,image2video,multi-image2video,video-extend}`` and
    ``POST /v1/images/generations``: each endpoint uses a subset; unset fields are not sent, other documented
    fields (``camera_control``, ``static_mask``, ``callback_url``, ...) travel in ``extra``."""

    model_name: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    image: str | None = None
    image_tail: str | None = None
    image_list: tuple[ImageItem, ...] | None = None
    video_id: str | None = None
    aspect_ratio: str | None = None
    duration: str | None = None
    n: int | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class Envelope:
    code: int
    message: str | None = None
    request_id: str | None = None
    data: Any = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class VideoResult:
    """``task_result.videos[]``: ``duration`` is a string of seconds (``"5.1"``)."""

    url: str
    id: str | None = None
    duration: str | float | None = None
    watermark_url: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ImageResult:
    url: str
    index: int | None = None
    watermark_url: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class TaskResult:
    videos: tuple[VideoResult, ...] | None = None
    images: tuple[ImageResult, ...] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class TaskData:
    """``data`` of a create or query answer. Timestamps are Unix **milliseconds**."""

    task_id: str
    task_status: str
    task_status_msg: str | None = None
    task_info: Mapping[str, Any] | None = None
    task_result: TaskResult | None = None
    created_at: int | None = None
    updated_at: int | None = None
    final_unit_deduction: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@functools.cache
def converter() -> WireConverter:
    """The Kling wire converter (built once)."""
    conv = WireConverter()
    conv.register_structure_hook(str | float | None, _str_or_number)
    return conv


def _str_or_number(value: Any, _: Any) -> str | float | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected a string or a number, got {type(value).__name__}")


def parse(data: Any, cls: type[T], *, provider: str, what: str) -> T:
    """Structure an upstream body; :class:`InvalidUpstreamResponse` naming the bad field otherwise."""
    try:
        return converter().structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        path, message = first_error(exc)
        raise InvalidUpstreamResponse(
            f"unexpected {what} from Kling: {path or 'body'}: {message}", provider=provider
        ) from exc


def dump(body: CreateBody) -> dict[str, Any]:
    out: dict[str, Any] = converter().unstructure(body)
    return out
