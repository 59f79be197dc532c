"""Suno relay wire models and their one converter (snake_case).

new-api / Suno-API format (wire-video-audio-workflow.md §4.1; Calcium-Ion/new-api ``dto/suno.go``, Suno-API
``entity/po/task*.go``): submit bodies, the ``{code, message, data}`` envelope, the task DTO and Suno clips.
gcui-art/suno-api format (§4.2; ``src/lib/SunoApi.ts``, ``swagger-suno-api.json``): generate bodies and AudioInfo.
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


# -- new-api / Suno-API ---------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SubmitMusic:
    """``POST /suno/submit/music`` (``dto.SunoSubmitReq``): ``gpt_description_prompt`` (inspiration mode) or
    ``prompt`` = lyrics with ``title``/``tags`` (custom mode); ``mv`` the model (``chirp-v3-5``, ...)."""

    prompt: str | None = None
    gpt_description_prompt: str | None = None
    mv: str | None = None
    title: str | None = None
    tags: str | None = None
    make_instrumental: bool | None = None
    continue_clip_id: str | None = None
    continue_at: float | None = None
    task_id: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class SubmitLyrics:
    """``POST /suno/submit/lyrics`` and gcui's ``POST /api/generate_lyrics``."""

    prompt: str
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class FetchBatch:
    """``POST /suno/fetch``."""

    ids: tuple[str, ...]
    action: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class Envelope:
    """``{"code": "success" | "<snake_code>", "message", "data"}``: success is ``code == "success"``."""

    code: str
    message: str | None = None
    data: Any = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class ClipMetadata:
    tags: str | None = None
    prompt: str | None = None
    """The lyrics."""
    gpt_description_prompt: str | None = None
    type: str | None = None
    duration: float | None = None
    """Seconds; null until the clip is complete."""
    error_type: str | None = None
    error_message: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class Clip:
    """A Suno feed item: ``status`` submitted | queued | streaming | complete | error."""

    id: str
    status: str
    title: str | None = None
    audio_url: str | None = None
    video_url: str | None = None
    image_url: str | None = None
    image_large_url: str | None = None
    model_name: str | None = None
    major_model_version: str | None = None
    created_at: str | None = None
    metadata: ClipMetadata | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class LyricsResult:
    """A lyrics task's ``data`` (new-api) and gcui's ``generate_lyrics`` answer."""

    text: str
    title: str | None = None
    status: str | None = None
    id: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class TaskDto:
    """new-api's task (``dto.TaskDto``): ``status`` NOT_START | SUBMITTED | QUEUED | IN_PROGRESS | FAILURE | SUCCESS
    | UNKNOWN, ``progress`` ``"0%"``..``"100%"``, ``data`` the clips (MUSIC) or the lyrics (LYRICS)."""

    task_id: str
    status: str
    action: str | None = None
    fail_reason: str | None = None
    submit_time: int | None = None
    start_time: int | None = None
    finish_time: int | None = None
    progress: str | None = None
    data: Any = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


# -- gcui-art/suno-api ----------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class GcuiGenerate:
    """``POST /api/generate`` (``prompt`` = a description) and ``POST /api/custom_generate`` (``prompt`` = lyrics,
    with ``tags``, ``negative_tags``, ``title``)."""

    prompt: str
    make_instrumental: bool = False
    model: str | None = None
    wait_audio: bool = False
    tags: str | None = None
    negative_tags: str | None = None
    title: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@attrs.frozen(kw_only=True)
class AudioInfo:
    """gcui's clip: ``duration`` may be a number or a numeric string."""

    id: str
    status: str
    title: str | None = None
    image_url: str | None = None
    lyric: str | None = None
    audio_url: str | None = None
    video_url: str | None = None
    created_at: str | None = None
    model_name: str | None = None
    gpt_description_prompt: str | None = None
    prompt: str | None = None
    type: str | None = None
    tags: str | None = None
    negative_tags: str | None = None
    duration: str | float | None = None
    error_message: str | None = None
    extra: Mapping[str, Any] = _extra()
    explicit_nulls: frozenset[str] | None = _nulls()


@functools.cache
def converter() -> WireConverter:
    """The Suno relay wire converter (built once)."""
    conv = WireConverter()
    conv.register_structure_hook(str | float | None, _str_or_number)
    conv.register_structure_hook(float | None, _number)
    return conv


def _str_or_number(value: Any, _: Any) -> str | float | None:
    if value is None or isinstance(value, str):
        return value
    return _number(value, None)


def _number(value: Any, _: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__}")


def parse(data: Any, cls: type[T], *, provider: str, what: str) -> T:
    """Structure an upstream body; :class:`InvalidUpstreamResponse` naming the bad field otherwise."""
    try:
        return converter().structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        path, message = first_error(exc)
        raise InvalidUpstreamResponse(
            f"unexpected {what} from the Suno relay: {path or 'body'}: {message}", provider=provider
        ) from exc


def dump(body: SubmitMusic | SubmitLyrics | FetchBatch | GcuiGenerate) -> dict[str, Any]:
    out: dict[str, Any] = converter().unstructure(body)
    return out
