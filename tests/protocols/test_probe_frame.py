"""Tests for the probe-board serial frame codec and the streaming decoder."""

from __future__ import annotations

import binascii
import contextlib
import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import FrameError, ProtocolError
from protocols.probe_frame import (
    MAX_FRAME_LEN,
    FaultKind,
    FrameDecoder,
    FrameFault,
    ProbeFrame,
    Reading,
    ReadingStatus,
    decode_frame,
    encode_frame,
)

BOARD_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def line_for(body: bytes) -> bytes:
    """Wrap a body in '$', a correct checksum and CRLF, so only the body is under test."""
    crc = binascii.crc_hqx(body, 0xFFFF)
    return b"$" + body + b"*" + f"{crc:04X}".encode() + b"\r\n"


def ok(probe: int, temp_c: float) -> Reading:
    return Reading(probe, temp_c, ReadingStatus.OK)


SAMPLE = ProbeFrame(
    "board-7",
    42,
    123456,
    (
        ok(1, 4.25),
        Reading(2, None, ReadingStatus.UNPLUGGED),
        Reading(3, None, ReadingStatus.SENSOR_ERROR),
        ok(4, -18.5),
    ),
)


@st.composite
def readings(draw: st.DrawFn) -> tuple[Reading, ...]:
    count = draw(st.integers(1, 8))
    out = []
    for probe in range(1, count + 1):
        kind = draw(st.sampled_from(ReadingStatus))
        if kind is ReadingStatus.OK:
            out.append(ok(probe, draw(st.integers(-5000, 15000)) / 100))
        else:
            out.append(Reading(probe, None, kind))
    return tuple(out)


frames = st.builds(
    ProbeFrame,
    board_id=st.text(BOARD_CHARS, min_size=1, max_size=16),
    seq=st.integers(0, 0xFFFF),
    uptime_ms=st.integers(0, 2**32 - 1),
    readings=readings(),
)


def decode_stream(chunks: list[bytes]) -> list[ProbeFrame | FrameFault]:
    decoder = FrameDecoder()
    out: list[ProbeFrame | FrameFault] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    out.extend(decoder.flush())
    return out


def only_faults(items: list[ProbeFrame | FrameFault]) -> list[FrameFault]:
    return [item for item in items if isinstance(item, FrameFault)]


def only_frames(items: list[ProbeFrame | FrameFault]) -> list[ProbeFrame]:
    return [item for item in items if isinstance(item, ProbeFrame)]


# --- encoding and decoding single frames -------------------------------------------------------


def test_crc_is_ccitt_false() -> None:
    assert binascii.crc_hqx(b"123456789", 0xFFFF) == 0x29B1


def test_sample_frame_bytes() -> None:
    body = b"CLT,board-7,42,123456,425;-32768;E;-1850"
    assert encode_frame(SAMPLE) == line_for(body)
    assert decode_frame(line_for(body)) == SAMPLE


def test_terminator_is_optional_on_decode() -> None:
    line = encode_frame(SAMPLE)
    assert decode_frame(line.removesuffix(b"\r\n")) == SAMPLE


def test_longest_frame_fits() -> None:
    frame = ProbeFrame(
        "x" * 16,
        65535,
        2**32 - 1,
        tuple(Reading(k, None, ReadingStatus.UNPLUGGED) for k in range(1, 9)),
    )
    line = encode_frame(frame)
    assert len(line) == 101 <= MAX_FRAME_LEN
    assert decode_frame(line) == frame


@pytest.mark.parametrize(
    ("temp_c", "wire"),
    [
        (21.456, b"2146"),
        (21.454, b"2145"),
        (-0.004, b"0"),
        (-50.004, b"-5000"),
        (150.004, b"15000"),
        (0, b"0"),
        (37, b"3700"),
    ],
)
def test_temperatures_round_to_centidegrees(temp_c: float, wire: bytes) -> None:
    frame = ProbeFrame("b", 0, 0, (ok(1, temp_c),))
    assert encode_frame(frame) == line_for(b"CLT,b,0,0," + wire)


@given(frames)
@settings(deadline=None, max_examples=300)
def test_round_trip(frame: ProbeFrame) -> None:
    line = encode_frame(frame)
    assert len(line) <= MAX_FRAME_LEN
    assert decode_frame(line) == frame
    assert encode_frame(decode_frame(line)) == line


@given(frames, st.data())
@settings(deadline=None, max_examples=300)
def test_every_single_byte_change_is_rejected(frame: ProbeFrame, data: st.DataObject) -> None:
    line = encode_frame(frame)
    pos = data.draw(st.integers(0, len(line) - 1), label="pos")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != line[pos]), label="byte")
    corrupted = line[:pos] + bytes([new]) + line[pos + 1 :]
    with pytest.raises(FrameError):
        decode_frame(corrupted)


def test_every_single_byte_change_is_rejected_exhaustively() -> None:
    line = encode_frame(SAMPLE)
    for pos in range(len(line)):
        for new in range(256):
            if new == line[pos]:
                continue
            corrupted = line[:pos] + bytes([new]) + line[pos + 1 :]
            with pytest.raises(FrameError):
                decode_frame(corrupted)


@given(st.binary(max_size=200))
@settings(deadline=None, max_examples=300)
def test_decode_raises_only_frame_error(junk: bytes) -> None:
    with contextlib.suppress(FrameError):
        decode_frame(junk)


def test_frame_error_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode_frame(b"")


GOOD_BODY = b"CLT,b1,7,1000,2150"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "empty frame"),
        (b"CLT,b1,7,1000,2150*0000\r\n", "bad start"),
        (b"#" + line_for(GOOD_BODY)[1:], "bad start"),
        (b"$" + GOOD_BODY + b"\r\n", "missing checksum"),
        (line_for(GOOD_BODY).replace(b"\r\n", b"\n"), "malformed checksum"),
        (line_for(GOOD_BODY)[:-3] + b"\r\n", "malformed checksum"),
        (b"$" + GOOD_BODY + b"*0000\r\n", "checksum mismatch: expected"),
        (line_for(GOOD_BODY)[:-2] + b"x" * 200, "too long"),
        (line_for("CLT,b1,7,1000,2150é".encode()), "non-ASCII byte 0xC3"),
        (line_for(b"CLT,b1,7,1000\t,2150"), "control byte 0x09"),
        (line_for(b"CLT,b1,7$CLT,b1,8,1000,2150"), "unexpected '$'"),
        (line_for(b"CLT,b1,7,1000"), "wrong field count: expected 5, got 4"),
        (line_for(b"CLT,b1,7,1000,2150,1"), "wrong field count: expected 5, got 6"),
        (line_for(b"XYZ,b1,7,1000,2150"), "unknown sentence type 'XYZ'"),
        (line_for(b"CLT,,7,1000,2150"), "bad board id ''"),
        (line_for(b"CLT,board.1,7,1000,2150"), "bad board id 'board.1'"),
        (line_for(b"CLT," + b"b" * 17 + b",7,1000,2150"), "bad board id"),
        (line_for(b"CLT,b1,65536,1000,2150"), "seq 65536 out of range"),
        (line_for(b"CLT,b1,-1,1000,2150"), "bad seq '-1'"),
        (line_for(b"CLT,b1,007,1000,2150"), "bad seq '007'"),
        (line_for(b"CLT,b1,,1000,2150"), "bad seq ''"),
        (line_for(b"CLT,b1,7,4294967296,2150"), "uptime_ms 4294967296 out of range"),
        (line_for(b"CLT,b1,7,+1000,2150"), "bad uptime_ms '+1000'"),
        (line_for(b"CLT,b1,7,1000,"), "bad reading at position 1: ''"),
        (line_for(b"CLT,b1,7,1000,2150;15001"), "bad reading at position 2: 15001"),
        (line_for(b"CLT,b1,7,1000,2150;1;-5001"), "bad reading at position 3: -5001"),
        (line_for(b"CLT,b1,7,1000,1;2;3;x"), "bad reading at position 4: 'x'"),
        (line_for(b"CLT,b1,7,1000,21.5"), "bad reading at position 1: '21.5'"),
        (line_for(b"CLT,b1,7,1000,-0"), "bad reading at position 1: '-0'"),
        (line_for(b"CLT,b1,7,1000,0;e"), "bad reading at position 2: 'e'"),
        (line_for(b"CLT,b1,7,1000,-32767"), "bad reading at position 1: -32767"),
        (line_for(b"CLT,b1,7,1000,2150;;1"), "bad reading at position 2: ''"),
        (line_for(b"CLT,b1,7,1000,1;2;3;4;5;6;7;8;9"), "too many readings: 9"),
    ],
)
def test_decode_names_the_problem(line: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match="^" + re.escape(reason)):
        decode_frame(line)


def test_lowercase_checksum_is_rejected() -> None:
    body = next(
        b"CLT,b1,%d,1000,2150" % seq
        for seq in range(1000)
        if any(c in b"ABCDEF" for c in line_for(b"CLT,b1,%d,1000,2150" % seq)[-6:-2])
    )
    line = line_for(body)
    lowered = line[:-6] + line[-6:-2].lower() + b"\r\n"
    with pytest.raises(FrameError, match=r"^malformed checksum"):
        decode_frame(lowered)


def test_checksum_mismatch_shows_expected_and_got() -> None:
    good = line_for(GOOD_BODY)
    expected = good[-6:-2].decode()
    with pytest.raises(FrameError) as info:
        decode_frame(b"$" + GOOD_BODY + b"*BEEF\r\n")
    assert str(info.value) == f"checksum mismatch: expected {expected}, got BEEF"


def test_unplugged_is_a_value_not_an_error() -> None:
    frame = decode_frame(line_for(b"CLT,b1,7,1000,-32768"))
    assert frame.readings == (Reading(1, None, ReadingStatus.UNPLUGGED),)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"board_id": ""}, "bad board id"),
        ({"board_id": "b" * 17}, "bad board id"),
        ({"board_id": "a,b"}, "bad board id"),
        ({"board_id": "ü"}, "bad board id"),
        ({"seq": -1}, "seq -1 out of range"),
        ({"seq": 65536}, "seq 65536 out of range"),
        ({"seq": True}, "seq True out of range"),
        ({"uptime_ms": 2**32}, "uptime_ms 4294967296 out of range"),
        ({"uptime_ms": 1.5}, "uptime_ms 1.5 out of range"),
        ({"readings": ()}, "a frame needs 1..8 readings, got 0"),
        ({"readings": tuple(ok(k, 0.0) for k in range(1, 10))}, "a frame needs 1..8 readings"),
        ({"readings": (ok(2, 0.0),)}, "reading at position 1 has probe number 2"),
        ({"readings": (ok(1, 0.0), ok(1, 0.0))}, "reading at position 2 has probe number 1"),
        ({"readings": (ok(1, 150.006),)}, "reading at position 1: 150.006"),
        ({"readings": (ok(1, -50.006),)}, "reading at position 1: -50.006"),
        ({"readings": (ok(1, 1e308),)}, "reading at position 1: 1e+308"),
        ({"readings": (ok(1, float("nan")),)}, "reading at position 1: nan"),
        ({"readings": (ok(1, float("-inf")),)}, "reading at position 1: -inf"),
        ({"readings": (Reading(1, None, ReadingStatus.OK),)}, "status OK needs a temperature"),
        (
            {"readings": (Reading(1, 5.0, ReadingStatus.UNPLUGGED),)},
            "status UNPLUGGED must have temp_c None",
        ),
        (
            {"readings": (Reading(1, 5.0, ReadingStatus.SENSOR_ERROR),)},
            "status SENSOR_ERROR must have temp_c None",
        ),
    ],
)
def test_encode_rejects_invalid_values(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(FrameError, match=re.escape(reason)):
        encode_frame(dataclasses.replace(SAMPLE, **changes))  # type: ignore[arg-type]


# --- streaming decoder -------------------------------------------------------------------------


def test_stream_with_noise_truncation_and_corruption() -> None:
    a = encode_frame(SAMPLE)
    b = encode_frame(dataclasses.replace(SAMPLE, seq=43))
    bad = line_for(GOOD_BODY).replace(b"2150*", b"2151*")
    stream = b"\x00\xffboot\r\n" + a + a[:20] + b + bad + b"junk"
    out = decode_stream([stream])
    corrupt = only_faults(out)[2]
    assert corrupt.reason.startswith("checksum mismatch")
    assert out == [
        FrameFault(FaultKind.NOISE, "skipped 8 noise bytes outside a frame", b"\x00\xffboot\r\n"),
        SAMPLE,
        FrameFault(FaultKind.TRUNCATED, "frame cut off after 20 bytes by a new '$'", a[:20]),
        dataclasses.replace(SAMPLE, seq=43),
        FrameFault(FaultKind.CORRUPT, corrupt.reason, bad),
        FrameFault(FaultKind.NOISE, "skipped 4 noise bytes outside a frame", b"junk"),
    ]


def test_byte_at_a_time_gives_the_same_result() -> None:
    stream = b"xx" + encode_frame(SAMPLE) * 3 + b"$CLT,partial"
    whole = decode_stream([stream])
    single = decode_stream([stream[k : k + 1] for k in range(len(stream))])
    assert whole == single
    assert only_frames(whole) == [SAMPLE] * 3
    assert whole[-1] == FrameFault(
        FaultKind.TRUNCATED, "stream ended 12 bytes into a frame", b"$CLT,partial"
    )


def test_overflow_then_resync() -> None:
    garbage = b"$" + b"A" * 300
    out = decode_stream([garbage + encode_frame(SAMPLE)])
    assert out[0] == FrameFault(
        FaultKind.OVERFLOW,
        f"no line end within {MAX_FRAME_LEN} bytes after '$'",
        garbage[:MAX_FRAME_LEN],
    )
    assert out[1] == FrameFault(
        FaultKind.NOISE, "skipped 141 noise bytes outside a frame", garbage[MAX_FRAME_LEN:]
    )
    assert out[2:] == [SAMPLE]


def test_frame_of_exactly_max_length_is_not_overflow() -> None:
    line = b"$" + b"A" * (MAX_FRAME_LEN - 3) + b"\r\n"
    assert [f.kind for f in only_faults(decode_stream([line]))] == [FaultKind.CORRUPT]
    longer = b"$" + b"A" * (MAX_FRAME_LEN - 2) + b"\r\n"
    kinds = [f.kind for f in only_faults(decode_stream([longer]))]
    assert kinds == [FaultKind.OVERFLOW, FaultKind.NOISE]


def test_endless_noise_is_reported_in_bounded_pieces() -> None:
    decoder = FrameDecoder()
    out = only_faults(decoder.feed(b"n" * 1000))
    assert [len(f.raw) for f in out] == [MAX_FRAME_LEN] * 6
    assert decoder.flush() == [
        FrameFault(FaultKind.NOISE, "skipped 40 noise bytes outside a frame", b"n" * 40)
    ]
    assert decoder.flush() == []


def test_flush_resets_the_decoder() -> None:
    decoder = FrameDecoder()
    line = encode_frame(SAMPLE)
    assert decoder.feed(line[:10]) == []
    assert [f.kind for f in decoder.flush()] == [FaultKind.TRUNCATED]
    assert decoder.feed(line) == [SAMPLE]


def frame_index_at(sent: list[ProbeFrame], pos: int) -> int:
    end = 0
    for index, frame in enumerate(sent):
        end += len(encode_frame(frame))
        if pos < end:
            return index
    raise AssertionError(pos)


def split_at(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks, start = [], 0
    for point in [*points, len(stream)]:
        chunks.append(stream[start:point])
        start = point
    return chunks


# Pieces biased towards the bytes that drive the decoder's state machine.
stream_pieces = st.one_of(
    frames.map(encode_frame),
    st.binary(max_size=30),
    st.sampled_from([b"$", b"\r\n", b"\n", b"*", b"$CLT,", b"A" * 170]),
)


@given(st.lists(stream_pieces, max_size=12), st.lists(st.integers(0, 2000), max_size=20))
@settings(deadline=None, max_examples=200)
def test_chunking_does_not_change_the_output(pieces: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(pieces)
    assert decode_stream(split_at(stream, cuts)) == decode_stream([stream])


@given(st.lists(frames, min_size=1, max_size=5), st.lists(st.integers(0, 600), max_size=10))
@settings(deadline=None, max_examples=150)
def test_valid_stream_yields_exactly_its_frames(sent: list[ProbeFrame], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(f) for f in sent)
    assert decode_stream(split_at(stream, cuts)) == sent


@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=10))
@settings(deadline=None, max_examples=200)
def test_never_raises_on_random_bytes(junk: bytes, cuts: list[int]) -> None:
    out = decode_stream(split_at(junk, cuts))
    for item in out:
        assert isinstance(item, ProbeFrame | FrameFault)
        if isinstance(item, FrameFault):
            assert len(item.raw) <= MAX_FRAME_LEN
    # Faults carry slices of the input, never copies of the same bytes twice.
    assert sum(len(i.raw) for i in out if isinstance(i, FrameFault)) <= len(junk)


@given(st.lists(frames, min_size=1, max_size=4), st.data())
@settings(deadline=None, max_examples=300)
def test_single_byte_change_never_yields_a_wrong_frame(
    sent: list[ProbeFrame], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(f) for f in sent)
    pos = data.draw(st.integers(0, len(stream) - 1), label="pos")
    new = data.draw(
        st.one_of(st.sampled_from(b"$*\r\n;,E0"), st.integers(0, 255)).filter(
            lambda b: b != stream[pos]
        ),
        label="byte",
    )
    corrupted = stream[:pos] + bytes([new]) + stream[pos + 1 :]
    got = only_frames(decode_stream([corrupted]))
    # Exactly the frame holding the changed byte is lost; the others survive, in order.
    hit = frame_index_at(sent, pos)
    assert got == sent[:hit] + sent[hit + 1 :]


def test_every_single_byte_change_in_a_stream_loses_only_that_frame() -> None:
    sent = [SAMPLE, dataclasses.replace(SAMPLE, seq=43, board_id="other"), SAMPLE]
    stream = b"".join(encode_frame(f) for f in sent)
    for pos in range(len(stream)):
        hit = frame_index_at(sent, pos)
        for new in (*b"$*\r\n;,E0-", 0x00, 0xFF, stream[pos] ^ 0x01):
            if new == stream[pos]:
                continue
            corrupted = stream[:pos] + bytes([new]) + stream[pos + 1 :]
            got = only_frames(decode_stream([corrupted]))
            assert got == sent[:hit] + sent[hit + 1 :], (pos, new)
