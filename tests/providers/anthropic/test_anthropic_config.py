"""The plugin spec, option validation, and the cheap import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from anthropic_kit import settings

from polyrelay.errors import ConfigError
from polyrelay.provider import API_VERSION, ChatProvider
from polyrelay.transport import Transport
from polyrelay_anthropic import SPEC
from polyrelay_anthropic._provider import OPTION_KEYS, AnthropicProvider

ROOT = Path(__file__).resolve().parents[3]


def test_spec() -> None:
    assert (SPEC.name, SPEC.api_version, SPEC.capabilities) == ("anthropic", API_VERSION, frozenset({"chat"}))
    assert (SPEC.default_base_url, SPEC.api_key_env) == ("https://api.anthropic.com/v1", "ANTHROPIC_API_KEY")
    assert SPEC.option_keys == OPTION_KEYS


def test_importing_the_plugin_is_cheap() -> None:
    code = (
        "import sys, polyrelay_anthropic;"
        "print(sorted(m for m in sys.modules if m.startswith('polyrelay_anthropic.') or m in ('aiohttp', 'cattrs')))"
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'providers'}"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


def test_factory_builds_a_chat_provider() -> None:
    made = SPEC.factory(settings(None, key="sk-ant-secret-value-1234"), Transport())
    assert isinstance(made, AnthropicProvider) and isinstance(made, ChatProvider)
    assert "api.anthropic.com/v1/messages" in repr(made) and "sk-ant-secret" not in repr(made)
    assert made.capabilities("claude-opus-4-1").context_window == 200_000
    assert made.capabilities("relay-alias").context_window is None


@pytest.mark.parametrize(
    ("options", "key", "text"),
    [
        ({"verison": "2023-06-01"}, "providers.claude.verison", "did you mean 'version'"),
        ({"version": ""}, "providers.claude.version", "non-empty"),
        ({"beta": 5}, "providers.claude.beta", "list of strings"),
        ({"auth": "basic"}, "providers.claude.auth", "x-api-key, bearer"),
        ({"default_max_tokens": 0}, "providers.claude.default_max_tokens", "positive"),
        ({"default_max_tokens": True}, "providers.claude.default_max_tokens", "positive"),
        ({"structured_output": "json"}, "providers.claude.structured_output", "auto, tool, native"),
    ],
)
def test_bad_options_name_their_key(options: dict[str, Any], key: str, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        SPEC.factory(settings(None, **options), Transport())
    assert info.value.key == key and text in str(info.value)


def test_options_shape_the_headers() -> None:
    made = SPEC.factory(settings("https://relay.example/anthropic/v1/", beta="a-1, b-2", auth="bearer"), Transport())
    assert isinstance(made, AnthropicProvider)
    assert made._url == "https://relay.example/anthropic/v1/messages"
    assert made._headers["anthropic-beta"] == "a-1,b-2" and made._headers["Authorization"] == "Bearer test-key"
