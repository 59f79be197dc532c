"""polyrelay's built-in provider for OpenAI and OpenAI-compatible chat APIs.

Importing this package is cheap: it only builds the :class:`~polyrelay.provider.ProviderSpec` objects the
``polyrelay.providers`` entry points name. The provider itself (and aiohttp) is imported by the factory.

- :data:`SPEC` — ``type = "openai"``: any OpenAI-compatible server. ``preset`` picks a row of upstream quirks
  (default: detected from the ``base_url`` host, else ``openai``); ``quirks`` overrides fields of it.
- One spec per upstream with a fixed base URL (``type = "deepseek"``, ``"groq"``, ...): the same provider with that
  preset, its default base URL and its API-key environment variable.

Rows without a fixed base URL (``azure``, ``vllm``, ``relay``) are used with ``type = "openai"`` and ``preset``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from polyrelay.provider import ProviderSettings, ProviderSpec
from polyrelay_openai._rows import ROWS

if TYPE_CHECKING:
    from polyrelay.transport import Transport

__all__ = [
    "DASHSCOPE_SPEC",
    "DEEPSEEK_SPEC",
    "FIREWORKS_SPEC",
    "GEMINI_OPENAI_SPEC",
    "GROQ_SPEC",
    "MISTRAL_SPEC",
    "MOONSHOT_SPEC",
    "OLLAMA_SPEC",
    "OPENROUTER_SPEC",
    "SPEC",
    "SPECS",
    "TOGETHER_SPEC",
    "XAI_SPEC",
    "ZHIPU_SPEC",
]

#: Config keys the provider accepts besides type/base_url/api_key/headers (kept in sync with _provider.OPTION_KEYS;
#: duplicated so this module does not import the provider).
_OPTION_KEYS = frozenset({"preset", "quirks", "auth", "auth_header", "api_version"})


def _factory(preset: str | None) -> Callable[[ProviderSettings, Transport], object]:
    def factory(settings: ProviderSettings, transport: Transport) -> object:
        from polyrelay_openai._provider import create

        return create(settings, transport, preset=preset)

    return factory


def _spec(row_name: str) -> ProviderSpec:
    row = ROWS[row_name]
    return ProviderSpec(
        name=row_name,
        factory=_factory(row_name),
        capabilities=frozenset({"chat"}),
        description=row.description,
        default_base_url=row.base_url,
        api_key_env=row.api_key_env,
        option_keys=_OPTION_KEYS,
    )


SPEC = ProviderSpec(
    name="openai",
    factory=_factory(None),
    capabilities=frozenset({"chat"}),
    description="OpenAI and any OpenAI-compatible chat API; `preset` selects a row of upstream quirks "
    f"({', '.join(sorted(ROWS))}).",
    default_base_url=ROWS["openai"].base_url,
    api_key_env=ROWS["openai"].api_key_env,
    option_keys=_OPTION_KEYS,
)
DEEPSEEK_SPEC = _spec("deepseek")
GROQ_SPEC = _spec("groq")
MISTRAL_SPEC = _spec("mistral")
TOGETHER_SPEC = _spec("together")
FIREWORKS_SPEC = _spec("fireworks")
OPENROUTER_SPEC = _spec("openrouter")
OLLAMA_SPEC = _spec("ollama")
DASHSCOPE_SPEC = _spec("dashscope")
MOONSHOT_SPEC = _spec("moonshot")
ZHIPU_SPEC = _spec("zhipu")
XAI_SPEC = _spec("xai")
GEMINI_OPENAI_SPEC = _spec("gemini-openai")

#: Every spec of this package, by provider type.
SPECS: dict[str, ProviderSpec] = {
    s.name: s
    for s in (
        SPEC,
        DEEPSEEK_SPEC,
        GROQ_SPEC,
        MISTRAL_SPEC,
        TOGETHER_SPEC,
        FIREWORKS_SPEC,
        OPENROUTER_SPEC,
        OLLAMA_SPEC,
        DASHSCOPE_SPEC,
        MOONSHOT_SPEC,
        ZHIPU_SPEC,
        XAI_SPEC,
        GEMINI_OPENAI_SPEC,
    )
}
