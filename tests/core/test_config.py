"""Config loading: shapes, interpolation, and errors that name the offending key."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from polyrelay.config import interpolate, load_config
from polyrelay.errors import ConfigError, Secret

KNOWN = frozenset({"openai", "gemini", "anthropic"})
BASE: dict[str, Any] = {
    "providers": {
        "openai": {"type": "openai", "api_key": "${OPENAI_API_KEY}"},
        "relay": {
            "type": "openai",
            "base_url": "https://relay.example.com/v1/",
            "api_key": "${RELAY_KEY}",
            "auth": "raw",
            "headers": {"X-Org": "${ORG:-acme}"},
        },
        "gemini": {"type": "gemini", "api_key": "${GEMINI_API_KEY:-}"},
    },
    "models": {
        "gpt-4o": {
            "targets": ["openai/gpt-4o", {"provider": "relay", "model": "gpt-4o", "weight": 2}],
            "fallbacks": ["gemini-2.5-flash"],
            "aliases": ["4o"],
            "strategy": "weighted",
        },
        "gemini-2.5-flash": {"targets": ["gemini/gemini-2.5-flash"]},
        "claude-*": {"targets": ["relay/{model}"]},
    },
    "policy": {"retry": {"max_attempts": 2}, "deadline": 30},
    "pool": {"max_connections": 64},
}
ENV = {"OPENAI_API_KEY": "sk-test-openai-0123456789", "RELAY_KEY": "sk-relay-0123456789"}


def test_full_shape() -> None:
    cfg = load_config(BASE, env=ENV, known_types=KNOWN)
    relay = cfg.providers["relay"]
    assert relay.base_url == "https://relay.example.com/v1"  # trailing slash normalised
    assert isinstance(relay.api_key, Secret) and relay.api_key.reveal() == "sk-relay-0123456789"
    assert relay.headers == {"X-Org": "acme"}
    assert relay.options == {"auth": "raw"}
    assert relay.config_path == "providers.relay"
    assert cfg.providers["gemini"].api_key is None  # ${VAR:-} with empty default: no key configured
    assert cfg.policy.retry.max_attempts == 2 and cfg.policy.deadline == 30.0
    assert cfg.limits.max_connections == 64
    names = [r.name for r in cfg.models]
    assert names[-1] == "claude-*"  # patterns are matched after exact names
    gpt = next(r for r in cfg.models if r.name == "gpt-4o")
    assert [t.key for t in gpt.targets] == ["openai/gpt-4o", "relay/gpt-4o"]
    assert gpt.targets[1].weight == 2.0 and gpt.policy == {"strategy": "weighted"}
    assert gpt.matches("4o") and not gpt.matches("gpt-4")
    claude = cfg.models[-1]
    assert claude.matches("claude-sonnet-4") and claude.targets_for("claude-sonnet-4")[0].model == "claude-sonnet-4"


def test_secret_never_in_repr() -> None:
    cfg = load_config(BASE, env=ENV, known_types=KNOWN)
    assert "sk-relay-0123456789" not in repr(cfg)
    assert "sk-relay-0123456789" not in str(cfg.providers["relay"].api_key)


@pytest.mark.parametrize(
    ("mutate", "key", "hint"),
    [
        (lambda d: d.update(polcy={}), "polcy", "did you mean 'policy'"),
        (lambda d: d["providers"]["openai"].update(type="opnai"), "providers.openai.type", "did you mean 'openai'"),
        (lambda d: d["providers"]["openai"].pop("type"), "providers.openai.type", "is required"),
        (lambda d: d["providers"]["relay"].update(base_url="relay.example.com"), "providers.relay.base_url", "http"),
        (lambda d: d["models"]["gpt-4o"].update(fallback=[]), "models.gpt-4o.fallback", "did you mean 'fallbacks'"),
        (lambda d: d["models"]["gpt-4o"]["targets"].append("nope/x"), "models.gpt-4o.targets[2]", "unknown provider"),
        (lambda d: d["models"]["gpt-4o"]["targets"].append("no-slash"), "models.gpt-4o.targets[2]", "provider/model"),
        (lambda d: d["models"]["gpt-4o"]["targets"][1].update(weight=0), "models.gpt-4o.targets[1].weight", "positive"),
        (lambda d: d["models"]["gpt-4o"].update(fallbacks=["gpt-5"]), "models.gpt-4o.fallbacks[0]", "unknown model"),
        (
            lambda d: d["models"]["gpt-4o"].update(policy={"retry": {"max_attemps": 1}}),
            "models.gpt-4o.policy.retry.max_attemps",
            "did you mean 'max_attempts'",
        ),
        (lambda d: d["models"]["gpt-4o"].update(strategy="fastest"), "models.gpt-4o.strategy", "must be one of"),
        (lambda d: d.update(policy={"timeouts": {"idle": "soon"}}), "policy.timeouts.idle", "number"),
        (lambda d: d["models"].update({"x.y": {"targets": []}}), 'models."x.y".targets', "non-empty"),
        (lambda d: d.update(pool={"max_conections": 1}), "pool.max_conections", "did you mean 'max_connections'"),
        (
            lambda d: d["models"]["gemini-2.5-flash"].update(aliases=["4o"]),
            'models."gemini-2.5-flash".aliases',
            "already",
        ),
    ],
)
def test_errors_name_the_key(mutate: Any, key: str, hint: str) -> None:
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(ConfigError) as ei:
        load_config(data, env=ENV, known_types=KNOWN)
    assert ei.value.key == key
    assert hint in str(ei.value)


def test_missing_secret_names_env_var() -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(BASE, env={"OPENAI_API_KEY": "x"}, known_types=KNOWN)
    assert ei.value.key == "providers.relay.api_key"
    assert ei.value.env_var == "RELAY_KEY"
    assert "RELAY_KEY" in str(ei.value)


def test_direct_fallback_and_literal_dollar() -> None:
    data = copy.deepcopy(BASE)
    data["models"]["gpt-4o"]["fallbacks"] = ["relay/some/model-with/slashes"]
    data["providers"]["relay"]["headers"] = {"X-Lit": "$${NOT_A_VAR}"}
    cfg = load_config(data, env=ENV, known_types=KNOWN)
    assert cfg.providers["relay"].headers["X-Lit"] == "${NOT_A_VAR}"


def test_interpolate_forms() -> None:
    assert interpolate("a-${X}-b", {"X": "1"}, "k") == ("a-1-b", True)
    assert interpolate("${Y:-dflt}", {}, "k") == ("dflt", True)
    assert interpolate("plain", {}, "k") == ("plain", False)
    with pytest.raises(ConfigError) as ei:
        interpolate("${Z}", {}, "providers.a.api_key")
    assert ei.value.env_var == "Z"


def test_toml_and_json_files(tmp_path: Path) -> None:
    toml = tmp_path / "r.toml"
    toml.write_text(
        """
[providers.openai]
type = "openai"
api_key = "${OPENAI_API_KEY}"

[models."gpt-4o"]
targets = ["openai/gpt-4o"]
"""
    )
    cfg = load_config(toml, env=ENV)
    assert cfg.models[0].targets[0].key == "openai/gpt-4o"
    js = tmp_path / "r.json"
    js.write_text(json.dumps(BASE))
    assert load_config(js, env=ENV).providers["relay"].options == {"auth": "raw"}


def test_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[providers\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(bad)
    badj = tmp_path / "bad.json"
    badj.write_text("{")
    with pytest.raises(ConfigError, match="invalid JSON at line 1"):
        load_config(badj)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    empty = tmp_path / "e.toml"
    empty.write_text("")
    with pytest.raises(ConfigError) as ei:
        load_config(empty)
    assert ei.value.key == "providers"
