"""TaskRequest → Replicate create-prediction call (wire-images.md §4.2, §4.10).

The upstream model (``ctx.model``) picks the endpoint:

- ``owner/name`` → ``POST /models/{owner}/{name}/predictions`` (official models, latest version);
- ``owner/name:<version>`` or a bare 64-hex version id → ``POST /predictions`` with ``version``.

``input`` is model-specific (each model has its own schema), so the mapping is generic and documented:
``prompt``; ``size`` ``"WxH"`` → ``width``/``height``; ``aspect_ratio``; ``n`` > 1 → ``num_outputs``; ``seed``;
``negative_prompt``; ``duration``; input images → ``input_image``, ``input_image_2``, … (another base name with the
``image_key`` param or provider option, e.g. ``image`` for SDXL); ``mask`` → ``mask``. Every other param goes into
``input`` as is (``output_format``, ``guidance``, ``go_fast``...), except ``webhook`` and ``webhook_events_filter``
(top-level fields). The OpenAI-only settings ``quality``, ``style``, ``background`` and ``user`` are dropped with a
warning.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import attrs

from polyrelay.errors import InvalidRequest
from polyrelay.types.completion import CallWarning
from polyrelay.types.media import TaskRequest
from polyrelay_replicate._wire import PredictionRequest

_OWNER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VERSION = re.compile(r"^[0-9a-f]{64}$")
_TOP_LEVEL = ("webhook", "webhook_events_filter")
_IGNORED = ("quality", "style", "background", "user")
_IMAGE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@attrs.frozen(kw_only=True)
class Route:
    path: str
    """Path under the base URL, e.g. ``/models/black-forest-labs/flux-schnell/predictions``."""
    version: str | None = None


def route_for(model: str) -> Route:
    """Where predictions of ``model`` are created; :class:`InvalidRequest` for a malformed model id."""
    name, sep, version = model.partition(":")
    if sep:
        if not _OWNER_NAME.match(name) or not _VERSION.match(version):
            raise InvalidRequest(_MODEL_HELP.format(model=model), path="model")
        return Route(path="/predictions", version=version)
    if _VERSION.match(model):
        return Route(path="/predictions", version=model)
    if not _OWNER_NAME.match(model):
        raise InvalidRequest(_MODEL_HELP.format(model=model), path="model")
    owner, _, short = model.partition("/")
    return Route(path=f"/models/{quote(owner, safe='')}/{quote(short, safe='')}/predictions")


_MODEL_HELP = "a Replicate model is 'owner/name', 'owner/name:<64-hex version>' or a version id, got {model!r}"


def build_body(
    request: TaskRequest, route: Route, *, image_key: str
) -> tuple[PredictionRequest, tuple[CallWarning, ...]]:
    params = dict(request.params)
    key = params.pop("image_key", image_key)
    if not isinstance(key, str) or not _IMAGE_KEY.match(key):
        raise InvalidRequest(f"must be an input field name, got {key!r}", path="image_key")
    warnings = [
        CallWarning(setting=name, message=f"{name} has no Replicate equivalent; it was not sent")
        for name in _IGNORED
        if params.pop(name, None) is not None
    ]
    top = {name: params.pop(name) for name in _TOP_LEVEL if name in params}
    values: dict[str, Any] = {"prompt": request.prompt}
    if request.size not in (None, "auto"):
        assert request.size is not None
        width, _, height = request.size.partition("x")
        values["width"], values["height"] = int(width), int(height)
    if request.n is not None and request.n > 1:
        values["num_outputs"] = request.n
    values.update(
        aspect_ratio=request.aspect_ratio,
        seed=request.seed,
        negative_prompt=request.negative_prompt,
        duration=request.duration,
    )
    for index, image in enumerate(request.images):
        values[key if index == 0 else f"{key}_{index + 1}"] = image
    values.update(params)
    payload = {k: v for k, v in values.items() if v is not None}
    filters = top.get("webhook_events_filter")
    body = PredictionRequest(
        input=payload,
        version=route.version,
        webhook=top.get("webhook"),
        webhook_events_filter=tuple(filters) if isinstance(filters, list | tuple) else None,
    )
    return body, tuple(warnings)
