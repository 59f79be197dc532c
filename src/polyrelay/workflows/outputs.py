"""Structured workflow outputs → artifacts: every file object and every media URL in the outputs becomes an
:class:`~polyrelay.types.media.Artifact`; the outputs themselves stay in ``TaskSnapshot.extra["outputs"]``.

A file object is a mapping with ``dify_model_identity == "__dify__file__"`` (Dify), or one with ``url`` plus
``transfer_method``/``mime_type`` (Dify, and Dify-style plugins inside Coze workflows): ``url`` (made absolute
against the API's origin when relative), ``mime_type``, ``filename`` as the title, ``type``/``size``/``extension``
in ``extra``. A plain string counts when it is an http(s) URL whose extension names a media type (``.png``,
``.mp4``, ``.mp3``, ...); other strings are text.
``extra["path"]`` says where in the outputs each one was found (``files[0]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin

from polyrelay.images import media_type_for_url
from polyrelay.types.media import Artifact

__all__ = ["artifacts_in"]

_FILE_IDENTITY = "__dify__file__"
_MAX_DEPTH = 8


def artifacts_in(outputs: Any, *, base_url: str = "") -> tuple[Artifact, ...]:
    found: list[Artifact] = []
    _walk(outputs, "", found, base_url, 0)
    return tuple(found)


def _is_file(value: Mapping[str, Any]) -> bool:
    if value.get("dify_model_identity") == _FILE_IDENTITY:
        return True
    return isinstance(value.get("url"), str) and ("transfer_method" in value or "mime_type" in value)


def _walk(value: Any, path: str, found: list[Artifact], base_url: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, Mapping):
        if _is_file(value):
            url = value.get("url") or value.get("remote_url")
            if isinstance(url, str) and url:
                found.append(_file_artifact(value, urljoin(base_url, url) if base_url else url, path))
            return
        for key, item in value.items():
            _walk(item, f"{path}.{key}" if path else str(key), found, base_url, depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _walk(item, f"{path}[{index}]", found, base_url, depth + 1)
    elif isinstance(value, str) and value.startswith(("https://", "http://")):
        media_type = media_type_for_url(value)
        if media_type is not None:
            found.append(Artifact(url=value, media_type=media_type, extra={"path": path}))


def _file_artifact(value: Mapping[str, Any], url: str, path: str) -> Artifact:
    extra: dict[str, Any] = {"path": path}
    for key in ("type", "size", "extension", "transfer_method"):
        if value.get(key) is not None:
            extra[key] = value[key]
    mime = value.get("mime_type")
    filename = value.get("filename")
    return Artifact(
        url=url,
        media_type=mime if isinstance(mime, str) and mime else media_type_for_url(url),
        title=filename if isinstance(filename, str) else None,
        extra=extra,
    )
