"""TaskRequest → a Dify ``POST /workflows/run`` body (wire-video-audio-workflow.md §5.2).

``inputs`` are the workflow's start variables: ``params["inputs"]`` (an object) as given, then every other param
by name (``{"topic": "tides"}``), then the request's ``prompt`` under the variable named by the ``prompt_input``
option (default ``query``), and the generic fields that are set (``size``, ``aspect_ratio``, ``duration``,
``negative_prompt``, ``seed``, ``n``) under their own names: earlier ones win. ``images`` become ``files``
(``{"type": "image", "transfer_method": "remote_url", "url"}``; Dify needs an upload for inline data, so ``data:``
URIs are refused); ``params["files"]`` adds file objects as they are. ``params["response_mode"]`` and
``params["user"]`` override the options. The relay variant (``send_model`` option) adds the model name as
``model`` (relays map it to one app key).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from polyrelay.errors import InvalidRequest, UnsupportedFeature
from polyrelay.types.media import TaskRequest
from polyrelay_dify._wire import FileInput, RunRequest

RESPONSE_MODES = frozenset({"streaming", "blocking"})
_GENERIC = ("size", "aspect_ratio", "duration", "negative_prompt", "seed", "n")


def build_run(
    request: TaskRequest,
    model: str,
    *,
    response_mode: str,
    user: str,
    prompt_input: str,
    send_model: bool,
) -> RunRequest:
    """The run body for ``request``; :class:`InvalidRequest` naming the field otherwise."""
    params = dict(request.params)
    given = params.pop("inputs", {})
    if not isinstance(given, Mapping):
        raise InvalidRequest("must be an object of the workflow's input variables", path="params.inputs")
    inputs: dict[str, Any] = dict(given)
    mode = params.pop("response_mode", response_mode)
    if mode not in RESPONSE_MODES:
        raise InvalidRequest(f"must be one of {sorted(RESPONSE_MODES)}, got {mode!r}", path="params.response_mode")
    end_user = params.pop("user", user)
    if not isinstance(end_user, str) or not end_user:
        raise InvalidRequest("must be a non-empty string (Dify requires an end-user id)", path="params.user")
    extra_files = params.pop("files", ())
    if not isinstance(extra_files, list | tuple) or not all(isinstance(f, Mapping) for f in extra_files):
        raise InvalidRequest("must be a list of Dify file objects", path="params.files")
    files: list[FileInput] = []
    for index, uri in enumerate(request.images):
        if not uri.startswith(("https://", "http://")):
            raise UnsupportedFeature(
                "Dify takes remote file URLs (inline data needs an upload first)", path=f"images[{index}]"
            )
        files.append(FileInput(type="image", transfer_method="remote_url", url=uri))
    for item in extra_files:
        files.append(
            FileInput(
                type=str(item.get("type", "document")),
                transfer_method=str(item.get("transfer_method", "remote_url")),
                url=item.get("url"),
                upload_file_id=item.get("upload_file_id"),
                extra={k: v for k, v in item.items() if k not in ("type", "transfer_method", "url", "upload_file_id")},
            )
        )
    for name, value in params.items():
        inputs.setdefault(name, value)
    if request.prompt is not None:
        inputs.setdefault(prompt_input, request.prompt)
    for name in _GENERIC:
        value = getattr(request, name)
        if value is not None:
            inputs.setdefault(name, value)
    return RunRequest(
        inputs=inputs,
        response_mode=str(mode),
        user=end_user,
        files=tuple(files) or None,
        model=model if send_model else None,
    )
