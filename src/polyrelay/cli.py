"""The ``polyrelay`` command line.

- ``polyrelay demo`` — offline tour on the built-in simulated upstreams.
- ``polyrelay chat -m MODEL [--config FILE] [--stream] "prompt"`` — real use; keys from the environment.
- ``polyrelay check-config FILE`` — validate a config and print the resolved routing table (keys masked).
- ``polyrelay providers`` — the installed provider types (from metadata; nothing imported).

Errors are printed as one line naming the config key or field, with exit status 2 (usage/config) or 1 (upstream).
Secrets are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from polyrelay.errors import ConfigError, InvalidRequest, PluginError, PolyrelayError, Secret, mask

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="polyrelay", description="One OpenAI-format interface to many AI providers.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="offline tour on simulated upstreams")
    d.add_argument("--no-color", action="store_true", help="plain output")

    c = sub.add_parser("chat", help="send one chat completion")
    c.add_argument("-m", "--model", required=True, help="public model name or provider/model")
    c.add_argument("--config", help="router config (TOML or JSON); default: providers from environment keys")
    c.add_argument("--stream", action="store_true", help="stream the answer")
    c.add_argument("--system", help="system prompt")
    c.add_argument("prompt", help="the user message")

    k = sub.add_parser("check-config", help="validate a config and print the routing table")
    k.add_argument("file")

    sub.add_parser("providers", help="list installed provider types")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from polyrelay.demo import run_demo

            status: int = asyncio.run(run_demo(color=not args.no_color and sys.stdout.isatty()))
            return status
        if args.command == "check-config":
            return check_config(args.file)
        if args.command == "providers":
            return list_providers()
        if args.command == "chat":
            rc: int = asyncio.run(_chat(args))
            return rc
    except (ConfigError, InvalidRequest, PluginError) as exc:
        print(f"polyrelay: error: {exc}", file=sys.stderr)
        return 2
    except PolyrelayError as exc:
        print(f"polyrelay: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


def list_providers() -> int:
    from polyrelay.registry import ProviderRegistry

    reg = ProviderRegistry()
    for info in sorted(reg.plugins(), key=lambda i: i.name):
        print(f"{info.name:<16} {info.value:<40} {info.distribution}")
    return 0


def _masked_headers(headers: Mapping[str, str]) -> str:
    return ", ".join(f"{k}: {mask(v)}" for k, v in headers.items())


def check_config(path: str) -> int:
    from polyrelay.config import load_config
    from polyrelay.registry import ProviderRegistry
    from polyrelay.transport import Transport

    reg = ProviderRegistry()
    cfg = load_config(path, known_types=frozenset(reg.names()))
    transport = Transport()
    # Load every referenced plugin and let it validate its own options (this is the one place we import them all).
    for s in cfg.providers.values():
        spec = reg.get(s.type)
        spec.factory(s, transport)
    print(f"config {path}: OK")
    print("\nproviders:")
    for s in cfg.providers.values():
        spec = reg.get(s.type)
        key = s.api_key.masked if isinstance(s.api_key, Secret) else None
        if key is None and spec.api_key_env:
            key = f"from ${spec.api_key_env}" + ("" if os.environ.get(spec.api_key_env) else " (NOT SET)")
        base = s.base_url or spec.default_base_url or "-"
        line = f"  {s.name:<14} type={s.type:<12} base_url={base}  key={key or '-'}"
        if s.headers:
            line += f"  headers={{{_masked_headers(s.headers)}}}"
        if s.options:
            line += f"  options={sorted(s.options)}"
        print(line)
    print("\nmodels:")
    for r in cfg.models:
        kind = "pattern" if r.is_pattern else "model"
        print(f"  {kind} {r.name}" + (f"  aliases={list(r.aliases)}" if r.aliases else ""))
        strategy = r.policy.get("strategy", cfg.policy.strategy)
        for i, t in enumerate(r.targets, 1):
            extra = f" weight={t.weight:g}" if strategy == "weighted" else ""
            print(f"    {i}. {t.provider}/{t.model}{extra}" + (f" policy={dict(t.policy)}" if t.policy else ""))
        for label in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
            vals = getattr(r, label)
            if vals:
                print(f"    {label}: {' -> '.join(vals)}")
        if r.policy:
            print(f"    policy: {dict(r.policy)}")
    print("\nglobal policy:")
    p = cfg.policy
    print(
        f"  strategy={p.strategy} deadline={p.deadline}s retry.max_attempts={p.retry.max_attempts} "
        f"backoff={p.retry.backoff_initial}-{p.retry.backoff_max}s circuit={p.circuit.consecutive_failures} "
        f"failures/cooldown {p.circuit.cooldown}s stream_recovery={p.stream_recovery}"
    )
    return 0


def _env_config() -> dict[str, Any]:
    """Without --config: one provider per installed type whose key variable is set (named after the type)."""
    from polyrelay.registry import ProviderRegistry

    reg = ProviderRegistry()
    providers: dict[str, Any] = {}
    for name in reg.names():
        try:
            spec = reg.get(name)
        except PluginError:
            continue
        if spec.api_key_env and os.environ.get(spec.api_key_env):
            providers[name] = {"type": name, "api_key": "${" + spec.api_key_env + "}"}
    if not providers:
        raise ConfigError(
            "no --config given and no provider key found in the environment (e.g. OPENAI_API_KEY)", key="api_key"
        )
    return {"providers": providers}


async def _chat(args: argparse.Namespace) -> int:
    from polyrelay.router import Router

    source: Any = args.config if args.config else _env_config()
    messages: list[dict[str, Any]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": args.prompt})
    async with Router.from_config(source) as router:
        if args.stream:
            stream = await router.chat.completions.create(model=args.model, messages=messages, stream=True)
            async with stream:
                async for chunk in stream:
                    for ch in chunk.choices:
                        if ch.delta.content:
                            print(ch.delta.content, end="", flush=True)
            print()
            meta = stream.meta
        else:
            resp = await router.chat.completions.create(model=args.model, messages=messages)
            print(resp.choices[0].message.content or "")
            meta = resp.meta
        if meta is not None:
            print(f"[{meta.provider}/{meta.model}]", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
