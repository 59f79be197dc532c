"""Midjourney buttons: Discord ``customId`` ↔ friendly action names (wire-images.md §2.7).

A finished task carries buttons whose ``customId`` embeds the Discord message hash
(``MJ::JOB::upsample::2::<hash>``), so callers name actions instead:

=====================================  =========================================================================
friendly name                          button ``customId``
=====================================  =========================================================================
``upscale:1`` … ``upscale:4``          ``MJ::JOB::upsample::{n}::{hash}``  (labels U1–U4)
``variation:1`` … ``variation:4``      ``MJ::JOB::variation::{n}::{hash}``  (labels V1–V4)
``reroll``                             ``MJ::JOB::reroll::0::{hash}::SOLO``  (🔄)
``vary:strong`` / ``vary:subtle``      ``MJ::JOB::high_variation|low_variation::1::{hash}::SOLO``
``vary:region``                        ``MJ::Inpaint::1::{hash}::SOLO`` → MODAL (needs ``mask``, ``prompt``)
``zoom:2x`` / ``zoom:1.5x``            ``MJ::Outpaint::50|75::1::{hash}::SOLO``
``zoom:custom``                        ``MJ::CustomZoom::{hash}`` → MODAL (needs ``zoom`` or a ``prompt``)
``pan:left|right|up|down``             ``MJ::JOB::pan_{dir}::1::{hash}::SOLO``
``upscale:subtle|creative|2x|4x``      ``MJ::JOB::upsample_v6_2x_subtle::…`` etc. (upscale HD)
``animate:high|low``                   ``MJ::JOB::animate_high|animate_low::1::{hash}::SOLO``
``imagine:1`` … ``imagine:4``          ``MJ::Job::PicReader::{n}``  (a describe result's prompts)
``describe:retry``                     ``MJ::Picread::Retry…``
``modal``                              not a button: completes a MODAL task via ``/mj/submit/modal``
=====================================  =========================================================================

Discord labels (``U2``, ``V3``) are accepted as aliases; a raw ``MJ::...`` customId is accepted as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = [
    "ACTION_GRAMMAR",
    "MODAL_ACTION",
    "NEEDS_MODAL",
    "button_map",
    "friendly_name",
    "is_custom_id",
    "normalize_action",
]

#: The friendly action names, for error messages.
ACTION_GRAMMAR = (
    "upscale:1-4",
    "variation:1-4",
    "reroll",
    "vary:strong",
    "vary:subtle",
    "vary:region",
    "zoom:2x",
    "zoom:1.5x",
    "zoom:custom",
    "pan:left|right|up|down",
    "upscale:subtle|creative|2x|4x",
    "animate:high|low",
    "imagine:1-4",
    "describe:retry",
    "modal",
)
#: Completes a task waiting in MODAL (not a button).
MODAL_ACTION = "modal"
#: Buttons whose task waits for ``/submit/modal`` input.
NEEDS_MODAL = frozenset({"vary:region", "zoom:custom"})

_FIXED = frozenset(
    {"reroll", "vary:strong", "vary:subtle", "vary:region", "zoom:custom", "describe:retry", "bookmark", "modal"}
)
_PATTERNS = (
    re.compile(r"^(upscale|variation|imagine):[1-4]$"),
    re.compile(r"^pan:(left|right|up|down)$"),
    re.compile(r"^upscale:(subtle|creative|2x|4x)$"),
    re.compile(r"^animate:(high|low)$"),
    re.compile(r"^zoom:(2|1\.5)x$"),
)
_ALIASES: Mapping[str, str] = {
    **{f"u{i}": f"upscale:{i}" for i in range(1, 5)},
    **{f"v{i}": f"variation:{i}" for i in range(1, 5)},
    "r": "reroll",
    "🔄": "reroll",
    "vary (strong)": "vary:strong",
    "vary (subtle)": "vary:subtle",
    "vary (region)": "vary:region",
    "custom zoom": "zoom:custom",
    "zoom out 2x": "zoom:2x",
    "zoom out 1.5x": "zoom:1.5x",
    "⬅️": "pan:left",
    "➡️": "pan:right",
    "⬆️": "pan:up",
    "⬇️": "pan:down",
}
_PAN = re.compile(r"^pan_(left|right|up|down)$")
#: ``MJ::Outpaint::{n}``: Discord's "Zoom Out 2x" is 50, "Zoom Out 1.5x" is 75 (not 100/n).
_OUTPAINT: Mapping[str, str] = {"50": "zoom:2x", "75": "zoom:1.5x"}


def is_custom_id(action: str) -> bool:
    """A raw button id (``MJ::...``)."""
    return action.startswith("MJ::")


def normalize_action(action: str) -> str | None:
    """The canonical friendly name of ``action`` (``"U2"`` → ``"upscale:2"``, ``"zoom:2"`` → ``"zoom:2x"``), or
    ``None`` when it is not one."""
    name = action.strip().lower()
    name = _ALIASES.get(name, name)
    if name.startswith("zoom:") and name[5:].replace(".", "", 1).isdigit():
        name += "x"
    if name in _FIXED or any(p.match(name) for p in _PATTERNS):
        return name
    return None


def friendly_name(custom_id: str) -> str | None:
    """The friendly action of a button ``customId``; ``None`` for buttons without one."""
    parts = custom_id.split("::")
    if len(parts) < 2 or parts[0] != "MJ":
        return None
    family = parts[1]
    if family == "JOB" and len(parts) >= 4:
        kind, index = parts[2], parts[3]
        return _job_action(kind, index)
    if family == "Inpaint":
        return "vary:region"
    if family == "CustomZoom":
        return "zoom:custom"
    if family == "Outpaint" and len(parts) >= 3:
        return _OUTPAINT.get(parts[2])
    if family == "Job" and len(parts) >= 4 and parts[2] == "PicReader":
        return f"imagine:{parts[3]}"
    if family == "Picread":
        return "describe:retry"
    if family == "BOOKMARK":
        return "bookmark"
    return None


def _job_action(kind: str, index: str) -> str | None:
    if kind == "upsample":
        return f"upscale:{index}"
    if kind == "variation":
        return f"variation:{index}"
    if kind == "reroll":
        return "reroll"
    if kind == "high_variation":
        return "vary:strong"
    if kind == "low_variation":
        return "vary:subtle"
    pan = _PAN.match(kind)
    if pan:
        return f"pan:{pan.group(1)}"
    if kind.startswith("upsample_"):
        for flavour in ("subtle", "creative"):
            if kind.endswith("_" + flavour):
                return f"upscale:{flavour}"
        for factor in ("2x", "4x"):
            if kind.endswith("_" + factor):
                return f"upscale:{factor}"
        return None
    if kind in ("animate_high", "animate_low"):
        return f"animate:{kind.removeprefix('animate_')}"
    return None


def button_map(custom_ids: Iterable[str]) -> dict[str, str]:
    """Friendly name → customId for the buttons of one task (the first button wins on a clash)."""
    out: dict[str, str] = {}
    for custom_id in custom_ids:
        name = friendly_name(custom_id)
        if name is not None:
            out.setdefault(name, custom_id)
    return out
