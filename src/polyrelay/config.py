"""Router configuration: a dict, or a TOML or JSON file, validated into typed values.

Shape (every table optional except ``providers``)::

    [policy]                      # global Policy overrides (retry, circuit, timeouts, deadline, strategy, ...)
    retry = { max_attempts = 3 }

    [pool]                        # connection pool of the shared session
    max_connections = 1024

    [providers.openai]            # instance name → provider type and settings
    type = "openai"
    api_key = "${OPENAI_API_KEY}" # ${VAR} and ${VAR:-default}; unset without default is an error naming VAR
    [providers.relay]
    type = "openai"
    base_url = "https://relay.example.com/v1"
    api_key = "${RELAY_KEY}"
    auth = "raw"                  # provider-specific keys are checked by the provider when it is loaded

    [models."gpt-4o"]
    targets = ["openai/gpt-4o", { provider = "relay", model = "gpt-4o", weight = 2, policy = { ... } }]
    fallbacks = ["gemini-2.5-flash"]
    context_window_fallbacks = ["gpt-4.1"]
    content_policy_fallbacks = []
    aliases = ["4o"]
    strategy = "weighted"         # shorthand for policy.strategy
    policy = { retry = { max_attempts = 2 } }

    [models."claude-*"]           # a glob pattern; {model} is the requested name
    targets = ["relay/{model}"]

Every error is a :class:`~polyrelay.errors.ConfigError` whose ``key`` is the path of the offending key
(``models."gpt-4o".targets[1]``), with a did-you-mean for unknown keys.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from polyrelay.errors import ConfigError, Secret
from polyrelay.policy import Policy, did_you_mean
from polyrelay.provider import ProviderSettings
from polyrelay.routes import ModelRoute, Target, parse_target
from polyrelay.transport import PoolLimits

__all__ = ["RouterConfig", "load_config", "parse_config", "interpolate"]

_TOP_KEYS = frozenset({"providers", "models", "policy", "pool"})
_PROVIDER_KEYS = frozenset({"type", "base_url", "api_key", "headers"})
_MODEL_KEYS = frozenset(
    {"targets", "fallbacks", "context_window_fallbacks", "content_policy_fallbacks", "aliases", "strategy", "policy"}
)
_TARGET_KEYS = frozenset({"provider", "model", "weight", "policy"})
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@attrs.frozen(kw_only=True)
class RouterConfig:
    providers: Mapping[str, ProviderSettings]
    models: tuple[ModelRoute, ...] = ()
    policy: Policy = Policy()
    limits: PoolLimits = PoolLimits()


def _k(path: str, key: str) -> str:
    """Append a key to a dotted path, quoting keys that are not bare identifiers (``models."gpt-4o"``)."""
    part = key if _IDENT.match(key) else json.dumps(key)
    return f"{path}.{part}" if path else part


def interpolate(value: str, env: Mapping[str, str], key: str) -> tuple[str, bool]:
    """Expand ``${VAR}`` / ``${VAR:-default}``. Returns the text and whether any variable was used.

    ``$${`` stays a literal ``${``.
    """
    used = False

    def sub(m: re.Match[str]) -> str:
        nonlocal used
        used = True
        name, default = m.group(1), m.group(2)
        got = env.get(name)
        if got is None or got == "":
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is not set", key=key, env_var=name)
        return got

    if "${" not in value:
        return value, False
    parts = value.split("$${")
    return "${".join(_VAR.sub(sub, p) for p in parts), used


def _interp_tree(data: Any, env: Mapping[str, str], path: str) -> Any:
    if isinstance(data, str):
        return interpolate(data, env, path)[0]
    if isinstance(data, Mapping):
        return {k: _interp_tree(v, env, _k(path, str(k))) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_interp_tree(v, env, f"{path}[{i}]") for i, v in enumerate(data)]
    return data


def _table(data: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"must be a table, got {type(data).__name__}", key=key)
    return data


def _str(data: Any, key: str) -> str:
    if not isinstance(data, str) or not data:
        raise ConfigError(f"must be a non-empty string, got {data!r}", key=key)
    return data


def _str_list(data: Any, key: str) -> tuple[str, ...]:
    if isinstance(data, str):
        return (data,)
    if not isinstance(data, list | tuple):
        raise ConfigError(f"must be a list of strings, got {type(data).__name__}", key=key)
    return tuple(_str(v, f"{key}[{i}]") for i, v in enumerate(data))


def _unknown(table: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
    for k in table:
        if k not in allowed:
            raise ConfigError(f"unknown key{did_you_mean(str(k), allowed)}", key=_k(path, str(k)))


def load_config(
    source: Mapping[str, Any] | str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    known_types: frozenset[str] | None = None,
) -> RouterConfig:
    """Read a dict, or a ``.toml`` / ``.json`` file, into a :class:`RouterConfig`."""
    env = os.environ if env is None else env
    if isinstance(source, Mapping):
        return parse_config(source, env=env, known_types=known_types)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
    data: Any
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path.name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    else:
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path.name}: invalid TOML: {exc}") from exc
    return parse_config(_table(data, ""), env=env, known_types=known_types)


def parse_config(
    data: Mapping[str, Any], *, env: Mapping[str, str] | None = None, known_types: frozenset[str] | None = None
) -> RouterConfig:
    """Validate an already-parsed config mapping. ``known_types`` (provider types, from the registry's metadata)
    enables did-you-mean on ``type``."""
    env = os.environ if env is None else env
    _unknown(data, _TOP_KEYS, "")
    if "providers" not in data:
        raise ConfigError("at least one provider is required", key="providers")
    providers = _parse_providers(_table(data["providers"], "providers"), env, known_types)
    policy = Policy().merged(_interp_tree(data.get("policy") or {}, env, "policy"), key="policy")
    limits = _parse_pool(data.get("pool"), env)
    models = _parse_models(_table(data.get("models") or {}, "models"), providers, env)
    return RouterConfig(providers=providers, models=models, policy=policy, limits=limits)


def _parse_pool(data: Any, env: Mapping[str, str]) -> PoolLimits:
    if data is None:
        return PoolLimits()
    table = _interp_tree(_table(data, "pool"), env, "pool")
    fields = attrs.fields_dict(PoolLimits)
    kw: dict[str, Any] = {}
    for k, v in table.items():
        key = _k("pool", k)
        if k not in fields:
            raise ConfigError(f"unknown key{did_you_mean(k, fields)}", key=key)
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise ConfigError(f"must be a non-negative number, got {v!r}", key=key)
        kw[k] = type(getattr(PoolLimits(), k))(v)
    return PoolLimits(**kw)


def _parse_providers(
    table: Mapping[str, Any], env: Mapping[str, str], known_types: frozenset[str] | None
) -> dict[str, ProviderSettings]:
    out: dict[str, ProviderSettings] = {}
    if not table:
        raise ConfigError("at least one provider is required", key="providers")
    for name, raw in table.items():
        path = _k("providers", name)
        if "/" in name or not name:
            raise ConfigError("a provider name may not be empty or contain '/'", key=path)
        entry = _table(raw, path)
        if "type" not in entry:
            raise ConfigError('is required (the provider type, e.g. "openai")', key=_k(path, "type"))
        ptype = _str(entry["type"], _k(path, "type"))
        if known_types is not None and ptype not in known_types:
            raise ConfigError(
                f"unknown provider type {ptype!r}{did_you_mean(ptype, known_types)}; installed: "
                f"{', '.join(sorted(known_types))}",
                key=_k(path, "type"),
            )
        base_url = None
        if entry.get("base_url") is not None:
            base_url = interpolate(_str(entry["base_url"], _k(path, "base_url")), env, _k(path, "base_url"))[0]
            if not re.match(r"^https?://[^/\s]+", base_url):
                raise ConfigError(f"must be an http(s) URL, got {base_url!r}", key=_k(path, "base_url"))
            base_url = base_url.rstrip("/")
        api_key: Secret | None = None
        if entry.get("api_key") is not None:
            key_path = _k(path, "api_key")
            raw_key = entry["api_key"]
            if not isinstance(raw_key, str):
                raise ConfigError('must be a string (use "${ENV_VAR}" to read it from the environment)', key=key_path)
            value, _used = interpolate(raw_key, env, key_path)
            if value:
                api_key = Secret(value)
        headers: dict[str, str] = {}
        if entry.get("headers") is not None:
            hpath = _k(path, "headers")
            for hk, hv in _table(entry["headers"], hpath).items():
                headers[str(hk)] = interpolate(_str(hv, _k(hpath, str(hk))), env, _k(hpath, str(hk)))[0]
        options = {k: _interp_tree(v, env, _k(path, k)) for k, v in entry.items() if k not in _PROVIDER_KEYS}
        out[name] = ProviderSettings(
            name=name,
            type=ptype,
            base_url=base_url,
            api_key=api_key,
            headers=headers,
            options=options,
            config_path=path,
        )
    return out


def _parse_target(raw: Any, path: str, providers: Mapping[str, ProviderSettings], env: Mapping[str, str]) -> Target:
    if isinstance(raw, str):
        try:
            provider, model = parse_target(raw)
        except ValueError as exc:
            raise ConfigError(str(exc), key=path) from exc
        weight: float = 1.0
        policy: Mapping[str, Any] = {}
    else:
        t = _table(raw, path)
        _unknown(t, _TARGET_KEYS, path)
        for req in ("provider", "model"):
            if req not in t:
                raise ConfigError("is required", key=_k(path, req))
        provider = _str(t["provider"], _k(path, "provider"))
        model = _str(t["model"], _k(path, "model"))
        w = t.get("weight", 1.0)
        if isinstance(w, bool) or not isinstance(w, int | float) or w <= 0:
            raise ConfigError(f"must be a positive number, got {w!r}", key=_k(path, "weight"))
        weight = float(w)
        policy = _interp_tree(t.get("policy") or {}, env, _k(path, "policy"))
        Policy().merged(policy, key=_k(path, "policy"))  # validate now, merge later
    if provider not in providers:
        raise ConfigError(
            f"unknown provider {provider!r}{did_you_mean(provider, providers)}; configured: "
            f"{', '.join(sorted(providers))}",
            key=path,
        )
    return Target(provider=provider, model=model, weight=weight, policy=policy)


def _is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


def _parse_models(
    table: Mapping[str, Any], providers: Mapping[str, ProviderSettings], env: Mapping[str, str]
) -> tuple[ModelRoute, ...]:
    routes: list[ModelRoute] = []
    names = set(table)
    aliases: dict[str, str] = {}
    for name, raw in table.items():
        path = _k("models", name)
        entry = _table(raw, path)
        _unknown(entry, _MODEL_KEYS, path)
        if "targets" not in entry:
            raise ConfigError('is required (a list of "provider/model" targets)', key=_k(path, "targets"))
        traw = entry["targets"]
        if isinstance(traw, str):
            traw = [traw]
        if not isinstance(traw, list | tuple) or not traw:
            raise ConfigError("must be a non-empty list of targets", key=_k(path, "targets"))
        targets = tuple(_parse_target(t, f"{_k(path, 'targets')}[{i}]", providers, env) for i, t in enumerate(traw))
        policy: dict[str, Any] = dict(_interp_tree(entry.get("policy") or {}, env, _k(path, "policy")))
        Policy().merged(policy, key=_k(path, "policy"))
        if "strategy" in entry:
            Policy().merged({"strategy": entry["strategy"]}, key=path)
            policy["strategy"] = entry["strategy"]
        lists = {}
        for lk in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks", "aliases"):
            lists[lk] = _str_list(entry.get(lk, ()), _k(path, lk))
        for alias in lists["aliases"]:
            if alias in names or alias in aliases:
                raise ConfigError(f"alias {alias!r} is already a model name or alias", key=_k(path, "aliases"))
            aliases[alias] = name
        routes.append(
            ModelRoute(
                name=name,
                targets=targets,
                fallbacks=lists["fallbacks"],
                context_window_fallbacks=lists["context_window_fallbacks"],
                content_policy_fallbacks=lists["content_policy_fallbacks"],
                aliases=lists["aliases"],
                policy=policy,
                is_pattern=_is_pattern(name),
            )
        )
    # Fallback names must resolve: a configured model or alias, a pattern match, or direct provider/model.
    for r in routes:
        for lk in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
            for i, fb in enumerate(getattr(r, lk)):
                if fb in names or fb in aliases or any(p.is_pattern and p.matches(fb) for p in routes):
                    continue
                prov, sep, _m = fb.partition("/")
                if sep and prov in providers:
                    continue
                raise ConfigError(
                    f"unknown model {fb!r}{did_you_mean(fb, names | set(aliases))}",
                    key=f"{_k(_k('models', r.name), lk)}[{i}]",
                )
    # Exact names first, then patterns in file order.
    return tuple(sorted(routes, key=lambda r: r.is_pattern))
