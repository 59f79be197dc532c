"""Kling's bearer token: an HS256 JWT ``{"iss": access_key, "exp": now + 30 min, "nbf": now - 5 s}`` signed with
the secret key (wire-video-audio-workflow.md §3.1), cached and re-signed before it expires.

Signed with the standard library (``hmac`` + ``hashlib`` + ``base64``): polyrelay's runtime dependencies are
aiohttp, attrs, cattrs and tenacity only, and one HS256 signature is about twenty lines, so a JWT library (PyJWT,
the alternative, with ``jwt.encode(claims, sk, algorithm="HS256")``) would be a whole dependency for very little.
Only signing is implemented: Kling verifies the token, we never need to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from polyrelay.errors import Secret

__all__ = ["KlingToken", "b64url", "sign_hs256"]

#: Seconds a token is valid (the documented example uses 1800).
TOKEN_LIFETIME = 1800
#: ``nbf`` lies this far in the past so a slightly fast Kling clock still accepts the token.
NOT_BEFORE_SKEW = 5
#: A cached token with less than this left is replaced before use.
RENEW_BEFORE = 300
_HEADER = {"alg": "HS256", "typ": "JWT"}


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWTs use it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(value: Mapping[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())


def sign_hs256(claims: Mapping[str, Any], secret: Secret) -> str:
    """``header.claims.signature``: HMAC-SHA256 over the first two segments with ``secret``."""
    signing_input = f"{_segment(_HEADER)}.{_segment(claims)}"
    signature = hmac.new(secret.reveal().encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


class KlingToken:
    """Makes and caches the token. ``clock`` returns Unix seconds (injectable for tests)."""

    __slots__ = ("_cached", "_clock", "_expires", "access_key", "lifetime", "renew_before", "secret_key")

    def __init__(
        self,
        access_key: str,
        secret_key: Secret,
        *,
        clock: Callable[[], float] = time.time,
        lifetime: int = TOKEN_LIFETIME,
        renew_before: int = RENEW_BEFORE,
    ) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.lifetime = lifetime
        self.renew_before = renew_before
        self._clock = clock
        self._cached: str | None = None
        self._expires = 0

    def __repr__(self) -> str:
        return f"KlingToken(access_key={self.access_key!r}, secret_key={self.secret_key!r})"

    def token(self) -> str:
        """The current token: the cached one while more than ``renew_before`` seconds remain, else a new one."""
        now = int(self._clock())
        if self._cached is not None and self._expires - now > self.renew_before:
            return self._cached
        self._expires = now + self.lifetime
        self._cached = sign_hs256(
            {"iss": self.access_key, "exp": self._expires, "nbf": now - NOT_BEFORE_SKEW}, self.secret_key
        )
        return self._cached

    def invalidate(self) -> None:
        """Forget the cached token (Kling rejected it: expired, not yet valid, or auth failed)."""
        self._cached = None
