"""TaskRequest → a Suno relay call (wire-video-audio-workflow.md §4.1, §4.2).

**Song or lyrics.** A request makes lyrics when ``params["lyrics_only"]`` is true, ``params["task"] == "lyrics"``
or the model is new-api's pseudo-model ``suno_lyrics``; otherwise a song (two clips, as Suno always makes).
``kind`` must be ``audio`` (or unset).

**Song modes.** With ``params["lyrics"]`` it is *custom mode*: the lyrics go in ``prompt``, ``params["title"]``
and ``params["tags"]`` (the style; the request's prompt is used as the style when no tags are given). Without
lyrics it is *inspiration mode*: the request's prompt is the song description (new-api
``gpt_description_prompt``; gcui ``/api/generate`` ``prompt``). ``params["instrumental"]`` (or
``make_instrumental``) asks for no vocals. The model: ``params["mv"]``, else the upstream model when it is a Suno
model name (``chirp-v3-5``; the chat aliases ``suno-v3``/``suno-v3.5``/``suno-v4`` map to chirp names); new-api's
pseudo-model ``suno_music`` leaves it to the relay. Continuations (new-api): ``params["continue_clip_id"]``,
``continue_at`` and ``task_id`` (the relay task that made the clip) pass through.

``negative_prompt`` becomes gcui's ``negative_tags`` (new-api has none: dropped with a warning). Images are not
supported; ``size``, ``aspect_ratio``, ``duration``, ``seed`` and ``n`` do not apply (dropped with warnings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from polyrelay.errors import InvalidRequest, UnsupportedFeature
from polyrelay.types.completion import CallWarning
from polyrelay.types.media import TaskRequest
from polyrelay_suno._wire import GcuiGenerate, SubmitLyrics, SubmitMusic

Format = Literal["newapi", "suno-api"]
#: Chat-style aliases (Suno-API's ``suno-v3`` → ``chirp-v3-0`` ...).
MODEL_ALIASES: Mapping[str, str] = {
    "suno-v3": "chirp-v3-0",
    "suno-v3.5": "chirp-v3-5",
    "suno-v4": "chirp-v4",
}
_PSEUDO_MODELS = frozenset({"suno_music", "suno_lyrics", "suno"})
_NOT_APPLICABLE = ("size", "aspect_ratio", "duration", "seed", "n")
_CONSUMED = ("lyrics_only", "task", "lyrics", "title", "tags", "instrumental", "make_instrumental", "mv")


@attrs.frozen(kw_only=True)
class SunoCall:
    path: str
    action: Literal["music", "lyrics"]
    body: SubmitMusic | SubmitLyrics | GcuiGenerate
    warnings: tuple[CallWarning, ...] = ()


def is_lyrics(request: TaskRequest, model: str) -> bool:
    params = request.params
    return bool(params.get("lyrics_only")) or params.get("task") == "lyrics" or model == "suno_lyrics"


def build_call(request: TaskRequest, model: str, fmt: Format) -> SunoCall:
    """The relay call for ``request``; :class:`InvalidRequest` naming the field otherwise."""
    if request.kind not in (None, "audio"):
        raise UnsupportedFeature(f"Suno makes audio, not {request.kind}", path="kind", provider="suno")
    if request.images:
        raise UnsupportedFeature("Suno relays take no reference images", path="images", provider="suno")
    warnings = [
        CallWarning(setting=name, message=f"{name} does not apply to Suno; it was not sent")
        for name in _NOT_APPLICABLE
        if getattr(request, name) is not None
    ]
    params = dict(request.params)
    consumed = {name: params.pop(name) for name in _CONSUMED if name in params}
    if is_lyrics(request, model):
        if not request.prompt:
            raise InvalidRequest("lyrics generation needs a prompt (what the song is about)", path="prompt")
        path = "/suno/submit/lyrics" if fmt == "newapi" else "/api/generate_lyrics"
        return SunoCall(path=path, action="lyrics", body=SubmitLyrics(prompt=request.prompt), warnings=tuple(warnings))
    lyrics = _optional_str(consumed.get("lyrics"), "params.lyrics")
    title = _optional_str(consumed.get("title"), "params.title")
    tags = _optional_str(consumed.get("tags"), "params.tags")
    instrumental = consumed.get("instrumental", consumed.get("make_instrumental"))
    if instrumental is not None and not isinstance(instrumental, bool):
        raise InvalidRequest("must be true or false", path="params.instrumental")
    mv = _model(consumed.get("mv"), model)
    if lyrics is None and not request.prompt:
        raise InvalidRequest("a song needs a description (prompt) or params.lyrics", path="prompt")
    if lyrics is not None and tags is None:
        tags = request.prompt
    if fmt == "suno-api":
        body: SubmitMusic | GcuiGenerate = GcuiGenerate(
            prompt=lyrics if lyrics is not None else request.prompt or "",
            make_instrumental=bool(instrumental),
            model=mv,
            tags=tags if lyrics is not None else None,
            title=title if lyrics is not None else None,
            negative_tags=request.negative_prompt if lyrics is not None else None,
            extra=params,
        )
        if request.negative_prompt is not None and lyrics is None:
            warnings.append(_warning("negative_prompt", "gcui's /api/generate takes no negative tags"))
        path = "/api/custom_generate" if lyrics is not None else "/api/generate"
        return SunoCall(path=path, action="music", body=body, warnings=tuple(warnings))
    if request.negative_prompt is not None:
        warnings.append(_warning("negative_prompt", "new-api's Suno submit takes no negative tags"))
    body = SubmitMusic(
        prompt=lyrics,
        gpt_description_prompt=request.prompt if lyrics is None else None,
        mv=mv,
        title=title,
        tags=tags,
        make_instrumental=instrumental,
        extra=params,
    )
    return SunoCall(path="/suno/submit/music", action="music", body=body, warnings=tuple(warnings))


def _warning(setting: str, why: str) -> CallWarning:
    return CallWarning(setting=setting, message=f"{why}; it was not sent")


def _optional_str(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("must be a non-empty string", path=path)
    return value


def _model(explicit: Any, model: str) -> str | None:
    if explicit is not None:
        return _optional_str(explicit, "params.mv")
    if model in MODEL_ALIASES:
        return MODEL_ALIASES[model]
    if not model or model in _PSEUDO_MODELS:
        return None
    return model
