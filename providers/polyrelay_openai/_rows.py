"""Upstream quirks of OpenAI-compatible chat APIs, as data rows.

Every way an upstream deviates from OpenAI's Chat Completions API that this plugin handles is a field of
:class:`CompatRow`; each known upstream is one row in :data:`ROWS`. Code reads the fields, never the row name, so a
user can describe a new upstream (or correct one of ours) in config without code::

    [providers.myrelay]
    type = "openai"
    base_url = "https://relay.example.com/v1"
    preset = "relay"
    quirks = { reasoning_field = "reasoning", drop_params = ["logit_bias"] }

Sources for the rows: our wire research notes (wire-chat.md, sections 1.9 and 4), and the recorded traffic under
``tests/fixtures/recorded``. This module imports nothing heavy: the plugin's ``__init__`` builds its specs from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import attrs

from polyrelay.errors import ConfigError

__all__ = [
    "AUTH_STYLES",
    "DEFAULT_PRESET",
    "REASONING_KEYS",
    "ROWS",
    "Auth",
    "CompatRow",
    "Replay",
    "apply_quirks",
    "detect_preset",
]

Auth = Literal["bearer", "raw", "header", "none"]
"""``bearer``: ``Authorization: Bearer <key>``; ``raw``: ``Authorization: <key>`` (some relays);
``header``: the key alone in ``auth_header`` (Azure ``api-key``); ``none``: send no key."""

Replay = Literal["strip", "tool_turns", "always", "keep"]
"""What happens to the reasoning of earlier assistant turns in a request: ``strip`` removes every reasoning key
(strict upstreams reject unknown message keys); ``tool_turns`` sends it back only on assistant messages with tool
calls (DeepSeek / Moonshot thinking contract; ``""`` when missing) and strips it elsewhere; ``always`` sends it on
every assistant message that has some; ``keep`` leaves messages exactly as the caller wrote them (relays)."""

ToolIdRule = Literal["any", "alnum9"]
"""``alnum9``: tool-call ids must be exactly 9 ASCII letters/digits (Mistral); others are remapped."""

UsageFix = Literal["none", "add_reasoning"]
"""``add_reasoning``: the upstream's ``completion_tokens`` leaves out reasoning tokens (xAI); add them back."""

UsagePlacement = Literal["trailing_chunk", "finish_chunk", "choice"]
"""Where a stream's usage arrives. Documentation only: the reader takes the last usage seen anywhere."""

AUTH_STYLES: frozenset[str] = frozenset(get_args(Auth))
REPLAY_MODES: frozenset[str] = frozenset(get_args(Replay))
TOOL_ID_RULES: frozenset[str] = frozenset(get_args(ToolIdRule))
USAGE_FIXES: frozenset[str] = frozenset(get_args(UsageFix))
USAGE_PLACEMENTS: frozenset[str] = frozenset(get_args(UsagePlacement))

#: Message keys that carry a previous turn's reasoning, in any dialect (see wire-chat.md §1.9).
REASONING_KEYS: tuple[str, ...] = ("reasoning_content", "reasoning", "reasoning_details")

DEFAULT_PRESET = "openai"

# Chat-completions servers with different names for the output limit: these only know ``max_tokens``.
_MAX_TOKENS_ONLY: Mapping[str, str] = MappingProxyType({"max_completion_tokens": "max_tokens"})


def _frozen_map(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class CompatRow:
    """How one OpenAI-compatible upstream differs from OpenAI. Every field can be overridden in config (``quirks``)."""

    name: str
    description: str = ""
    base_url: str | None = None
    """Default base URL (``None``: the config must give one)."""
    api_key_env: str | None = None
    hosts: tuple[str, ...] = ()
    """Host names (or ``.suffixes``) that select this row when no ``preset`` is configured."""
    path: str = "/chat/completions"
    query: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    """Query parameters added to every request (Azure ``api-version``)."""
    auth: Auth = "bearer"
    auth_header: str = "Authorization"
    reasoning_fields: tuple[str, ...] = ("reasoning_content", "reasoning")
    """Response fields read (first present wins) into ``reasoning_content``; the original stays in ``extra``."""
    replay: Replay = "strip"
    replay_field: str = "reasoning_content"
    """Name under which earlier reasoning is sent back (``replay`` ``tool_turns``/``always``)."""
    replay_extra: tuple[str, ...] = ()
    """Reasoning keys of ``REASONING_KEYS`` that are sent back verbatim (OpenRouter ``reasoning_details``)."""
    drop_params: tuple[str, ...] = ()
    """Top-level request keys the upstream rejects: removed, with a CallWarning each."""
    rename_params: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    """Top-level request keys the upstream knows by another name (``max_completion_tokens`` → ``max_tokens``)."""
    single_choice: bool = False
    """The upstream rejects ``n`` other than 1: drop it with a CallWarning."""
    drop_message_name: bool = False
    """The upstream rejects ``messages[].name``: drop it with a CallWarning."""
    stream_options: bool = True
    """The upstream accepts ``stream_options`` (when false, usage arrives on the finish chunk anyway)."""
    tool_choices: tuple[str, ...] | None = None
    """String ``tool_choice`` values the upstream accepts (``None``: all, and named tools); others are dropped."""
    json_schema: bool = True
    """``response_format.type = "json_schema"`` supported; otherwise sent as ``json_object`` with a warning."""
    tool_id_rule: ToolIdRule = "any"
    usage_fix: UsageFix = "none"
    usage_placement: UsagePlacement = "trailing_chunk"
    prefill_flag: str | None = None
    """Flag set on a trailing assistant message so the upstream continues it (``prefix`` / ``partial``)."""
    accepts_prefill: bool = False
    prefill_base_path: str | None = None
    """Prefill works only when the base URL path ends with this (DeepSeek serves ``prefix`` on ``/beta``)."""

    def prefill_supported(self, base_url: str) -> bool:
        """``ModelCapabilities.accepts_prefill`` for this row at ``base_url``."""
        if not self.accepts_prefill:
            return False
        if self.prefill_base_path is None:
            return True
        return urlsplit(base_url).path.rstrip("/").endswith(self.prefill_base_path)


ROWS: Mapping[str, CompatRow] = MappingProxyType(
    {
        row.name: row
        for row in (
            CompatRow(
                name="openai",
                description="OpenAI Chat Completions (also the default for unknown hosts).",
                base_url="https://api.openai.com/v1",
                api_key_env="OPENAI_API_KEY",
                hosts=("api.openai.com",),
            ),
            CompatRow(
                name="azure",
                description="Azure OpenAI: key in the api-key header. base_url is required, e.g. "
                "https://NAME.openai.azure.com/openai/deployments/{model} with api_version, or .../openai/v1.",
                api_key_env="AZURE_OPENAI_API_KEY",
                hosts=(".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com"),
                auth="header",
                auth_header="api-key",
            ),
            CompatRow(
                name="deepseek",
                description="DeepSeek: reasoning_content, replayed on tool-call turns; usage on the finish chunk; "
                "402 = insufficient balance. Prefill (prefix: true) on the /beta base URL only.",
                base_url="https://api.deepseek.com",
                api_key_env="DEEPSEEK_API_KEY",
                hosts=("api.deepseek.com",),
                reasoning_fields=("reasoning_content",),
                replay="tool_turns",
                rename_params=_MAX_TOKENS_ONLY,
                usage_placement="finish_chunk",
                prefill_flag="prefix",
                accepts_prefill=True,
                prefill_base_path="/beta",
            ),
            CompatRow(
                name="groq",
                description="Groq: reasoning in `reasoning`; rejects logprobs, logit_bias, top_logprobs, n != 1 "
                "and messages[].name.",
                base_url="https://api.groq.com/openai/v1",
                api_key_env="GROQ_API_KEY",
                hosts=("api.groq.com",),
                reasoning_fields=("reasoning",),
                drop_params=("logprobs", "logit_bias", "top_logprobs"),
                single_choice=True,
                drop_message_name=True,
                usage_placement="finish_chunk",
            ),
            CompatRow(
                name="mistral",
                description="Mistral: 9-character alphanumeric tool-call ids (remapped), whole tool calls without "
                "index in streams, thinking as content arrays, random_seed, no stream_options, prefix prefill.",
                base_url="https://api.mistral.ai/v1",
                api_key_env="MISTRAL_API_KEY",
                hosts=("api.mistral.ai",),
                reasoning_fields=("reasoning_content",),
                rename_params={"max_completion_tokens": "max_tokens", "seed": "random_seed"},
                stream_options=False,
                tool_id_rule="alnum9",
                usage_placement="finish_chunk",
                prefill_flag="prefix",
                accepts_prefill=True,
            ),
            CompatRow(
                name="together",
                description="Together AI: reasoning in `reasoning`; max_tokens.",
                base_url="https://api.together.xyz/v1",
                api_key_env="TOGETHER_API_KEY",
                hosts=("api.together.xyz", "api.together.ai"),
                reasoning_fields=("reasoning", "reasoning_content"),
                rename_params=_MAX_TOKENS_ONLY,
                usage_placement="finish_chunk",
            ),
            CompatRow(
                name="fireworks",
                description="Fireworks AI: reasoning_content; max_tokens.",
                base_url="https://api.fireworks.ai/inference/v1",
                api_key_env="FIREWORKS_API_KEY",
                hosts=("api.fireworks.ai",),
                reasoning_fields=("reasoning_content", "reasoning"),
                rename_params=_MAX_TOKENS_ONLY,
                usage_placement="finish_chunk",
            ),
            CompatRow(
                name="openrouter",
                description="OpenRouter: `reasoning` plus `reasoning_details` (kept and sent back), numeric error "
                "codes with metadata, errors after HTTP 200 as chunks.",
                base_url="https://openrouter.ai/api/v1",
                api_key_env="OPENROUTER_API_KEY",
                hosts=("openrouter.ai",),
                reasoning_fields=("reasoning",),
                replay="always",
                replay_field="reasoning",
                replay_extra=("reasoning_details",),
                usage_placement="finish_chunk",
            ),
            CompatRow(
                name="ollama",
                description="Ollama's /v1 endpoint: `reasoning` (sent back), no logit_bias or n; key ignored locally.",
                base_url="http://localhost:11434/v1",
                api_key_env="OLLAMA_API_KEY",
                hosts=("ollama.com", ":11434"),
                reasoning_fields=("reasoning",),
                replay="always",
                replay_field="reasoning",
                drop_params=("logit_bias",),
                single_choice=True,
                rename_params=_MAX_TOKENS_ONLY,
            ),
            CompatRow(
                name="vllm",
                description="vLLM's OpenAI server (base_url required): `reasoning` (>= 0.11) or reasoning_content.",
                api_key_env="VLLM_API_KEY",
                reasoning_fields=("reasoning", "reasoning_content"),
            ),
            CompatRow(
                name="dashscope",
                description="Alibaba DashScope compatible mode (Qwen): reasoning_content, trailing usage chunk.",
                base_url="https://dashscope.aliyuncs.com/compatible-mode/v1",
                api_key_env="DASHSCOPE_API_KEY",
                hosts=("dashscope.aliyuncs.com", "dashscope-intl.aliyuncs.com", ".maas.aliyuncs.com"),
                reasoning_fields=("reasoning_content",),
                rename_params=_MAX_TOKENS_ONLY,
            ),
            CompatRow(
                name="moonshot",
                description="Moonshot / Kimi: reasoning_content replayed on tool-call turns, usage inside "
                "choices[0].usage, partial: true prefill.",
                base_url="https://api.moonshot.ai/v1",
                api_key_env="MOONSHOT_API_KEY",
                hosts=("api.moonshot.ai", "api.moonshot.cn"),
                reasoning_fields=("reasoning_content",),
                replay="tool_turns",
                rename_params=_MAX_TOKENS_ONLY,
                usage_placement="choice",
                prefill_flag="partial",
                accepts_prefill=True,
            ),
            CompatRow(
                name="zhipu",
                description="Zhipu GLM / Z.ai: reasoning_content (sent back for preserved thinking), no "
                "stream_options, tool_choice auto only, max_tokens only, no penalties, json_object only.",
                base_url="https://open.bigmodel.cn/api/paas/v4",
                api_key_env="ZHIPUAI_API_KEY",
                hosts=("open.bigmodel.cn", "api.z.ai"),
                reasoning_fields=("reasoning_content",),
                replay="always",
                drop_params=("presence_penalty", "frequency_penalty", "logit_bias"),
                rename_params=_MAX_TOKENS_ONLY,
                drop_message_name=True,
                stream_options=False,
                tool_choices=("auto",),
                json_schema=False,
                usage_placement="finish_chunk",
            ),
            CompatRow(
                name="xai",
                description="xAI Grok: completion_tokens leaves out reasoning tokens (added back).",
                base_url="https://api.x.ai/v1",
                api_key_env="XAI_API_KEY",
                hosts=("api.x.ai",),
                reasoning_fields=("reasoning_content",),
                usage_fix="add_reasoning",
            ),
            CompatRow(
                name="gemini-openai",
                description="Google Gemini's OpenAI-compatible endpoint (tool calls may come without ids; "
                "extra_content.google.thought_signature is kept and sent back).",
                base_url="https://generativelanguage.googleapis.com/v1beta/openai",
                api_key_env="GEMINI_API_KEY",
                hosts=("generativelanguage.googleapis.com",),
            ),
            CompatRow(
                name="relay",
                description="A new-api / one-api style relay (base_url required): messages passed as written.",
                replay="keep",
            ),
        )
    }
)


def detect_preset(base_url: str | None) -> str:
    """The row whose ``hosts`` match ``base_url`` (``.suffix`` entries match subdomains, ``:port`` the port);
    :data:`DEFAULT_PRESET` otherwise."""
    if not base_url:
        return DEFAULT_PRESET
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    port = parts.port
    for row in ROWS.values():
        for pattern in row.hosts:
            if pattern.startswith(":"):
                if port is not None and str(port) == pattern[1:]:
                    return row.name
            elif pattern.startswith("."):
                if host.endswith(pattern):
                    return row.name
            elif host == pattern:
                return row.name
    return DEFAULT_PRESET


# ------------------------------------------------------------------------------------------------ config overrides


def _str(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"must be a string, got {type(value).__name__}", key=key)
    return value


def _opt_str(value: Any, key: str) -> str | None:
    return None if value is None else _str(value, key)


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"must be true or false, got {value!r}", key=key)
    return value


def _str_tuple(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):  # a single name is as good as a one-element list
        return (value,)
    if not isinstance(value, list | tuple):
        raise ConfigError(f"must be a list of strings, got {type(value).__name__}", key=key)
    return tuple(_str(v, f"{key}[{i}]") for i, v in enumerate(value))


def _opt_str_tuple(value: Any, key: str) -> tuple[str, ...] | None:
    return None if value is None else _str_tuple(value, key)


def _str_map(value: Any, key: str) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"must be a table of strings, got {type(value).__name__}", key=key)
    return {_str(k, key): _str(v, f"{key}.{k}") for k, v in value.items()}


def _choice(options: frozenset[str]) -> Callable[[Any, str], str]:
    def check(value: Any, key: str) -> str:
        from polyrelay.policy import did_you_mean

        if value not in options:
            raise ConfigError(
                f"must be one of {sorted(options)}, got {value!r}{did_you_mean(str(value), options)}", key=key
            )
        return str(value)

    return check


#: How each overridable field is read from config. ``name`` is not overridable (it is the row's identity).
_FIELD_READERS: Mapping[str, Callable[[Any, str], Any]] = {
    "description": _str,
    "base_url": _opt_str,
    "api_key_env": _opt_str,
    "hosts": _str_tuple,
    "path": _str,
    "query": _str_map,
    "auth": _choice(AUTH_STYLES),
    "auth_header": _str,
    "reasoning_fields": _str_tuple,
    "replay": _choice(REPLAY_MODES),
    "replay_field": _str,
    "replay_extra": _str_tuple,
    "drop_params": _str_tuple,
    "rename_params": _str_map,
    "single_choice": _bool,
    "drop_message_name": _bool,
    "stream_options": _bool,
    "tool_choices": _opt_str_tuple,
    "json_schema": _bool,
    "tool_id_rule": _choice(TOOL_ID_RULES),
    "usage_fix": _choice(USAGE_FIXES),
    "usage_placement": _choice(USAGE_PLACEMENTS),
    "prefill_flag": _opt_str,
    "accepts_prefill": _bool,
    "prefill_base_path": _opt_str,
}

#: Friendlier singular spellings accepted in config.
_ALIASES: Mapping[str, str] = {"reasoning_field": "reasoning_fields"}

QUIRK_KEYS: frozenset[str] = frozenset(_FIELD_READERS) | frozenset(_ALIASES)


def apply_quirks(row: CompatRow, quirks: Any, *, key: str) -> CompatRow:
    """``row`` with the fields named in the config table ``quirks`` replaced. ``key`` is the table's dotted config
    path; errors name ``<key>.<field>`` (with a did-you-mean for unknown fields)."""
    from polyrelay.policy import did_you_mean

    if not isinstance(quirks, Mapping):
        raise ConfigError(f"must be a table, got {type(quirks).__name__}", key=key)
    changes: dict[str, Any] = {}
    for name, value in quirks.items():
        sub = f"{key}.{name}"
        field = _ALIASES.get(str(name), str(name))
        reader = _FIELD_READERS.get(field)
        if reader is None:
            raise ConfigError(f"unknown quirk{did_you_mean(str(name), QUIRK_KEYS)}", key=sub)
        changes[field] = reader(value, sub)
    return attrs.evolve(row, **changes) if changes else row
