"""HTTP/2 on the wire, one direction at a time: frame boundaries, header blocks, limits.

The proxy relays HTTP/2 frames unchanged and reads only what telemetry needs:
frame headers, the header blocks (HPACK-decoded with the ``hpack`` package) and
the few control frames that end streams or change limits. Flow control,
SETTINGS acknowledgements and stream concurrency stay the two ends' business:
each sees exactly the frames the other sent.

A :class:`FrameReader` follows one direction's byte stream. DATA payloads (and
frames the proxy has no use for) pass through as they arrive, however large. A
frame it must read is held until it is whole, and a header block until its last
CONTINUATION, so a block that fails to decode never reaches the other end. What
it holds is bounded: a header block by :data:`MAX_HEADER_BLOCK`, any other frame
by :data:`MAX_CONTROL_FRAME`.

Every header block of a direction goes through that direction's HPACK decoder,
in order — streams the proxy does not track included — because each block may
change the decoder's dynamic table.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final, Protocol, cast

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 §6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
# Flags.
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
# Error codes (RFC 9113 §7).
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL = 0x6, 0x7, 0x8
COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 0x9, 0xB
# SETTINGS parameters the proxy reads.
SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5

DEFAULT_MAX_FRAME: Final = 16_384
#: The most a header block may hold, encoded or decoded (RFC 7541 sizes: name,
#: value and 32 bytes per field) — as HTTP/1's 60 KiB head, with HTTP/2's overhead.
MAX_HEADER_BLOCK: Final = 64 * 1024
#: The most CONTINUATION frames one header block may take: a flood of tiny or
#: empty ones costs the proxy a frame each and never ends the block.
MAX_CONTINUATIONS: Final = 64
#: The longest RST_STREAM, SETTINGS, PING or GOAWAY frame held to be read.
MAX_CONTROL_FRAME: Final = 16_384
# The decoded-block cache of a reader: a steady connection repeats a handful of small
# blocks; a peer sending many large ones gets no more than this kept for it.
_CACHED_BLOCKS, _CACHED_BLOCK, _CACHED_FIELDS = 16, 512, 4096
# Frames held until whole and read; every other type passes through as it arrives.
_READ = frozenset({HEADERS, PUSH_PROMISE, CONTINUATION, RST_STREAM, SETTINGS, PING, GOAWAY})
_HEAD = struct.Struct(">BHBBL")  # length (high byte, low two bytes), type, flags, stream


class H2Error(Exception):
    """A violation that ends the connection.

    Attributes:
        kind: the counter it is counted under (``meshtui_http2_errors_total``).
        code: the HTTP/2 error code a GOAWAY carries.
    """

    def __init__(self, kind: str, code: int, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.code = code


class FrameSink(Protocol):
    """What a :class:`FrameReader` reports, each call about one whole frame (DATA: its
    header). ``receiver_settings`` is for SETTINGS, which limit the *other* direction."""

    def on_headers(self, sid: int, end_stream: bool, headers: list[tuple[bytes, bytes]],
                   push: bool) -> None: ...
    def on_data(self, sid: int, end_stream: bool, size: int) -> None: ...
    def body_sink(self, sid: int) -> Callable[[bytes], None] | None:
        """Where a copy of stream ``sid``'s DATA goes (asked only while the reader's
        ``capturing`` is set; None: nowhere)."""
    def on_rst(self, sid: int, code: int) -> None: ...
    def on_settings(self, reader: FrameReader, ack: bool, values: list[tuple[int, int]]
                    ) -> bool:
        """True drops the frame: it answered the proxy's own SETTINGS."""
    def on_ping(self, reader: FrameReader, ack: bool) -> None: ...
    def on_goaway(self, last_sid: int, code: int) -> None: ...


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _HEAD.pack(n >> 16, n & 0xFFFF, ftype, flags, sid) + payload


def may_be_server_preface(data: bytes | bytearray) -> bool:
    """Whether ``data`` could be the start of an HTTP/2 server's preface: a SETTINGS
    frame (not an ACK) on stream 0. A server that speaks first in another protocol
    (SMTP's "220", MySQL's greeting) fails this within its first four bytes."""
    n = len(data)
    if n > 3 and data[3] != SETTINGS:
        return False
    if n > 4 and data[4] & ACK:
        return False
    if n > 8 and any(data[5:9]):
        return False
    return not (n >= 3 and int.from_bytes(data[:3], "big") % 6)


def goaway(last_sid: int, code: int, debug: bytes = b"") -> bytes:
    """A GOAWAY frame (``debug``: a short reason, for people reading a capture)."""
    return frame(GOAWAY, 0, 0, struct.pack(">LL", last_sid & 0x7FFFFFFF, code) + debug[:200])


class FrameReader:
    """One direction of an HTTP/2 connection, frame by frame.

    Args:
        sink: told about each frame the proxy reads.
        preface: bytes to pass before the first frame (the client's connection preface).
    """

    __slots__ = ("_block", "_block_n", "_block_sid", "_copy", "_copy_left", "_decoded",
                 "_flags", "_gen", "_held", "_oversized", "_push", "_scan", "capturing",
                 "decoder", "frames", "max_frame", "sink", "skip")

    def __init__(self, sink: FrameSink, preface: int = 0) -> None:
        # Imported with the first HTTP/2 connection: hpack is half a MiB of resident
        # memory that a proxy seeing only HTTP/1 never pays.
        import hpack

        self.sink = sink
        self.decoder: Any = hpack.Decoder()
        self._oversized = hpack.OversizedHeaderListError
        self.decoder.max_header_list_size = MAX_HEADER_BLOCK
        #: The largest frame the receiving end accepts (SETTINGS_MAX_FRAME_SIZE).
        self.max_frame = DEFAULT_MAX_FRAME
        #: Bytes still to pass through unread: a DATA payload's rest, or the preface.
        self.skip = preface
        self.frames = 0
        self._held = b""  # bytes not yet passed on: a partial frame, or a header block
        self._scan = 0  # how far into _held frames were already read (an open block)
        self._block: list[bytes] | None = None  # fragments of the open header block
        self._block_sid = 0
        self._block_n = 0
        self._flags = 0
        self._push = False
        # Decoded blocks that left the dynamic table as it was (a client's repeated
        # request, a server's usual response and trailers: every field indexed), by
        # their bytes, with the table's generation they were decoded in: the same
        # bytes against the same table decode to the same fields. hpack's decoder is
        # pure Python, and this spares it most blocks of a steady connection.
        self._decoded: dict[bytes, tuple[int, list[tuple[bytes, bytes]]]] = {}
        self._gen = 0  # changes whenever a block changes the dynamic table
        #: Set once some stream wants copies of its DATA (tap's bodies): only then is
        #: the sink asked, so an untapped connection pays one test per DATA frame.
        self.capturing = False
        # The DATA payload passing now that is copied: where to, and how many of its
        # bytes still to copy (its padding is not).
        self._copy: Callable[[bytes], None] | None = None
        self._copy_left = 0

    @property
    def at_boundary(self) -> bool:
        """Whether a frame of the proxy's own may be written now (none is half out)."""
        return self.skip == 0

    def held(self) -> int:
        return len(self._held)

    def feed(self, data: bytes, write: Callable[[bytes], None]) -> None:
        """Reads ``data``; passes on, through ``write``, every byte up to the last one
        that may go (whole frames read, DATA as it comes) but for frames the sink
        drops. On a violation, what came before the offending frame is passed on and
        H2Error raised."""
        held = self._held
        if held:
            buf = held + data
            pos = self._scan
        else:
            buf = data
            pos = 0
        n = len(buf)
        fwd = 0  # buf[start:fwd] may be passed on
        start = 0
        skip = self.skip
        if skip:
            k = min(skip, n - pos)
            if self._copy is not None:
                c = min(k, self._copy_left)
                if c > 0:
                    self._copy(buf[pos:pos + c])
                self._copy_left -= c
                if k == skip:
                    self._copy = None
            pos += k
            self.skip = skip - k
            fwd = pos
        try:
            while n - pos >= 9:
                hi, lo, ftype, flags, sid = _HEAD.unpack_from(buf, pos)
                length = hi << 16 | lo
                sid &= 0x7FFFFFFF
                if length > self.max_frame:
                    raise H2Error("frame_size", FRAME_SIZE_ERROR,
                                  f"a {length}-byte frame over the {self.max_frame} allowed")
                end = pos + 9 + length
                self.frames += 1
                if self._block is not None and ftype != CONTINUATION:
                    raise H2Error("protocol", PROTOCOL_ERROR,
                                  "a header block interrupted before its END_HEADERS")
                if ftype not in _READ:
                    if ftype == DATA:
                        size = length
                        if flags & PADDED and length and pos + 9 < n:
                            size = max(0, length - 1 - buf[pos + 9])
                        if self.capturing:
                            self._copy_data(buf, pos, n, sid, flags, length, size)
                        self.sink.on_data(sid, bool(flags & END_STREAM), size)
                    if end > n:  # the rest of the payload passes as it arrives
                        self.skip = end - n
                        pos = fwd = n
                        break
                    pos = fwd = end
                    continue
                if length > MAX_CONTROL_FRAME:
                    raise H2Error("frame_size", FRAME_SIZE_ERROR,
                                  f"a {length}-byte control frame")
                if end > n:
                    break  # held until whole
                if self._frame(ftype, flags, sid, buf[pos + 9:end]):
                    if fwd > start:
                        write(buf[start:fwd])
                    start = end  # dropped
                pos = end
                if self._block is None:
                    fwd = pos
        except H2Error:
            if fwd > start:
                write(buf[start:fwd])
            self._held = b""
            raise
        if fwd > start:
            write(buf if fwd == n and start == 0 else buf[start:fwd])
        self._held = buf[fwd:] if fwd < n else b""
        self._scan = pos - fwd

    def _copy_data(self, buf: bytes, pos: int, n: int, sid: int, flags: int, length: int,
                   size: int) -> None:
        """Copies what has arrived of a DATA frame's data to its stream's body sink,
        and arranges for the rest to be copied as it passes."""
        self._copy = None
        out = self.sink.body_sink(sid)
        if out is None or size == 0:
            return
        start = pos + 9 + (1 if flags & PADDED else 0)
        c = min(size, n - start)
        if c > 0:
            out(buf[start:start + c])
        if pos + 9 + length > n:
            self._copy = out
            self._copy_left = size - max(c, 0)

    # --- frames read ---------------------------------------------------------------

    def _frame(self, ftype: int, flags: int, sid: int, payload: bytes) -> bool:
        """Reads one whole frame; True drops it."""
        if ftype in (HEADERS, PUSH_PROMISE):
            self._open_block(ftype, flags, sid, payload)
        elif ftype == CONTINUATION:
            self._continue_block(flags, sid, payload)
        elif ftype == RST_STREAM:
            if len(payload) != 4:
                raise H2Error("frame_size", FRAME_SIZE_ERROR, "an RST_STREAM not 4 bytes long")
            self.sink.on_rst(sid, int.from_bytes(payload, "big"))
        elif ftype == SETTINGS:
            if len(payload) % 6 or (flags & ACK and payload):
                raise H2Error("frame_size", FRAME_SIZE_ERROR, "a SETTINGS frame of odd length")
            values = [(int.from_bytes(payload[i:i + 2], "big"),
                       int.from_bytes(payload[i + 2:i + 6], "big"))
                      for i in range(0, len(payload), 6)]
            return self.sink.on_settings(self, bool(flags & ACK), values)
        elif ftype == PING:
            if len(payload) != 8:
                raise H2Error("frame_size", FRAME_SIZE_ERROR, "a PING not 8 bytes long")
            self.sink.on_ping(self, bool(flags & ACK))
        elif ftype == GOAWAY:
            if len(payload) < 8:
                raise H2Error("frame_size", FRAME_SIZE_ERROR, "a GOAWAY under 8 bytes")
            last, code = struct.unpack_from(">LL", payload)
            self.sink.on_goaway(last & 0x7FFFFFFF, code)
        return False

    def _open_block(self, ftype: int, flags: int, sid: int, payload: bytes) -> None:
        start = 0
        end = len(payload)
        if flags & PADDED:
            if not payload:
                raise H2Error("protocol", PROTOCOL_ERROR, "padding longer than the frame")
            start = 1
            end -= payload[0]
        if ftype == HEADERS:
            if flags & PRIORITY_FLAG:
                start += 5
        else:
            start += 4  # the promised stream's id
        if end < start:
            raise H2Error("protocol", PROTOCOL_ERROR, "padding longer than the frame")
        if sid == 0:
            raise H2Error("protocol", PROTOCOL_ERROR, "a header block on stream 0")
        self._block = [payload[start:end]]
        self._block_sid = sid
        self._block_n = end - start
        self._flags = flags
        self._push = ftype == PUSH_PROMISE
        if self._block_n > MAX_HEADER_BLOCK:
            raise H2Error("header_size", ENHANCE_YOUR_CALM, "a header block over 64 KiB")
        if flags & END_HEADERS:
            self._close_block()

    def _continue_block(self, flags: int, sid: int, payload: bytes) -> None:
        block = self._block
        if block is None or sid != self._block_sid:
            raise H2Error("protocol", PROTOCOL_ERROR, "a CONTINUATION outside a header block")
        block.append(payload)
        self._block_n += len(payload)
        if self._block_n > MAX_HEADER_BLOCK:
            raise H2Error("header_size", ENHANCE_YOUR_CALM, "a header block over 64 KiB")
        if len(block) > MAX_CONTINUATIONS:
            raise H2Error("continuation_flood", ENHANCE_YOUR_CALM,
                          f"more than {MAX_CONTINUATIONS} CONTINUATION frames in one block")
        if flags & END_HEADERS:
            self._close_block()

    def _close_block(self) -> None:
        block = self._block
        assert block is not None
        self._block = None
        data = block[0] if len(block) == 1 else b"".join(block)
        hit = self._decoded.get(data)
        if hit is not None and hit[0] == self._gen:
            self.sink.on_headers(self._block_sid, bool(self._flags & END_STREAM), hit[1],
                                 self._push)
            return
        table = self.decoder.header_table
        entries = table.dynamic_entries
        before = (len(entries), table._current_size, id(entries[0]) if entries else 0)
        try:
            headers = cast(list[tuple[bytes, bytes]], self.decoder.decode(data, raw=True))
        except self._oversized:
            raise H2Error("header_size", ENHANCE_YOUR_CALM,
                          "a header block that decodes to over 64 KiB") from None
        except Exception as e:  # hpack's own errors, and whatever odd bytes raise
            raise H2Error("compression", COMPRESSION_ERROR,
                          f"a header block that does not decode: {e}") from None
        entries = table.dynamic_entries
        if before != (len(entries), table._current_size, id(entries[0]) if entries else 0):
            self._gen += 1
        elif len(data) <= _CACHED_BLOCK and sum(len(n) + len(v) for n, v in headers) \
                <= _CACHED_FIELDS:
            if len(self._decoded) >= _CACHED_BLOCKS:
                self._decoded.clear()
            self._decoded[data] = (self._gen, headers)
        self.sink.on_headers(self._block_sid, bool(self._flags & END_STREAM), headers,
                             self._push)
