"""Ideogram's enumerations and the OpenAI → Ideogram mapping tables (OpenAPI enums, wire-images.md §6.2 and §6.6)."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

__all__ = [
    "ENDPOINTS",
    "LEGACY_ASPECTS",
    "LEGACY_MODELS",
    "LEGACY_RESOLUTIONS",
    "LEGACY_STYLE_TYPES",
    "MAGIC_PROMPT_OPTIONS",
    "MODEL_ALIASES",
    "QUALITY_TO_SPEED",
    "RENDERING_SPEEDS",
    "V3_ASPECTS",
    "V3_MODELS",
    "V3_RESOLUTIONS",
    "V3_STYLE_TYPES",
    "Endpoint",
]


def _pairs(text: str, sep: str) -> frozenset[tuple[int, int]]:
    out = set()
    for item in text.split():
        w, h = item.split(sep)
        out.add((int(w), int(h)))
    return frozenset(out)


#: Models of the legacy ``POST /generate`` (OpenAPI ``ModelEnum``).
LEGACY_MODELS: frozenset[str] = frozenset({"V_1", "V_1_TURBO", "V_2", "V_2_TURBO", "V_2A", "V_2A_TURBO", "AUTO"})
#: Ideogram 3.0 "models" (one API; the suffix picks the default ``rendering_speed``).
V3_MODELS: Mapping[str, str | None] = {
    "V_3": None,
    "V_3_FLASH": "FLASH",
    "V_3_TURBO": "TURBO",
    "V_3_DEFAULT": "DEFAULT",
    "V_3_QUALITY": "QUALITY",
}
#: Friendly model names (lower-cased) → the canonical ones above.
MODEL_ALIASES: Mapping[str, str] = {
    "ideogram-v1": "V_1",
    "ideogram-v1-turbo": "V_1_TURBO",
    "ideogram-v2": "V_2",
    "ideogram-v2-turbo": "V_2_TURBO",
    "ideogram-v2a": "V_2A",
    "ideogram-v2a-turbo": "V_2A_TURBO",
    "ideogram-v3": "V_3",
    "ideogram-3.0": "V_3",
    "ideogram-v3-flash": "V_3_FLASH",
    "ideogram-v3-turbo": "V_3_TURBO",
    "ideogram-v3-quality": "V_3_QUALITY",
}
#: Legacy models that take no ``resolution`` / ``style_type`` ("V_2 and later"), no ``color_palette``, no
#: ``negative_prompt`` (OpenAPI field descriptions).
NO_RESOLUTION_MODELS = frozenset({"V_1", "V_1_TURBO"})
NO_STYLE_TYPE_MODELS = frozenset({"V_1", "V_1_TURBO"})
NO_PALETTE_MODELS = frozenset({"V_1", "V_1_TURBO", "V_2A", "V_2A_TURBO"})
NO_NEGATIVE_PROMPT_MODELS = frozenset({"V_2A", "V_2A_TURBO"})

#: Legacy ``aspect_ratio`` values ``ASPECT_W_H`` as (W, H).
LEGACY_ASPECTS = _pairs("10x16 16x10 9x16 16x9 3x2 2x3 4x3 3x4 1x1 1x3 3x1", "x")
#: 3.0 ``aspect_ratio`` values ``WxH`` as (W, H).
V3_ASPECTS = _pairs("1x3 3x1 1x2 2x1 9x16 16x9 10x16 16x10 2x3 3x2 3x4 4x3 4x5 5x4 1x1", "x")

#: Legacy ``resolution`` values ``RESOLUTION_W_H`` (V_2 and later).
LEGACY_RESOLUTIONS = _pairs(
    "512_1536 576_1408 576_1472 576_1536 640_1024 640_1344 640_1408 640_1472 640_1536 704_1152 704_1216 704_1280 "
    "704_1344 704_1408 704_1472 720_1280 736_1312 768_1024 768_1088 768_1152 768_1216 768_1232 768_1280 768_1344 "
    "832_960 832_1024 832_1088 832_1152 832_1216 832_1248 864_1152 896_960 896_1024 896_1088 896_1120 896_1152 "
    "960_832 960_896 960_1024 960_1088 1024_640 1024_768 1024_832 1024_896 1024_960 1024_1024 1088_768 1088_832 "
    "1088_896 1088_960 1120_896 1152_704 1152_768 1152_832 1152_864 1152_896 1216_704 1216_768 1216_832 1232_768 "
    "1248_832 1280_704 1280_720 1280_768 1280_800 1312_736 1344_640 1344_704 1344_768 1408_576 1408_640 1408_704 "
    "1472_576 1472_640 1472_704 1536_512 1536_576 1536_640",
    "_",
)
#: 3.0 ``resolution`` values ``WxH``.
V3_RESOLUTIONS = _pairs(
    "512x1536 576x1408 576x1472 576x1536 640x1344 640x1408 640x1472 640x1536 704x1152 704x1216 704x1280 704x1344 "
    "704x1408 704x1472 736x1312 768x1088 768x1216 768x1280 768x1344 800x1280 832x960 832x1024 832x1088 832x1152 "
    "832x1216 832x1248 864x1152 896x960 896x1024 896x1088 896x1120 896x1152 960x832 960x896 960x1024 960x1088 "
    "1024x832 1024x896 1024x960 1024x1024 1088x768 1088x832 1088x896 1088x960 1120x896 1152x704 1152x832 1152x864 "
    "1152x896 1216x704 1216x768 1216x832 1248x832 1280x704 1280x768 1280x800 1312x736 1344x640 1344x704 1344x768 "
    "1408x576 1408x640 1408x704 1472x576 1472x640 1472x704 1536x512 1536x576 1536x640",
    "x",
)

RENDERING_SPEEDS = ("FLASH", "TURBO", "DEFAULT", "QUALITY")
MAGIC_PROMPT_OPTIONS = ("AUTO", "ON", "OFF")
LEGACY_STYLE_TYPES = ("AUTO", "GENERAL", "REALISTIC", "DESIGN", "RENDER_3D", "ANIME", "FICTION")
V3_STYLE_TYPES = ("AUTO", "GENERAL", "REALISTIC", "DESIGN", "FICTION")

#: OpenAI ``quality`` → 3.0 ``rendering_speed`` (wire-images.md §6.6).
QUALITY_TO_SPEED: Mapping[str, str] = {
    "low": "TURBO",
    "medium": "DEFAULT",
    "standard": "DEFAULT",
    "auto": "DEFAULT",
    "high": "QUALITY",
    "hd": "QUALITY",
}

_STYLE = frozenset({"color_palette", "style_codes", "style_preset"})


@attrs.frozen(kw_only=True)
class Endpoint:
    """One Ideogram 3.0 multipart endpoint: its path, the text fields it takes and its image parts."""

    path: str
    fields: frozenset[str]
    required: frozenset[str] = frozenset({"prompt"})
    image: bool = True
    mask: bool = False
    style_refs: bool = True
    character_refs: bool = False


#: The 3.0 endpoints by the name used in ``params["endpoint"]`` (OpenAPI request bodies).
ENDPOINTS: Mapping[str, Endpoint] = {
    "generate": Endpoint(
        path="/v1/ideogram-v3/generate",
        fields=_STYLE
        | {"prompt", "seed", "resolution", "aspect_ratio", "rendering_speed", "magic_prompt", "negative_prompt"}
        | {"num_images", "style_type", "custom_model_uri"},
        image=False,
        character_refs=True,
    ),
    "edit": Endpoint(
        path="/v1/ideogram-v3/edit",
        fields=_STYLE | {"prompt", "magic_prompt", "num_images", "seed", "rendering_speed", "style_type"},
        mask=True,
        character_refs=True,
    ),
    "inpaint": Endpoint(
        path="/v1/ideogram-v3/inpaint",
        fields=_STYLE | {"prompt", "magic_prompt", "num_images", "seed", "rendering_speed", "style_type"},
        mask=True,
        character_refs=True,
    ),
    "remix": Endpoint(
        path="/v1/ideogram-v3/remix",
        fields=_STYLE
        | {"prompt", "image_weight", "seed", "resolution", "aspect_ratio", "rendering_speed", "magic_prompt"}
        | {"negative_prompt", "num_images", "style_type"},
        character_refs=True,
    ),
    "reframe": Endpoint(
        path="/v1/ideogram-v3/reframe",
        fields=_STYLE | {"resolution", "num_images", "seed", "rendering_speed"},
        required=frozenset({"resolution"}),
    ),
    "replace-background": Endpoint(
        path="/v1/ideogram-v3/replace-background",
        fields=_STYLE | {"prompt", "magic_prompt", "num_images", "seed", "rendering_speed"},
    ),
}
LEGACY_GENERATE_PATH = "/generate"
