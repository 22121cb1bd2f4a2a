"""The HTTP/2 frame reader on its own: what passes, what it reports, and its cache of
decoded header blocks never outliving the HPACK table it was decoded against."""

from __future__ import annotations

import hpack
import pytest

from meshtui.proxy.h2frames import (
    ACK,
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PING,
    SETTINGS,
    FrameReader,
    frame,
    may_be_server_preface,
)


class Sink:
    def __init__(self) -> None:
        self.headers: list[list[tuple[bytes, bytes]]] = []
        self.data: list[tuple[int, bool, int]] = []

    def on_headers(self, sid: int, end_stream: bool, headers: list[tuple[bytes, bytes]],
                   push: bool) -> None:
        self.headers.append(list(headers))

    def on_data(self, sid: int, end_stream: bool, size: int) -> None:
        self.data.append((sid, end_stream, size))

    def on_rst(self, sid: int, code: int) -> None: ...
    def on_settings(self, reader: FrameReader, ack: bool, values: list[tuple[int, int]]
                    ) -> bool:
        return False
    def on_ping(self, reader: FrameReader, ack: bool) -> None: ...
    def on_goaway(self, last_sid: int, code: int) -> None: ...


def test_an_indexed_block_is_decoded_against_the_table_of_its_time() -> None:
    enc = hpack.Encoder()
    sink = Sink()
    reader = FrameReader(sink)
    out: list[bytes] = []

    def block(raw: bytes) -> None:
        reader.feed(frame(HEADERS, END_HEADERS, 1, raw), out.append)

    block(enc.encode([(b"x-a", b"1")]))  # enters the dynamic table as index 62
    indexed = bytes([0x80 | 62])
    block(indexed)
    block(indexed)  # the same bytes, the same table: from the cache
    block(enc.encode([(b"x-b", b"2")]))  # now 62 is x-b, 63 x-a
    block(indexed)
    assert sink.headers == [[(b"x-a", b"1")], [(b"x-a", b"1")], [(b"x-a", b"1")],
                            [(b"x-b", b"2")], [(b"x-b", b"2")]]
    assert b"".join(out).count(indexed) == 3  # every frame passed on, unchanged


def test_data_passes_as_it_arrives_and_headers_wait_until_whole() -> None:
    sink = Sink()
    reader = FrameReader(sink)
    out: list[bytes] = []
    data = frame(DATA, END_STREAM, 1, b"x" * 1000)
    reader.feed(data[:500], out.append)
    assert b"".join(out) == data[:500] and sink.data == [(1, True, 1000)]
    reader.feed(data[500:], out.append)
    head = frame(HEADERS, END_HEADERS, 3, hpack.Encoder().encode([(b":status", b"200")]))
    reader.feed(head[:5], out.append)
    assert b"".join(out) == data  # a partial header frame is held
    reader.feed(head[5:], out.append)
    assert b"".join(out) == data + head and sink.headers == [[(b":status", b"200")]]


@pytest.mark.parametrize(("first", "h2"), [
    (frame(SETTINGS, 0, 0, b"\x00\x03\x00\x00\x00\x64"), True),
    (frame(SETTINGS, 0, 0), True),
    (frame(SETTINGS, 0, 0)[:5], True),  # not all there yet
    (frame(SETTINGS, ACK, 0), False),  # an answer, not a preface
    (frame(PING, 0, 0, bytes(8)), False),
    (b"220 mail.example ESMTP\r\n", False),
    (b"\x4a\x00\x00\x00\x0a8.0.36\x00", False),  # a MySQL server's greeting
])
def test_a_servers_first_bytes_are_told_from_an_http2_preface(first: bytes, h2: bool) -> None:
    assert may_be_server_preface(first) is h2
