"""What each Claude model family can do: output limits, extended thinking, native structured output.

Model ids come in two spellings (``claude-3-5-sonnet-20241022``, ``claude-sonnet-4-5``, ``claude-opus-4-1-20250805``,
also behind relay or cloud prefixes such as ``us.anthropic.claude-sonnet-4-20250514-v1:0``). :func:`model_profile`
reads the family word (opus / sonnet / haiku) and the version numbers around it, ignoring date stamps and
``latest``. An id it cannot read (a relay alias) gets :data:`UNKNOWN_PROFILE`: no cap, no native features assumed.

Output limits (Anthropic's model overview): Claude 3 → 4,096; Claude 3.5 → 8,192; Claude 3.7 Sonnet, Sonnet 4,
Sonnet/Haiku/Opus 4.5 and later → 64,000; Opus 4 and 4.1 → 32,000. The limit is also the default ``max_tokens``
(Anthropic requires one) unless the provider option ``default_max_tokens`` says otherwise.
"""

from __future__ import annotations

import re
from typing import Final

import attrs

__all__ = ["CONTEXT_WINDOW", "UNKNOWN_PROFILE", "ModelProfile", "model_profile"]

#: Every current Claude model has a 200k-token window (1M only behind a beta header).
CONTEXT_WINDOW: Final = 200_000
#: ``max_tokens`` default for an id we cannot read; small enough for every Claude model ever served.
_FALLBACK_MAX_TOKENS: Final = 4_096
_FAMILY = re.compile(r"(?:^|[-.])(opus|sonnet|haiku)(?:[-.]|$)")
_VERSION_PART = re.compile(r"^\d{1,2}$")


@attrs.frozen(kw_only=True)
class ModelProfile:
    """Facts about one model id. ``max_output`` is ``None`` when unknown (then requests are not capped)."""

    known: bool
    max_output: int | None
    default_max_tokens: int
    thinking: bool
    """Extended thinking with ``budget_tokens`` (Claude 3.7 and later)."""
    native_structured_output: bool
    """``output_config.format`` JSON-schema output (Sonnet/Haiku 4.5, Opus 4.1 and later)."""


UNKNOWN_PROFILE: Final = ModelProfile(
    known=False,
    max_output=None,
    default_max_tokens=_FALLBACK_MAX_TOKENS,
    thinking=True,  # unknown relay alias: let the upstream decide rather than drop the setting
    native_structured_output=False,
)


def model_profile(model: str) -> ModelProfile:
    """The profile of ``model`` (an upstream model id)."""
    lowered = model.lower()
    if "claude" not in lowered:
        return UNKNOWN_PROFILE
    tail = lowered[lowered.index("claude") :]
    match = _FAMILY.search(tail)
    if match is None:
        return UNKNOWN_PROFILE
    family = match.group(1)
    before = [p for p in tail[: match.start(1)].replace(".", "-").split("-") if _VERSION_PART.match(p)]
    after: list[str] = []
    for part in tail[match.end(1) :].replace(".", "-").split("-"):
        if not part:
            continue
        if not _VERSION_PART.match(part):
            break  # a date stamp, "latest", "v1:0": the version is over
        after.append(part)
    numbers = [int(p) for p in (before or after)]
    if not numbers:
        return UNKNOWN_PROFILE
    major, minor = numbers[0], numbers[1] if len(numbers) > 1 else 0
    return _profile(family, (major, minor))


def _profile(family: str, version: tuple[int, int]) -> ModelProfile:
    if version < (3, 5):
        limit = 4_096
    elif version < (3, 7):
        limit = 8_192
    elif family == "opus" and version < (4, 5):
        limit = 32_000
    else:
        limit = 64_000
    native = version >= (4, 5) or (family == "opus" and version >= (4, 1))
    return ModelProfile(
        known=True,
        max_output=limit,
        default_max_tokens=limit,
        thinking=version >= (3, 7),
        native_structured_output=native,
    )
