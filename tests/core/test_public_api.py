"""The public surface is pinned, and importing polyrelay stays cheap."""

from __future__ import annotations

import json
import subprocess
import sys

import polyrelay

EXPECTED_ALL = {
    "API_VERSION",
    "AllTargetsFailed",
    "Artifact",
    "Attempt",
    "AuthenticationFailed",
    "BadRequest",
    "CallContext",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatProvider",
    "ChatRequest",
    "ChatStream",
    "CircuitPolicy",
    "ConfigError",
    "ConnectTimeout",
    "ConnectionFailed",
    "ContentPolicyViolation",
    "ContextWindowExceeded",
    "DeadlineExceeded",
    "FirstByteTimeout",
    "FirstTokenTimeout",
    "IdleTimeout",
    "ImageProvider",
    "ImagesResponse",
    "InvalidRequest",
    "InvalidUpstreamResponse",
    "Message",
    "ModelCapabilities",
    "NotFound",
    "Overloaded",
    "PermissionDenied",
    "PluginError",
    "Policy",
    "PolyrelayError",
    "PoolLimits",
    "ProviderRegistry",
    "ProviderSettings",
    "ProviderSpec",
    "QuotaExceeded",
    "RateLimited",
    "ResponseMeta",
    "RetryPolicy",
    "Router",
    "RouterConfig",
    "RouterHooks",
    "CircuitStore",
    "MediaChatStream",
    "Secret",
    "ServerError",
    "StreamInterrupted",
    "Task",
    "TaskError",
    "TaskFailed",
    "TaskProvider",
    "TaskTimeout",
    "Timeouts",
    "TransportError",
    "UnsupportedFeature",
    "UpstreamError",
    "UpstreamStatusError",
    "UpstreamTimeout",
    "Usage",
    "load_config",
    "__version__",
}


def test_all_is_pinned() -> None:
    assert set(polyrelay.__all__) == EXPECTED_ALL
    assert len(polyrelay.__all__) == len(set(polyrelay.__all__))


def test_every_name_resolves() -> None:
    for name in polyrelay.__all__:
        assert getattr(polyrelay, name) is not None, name


def test_import_is_light() -> None:
    code = (
        "import sys, json; import polyrelay; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('aiohttp','cattrs','tenacity','yarl','multidict') or m.startswith('polyrelay_'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
