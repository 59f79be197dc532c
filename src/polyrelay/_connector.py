"""The shared session's connector: aiohttp's ``TCPConnector`` reading plain-TCP sockets in 120 KiB pieces.

asyncio's socket transport reads with ``sock.recv(max_size)``, and ``max_size`` is 256 KiB: above glibc's
threshold for serving an allocation from the heap, so every read of a plain-HTTP response or stream chunk maps a
fresh 256 KiB region, faults its first page in, shrinks it to what arrived and unmaps it later: three system calls
and a page fault per read (``strace -c`` of the benchmark: one each of mmap, mremap and munmap per request). A
120 KiB read size stays under that threshold (128 KiB by default), so it is served from the heap and reused. A
body that does not all come with its headers is read on in asyncio's large pieces
(:meth:`~polyrelay.transport.HttpResponse.read`), and the small ones are restored before the connection goes back
to the pool. TLS connections read into the TLS protocol's own reused buffer and are left alone, as are transports
without ``max_size`` (uvloop's).

``_wrap_create_connection`` is aiohttp's private hook around ``loop.create_connection`` (the same since 3.0);
``tests/core/test_transport.py`` checks that a connection the session opened reads in 120 KiB pieces, so an aiohttp
release that moves it fails a test instead of silently losing the saving.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp

__all__ = ["READ_SIZE", "connector_class"]

#: Bytes asked of the socket per read on plain-TCP connections.
READ_SIZE = 120 * 1024

_cls: type[aiohttp.TCPConnector] | None = None


def connector_class() -> type[aiohttp.TCPConnector]:
    """The ``TCPConnector`` subclass (made on first use: aiohttp is imported lazily)."""
    global _cls
    if _cls is None:
        import aiohttp

        class Connector(aiohttp.TCPConnector):
            async def _wrap_create_connection(self, *args: Any, **kwargs: Any) -> Any:
                made = await super()._wrap_create_connection(*args, **kwargs)
                transport = made[0]
                # Only the selector transport's own reads (a TLS transport's ``max_size`` is not used for them).
                if (
                    isinstance(transport, asyncio.selector_events._SelectorSocketTransport)  # type: ignore[attr-defined]
                    and transport.max_size > READ_SIZE
                ):
                    transport.max_size = READ_SIZE
                return made

        _cls = Connector
    return _cls
