"""OpenAI Images wire models (platform.openai.com/docs/api-reference/images; wire-images.md §5) and the converter.

The response is structured straight into :class:`polyrelay.types.media.ImagesResponse` (it is the OpenAI shape);
unknown fields (``background``, ``output_format``, ``quality``, ``size``, usage details) are kept in ``extra``.
"""

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
class GenerationBody:
    """``POST /v1/images/generations`` (JSON). Only the fields set are sent; extra params ride in ``extra``."""

    model: str
    prompt: str
    n: int | None = None
    size: str | None = None
    quality: str | None = None
    style: str | None = None
    response_format: str | None = None
    background: str | None = None
    output_format: str | None = None
    output_compression: int | None = None
    moderation: str | None = None
    user: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ErrorDetail:
    message: str = ""
    type: str | None = None
    param: str | None = None
    code: Any = None
    """A string (sometimes a number or null)."""
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ErrorEnvelope:
    """``{"error": {"message", "type", "param", "code"}}`` (Azure adds ``inner_error``)."""

    error: ErrorDetail
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@functools.cache
def converter() -> WireConverter:
    """The OpenAI Images wire converter (built once)."""
    return WireConverter()


def parse(data: Any, cls: type[T], *, provider: str, what: str) -> T:
    """Structure an upstream body; :class:`InvalidUpstreamResponse` naming the bad field otherwise."""
    try:
        return converter().structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        path, message = first_error(exc)
        raise InvalidUpstreamResponse(
            f"unexpected {what} from OpenAI Images: {path or 'body'}: {message}", provider=provider
        ) from exc


def dump(body: GenerationBody) -> dict[str, Any]:
    out: dict[str, Any] = converter().unstructure(body)
    return out
