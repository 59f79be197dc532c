"""The quirk rows, preset detection, config options (with did-you-mean errors) and the ProviderSpec objects."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from openai_support import make_provider

import polyrelay_openai
from polyrelay.errors import ConfigError
from polyrelay.provider import API_VERSION, ChatProvider
from polyrelay.transport import Transport
from polyrelay_openai._rows import DEFAULT_PRESET, ROWS, CompatRow, apply_quirks, detect_preset

ROOT = Path(__file__).parents[3]


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport()
    yield t
    await t.aclose()


# -------------------------------------------------------------------------------------------------------- specs


def test_one_spec_per_row_with_a_fixed_base_url() -> None:
    fixed = {name for name, row in ROWS.items() if row.base_url}
    assert set(polyrelay_openai.SPECS) == fixed
    assert {"azure", "vllm", "relay"}.isdisjoint(polyrelay_openai.SPECS)  # base_url required: type "openai" + preset
    for name, spec in polyrelay_openai.SPECS.items():
        row = ROWS[name]
        assert (spec.name, spec.default_base_url, spec.api_key_env) == (name, row.base_url, row.api_key_env)
        assert spec.api_version == API_VERSION and spec.capabilities == frozenset({"chat"})
        assert {"preset", "quirks", "auth", "auth_header", "api_version"} == spec.option_keys
    assert polyrelay_openai.DEEPSEEK_SPEC.api_key_env == "DEEPSEEK_API_KEY"
    assert polyrelay_openai.DEEPSEEK_SPEC.default_base_url == "https://api.deepseek.com"


def test_every_spec_is_exported() -> None:
    exported = {getattr(polyrelay_openai, n) for n in polyrelay_openai.__all__ if n.endswith("_SPEC") or n == "SPEC"}
    assert exported == set(polyrelay_openai.SPECS.values())


def test_option_keys_match_the_provider() -> None:
    from polyrelay_openai._provider import OPTION_KEYS

    assert polyrelay_openai.SPEC.option_keys == OPTION_KEYS


def test_importing_the_package_does_not_import_aiohttp_or_the_provider() -> None:
    code = (
        "import sys, polyrelay_openai; "
        "print(sorted(m for m in ('aiohttp', 'polyrelay_openai._provider', 'polyrelay.transport') if m in sys.modules))"
    )
    env_path = f"{ROOT / 'src'}:{ROOT / 'providers'}"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONPATH": env_path}
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("spec_type", sorted(polyrelay_openai.SPECS))
async def test_each_spec_builds_a_chat_provider_with_its_row(transport: Transport, spec_type: str) -> None:
    provider = make_provider(transport, spec_type=spec_type, base_url=None)
    assert isinstance(provider, ChatProvider)
    expected = DEFAULT_PRESET if spec_type == "openai" else spec_type
    assert provider.row.name == expected and provider.base_url == ROWS[expected].base_url


# ---------------------------------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("url", "preset"),
    [
        ("https://api.openai.com/v1", "openai"),
        ("https://myres.openai.azure.com/openai/deployments/x", "azure"),
        ("https://api.deepseek.com/beta", "deepseek"),
        ("https://api.groq.com/openai/v1", "groq"),
        ("https://api.mistral.ai/v1", "mistral"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("http://localhost:11434/v1", "ollama"),
        ("https://ollama.com/v1", "ollama"),
        ("https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "dashscope"),
        ("https://api.moonshot.cn/v1", "moonshot"),
        ("https://api.z.ai/api/paas/v4", "zhipu"),
        ("https://open.bigmodel.cn/api/paas/v4", "zhipu"),
        ("https://api.x.ai/v1", "xai"),
        ("https://generativelanguage.googleapis.com/v1beta/openai", "gemini-openai"),
        ("https://api.cerebras.ai/v1", "openai"),  # unknown host: the OpenAI row
        ("https://evil-api.openai.com.attacker.net/v1", "openai"),  # exact host match, not substring
    ],
)
def test_preset_is_detected_from_the_host(url: str, preset: str) -> None:
    assert detect_preset(url) == preset


async def test_explicit_preset_wins_over_detection(transport: Transport) -> None:
    provider = make_provider(transport, base_url="https://api.openai.com/v1", preset="relay")
    assert provider.row.name == "relay"


# ------------------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("options", "key", "text"),
    [
        ({"presett": "groq"}, "providers.up.presett", "did you mean 'preset'"),
        ({"quirk": {}}, "providers.up.quirk", "did you mean 'quirks'"),
        ({"preset": "deepsek"}, "providers.up.preset", "did you mean 'deepseek'"),
        ({"quirks": {"reasoning_feild": "x"}}, "providers.up.quirks.reasoning_feild", "did you mean 'reasoning_field'"),
        ({"quirks": {"drop_params": 3}}, "providers.up.quirks.drop_params", "list of strings"),
        ({"quirks": {"replay": "sometimes"}}, "providers.up.quirks.replay", "must be one of"),
        ({"quirks": {"stream_options": "no"}}, "providers.up.quirks.stream_options", "true or false"),
        ({"quirks": ["x"]}, "providers.up.quirks", "must be a table"),
        ({"auth": "baerer"}, "providers.up.auth", "did you mean 'bearer'"),
        ({"auth": "header", "auth_header": " "}, "providers.up.auth_header", "required"),
        ({"api_version": 2024}, "providers.up.api_version", "non-empty string"),
    ],
)
async def test_config_errors_name_the_key(transport: Transport, options: dict[str, Any], key: str, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_provider(transport, **options)
    assert info.value.key == key
    assert text in str(info.value)


@pytest.mark.parametrize("preset", ["azure", "vllm", "relay"])
async def test_rows_without_a_default_base_url_require_one(transport: Transport, preset: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_provider(transport, base_url=None, preset=preset)
    assert info.value.key == "providers.up.base_url"


async def test_quirks_override_row_fields(transport: Transport) -> None:
    provider = make_provider(
        transport,
        preset="relay",
        quirks={
            "reasoning_field": "thoughts",
            "drop_params": ["logit_bias"],
            "rename_params": {"seed": "random_seed"},
            "auth": "raw",
        },
    )
    row = provider.row
    assert row.reasoning_fields == ("thoughts",) and row.drop_params == ("logit_bias",)
    assert dict(row.rename_params) == {"seed": "random_seed"} and row.auth == "raw"
    assert ROWS["relay"].reasoning_fields == ("reasoning_content", "reasoning")  # the shared row is untouched


def test_apply_quirks_without_changes_returns_the_row() -> None:
    row = ROWS["groq"]
    assert apply_quirks(row, {}, key="q") is row


# --------------------------------------------------------------------------------------------------- row facts


def test_rows_are_consistent() -> None:
    for name, row in ROWS.items():
        assert isinstance(row, CompatRow) and row.name == name
        if row.base_url:
            assert row.base_url.startswith("https://") or row.base_url.startswith("http://localhost")
            assert not row.base_url.endswith("/")
        assert set(row.replay_extra) <= {"reasoning_content", "reasoning", "reasoning_details"}
        assert (row.prefill_flag is not None) == row.accepts_prefill


@pytest.mark.parametrize(
    ("preset", "base_url", "prefill"),
    [
        ("openai", "https://api.openai.com/v1", False),
        ("deepseek", "https://api.deepseek.com", False),
        ("deepseek", "https://api.deepseek.com/beta", True),
        ("mistral", "https://api.mistral.ai/v1", True),
        ("moonshot", "https://api.moonshot.ai/v1", True),
    ],
)
async def test_capabilities_prefill_per_row(transport: Transport, preset: str, base_url: str, prefill: bool) -> None:
    caps = make_provider(transport, base_url=base_url, preset=preset).capabilities("any-model")
    assert caps.accepts_prefill is prefill
    assert caps.context_window is None


async def test_zhipu_capabilities_say_no_json_schema(transport: Transport) -> None:
    assert make_provider(transport, preset="zhipu").capabilities("glm-4.7").json_schema is False


async def test_repr_shows_no_key(transport: Transport) -> None:
    from openai_support import FAKE_KEY

    provider = make_provider(transport)
    assert FAKE_KEY not in repr(provider)
