"""Fault descriptions for the simulated upstreams.

A :class:`Fault` says *what goes wrong* with one response; :meth:`SimulatedUpstream.add_fault` says *which*
requests get it. Faults describe what a client sees on the wire, so every kind maps to one failure a real
provider (or the network in front of it) produces:

============================  ==============================================================================
kind                          what the client sees
============================  ==============================================================================
``status``                    an error status with the upstream's own error envelope (or ``body``)
``no_response``               the request is read, then nothing: no status line until the client gives up
``slow_first_byte``           ``delay`` seconds of silence before the status line, then a normal response
``slow_first_token``          status line and headers (and a stream's opening event) at once, then ``delay``
                              seconds of silence before the first content
``stall``                     after ``after_chunks`` content chunks the stream goes quiet for ``delay`` seconds,
                              then continues normally
``malformed``                 a body that is not JSON, or (streams) an event whose JSON is cut off after
                              ``after_chunks`` content chunks; the stream then ends
``truncate``                  the connection drops after ``after_chunks`` content chunks (mid-body)
``no_done``                   a complete stream that ends without its end-of-stream marker (``data: [DONE]``)
``reset``                     the TCP connection is reset before any status line
``error_event``               after ``after_chunks`` content chunks an in-band error event (HTTP status stays
                              200), then the stream ends; a non-stream call gets a 200 whose body is the error
============================  ==============================================================================

Use the classmethod constructors; they name the knobs each kind uses::

    upstream.add_fault(Fault.status_code(429, retry_after=1))
    upstream.add_fault(Fault.stall(after_chunks=3, delay=30), times=None, model="gpt-4o-mini")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

__all__ = ["Fault", "FaultKind"]

FaultKind = Literal[
    "status",
    "no_response",
    "slow_first_byte",
    "slow_first_token",
    "stall",
    "malformed",
    "truncate",
    "no_done",
    "reset",
    "error_event",
]


def _non_negative(_instance: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _http_status(_instance: object, _attribute: attrs.Attribute[int], value: int) -> None:
    if not 100 <= value <= 599:
        raise ValueError(f"status must be an HTTP status code (100-599), got {value!r}")


def _frozen_headers(value: Mapping[str, str]) -> Mapping[str, str]:
    # A private copy, so a caller mutating their dict later cannot change a queued fault.
    return dict(value)


@attrs.frozen(kw_only=True)
class Fault:
    """One failure that a simulated upstream applies to one response.

    Fields not used by a kind are ignored by it. ``headers``, ``retry_after`` and ``retry_after_ms`` are added to
    whatever response the faulted request gets (for ``reset`` and ``no_response`` there is none).
    """

    kind: FaultKind
    #: HTTP status for ``kind="status"``.
    status: int = attrs.field(default=500, validator=_http_status)
    #: Body override. For ``status`` and ``error_event``: a JSON-able value replaces the upstream's own error
    #: envelope; ``str`` or ``bytes`` are sent verbatim (``text/html``), e.g. an edge proxy's HTML error page.
    body: Any = None
    #: ``Retry-After`` header: seconds (sent as an integer when whole) or an HTTP-date string, verbatim.
    retry_after: float | str | None = attrs.field(default=None)
    #: ``retry-after-ms`` header (OpenAI's millisecond variant).
    retry_after_ms: int | None = attrs.field(default=None, validator=_non_negative)
    #: Seconds of silence for ``slow_first_byte``, ``slow_first_token`` and ``stall``.
    delay: float = attrs.field(default=0.0, validator=_non_negative)
    #: For ``stall``, ``truncate``, ``malformed`` and ``error_event``: how many content chunks are sent first.
    #: When the reply has fewer content chunks, the fault happens after the last one.
    after_chunks: int = attrs.field(default=0, validator=_non_negative)
    #: Extra response headers.
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_headers)

    @retry_after.validator
    def _check_retry_after(self, _attribute: attrs.Attribute[float | str | None], value: float | str | None) -> None:
        if isinstance(value, int | float) and value < 0:
            raise ValueError(f"retry_after must be >= 0, got {value!r}")

    @classmethod
    def status_code(
        cls,
        status: int,
        *,
        body: Any = None,
        retry_after: float | str | None = None,
        retry_after_ms: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """An error response with ``status`` in the upstream's own error envelope (unless ``body`` is given)."""
        return cls(
            kind="status",
            status=status,
            body=body,
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
            headers=headers or {},
        )

    @classmethod
    def no_response(cls) -> Fault:
        """Read the request and never answer: the client must time out (or the server closes)."""
        return cls(kind="no_response")

    @classmethod
    def slow_first_byte(cls, delay: float) -> Fault:
        """Wait ``delay`` seconds before the status line, then answer normally."""
        return cls(kind="slow_first_byte", delay=delay)

    @classmethod
    def slow_first_token(cls, delay: float) -> Fault:
        """Send headers (and a stream's opening event) at once, then wait ``delay`` seconds before any content."""
        return cls(kind="slow_first_token", delay=delay)

    @classmethod
    def stall(cls, *, after_chunks: int = 0, delay: float) -> Fault:
        """Go quiet for ``delay`` seconds after ``after_chunks`` content chunks, then continue the stream."""
        return cls(kind="stall", after_chunks=after_chunks, delay=delay)

    @classmethod
    def malformed(cls, *, after_chunks: int = 0) -> Fault:
        """Send a non-JSON body, or (streams) a cut-off JSON event after ``after_chunks`` content chunks."""
        return cls(kind="malformed", after_chunks=after_chunks)

    @classmethod
    def truncate(cls, *, after_chunks: int = 0) -> Fault:
        """Drop the connection mid-body, after ``after_chunks`` content chunks."""
        return cls(kind="truncate", after_chunks=after_chunks)

    @classmethod
    def no_done(cls) -> Fault:
        """Finish the stream normally but leave out its end-of-stream marker."""
        return cls(kind="no_done")

    @classmethod
    def reset(cls) -> Fault:
        """Reset the TCP connection before sending anything."""
        return cls(kind="reset")

    @classmethod
    def error_event(cls, *, after_chunks: int = 0, body: Any = None) -> Fault:
        """Send an in-band error event after ``after_chunks`` content chunks, then end the stream.

        ``body`` replaces the upstream's default error payload (the JSON after ``data:``).
        """
        return cls(kind="error_event", after_chunks=after_chunks, body=body)
