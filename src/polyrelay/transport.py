"""HTTP transport: one shared aiohttp session per Router, split timeouts, typed transport errors.

Providers call :meth:`Transport.request` and get an :class:`HttpResponse`; they never create sessions. The session
is created lazily inside the running loop (aiohttp requires one) and closed by :meth:`Transport.aclose`.

Timeouts (:class:`Timeouts`) are split the way failures actually look:

- ``connect``: TCP/TLS connect;
- ``first_byte``: from sending the request to the response headers;
- ``idle``: between two reads of the body or stream;
- ``total``: one attempt, end to end (the router additionally enforces the call's overall deadline).

Cancelling the caller cancels the upstream request and closes its connection (never returned to the pool
half-read).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

from polyrelay._connector import READ_SIZE
from polyrelay._json import dumps_bytes, loads_bytes
from polyrelay._watchdog import Watchdog
from polyrelay.errors import (
    ConnectionFailed,
    ConnectTimeout,
    DeadlineExceeded,
    FirstByteTimeout,
    IdleTimeout,
    InvalidUpstreamResponse,
    Secret,
    StreamInterrupted,
    UpstreamTimeout,
    redact,
)

if TYPE_CHECKING:
    import aiohttp
    import yarl

    from polyrelay.sse import ServerSentEvent

__all__ = ["HttpResponse", "PoolLimits", "Timeouts", "Transport", "parse_retry_after", "same_origin"]


@attrs.frozen(kw_only=True, cache_hash=True)  # part of every Policy's hash: hashed once
class Timeouts:
    """Per-attempt timeouts in seconds (``None`` disables one). Adjust with ``attrs.evolve``."""

    connect: float | None = 10.0
    first_byte: float | None = 120.0
    idle: float | None = 60.0
    total: float | None = 600.0


@attrs.frozen(kw_only=True)
class PoolLimits:
    """Connection pool sizes of the shared session."""

    max_connections: int = 1024
    max_connections_per_host: int = 0
    keepalive_timeout: float = 30.0
    dns_cache_ttl: int = 300


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The delay (seconds) an upstream asked for: ``retry-after-ms``, else ``Retry-After`` in seconds or as an
    HTTP-date. ``None`` when absent or unparsable; never negative."""
    if not hasattr(headers, "getall"):  # a plain dict: make the lookup case-insensitive like real headers
        headers = {k.lower(): v for k, v in headers.items()}
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    ra = ra.strip()
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError, IndexError):
        return None
    now_ts = time.time() if now is None else now
    return max(0.0, when.timestamp() - now_ts)


def same_origin(url: str, base_url: str) -> bool:
    """True when ``url`` has the scheme, host and port of ``base_url`` (credentials may be sent to it)."""
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme.lower(), (a.hostname or "").lower(), a.port or _default_port(a.scheme)) == (
        b.scheme.lower(),
        (b.hostname or "").lower(),
        b.port or _default_port(b.scheme),
    )


def _default_port(scheme: str) -> int:
    return 443 if scheme.lower() == "https" else 80


class HttpResponse:
    """A response whose headers have arrived. Read it once (``read``/``json``/``iter_sse``/``iter_bytes``), or
    ``close()`` it; ``async with`` does the latter."""

    __slots__ = ("_deadline", "_idle", "_provider", "_raw", "_secrets", "_widened", "headers", "status")

    def __init__(
        self,
        raw: aiohttp.ClientResponse,
        *,
        provider: str,
        idle: float | None,
        deadline: float | None,
        secrets: tuple[Secret | str, ...],
    ) -> None:
        self._raw = raw
        self.status = raw.status
        self.headers: Mapping[str, str] = raw.headers  # CIMultiDictProxy: case-insensitive
        self._provider = provider
        self._idle = idle
        self._deadline = deadline
        self._secrets = secrets
        self._widened: Any = None  # the socket transport whose reads _widen_reads made large

    @property
    def url(self) -> str:
        """The URL that answered."""
        return str(self._raw.url)

    @property
    def request_id(self) -> str | None:
        h = self.headers
        return h.get("x-request-id") or h.get("request-id") or h.get("x-goog-request-id") or h.get("cf-ray")

    def _read_timeout(self) -> float | None:
        idle = self._idle
        if self._deadline is not None:
            left = self._deadline - asyncio.get_running_loop().time()
            if idle is None or left < idle:
                return max(0.0, left)
        return idle

    def _widen_reads(self) -> None:
        # The body did not all come with the headers: it is large (or slow), so the rest is read in asyncio's own
        # large pieces (fewer trips round the event loop) instead of the small ones every connection starts with
        # (see polyrelay._connector); _release restores them before the connection goes back to the pool.
        conn = self._raw.connection
        transport = None if conn is None else conn.transport
        if transport is not None and getattr(transport, "max_size", None) == READ_SIZE:
            transport.max_size = type(transport).max_size  # type: ignore[attr-defined]
            self._widened = transport

    def _release(self) -> None:
        if self._widened is not None:
            self._widened.max_size = READ_SIZE
            self._widened = None
        self._raw.release()

    def _timeout_error(self, what: str) -> UpstreamTimeout:
        deadline_hit = self._deadline is not None and asyncio.get_running_loop().time() >= self._deadline - 1e-3
        cls: type[UpstreamTimeout] = DeadlineExceeded if deadline_hit else IdleTimeout
        return cls(f"no data from the upstream for too long while {what}", provider=self._provider)

    async def read(self) -> bytes:
        """The whole body (idle timeout applies between reads)."""
        parts: list[bytes] = []
        content = self._raw.content
        waited = False
        try:
            while True:
                # What has already arrived is taken without arming a timer: a small body usually comes with its
                # headers, so the common response is read without any timeout bookkeeping.
                chunk = content.read_nowait()
                if not chunk:
                    if content.is_eof():
                        break
                    if not waited:
                        waited = True
                        self._widen_reads()
                    async with asyncio.timeout(self._read_timeout()):
                        chunk = await content.readany()
                    if not chunk:
                        break
                parts.append(chunk)
        except TimeoutError as exc:
            self._raw.close()
            raise self._timeout_error("reading the body") from exc
        except BaseException as exc:
            self._raw.close()
            if isinstance(exc, Exception):
                raise _classify_read_error(exc, self._provider, self._secrets) from exc
            raise
        if waited:
            self._release()  # restores the small reads _widen_reads replaced
        else:
            self._raw.release()
        return b"".join(parts) if len(parts) != 1 else parts[0]

    async def json(self) -> Any:
        """The body parsed as JSON; :class:`InvalidUpstreamResponse` when it is not JSON."""
        body = await self.read()
        try:
            return loads_bytes(body)  # json.loads(body): a BOM and UTF-16/32 are read too
        except (ValueError, RecursionError) as exc:
            snippet = redact(body[:200].decode("utf-8", "replace"), self._secrets)
            raise InvalidUpstreamResponse(
                f"upstream returned a body that is not JSON (status {self.status}): {snippet!r}",
                provider=self._provider,
                status=self.status,
                request_id=self.request_id,
            ) from exc

    async def text(self) -> str:
        return (await self.read()).decode("utf-8", "replace")

    async def iter_bytes(self, *, bulk: bool = False) -> AsyncGenerator[bytes, None]:
        """Body chunks as they arrive; the idle timeout applies between chunks. ``bulk``: the body is one large
        payload (a downloaded file), read in large pieces once it has to be waited for; a stream's events are
        small and stay with the connection's small reads."""
        raw = self._raw
        content = raw.content
        widen = bulk
        try:
            while True:
                try:
                    # Bytes already buffered are yielded without arming a timer (a fast stream is mostly this);
                    # the idle timeout only matters when we actually wait.
                    chunk = content.read_nowait()
                    if not chunk and not content.is_eof():
                        if widen:
                            widen = False
                            self._widen_reads()
                        async with asyncio.timeout(self._read_timeout()):
                            chunk = await content.readany()
                except TimeoutError as exc:
                    raise self._timeout_error("streaming") from exc
                except Exception as exc:
                    raise _classify_read_error(exc, self._provider, self._secrets) from exc
                if not chunk:
                    return
                yield chunk
        finally:
            if not content.at_eof() and content.exception() is None:
                # Stopped early (the consumer had all it needed): what has already arrived may be the rest of the
                # body, e.g. an end marker. Taking it without waiting may complete the body and save the connection.
                with contextlib.suppress(Exception):
                    while content.read_nowait():
                        pass
            # Finished cleanly: the connection is reusable. Otherwise (error, cancel, early close) drop it.
            if content.at_eof():
                self._release()
            else:
                raw.close()

    async def iter_sse(self) -> AsyncGenerator[ServerSentEvent, None]:
        """Server-sent events as they arrive. At end of stream a pending event without its blank line is still
        dispatched; the consumer decides whether the stream was complete."""
        from polyrelay.sse import SSEDecoder

        decoder = SSEDecoder()
        gen = self.iter_bytes()
        try:
            async for chunk in gen:
                for ev in decoder.feed(chunk):
                    yield ev
            for ev in decoder.close():
                yield ev
        finally:
            await gen.aclose()

    def close(self) -> None:
        """Drop the response and its connection (use after deciding not to read the body)."""
        self._raw.close()

    def release(self) -> None:
        self._release()

    async def __aenter__(self) -> HttpResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if not self._raw.closed:
            self._raw.close()


def _classify_read_error(exc: Exception, provider: str, secrets: Iterable[Secret | str]) -> Exception:
    import aiohttp

    if isinstance(exc, InvalidUpstreamResponse | UpstreamTimeout | StreamInterrupted):
        return exc
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError | ConnectionError):
        return StreamInterrupted(
            f"connection lost while reading the response: {redact(str(exc), secrets) or type(exc).__name__}",
            provider=provider,
        )
    if isinstance(exc, aiohttp.ClientError | OSError):
        return ConnectionFailed(f"{type(exc).__name__}: {redact(str(exc), secrets)}", provider=provider)
    return exc


def _request_error(
    exc: Exception, timeouts: Timeouts, provider: str, secrets: tuple[Secret | str, ...]
) -> Exception | None:
    """The typed error for what sending a request raised, or ``None`` to let it through as it is."""
    import aiohttp

    # aiohttp's own timeouts are TimeoutError subclasses too: the connect timeout must be told apart.
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectTimeout(f"could not connect within {timeouts.connect}s", provider=provider)
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return FirstByteTimeout(f"upstream read timed out: {exc or type(exc).__name__}", provider=provider)
    if isinstance(exc, aiohttp.ClientError | OSError):
        msg = redact(str(exc), secrets) or type(exc).__name__
        return ConnectionFailed(f"{type(exc).__name__}: {msg}", provider=provider)
    return None


class _NoHeaders(Exception):
    """The first-byte wait (or the deadline) ran out: raised inside :meth:`Transport.request` only."""


class Transport:
    """The HTTP client shared by every provider of one Router."""

    def __init__(self, *, limits: PoolLimits | None = None, user_agent: str = "polyrelay") -> None:
        self.limits = limits or PoolLimits()
        self.user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._client_timeouts: dict[float | None, Any] = {}  # by connect timeout: the only part aiohttp enforces
        self._watchdog: Watchdog | None = None  # for the first-byte waits, made in the loop of the session

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared session, created on first use inside the running loop."""
        s = self._session
        if s is None or s.closed:
            import aiohttp

            from polyrelay._connector import connector_class

            lim = self.limits
            connector = connector_class()(
                limit=lim.max_connections,
                limit_per_host=lim.max_connections_per_host,
                keepalive_timeout=lim.keepalive_timeout,
                ttl_dns_cache=lim.dns_cache_ttl,
            )
            s = self._session = aiohttp.ClientSession(
                connector=connector,
                # No cookie jar: one session serves every caller and upstream of this Router, so a cookie one
                # response set must never ride along on another caller's request (and jar lookups cost per call).
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": self.user_agent},
                timeout=aiohttp.ClientTimeout(total=None),
                auto_decompress=True,
                raise_for_status=False,
            )
        return s

    @property
    def is_open(self) -> bool:
        return self._session is not None and not self._session.closed

    def _client_timeout(self, t: Timeouts) -> Any:
        # Keyed by a float, not by Timeouts: its hash is a Python method (attrs), called on every lookup.
        connect = t.connect
        ct = self._client_timeouts.get(connect)
        if ct is None:
            import aiohttp

            ct = self._client_timeouts[connect] = aiohttp.ClientTimeout(total=None, sock_connect=connect)
        return ct

    async def request(
        self,
        method: str,
        url: str | yarl.URL,
        *,
        provider: str,
        timeouts: Timeouts,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: Any = None,
        params: Mapping[str, str] | None = None,
        deadline: float | None = None,
        secrets: tuple[Secret | str, ...] = (),
    ) -> HttpResponse:
        """Send a request and wait for the response headers (within ``first_byte`` and the deadline).

        Raises :class:`ConnectionFailed`, :class:`ConnectTimeout`, :class:`FirstByteTimeout` or
        :class:`DeadlineExceeded`. Any status is returned as is: classifying it is the provider's job.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        attempt_deadline = now + timeouts.total if timeouts.total is not None else None
        if deadline is not None and (attempt_deadline is None or deadline < attempt_deadline):
            attempt_deadline = deadline
        wait = timeouts.first_byte
        by_deadline = False
        if attempt_deadline is not None:
            left = attempt_deadline - now
            if wait is None or left <= wait:
                wait, by_deadline = max(0.0, left), True
        body: Any = data
        hdrs: Mapping[str, str] = headers or {}
        if json_body is not None:
            body = dumps_bytes(json_body)
            json_body = None  # not held (for the garbage collector to walk) while the upstream answers
            if "Content-Type" not in hdrs:
                hdrs = {**hdrs, "Content-Type": "application/json"}
        session = self._session
        if session is None:  # (aclose() drops it; one closed behind our back is replaced when aiohttp refuses it)
            session = self.session
        dog = self._watchdog
        if dog is None or dog.loop is not loop:
            dog = self._watchdog = Watchdog(loop)
        task = asyncio.current_task(loop)
        watch = None if wait is None or task is None else dog.watch(task, now + wait)
        try:
            try:
                raw = await session.request(
                    method,
                    url,
                    data=body,
                    headers=hdrs,
                    params=params,
                    timeout=self._client_timeout(timeouts),
                    allow_redirects=False,
                )
            except asyncio.CancelledError as exc:
                if watch is not None and watch.expired():
                    raise _NoHeaders from exc
                raise
            except BaseException:
                if watch is not None and watch.fired:
                    watch.expired()  # another error won the race: still withdraw our cancel, as asyncio.timeout does
                raise
            finally:
                if watch is not None:
                    dog.done(watch)
            if watch is not None and watch.fired:
                watch.expired()  # answered as the timeout fired: withdraw its cancel, as asyncio.timeout does
        except _NoHeaders as exc:
            if by_deadline:
                raise DeadlineExceeded(
                    "the call's deadline ran out before the upstream answered", provider=provider
                ) from exc
            raise FirstByteTimeout(f"no response headers within {timeouts.first_byte}s", provider=provider) from exc
        except Exception as exc:
            if session.closed and self._session is session:
                # Closed behind our back (aclose() drops it instead): a new session, and the request sent again.
                self._session = None
                return await self.request(
                    method,
                    url,
                    provider=provider,
                    timeouts=timeouts,
                    headers=hdrs,
                    data=body,
                    params=params,
                    deadline=deadline,
                    secrets=secrets,
                )
            mapped = _request_error(exc, timeouts, provider, secrets)
            if mapped is None:
                raise
            raise mapped from exc
        return HttpResponse(raw, provider=provider, idle=timeouts.idle, deadline=attempt_deadline, secrets=secrets)

    async def aclose(self) -> None:
        if self._watchdog is not None:
            self._watchdog.close()
        s, self._session = self._session, None
        if s is not None and not s.closed:
            await s.close()
