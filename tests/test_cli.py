"""The command line: the offline demo runs end to end; check-config validates and masks keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

KEY = "sk-FAKE-cli-secret-0123456789abcdef"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "polyrelay.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_demo_runs_offline_and_shows_each_part() -> None:
    r = _cli("demo", "--no-color")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "answered by primary/gpt-4o" in out
    assert "content chunks from primary" in out
    assert "failing over" in out and "from backup" in out
    assert "closed -> open" in out and "half_open -> closed" in out
    assert "Replicate makes it" in out and "succeeded: http://127.0.0.1" in out
    assert "video" in out and "100.0% succeeded" in out
    assert "[audio](http://127.0.0.1" in out
    assert r.stdout.rstrip().endswith("done.")


def test_check_config_prints_table_with_masked_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text(
        """
[providers.openai]
type = "openai"
api_key = "${MY_KEY}"
[providers.relay]
type = "openai"
base_url = "https://relay.example.com/v1"
api_key = "${MY_KEY}"
auth = "raw"
headers = { "X-Org" = "${MY_KEY}" }
[models."gpt-4o"]
targets = ["openai/gpt-4o", "relay/gpt-4o"]
fallbacks = ["claude-sonnet-4"]
[models."claude-*"]
targets = ["relay/{model}"]
"""
    )
    r = _cli("check-config", str(cfg), env={"MY_KEY": KEY})
    assert r.returncode == 0, r.stderr
    assert "1. openai/gpt-4o" in r.stdout and "2. relay/gpt-4o" in r.stdout
    assert "pattern claude-*" in r.stdout and "fallbacks: claude-sonnet-4" in r.stdout
    for text in (r.stdout, r.stderr):
        assert KEY not in text and KEY[:12] not in text and KEY[-8:] not in text


def test_check_config_errors_name_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"providers": {"p": {"type": "openai", "auht": "raw"}}, "models": {}}))
    r = _cli("check-config", str(cfg))
    assert r.returncode == 2
    assert "providers.p.auht" in r.stderr and "did you mean 'auth'" in r.stderr


def test_providers_lists_builtins_without_importing() -> None:
    r = _cli("providers")
    assert r.returncode == 0, r.stderr
    names = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
    assert {"openai", "gemini", "anthropic", "flux", "runway", "kling", "suno", "dify", "coze"} <= names


async def test_chat_command_against_a_simulated_upstream(tmp_path: Path) -> None:
    import asyncio

    from polyrelay.testing import OpenAIUpstream, ScriptedReply

    async with OpenAIUpstream(api_key=KEY, reply=ScriptedReply(content="pong from the relay")) as up:
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[providers.relay]\ntype = "openai"\nbase_url = "{up.base_url}"\napi_key = "${{RELAY_KEY}}"\n'
            '[models."fast"]\ntargets = ["relay/gpt-4o-mini"]\n'
        )
        for extra in ([], ["--stream"]):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "polyrelay.cli", "chat", "-m", "fast", "--config", str(cfg), *extra, "ping",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "RELAY_KEY": KEY},
            )  # fmt: skip
            out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
            assert proc.returncode == 0, err.decode()
            assert out.decode().strip() == "pong from the relay"
            assert "[relay/gpt-4o-mini]" in err.decode()
            assert KEY not in out.decode() + err.decode()
        assert up.requests[-1].json["stream"] is True
