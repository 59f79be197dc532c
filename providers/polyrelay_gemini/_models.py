"""What we know about a Gemini model from its id: version, thinking style, context window.

Model ids are open-ended (previews, relays with their own names), so every fact is "known" or ``None``; callers
choose the safe behaviour for unknown models.
"""

from __future__ import annotations

import functools
import re
from typing import Final, Literal

import attrs

__all__ = ["ModelInfo", "model_info"]

_GEMINI: Final = re.compile(r"^gemini-(\d+)(?:\.(\d+))?(?=-|$)")
#: Aliases that always point at a current (thinking-capable) model.
_LATEST_ALIASES: Final = frozenset({"gemini-flash-latest", "gemini-flash-lite-latest", "gemini-pro-latest"})
#: Variants that are not general chat models: their context windows differ, so none is claimed.
_SPECIAL: Final = ("-image", "-tts", "-live", "native-audio", "embedding", "-audio")
_ONE_MILLION: Final = 1_048_576

ThinkingStyle = Literal["budget", "level"]


@attrs.frozen(kw_only=True)
class ModelInfo:
    """Facts derived from a model id (``models/`` prefix allowed)."""

    name: str
    version: tuple[int, int] | None
    """``(2, 5)`` for ``gemini-2.5-flash``, ``(3, 0)`` for ``gemini-3-pro-preview``; ``None`` when unknown."""
    gemma: bool
    latest_alias: bool

    @property
    def flash(self) -> bool:
        return "flash" in self.name

    @property
    def lite(self) -> bool:
        return "lite" in self.name

    @property
    def pro(self) -> bool:
        return "-pro" in self.name

    @property
    def thinking(self) -> ThinkingStyle | None:
        """How reasoning effort is sent: ``thinkingBudget`` (2.5; also accepted by later models) or
        ``thinkingLevel`` (3.x). ``None``: not a thinking model, or unknown (a thinkingConfig would be rejected)."""
        if self.version is not None:
            if self.version >= (3, 0):
                return "level"
            if self.version >= (2, 5):
                return "budget"
            return None
        return "budget" if self.latest_alias else None

    @property
    def gemini3(self) -> bool:
        return self.version is not None and self.version >= (3, 0)

    @property
    def external_urls(self) -> bool:
        """Public HTTPS URLs are accepted as ``fileData`` (Gemini 2.5 and later; assumed for unknown ids)."""
        return self.version is None or self.version >= (2, 5)

    @property
    def context_window(self) -> int | None:
        if self.version is None or any(s in self.name for s in _SPECIAL):
            return _ONE_MILLION if self.latest_alias else None
        if self.version == (1, 5) and self.pro:
            return 2 * _ONE_MILLION
        if self.version >= (1, 5):
            return _ONE_MILLION
        return None


@functools.lru_cache(maxsize=256)
def model_info(model: str) -> ModelInfo:
    """Facts about ``model`` (an upstream id such as ``gemini-2.5-flash`` or ``models/gemini-2.5-flash``)."""
    name = model.removeprefix("models/").lower()
    m = _GEMINI.match(name)
    version = (int(m.group(1)), int(m.group(2) or 0)) if m else None
    return ModelInfo(name=name, version=version, gemma=name.startswith("gemma"), latest_alias=name in _LATEST_ALIASES)
