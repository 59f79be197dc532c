"""Tests of polyrelay.sse: the WHATWG event-stream rules, real recorded streams split everywhere, and properties."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from polyrelay.errors import InvalidRequest, InvalidUpstreamResponse, PolyrelayError
from polyrelay.sse import ServerSentEvent, SSEDecoder, encode_event

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
BOM = b"\xef\xbb\xbf"


def decode(*chunks: bytes, max_event_bytes: int | None = None) -> list[ServerSentEvent]:
    """Feed the chunks in order to a fresh decoder, then close it."""
    d = SSEDecoder() if max_event_bytes is None else SSEDecoder(max_event_bytes=max_event_bytes)
    events: list[ServerSentEvent] = []
    for c in chunks:
        events += d.feed(c)
    return events + d.close()


def data_of(events: list[ServerSentEvent]) -> list[str]:
    return [e.data for e in events]


# --------------------------------------------------------------------------------------------------- basic rules


def test_single_data_event() -> None:
    assert decode(b'data: {"a":1}\n\n') == [ServerSentEvent(data='{"a":1}')]


def test_feed_returns_events_as_soon_as_their_blank_line_arrives() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: one\n") == []
    assert d.feed(b"\ndata: two\n\ndata: thr") == [ServerSentEvent(data="one"), ServerSentEvent(data="two")]
    assert d.feed(b"ee\n\n") == [ServerSentEvent(data="three")]
    assert d.feed(b"") == []


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_every_line_end_style(eol: bytes) -> None:
    body = eol.join([b"event: e", b"data: a", b"data: b", b"", b"data: c", b"", b""])
    assert decode(body) == [ServerSentEvent(data="a\nb", event="e"), ServerSentEvent(data="c")]


def test_mixed_line_ends_in_one_stream() -> None:
    assert data_of(decode(b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r")) == ["a\nb\nc", "d"]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    # Were the LF taken as a second line end, the blank line would dispatch "a" on its own.
    d = SSEDecoder()
    assert d.feed(b"data: a\r") == []
    assert d.feed(b"\ndata: b\r\n\r\n") == [ServerSentEvent(data="a\nb")]


def test_crlf_blank_line_split_across_chunks() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a\r\n\r") == [ServerSentEvent(data="a")]
    assert d.feed(b"\n") == []  # the LF completes the CRLF: no extra (empty) line, nothing pending
    assert not d.pending
    assert d.feed(b"data: b\r\n\r\n") == [ServerSentEvent(data="b")]


def test_cr_at_chunk_end_then_empty_chunk_then_lf() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a\r") == []
    assert d.feed(b"") == []
    assert d.feed(b"\ndata: b\n\n") == [ServerSentEvent(data="a\nb")]


def test_lone_cr_at_chunk_end_followed_by_text() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a\r") == []
    assert d.feed(b"data: b\r\r") == [ServerSentEvent(data="a\nb")]


def test_multiple_data_lines_are_joined_with_newline() -> None:
    assert data_of(decode(b'data: {\ndata:   "k": 1\ndata: }\n\n')) == ['{\n  "k": 1\n}']


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"data: x", "x"),
        (b"data:x", "x"),
        (b"data:  x", " x"),
        (b"data: x ", "x "),
        (b"data: ", ""),
        (b"data:", ""),
        (b"data:\tx", "\tx"),
        (b"data: a: b", "a: b"),
    ],
)
def test_exactly_one_space_after_colon_is_stripped(line: bytes, expected: str) -> None:
    assert data_of(decode(line + b"\n\n")) == [expected]


def test_field_without_colon_is_name_with_empty_value() -> None:
    assert decode(b"data\n\n") == [ServerSentEvent(data="")]
    assert decode(b"data\ndata\n\n") == [ServerSentEvent(data="\n")]
    # "event" with an empty value is the default type.
    assert decode(b"event: x\nevent\ndata: d\n\n") == [ServerSentEvent(data="d")]


def test_comments_are_ignored() -> None:
    body = b": OPENROUTER PROCESSING\n\n:keep-alive\ndata: x\n: inside an event\ndata: y\n\n:\n\n"
    assert decode(body) == [ServerSentEvent(data="x\ny")]


def test_event_field_names_the_event_and_resets_after_dispatch() -> None:
    body = b"event: content_block_delta\ndata: 1\n\ndata: 2\n\n"
    assert decode(body) == [ServerSentEvent(data="1", event="content_block_delta"), ServerSentEvent(data="2")]


def test_event_without_data_is_not_dispatched_and_its_type_is_reset() -> None:
    d = SSEDecoder()
    assert d.feed(b"event: ping\n\n") == []
    assert not d.pending
    assert d.feed(b"data: x\n\n") == [ServerSentEvent(data="x")]


def test_last_event_id_persists_until_changed() -> None:
    body = b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\nid\ndata: d\n\n"
    assert [(e.data, e.id) for e in decode(body)] == [("a", "1"), ("b", "1"), ("c", "2"), ("d", "")]


def test_id_containing_nul_is_ignored() -> None:
    assert [e.id for e in decode(b"id: 7\ndata: a\n\nid: x\x00y\ndata: b\n\n")] == ["7", "7"]


def test_id_set_in_an_undispatched_block_applies_to_later_events() -> None:
    assert decode(b"id: 9\n\ndata: a\n\n") == [ServerSentEvent(data="a", id="9")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(b"3000", 3000), (b"0", 0), (b"", None), (b"-5", None), (b"1.5", None), (b"30s", None), (b" 10", None)],
)
def test_retry_must_be_ascii_digits(value: bytes, expected: int | None) -> None:
    assert decode(b"retry: " + value + b"\ndata: x\n\n") == [ServerSentEvent(data="x", retry=expected)]


def test_retry_with_non_ascii_digits_or_huge_value_is_ignored() -> None:
    arabic_indic_three = "\u0663".encode()
    assert decode(b"retry: " + arabic_indic_three + b"\ndata: x\n\n")[0].retry is None
    assert decode(b"retry: " + b"9" * 10_000 + b"\ndata: x\n\n")[0].retry is None


def test_retry_belongs_to_its_event_only() -> None:
    assert [e.retry for e in decode(b"retry: 10\ndata: a\n\ndata: b\n\n")] == [10, None]


def test_unknown_fields_are_ignored() -> None:
    body = b"foo: bar\nDATA: shout\ndata : spaced\nEvent: x\ndata: kept\n\n"
    assert decode(body) == [ServerSentEvent(data="kept")]


def test_blank_lines_alone_dispatch_nothing() -> None:
    assert decode(b"\n\n\r\n\r\r\n") == []


def test_data_done_sentinel_is_an_ordinary_event() -> None:
    events = decode(b'data: {"x":1}\n\ndata: [DONE]\n\n')
    assert data_of(events) == ['{"x":1}', "[DONE]"]


# --------------------------------------------------------------------------------------------------- BOM, UTF-8


def test_leading_bom_is_skipped() -> None:
    assert decode(BOM + b"data: x\n\n") == [ServerSentEvent(data="x")]


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_leading_bom_split_across_chunks_is_skipped(cut: int) -> None:
    body = BOM + b"data: x\n\n"
    assert decode(body[:cut], body[cut:]) == [ServerSentEvent(data="x")]
    assert decode(*[body[i : i + 1] for i in range(len(body))]) == [ServerSentEvent(data="x")]


def test_bom_is_only_skipped_at_the_very_start() -> None:
    # A second BOM is part of the next line, which then names the unknown field "\ufeffdata".
    assert data_of(decode(BOM + b"data: a\n\n" + BOM + b"data: b\n\n")) == ["a"]
    assert data_of(decode(BOM + BOM + b"data: a\n\n")) == []


def test_partial_bom_prefix_that_is_not_a_bom_is_kept() -> None:
    assert data_of(decode(b"data: \xef\xbb\n\n")) == ["\ufffd"]
    assert decode(b"\xef", b"\xbbx\n") == []  # the line "\xef\xbbx" is an unknown field, not a lost BOM


def test_multibyte_characters_split_across_chunks() -> None:
    body = "data: héllo 日本 🎉\n\n".encode()
    for cut in range(len(body) + 1):
        assert decode(body[:cut], body[cut:]) == [ServerSentEvent(data="héllo 日本 🎉")], cut


def test_invalid_utf8_is_replaced() -> None:
    assert decode(b"event: \xff\ndata: a\xc3(b\nid: \xfe\n\n") == [
        ServerSentEvent(data="a\ufffd(b", event="\ufffd", id="\ufffd")
    ]


# --------------------------------------------------------------------------------------------------- close, pending


def test_close_dispatches_unterminated_event_with_data() -> None:
    d = SSEDecoder()
    assert d.feed(b"event: last\ndata: a\ndata: b\n") == []
    assert d.close() == [ServerSentEvent(data="a\nb", event="last")]


def test_close_finishes_an_unterminated_last_line() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a\ndata: b") == []
    assert d.close() == [ServerSentEvent(data="a\nb")]


def test_close_without_data_dispatches_nothing() -> None:
    d = SSEDecoder()
    assert d.feed(b"event: x\nretry: 5\n: comment") == []
    assert d.close() == []
    assert SSEDecoder().close() == []


def test_close_resets_the_decoder() -> None:
    d = SSEDecoder()
    d.feed(b"id: 1\ndata: a\n\ndata: partial")
    d.close()
    assert not d.pending
    # A fresh stream again: a BOM is skipped and no id carries over.
    assert d.feed(BOM + b"data: b\n\n") == [ServerSentEvent(data="b")]


@pytest.mark.parametrize(
    "chunk",
    [b"d", b"data: x", b"data: x\n", b"event: x\n", b"retry: 1\n", b"\xef\xbb", b"data: x\r"],
)
def test_pending_while_an_event_is_incomplete(chunk: bytes) -> None:
    d = SSEDecoder()
    seen = [d.pending]
    d.feed(chunk)
    seen.append(d.pending)
    d.feed(b"\n\n")
    seen.append(d.pending)
    assert seen == [False, True, False]


def test_not_pending_after_comments_ids_and_complete_events() -> None:
    d = SSEDecoder()
    d.feed(b": ping\nid: 5\ndata: x\n\n")
    assert not d.pending


# --------------------------------------------------------------------------------------------------- size limit


def test_line_longer_than_limit_raises() -> None:
    with pytest.raises(InvalidUpstreamResponse, match="max_event_bytes=10"):
        decode(b"data: " + b"x" * 5 + b"\n\n", max_event_bytes=10)  # the line is 11 bytes


def test_line_at_the_limit_is_fine() -> None:
    assert data_of(decode(b"data: " + b"x" * 4 + b"\n\n", max_event_bytes=10)) == ["xxxx"]


def test_unterminated_line_raises_once_buffer_exceeds_limit() -> None:
    # No newline ever arrives: the decoder must give up rather than buffer without bound.
    d = SSEDecoder(max_event_bytes=1000)
    fed = 0
    with pytest.raises(InvalidUpstreamResponse, match="line exceeds"):
        while True:
            d.feed(b"x" * 100)
            fed += 100
            assert fed <= 1000
    assert fed == 1000  # raised on the chunk that took the buffer past the limit
    assert not d.pending  # the buffer was dropped


def test_unterminated_line_after_complete_lines_in_same_chunk_raises() -> None:
    with pytest.raises(InvalidUpstreamResponse):
        SSEDecoder(max_event_bytes=10).feed(b"data: a\n\n" + b"y" * 11)


def test_event_data_larger_than_limit_raises_even_with_short_lines() -> None:
    d = SSEDecoder(max_event_bytes=100)
    with pytest.raises(InvalidUpstreamResponse, match="event's data exceeds"):
        for _ in range(100):
            d.feed(b"data: 0123456789\n")


def test_many_small_events_do_not_add_up_to_the_limit() -> None:
    assert len(decode(b"data: 0123456789\n\n" * 100, max_event_bytes=20)) == 100


def test_comments_do_not_count_towards_the_event_limit() -> None:
    assert data_of(decode(b": keep-alive\n" * 100 + b"data: x\n\n", max_event_bytes=20)) == ["x"]


def test_invalid_max_event_bytes_is_rejected() -> None:
    with pytest.raises(InvalidRequest, match="max_event_bytes"):
        SSEDecoder(max_event_bytes=0)


# --------------------------------------------------------------------------------------------------- json()


def test_json_parses_data() -> None:
    assert ServerSentEvent(data='{"a": [1, 2]}').json() == {"a": [1, 2]}


def test_json_tolerates_trailing_padding_like_anthropic() -> None:
    event = decode(b'event: ping\ndata: {"type": "ping"}              \n\n')[0]
    assert event.json() == {"type": "ping"}


@pytest.mark.parametrize("data", ["[DONE]", '{"a": ', "", "[" * 100_000])
def test_json_on_bad_data_raises_invalid_upstream_response(data: str) -> None:
    event = ServerSentEvent(data=data, event="message_delta")
    with pytest.raises(InvalidUpstreamResponse, match="'message_delta' data is not valid JSON") as info:
        event.json()
    assert info.value.__cause__ is not None
    assert info.value.body == data[:200]


def test_json_error_message_does_not_echo_the_data() -> None:
    with pytest.raises(InvalidUpstreamResponse) as info:
        ServerSentEvent(data="sk-secret-looking-text").json()
    assert "sk-secret" not in str(info.value)


# --------------------------------------------------------------------------------------------------- encode_event


def test_encode_event_single_line() -> None:
    assert encode_event('{"a":1}') == b'data: {"a":1}\n\n'


def test_encode_event_with_event_id_and_multiline_data() -> None:
    raw = encode_event("a\nb\r\nc\rd", event="delta", id="42")
    assert raw == b"event: delta\nid: 42\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    assert decode(raw) == [ServerSentEvent(data="a\nb\nc\nd", event="delta", id="42")]


def test_encode_event_keeps_separators_sse_does_not_know() -> None:
    data = "a\u2028b\x0bc\x1cd"
    assert decode(encode_event(data)) == [ServerSentEvent(data=data)]


@pytest.mark.parametrize(("kw", "path"), [({"event": "a\nb"}, "event"), ({"id": "1\r"}, "id"), ({"id": "\0"}, "id")])
def test_encode_event_rejects_fields_that_cannot_be_encoded(kw: dict[str, str], path: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        encode_event("x", **kw)
    assert info.value.path == path


def test_encode_event_rejects_lone_surrogates() -> None:
    with pytest.raises(InvalidRequest):
        encode_event("\ud800")


single_line = st.text(st.characters(exclude_characters="\r\n\0", exclude_categories=["Cs"]), min_size=1)


@given(
    data=st.text(st.characters(exclude_categories=["Cs"])),
    event=st.none() | single_line,
    id=st.none() | single_line,
)
def test_encode_decode_round_trip(data: str, event: str | None, id: str | None) -> None:
    normalised = data.replace("\r\n", "\n").replace("\r", "\n")
    assert decode(encode_event(data, event=event, id=id)) == [ServerSentEvent(data=normalised, event=event, id=id)]


# --------------------------------------------------------------------------------------------------- recorded streams


def _recorded_sse_bodies() -> list[Any]:
    params = []
    for path in sorted(RECORDED.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        if "text/event-stream" not in text:
            continue
        cassette = yaml.load(text, Loader=yaml.CSafeLoader)
        for i, interaction in enumerate(cassette.get("interactions") or []):
            response = interaction.get("response") or {}
            headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
            content_type = " ".join(headers.get("content-type") or [])
            if "text/event-stream" not in content_type:
                continue
            body = (response.get("body") or {}).get("string")
            assert isinstance(body, str), f"{path}: SSE body not stored as text"
            params.append(pytest.param(body.encode("utf-8"), id=f"{path.parent.name}/{path.stem}#{i}"))
    return params


RECORDED_BODIES = _recorded_sse_bodies()
# Bodies up to this size are split literally into two pieces at every byte; larger ones via decoder snapshots.
LITERAL_SPLIT_MAX = 4096
SEGMENT_MAX = 256


def test_recorded_streams_were_found() -> None:
    assert len(RECORDED_BODIES) >= 10
    bodies = [p.values[0] for p in RECORDED_BODIES]
    assert any(b"\r\n\r\n" in b for b in bodies)  # Gemini framing
    assert any(b"\nevent: " in b for b in bodies)  # Anthropic named events
    assert any(b.startswith(b": ") for b in bodies)  # OpenRouter comments


def _reference(body: bytes) -> list[ServerSentEvent]:
    d = SSEDecoder()
    events = d.feed(body)
    assert not d.pending, "recorded streams end with a complete event"
    assert d.close() == []
    return events


@pytest.mark.parametrize("body", RECORDED_BODIES)
def test_recorded_stream_decodes_to_json_events(body: bytes) -> None:
    events = _reference(body)
    assert events
    # Independent count: every recorded event has exactly one data line.
    assert len(events) == len(re.findall(rb"^data:", body, re.MULTILINE))
    for e in events:
        if e.data != "[DONE]":
            assert isinstance(e.json(), dict)
    if body.startswith(b"event: "):  # Anthropic: every event is named and its JSON type matches the name
        assert all(e.event == e.json()["type"] for e in events)


@pytest.mark.parametrize("body", RECORDED_BODIES)
def test_recorded_stream_one_byte_at_a_time(body: bytes) -> None:
    d = SSEDecoder()
    events: list[ServerSentEvent] = []
    for i in range(len(body)):
        events += d.feed(body[i : i + 1])
    assert not d.pending
    assert events + d.close() == _reference(body)


@pytest.mark.parametrize("body", RECORDED_BODIES)
def test_recorded_stream_split_at_every_byte(body: bytes) -> None:
    reference = _reference(body)
    if len(body) <= LITERAL_SPLIT_MAX:
        for k in range(len(body) + 1):
            d = SSEDecoder()
            assert d.feed(body[:k]) + d.feed(body[k:]) + d.close() == reference, f"split at {k}"
    else:
        _check_every_split_via_snapshots(body, reference)


_SLOTS = SSEDecoder.__slots__
_TAIL = _SLOTS.index("_tail")


def _state(d: SSEDecoder) -> tuple[Any, ...]:
    """The decoder's complete state, by value."""
    state = [getattr(d, name) for name in _SLOTS]
    state[_TAIL] = bytes(state[_TAIL])  # the partial line is a bytearray: snapshot its value
    return tuple(state)


def _restore(state: tuple[Any, ...]) -> SSEDecoder:
    """A decoder in the given state (the inverse of _state)."""
    d = SSEDecoder.__new__(SSEDecoder)
    for i, (name, value) in enumerate(zip(_SLOTS, state, strict=True)):
        if i == _TAIL:
            value = bytearray(value)
        elif isinstance(value, list):
            value = list(value)
        setattr(d, name, value)
    return d


def _assert_state_is_plain_values(state: tuple[Any, ...]) -> None:
    # _state/_restore copy by value: that is only a faithful snapshot while all state is immutable or lists of it.
    for value in state:
        items = value if isinstance(value, list) else [value]
        assert all(x is None or isinstance(x, bool | int | str | bytes) for x in items), value


def _check_every_split_via_snapshots(body: bytes, reference: list[ServerSentEvent]) -> None:
    """Every split position of a large body, in time linear in its size.

    The body is cut into short segments (after each LF, and every SEGMENT_MAX bytes within long lines). Feeding
    the segments in order must give the reference events. Then for every position j inside segment i, a copy of
    the decoder's state before segment i is fed seg[:j] and seg[j:]: it must emit exactly what segment i emitted
    and end in the same state as after segment i. The decoder is deterministic (output and next state depend
    only on state and input), so the stream fed as [..., seg[:j], seg[j:], ...] decodes to the reference too.
    """
    cuts = sorted(
        {m.end() for m in re.finditer(rb"\n", body)} | set(range(SEGMENT_MAX, len(body), SEGMENT_MAX)) | {len(body)}
    )
    driver = SSEDecoder()
    start = 0
    emitted: list[ServerSentEvent] = []
    for end in cuts:
        segment = body[start:end]
        before = _state(driver)
        _assert_state_is_plain_values(before)
        out = driver.feed(segment)
        after = _state(driver)
        for j in range(1, len(segment)):
            d = _restore(before)
            assert d.feed(segment[:j]) + d.feed(segment[j:]) == out, f"split at {start + j}"
            assert _state(d) == after, f"split at {start + j}"
        emitted += out
        start = end
    assert emitted + driver.close() == reference


# --------------------------------------------------------------------------------------------------- properties

# SSE-ish tokens mixed with arbitrary bytes, so that generated streams hit every rule and its edge cases.
_TOKENS = [
    b"data:", b"data: ", b"data", b"event:", b"event: x", b"id:", b"id: 1", b"retry:", b"retry: 10", b":", b" ",
    b"\n", b"\n", b"\r", b"\r\n", b"\n\n", b"\r\n\r\n", b"x", b"[DONE]", b"{}", b"\0", b"12",
    BOM, b"\xef", b"\xbb", b"\xc3\xa9", b"\xe6\x97", b"\xa5", b"\xff",
]  # fmt: skip
sse_bytes = st.lists(st.sampled_from(_TOKENS) | st.binary(max_size=6), max_size=40).map(b"".join)


@st.composite
def body_and_cuts(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    body = draw(sse_bytes)
    cuts = draw(st.lists(st.integers(0, len(body)), max_size=8))
    return body, sorted(cuts)


def _chunks(body: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *cuts, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds)]


def _outcome(chunks: list[bytes], max_event_bytes: int) -> tuple[str, list[ServerSentEvent]]:
    """Events (plus whether anything was pending before close), or a polyrelay error; any other error fails."""
    d = SSEDecoder(max_event_bytes=max_event_bytes)
    events: list[ServerSentEvent] = []
    try:
        for c in chunks:
            events += d.feed(c)
        pending = d.pending
        events += d.close()
    except PolyrelayError:
        return "error", []
    return f"pending={pending}", events


@settings(max_examples=400, deadline=None)
@given(body_and_cuts())
def test_property_split_invariant_and_never_raises(case: tuple[bytes, list[int]]) -> None:
    body, cuts = case
    whole = _outcome([body], 1 << 20)
    assert whole[0] != "error"
    assert _outcome(_chunks(body, cuts), 1 << 20) == whole
    assert _outcome([body[i : i + 1] for i in range(len(body))], 1 << 20) == whole


@settings(max_examples=300, deadline=None)
@given(body_and_cuts(), st.integers(1, 24))
def test_property_size_limit_is_split_invariant(case: tuple[bytes, list[int]], limit: int) -> None:
    body, cuts = case
    assert _outcome(_chunks(body, cuts), limit) == _outcome([body], limit)
