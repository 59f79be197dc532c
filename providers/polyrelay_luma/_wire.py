"""Luma wire models (lumalabs/lumaai-api ``openapi.yaml``, lumaai-python ``types/generation*.py``;
wire-video-audio-workflow.md §2.3–2.4), the relays' reverse-engineered format (§2.6), and their one converter.
The official wire is snake_case."""

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
class Keyframe:
    """``{"type": "image", "url"}`` or ``{"type": "generation", "id"}`` (extend / chain a generation)."""

    type: str
    url: str | None = None
    id: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class Keyframes:
    frame0: Keyframe | None = None
    frame1: Keyframe | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class Concept:
    key: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class VideoRequest:
    """``POST /generations/video``."""

    model: str
    prompt: str | None = None
    aspect_ratio: str | None = None
    loop: bool | None = None
    duration: str | None = None
    resolution: str | None = None
    keyframes: Keyframes | None = None
    concepts: tuple[Concept, ...] | None = None
    callback_url: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ImageRef:
    url: str
    weight: float | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ImageRequest:
    """``POST /generations/image`` (photon)."""

    model: str
    prompt: str | None = None
    aspect_ratio: str | None = None
    image_ref: tuple[ImageRef, ...] | None = None
    callback_url: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class Assets:
    video: str | None = None
    image: str | None = None
    progress_video: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class Generation:
    """The Generation object (create answers 201 with it; ``GET /generations/{id}`` returns it)."""

    id: str
    state: str
    generation_type: str | None = None
    failure_reason: str | None = None
    created_at: str | None = None
    assets: Assets | None = None
    model: str | None = None
    request: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


# -- relay format (§2.6) ------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RelayRequest:
    """``POST {relay}/luma/generations``: the Luma web app's fields; images as URL or base64."""

    user_prompt: str
    expand_prompt: bool | None = None
    aspect_ratio: str | None = None
    loop: bool | None = None
    image_url: str | None = None
    image_end_url: str | None = None
    notify_hook: str | None = None
    model_name: str | None = None
    duration: str | None = None
    resolution: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class RelayMedia:
    url: str | None = None
    width: int | None = None
    height: int | None = None
    download_url: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class RelayGeneration:
    """A relay generation: ``state`` pending | processing | completed | failed, ``video`` once completed."""

    id: str
    state: str
    prompt: str | None = None
    created_at: str | None = None
    video: RelayMedia | None = None
    thumbnail: RelayMedia | None = None
    last_frame: RelayMedia | None = None
    estimate_wait_seconds: float | None = None
    failure_reason: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@functools.cache
def converter() -> WireConverter:
    """The Luma wire converter (snake_case; built once)."""
    return WireConverter()


def parse(data: Any, cls: type[T], *, provider: str, what: str) -> T:
    """Structure an upstream body; :class:`InvalidUpstreamResponse` naming the bad field otherwise."""
    try:
        return converter().structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        path, message = first_error(exc)
        raise InvalidUpstreamResponse(
            f"unexpected {what} from Luma: {path or 'body'}: {message}", provider=provider
        ) from exc


def dump(body: VideoRequest | ImageRequest | RelayRequest) -> dict[str, Any]:
    out: dict[str, Any] = converter().unstructure(body)
    return out
