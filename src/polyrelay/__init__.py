"""polyrelay: one OpenAI-format interface to many AI providers, with routing, retries, failover and streaming.

    import polyrelay

    async with polyrelay.Router.from_config("polyrelay.toml") as router:
        resp = await router.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
        print(resp.choices[0].message.content, resp.meta.provider)

Importing this package is cheap: it loads no provider and no HTTP client until they are used. The names below are
resolved on first access.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from polyrelay.errors import (
    AllTargetsFailed,
    AuthenticationFailed,
    BadRequest,
    ConfigError,
    ConnectionFailed,
    ConnectTimeout,
    ContentPolicyViolation,
    ContextWindowExceeded,
    DeadlineExceeded,
    FirstByteTimeout,
    FirstTokenTimeout,
    IdleTimeout,
    InvalidRequest,
    InvalidUpstreamResponse,
    NotFound,
    Overloaded,
    PermissionDenied,
    PluginError,
    PolyrelayError,
    QuotaExceeded,
    RateLimited,
    Secret,
    ServerError,
    StreamInterrupted,
    TaskError,
    TaskFailed,
    TaskTimeout,
    TransportError,
    UnsupportedFeature,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
)

if TYPE_CHECKING:
    from polyrelay.bridge import MediaChatStream
    from polyrelay.circuit import CircuitStore
    from polyrelay.config import RouterConfig, load_config
    from polyrelay.hooks import RouterHooks
    from polyrelay.policy import CircuitPolicy, Policy, RetryPolicy
    from polyrelay.provider import (
        API_VERSION,
        CallContext,
        ChatProvider,
        ImageProvider,
        ModelCapabilities,
        ProviderSettings,
        ProviderSpec,
        TaskProvider,
    )
    from polyrelay.registry import ProviderRegistry
    from polyrelay.router import Router
    from polyrelay.stream import ChatStream
    from polyrelay.transport import PoolLimits, Timeouts
    from polyrelay.types.chat import ChatRequest, Message
    from polyrelay.types.completion import (
        Attempt,
        ChatCompletion,
        ChatCompletionChunk,
        ResponseMeta,
        Usage,
    )
    from polyrelay.types.media import Artifact, ImagesResponse, Task

__version__ = "0.1.0"

# Library convention: no output unless the application configures logging.
logging.getLogger("polyrelay").addHandler(logging.NullHandler())

_LAZY: dict[str, str] = {
    "Router": "polyrelay.router",
    "ChatStream": "polyrelay.stream",
    "RouterConfig": "polyrelay.config",
    "load_config": "polyrelay.config",
    "Policy": "polyrelay.policy",
    "RetryPolicy": "polyrelay.policy",
    "CircuitPolicy": "polyrelay.policy",
    "Timeouts": "polyrelay.transport",
    "PoolLimits": "polyrelay.transport",
    "API_VERSION": "polyrelay.provider",
    "CallContext": "polyrelay.provider",
    "ChatProvider": "polyrelay.provider",
    "ImageProvider": "polyrelay.provider",
    "TaskProvider": "polyrelay.provider",
    "ModelCapabilities": "polyrelay.provider",
    "ProviderSettings": "polyrelay.provider",
    "ProviderSpec": "polyrelay.provider",
    "ProviderRegistry": "polyrelay.registry",
    "RouterHooks": "polyrelay.hooks",
    "CircuitStore": "polyrelay.circuit",
    "MediaChatStream": "polyrelay.bridge",
    "ChatRequest": "polyrelay.types.chat",
    "Message": "polyrelay.types.chat",
    "ChatCompletion": "polyrelay.types.completion",
    "ChatCompletionChunk": "polyrelay.types.completion",
    "ResponseMeta": "polyrelay.types.completion",
    "Attempt": "polyrelay.types.completion",
    "Usage": "polyrelay.types.completion",
    "ImagesResponse": "polyrelay.types.media",
    "Task": "polyrelay.types.media",
    "Artifact": "polyrelay.types.media",
}

__all__ = [
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
]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'polyrelay' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
