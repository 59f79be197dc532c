"""The Ideogram API wire format as typed attrs models, and its one converter.

Source: the Ideogram OpenAPI (developer.ideogram.ai, mirrored in api-evangelist/ideogram) as summarised in
wire-images.md §6. The legacy ``POST /generate`` takes JSON (``{"image_request": {...}}``); the 3.0 endpoints take
multipart form data, whose text fields are described here by :class:`V3Fields` and written by :func:`form_fields`.
Both answer with the same body: ``created`` is an ISO-8601 string, ``data[].url`` is null when the image was
withheld by the safety check (``is_image_safe: false``).

Every model carries the ``extra`` / ``explicit_nulls`` bookkeeping of :mod:`polyrelay.serde`, so fields Ideogram adds
later survive a parse.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import attrs

from polyrelay.errors import InvalidUpstreamResponse
from polyrelay.serde import WireConverter, first_error
from polyrelay.serde import explicit_nulls_field as _nulls
from polyrelay.serde import extra_field as _extra

__all__ = [
    "GenerateRequest",
    "GenerateResponse",
    "ImageObject",
    "LegacyImageRequest",
    "V3Fields",
    "form_fields",
    "parse_response",
    "to_wire",
]


@attrs.frozen(kw_only=True)
class LegacyImageRequest:
    """``image_request`` of ``POST /generate`` (OpenAPI ``ImageRequest``)."""

    prompt: str
    aspect_ratio: str | None = None
    model: str | None = None
    magic_prompt_option: str | None = None
    seed: int | None = None
    style_type: str | None = None
    negative_prompt: str | None = None
    num_images: int | None = None
    resolution: str | None = None
    color_palette: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class GenerateRequest:
    """The JSON body of the legacy ``POST /generate``."""

    image_request: LegacyImageRequest
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class V3Fields:
    """The text fields of the Ideogram 3.0 multipart endpoints (which of them an endpoint takes is checked by
    the request builder); image parts are sent beside them."""

    prompt: str | None = None
    seed: int | None = None
    resolution: str | None = None
    aspect_ratio: str | None = None
    rendering_speed: str | None = None
    magic_prompt: str | None = None
    negative_prompt: str | None = None
    num_images: int | None = None
    image_weight: int | None = None
    color_palette: Mapping[str, Any] | None = None
    style_codes: tuple[str, ...] | None = None
    style_type: str | None = None
    style_preset: str | None = None
    custom_model_uri: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ImageObject:
    """One entry of ``data`` (OpenAPI ``ImageObject`` / ``ImageGenerationObjectV3``)."""

    url: str | None = None
    prompt: str | None = None
    resolution: str | None = None
    upscaled_resolution: str | None = None
    is_image_safe: bool | None = None
    seed: int | None = None
    style_type: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class GenerateResponse:
    """The body every generate / edit / remix / reframe / replace-background call answers with."""

    created: str | None = None
    data: tuple[ImageObject, ...] = ()
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@functools.cache
def _converter() -> WireConverter:
    return WireConverter()


def to_wire(obj: Any) -> Any:
    """JSON-ready data of a model here (``None`` fields left out)."""
    return _converter().unstructure(obj)


def form_fields(fields: V3Fields) -> list[tuple[str, str]]:
    """``(name, value)`` text parts of a 3.0 multipart body: numbers as decimal text, ``style_codes`` as one repeated
    part per code, ``color_palette`` as JSON text."""
    out: list[tuple[str, str]] = []
    for name, value in to_wire(fields).items():
        if isinstance(value, list):
            out.extend((name, str(item)) for item in value)
        elif isinstance(value, dict):
            out.append((name, json.dumps(value, separators=(",", ":"))))
        else:
            out.append((name, str(value)))
    return out


def parse_response(data: Any, *, provider: str = "") -> GenerateResponse:
    """Structure a 200 body; :class:`InvalidUpstreamResponse` naming the field on failure."""
    try:
        out: GenerateResponse = _converter().structure(data, GenerateResponse)
    except Exception as exc:  # any structuring failure means the upstream sent something else
        path, msg = first_error(exc)
        raise InvalidUpstreamResponse(
            f"unexpected Ideogram response body at {path or '<root>'}: {msg}", provider=provider
        ) from exc
    return out
