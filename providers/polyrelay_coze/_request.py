"""TaskRequest → a Coze workflow run body (wire-video-audio-workflow.md §5.3).

``workflow_id`` is the upstream model (``coze/<workflow_id>``). ``parameters`` are the Start node's inputs:
``params["parameters"]`` (an object) as given, then every other param by name, then the request's ``prompt``
under the variable named by the ``prompt_input`` option (default ``input``), then the generic fields that are set
(``size``, ``aspect_ratio``, ``duration``, ``negative_prompt``, ``seed``, ``n``) under their own names: earlier ones
win. ``params["bot_id"]`` / ``params["app_id"]`` (or the options of the same names; never both) and
``params["ext"]`` go to the top level. Reference images have no generic slot in Coze: pass their URLs as named
parameters (``images`` is refused).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from polyrelay.errors import InvalidRequest, UnsupportedFeature
from polyrelay.types.media import TaskRequest
from polyrelay_coze._wire import RunBody

_GENERIC = ("size", "aspect_ratio", "duration", "negative_prompt", "seed", "n")
_WORKFLOW_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_workflow_id(workflow_id: str) -> str:
    if not _WORKFLOW_ID.match(workflow_id):
        raise InvalidRequest(
            f"a Coze workflow id is an id like '7404830425073352713', got {workflow_id!r}", path="model"
        )
    return workflow_id


def build_run(
    request: TaskRequest,
    workflow_id: str,
    *,
    prompt_input: str,
    bot_id: str | None,
    app_id: str | None,
    is_async: bool,
) -> RunBody:
    """The run body for ``request``; :class:`InvalidRequest` naming the field otherwise."""
    check_workflow_id(workflow_id)
    if request.images:
        raise UnsupportedFeature(
            "Coze has no generic image input: pass image URLs as named parameters", path="images", provider="coze"
        )
    params = dict(request.params)
    given = params.pop("parameters", {})
    if not isinstance(given, Mapping):
        raise InvalidRequest("must be an object of the Start node's inputs", path="params.parameters")
    bot = params.pop("bot_id", bot_id)
    app = params.pop("app_id", app_id)
    if bot is not None and app is not None:
        raise InvalidRequest("give bot_id or app_id, not both", path="params.app_id")
    ext = params.pop("ext", None)
    if ext is not None and not isinstance(ext, Mapping):
        raise InvalidRequest("must be an object", path="params.ext")
    parameters: dict[str, Any] = dict(given)
    for name, value in params.items():
        parameters.setdefault(name, value)
    if request.prompt is not None:
        parameters.setdefault(prompt_input, request.prompt)
    for name in _GENERIC:
        value = getattr(request, name)
        if value is not None:
            parameters.setdefault(name, value)
    return RunBody(
        workflow_id=workflow_id,
        parameters=parameters,
        bot_id=str(bot) if bot is not None else None,
        app_id=str(app) if app is not None else None,
        ext=ext,
        is_async=True if is_async else None,
    )
