"""The built-in Gemini chat provider (Google Generative Language API ``v1beta``).

Importing this package is cheap: it only declares :data:`SPEC`. The implementation is imported when the router
builds an instance. Config (``type = "gemini"``)::

    [providers.google]
    type = "gemini"
    api_key = "env:GEMINI_API_KEY"        # sent as x-goog-api-key, never in the URL
    # base_url = "https://my-relay.example/v1beta"
    # download_urls = "auto"               # auto | always | never (http(s) media URLs: fileData or inline)
    # max_inline_bytes = 20971520          # limit for downloaded media
    # json_schema_mode = "convert"         # convert (responseSchema/parameters) | passthrough (*JsonSchema)
    # safety_settings = [{category = "HARM_CATEGORY_HARASSMENT", threshold = "BLOCK_NONE"}]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyrelay.provider import ProviderSpec

if TYPE_CHECKING:
    from polyrelay.provider import ProviderSettings
    from polyrelay.transport import Transport

__all__ = ["SPEC"]


def _factory(settings: ProviderSettings, transport: Transport) -> object:
    from polyrelay_gemini._provider import build

    return build(settings, transport)


SPEC = ProviderSpec(
    name="gemini",
    factory=_factory,
    capabilities=frozenset({"chat"}),
    description="Google Gemini API (generateContent / streamGenerateContent)",
    default_base_url="https://generativelanguage.googleapis.com/v1beta",
    api_key_env="GEMINI_API_KEY",
    option_keys=frozenset({"max_inline_bytes", "download_urls", "json_schema_mode", "safety_settings"}),
)
