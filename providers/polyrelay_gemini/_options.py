"""Provider-specific config keys of a ``type = "gemini"`` table, validated once when the instance is built."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

import attrs

from polyrelay.errors import ConfigError

__all__ = ["OPTION_KEYS", "GeminiOptions", "parse_options"]

DownloadMode = Literal["auto", "always", "never"]
SchemaMode = Literal["convert", "passthrough"]

_DOWNLOAD_MODES: Final = ("auto", "always", "never")
_SCHEMA_MODES: Final = ("convert", "passthrough")


@attrs.frozen(kw_only=True)
class GeminiOptions:
    """Options of one Gemini provider instance."""

    max_inline_bytes: int = 20 * 1024 * 1024
    """Largest media download that is inlined (``inlineData``); bigger downloads are refused."""
    download_urls: DownloadMode = "auto"
    """What to do with ``http(s)`` media URLs. ``auto``: send them as ``fileData`` when Gemini fetches such URLs
    itself (HTTPS, a MIME type known from the extension, Gemini 2.5+), otherwise download and inline them;
    ``always``: download and inline every URL; ``never``: never download (URLs Gemini cannot fetch are refused).
    YouTube, Files-API and ``gs://`` URIs are always sent as ``fileData``."""
    json_schema_mode: SchemaMode = "convert"
    """``convert``: tool parameters and ``response_format`` schemas are rewritten into Gemini's OpenAPI subset
    (``parameters`` / ``responseSchema``; works on every model). ``passthrough``: they are sent untouched as
    ``parametersJsonSchema`` / ``responseJsonSchema`` (full JSON Schema incl. ``$ref`` recursion; Gemini 2.5+)."""
    safety_settings: tuple[Mapping[str, Any], ...] | None = None
    """Default ``safetySettings`` (``[{category, threshold}]``); a request's ``safety_settings`` replaces them."""


OPTION_KEYS: Final = frozenset(a.name for a in attrs.fields(GeminiOptions))


def parse_options(options: Mapping[str, Any], config_path: str) -> GeminiOptions:
    """Validate a config table's provider-specific keys; :class:`ConfigError` names the offending key."""
    from polyrelay.policy import did_you_mean

    def key(name: str) -> str:
        return f"{config_path}.{name}" if config_path else name

    for name in options:
        if name not in OPTION_KEYS:
            raise ConfigError(f"unknown option for a gemini provider{did_you_mean(name, OPTION_KEYS)}", key=key(name))
    kw: dict[str, Any] = {}
    if "max_inline_bytes" in options:
        v = options["max_inline_bytes"]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError("must be a positive number of bytes", key=key("max_inline_bytes"))
        kw["max_inline_bytes"] = v
    for name, allowed in (("download_urls", _DOWNLOAD_MODES), ("json_schema_mode", _SCHEMA_MODES)):
        if name in options:
            v = options[name]
            if v not in allowed:
                hint = did_you_mean(str(v), allowed) if isinstance(v, str) else ""
                raise ConfigError(f"must be one of {', '.join(allowed)}, got {v!r}{hint}", key=key(name))
            kw[name] = v
    if "safety_settings" in options:
        kw["safety_settings"] = check_safety_settings(options["safety_settings"], key("safety_settings"), config=True)
    return GeminiOptions(**kw)


def check_safety_settings(value: Any, path: str, *, config: bool) -> tuple[Mapping[str, Any], ...]:
    """``[{category, threshold}, ...]`` → a tuple of plain dicts; errors name ``path``."""
    from polyrelay.errors import InvalidRequest

    def fail(msg: str) -> Exception:
        return ConfigError(msg, key=path) if config else InvalidRequest(msg, path=path)

    if not isinstance(value, list | tuple):
        raise fail("must be a list of {category, threshold} objects")
    out = []
    for i, item in enumerate(value):
        if (
            not isinstance(item, Mapping)
            or not isinstance(item.get("category"), str)
            or not isinstance(item.get("threshold"), str)
        ):
            raise fail(f"item {i} must be an object with string 'category' and 'threshold'")
        out.append(dict(item))
    return tuple(out)
