"""Encode and decode the serial frames that temperature probe boards send over their UART.

A board (1..8 probes, 115200 baud) sends one ASCII line per measurement cycle::

    $CLT,<board_id>,<seq>,<uptime_ms>,<r1>;<r2>;...;<rn>*XXXX\\r\\n

========== ===================================================================
field      rule
========== ===================================================================
``$``      start of frame; never appears anywhere else in a frame
``CLT``    sentence type (coldloop temperature)
board_id   ``[A-Za-z0-9_-]{1,16}``
seq        0..65535, incremented per frame and wrapping to 0 after 65535
uptime_ms  0..2**32-1, milliseconds since the board booted (wraps after ~49.7 days)
r1..rn     1..8 readings, reading *k* belongs to probe *k*; each is a signed
           integer in centi-degrees Celsius in -5000..15000 (-50.00..150.00 °C),
           or ``-32768`` (probe unplugged), or ``E`` (sensor error)
XXXX       CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final
           XOR) of the bytes strictly between ``$`` and ``*``, four uppercase hex
           digits
========== ===================================================================

Numbers are canonical decimal: no ``+``, no leading zeros, no ``-0``. The whole frame, ``$`` to
``\\n`` inclusive, is at most ``MAX_FRAME_LEN`` (160) bytes; the longest valid frame is 101.
Strictness buys a one-to-one mapping between frames and bytes, so any accepted line re-encodes
to exactly the same bytes.

``decode_frame`` parses one complete line (the trailing ``\\r\\n`` is optional, so a line a
caller already stripped is fine). ``FrameDecoder`` turns an arbitrarily chunked byte stream into
frames and ``FrameFault`` reports; its output depends only on the bytes, never on how they were
split into ``feed`` calls.
"""

from __future__ import annotations

import binascii
import enum
import math
import re
from dataclasses import dataclass

from protocols.errors import FrameError

__all__ = [
    "MAX_FRAME_LEN",
    "MAX_PROBES",
    "MAX_TEMP_CENTI",
    "MIN_TEMP_CENTI",
    "SENTENCE",
    "UNPLUGGED_SENTINEL",
    "FaultKind",
    "FrameDecoder",
    "FrameFault",
    "ProbeFrame",
    "Reading",
    "ReadingStatus",
    "decode_frame",
    "encode_frame",
]

SENTENCE = "CLT"
MAX_FRAME_LEN = 160
MAX_PROBES = 8
MIN_TEMP_CENTI = -5000
MAX_TEMP_CENTI = 15000
UNPLUGGED_SENTINEL = -32768
_SENSOR_ERROR_TOKEN = "E"
_MAX_SEQ = 0xFFFF
_MAX_UPTIME = 0xFFFF_FFFF
_FIELD_COUNT = 5

_BOARD_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,16}")
_SEQ_RE = re.compile(r"0|[1-9][0-9]{0,4}")
_UPTIME_RE = re.compile(r"0|[1-9][0-9]{0,9}")
_READING_RE = re.compile(r"0|-?[1-9][0-9]{0,4}")
_CHECKSUM_RE = re.compile(rb"[0-9A-F]{4}(\r\n)?")
_FRAME_BOUNDARY_RE = re.compile(rb"[$\n]")


class ReadingStatus(enum.Enum):
    """State of one probe in one frame."""

    OK = "ok"
    UNPLUGGED = "unplugged"
    SENSOR_ERROR = "sensor_error"


@dataclass(frozen=True, slots=True)
class Reading:
    """One probe's value: ``temp_c`` is set exactly when ``status`` is OK; probes count from 1."""

    probe: int
    temp_c: float | None
    status: ReadingStatus


@dataclass(frozen=True, slots=True)
class ProbeFrame:
    """One decoded board frame; ``readings[k]`` is probe ``k + 1``."""

    board_id: str
    seq: int
    uptime_ms: int
    readings: tuple[Reading, ...]


class FaultKind(enum.Enum):
    """Why a stretch of the serial stream produced no frame."""

    NOISE = "noise"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    OVERFLOW = "overflow"


@dataclass(frozen=True, slots=True)
class FrameFault:
    """A stretch of the stream that is not a valid frame; ``raw`` holds those bytes."""

    kind: FaultKind
    reason: str
    raw: bytes


def _crc(body: bytes) -> int:
    return binascii.crc_hqx(body, 0xFFFF)


def _is_int(value: object) -> bool:
    # bool is an int subclass, but True as a sequence number is a bug, not a value.
    return isinstance(value, int) and not isinstance(value, bool)


def _encode_reading(position: int, reading: Reading) -> str:
    if not isinstance(reading, Reading):
        raise FrameError(f"reading at position {position} is not a Reading: {reading!r}")
    if reading.probe != position:
        raise FrameError(
            f"reading at position {position} has probe number {reading.probe!r}; "
            "readings must be numbered 1..n in order"
        )
    if reading.status is ReadingStatus.OK:
        temp = reading.temp_c
        if temp is None or isinstance(temp, bool) or not isinstance(temp, int | float):
            raise FrameError(f"reading at position {position}: status OK needs a temperature")
        # Bound before scaling: round() of a huge or infinite product raises OverflowError.
        in_range = math.isfinite(temp) and -60 < temp < 160
        centi = round(temp * 100) if in_range else 0
        if not in_range or not MIN_TEMP_CENTI <= centi <= MAX_TEMP_CENTI:
            raise FrameError(
                f"reading at position {position}: {temp!r} °C is outside -50.00..150.00 °C"
            )
        return str(centi)
    if reading.status in (ReadingStatus.UNPLUGGED, ReadingStatus.SENSOR_ERROR):
        if reading.temp_c is not None:
            raise FrameError(
                f"reading at position {position}: status {reading.status.name} "
                "must have temp_c None"
            )
        if reading.status is ReadingStatus.UNPLUGGED:
            return str(UNPLUGGED_SENTINEL)
        return _SENSOR_ERROR_TOKEN
    raise FrameError(f"reading at position {position}: unknown status {reading.status!r}")


def encode_frame(frame: ProbeFrame) -> bytes:
    """Encode a frame as one CRLF-terminated line, or raise FrameError if any field is invalid."""
    if not isinstance(frame.board_id, str) or not _BOARD_ID_RE.fullmatch(frame.board_id):
        raise FrameError(f"bad board id {frame.board_id!r}: must match [A-Za-z0-9_-]{{1,16}}")
    if not _is_int(frame.seq) or not 0 <= frame.seq <= _MAX_SEQ:
        raise FrameError(f"seq {frame.seq!r} out of range 0..{_MAX_SEQ}")
    if not _is_int(frame.uptime_ms) or not 0 <= frame.uptime_ms <= _MAX_UPTIME:
        raise FrameError(f"uptime_ms {frame.uptime_ms!r} out of range 0..{_MAX_UPTIME}")
    readings = tuple(frame.readings)
    if not 1 <= len(readings) <= MAX_PROBES:
        raise FrameError(f"a frame needs 1..{MAX_PROBES} readings, got {len(readings)}")
    encoded = ";".join(_encode_reading(k, r) for k, r in enumerate(readings, start=1))
    body = f"{SENTENCE},{frame.board_id},{frame.seq},{frame.uptime_ms},{encoded}".encode("ascii")
    line = b"$" + body + b"*" + f"{_crc(body):04X}".encode("ascii") + b"\r\n"
    if len(line) > MAX_FRAME_LEN:
        # Unreachable with the field limits above; kept so a future field cannot slip past.
        raise FrameError(f"too long: {len(line)} bytes (max {MAX_FRAME_LEN})")
    return line


def _decode_reading(position: int, token: str) -> Reading:
    if token == _SENSOR_ERROR_TOKEN:
        return Reading(position, None, ReadingStatus.SENSOR_ERROR)
    if token == str(UNPLUGGED_SENTINEL):
        return Reading(position, None, ReadingStatus.UNPLUGGED)
    if not _READING_RE.fullmatch(token):
        raise FrameError(
            f"bad reading at position {position}: {token!r} is not a canonical integer, "
            f"'{_SENSOR_ERROR_TOKEN}' or {UNPLUGGED_SENTINEL}"
        )
    centi = int(token)
    if not MIN_TEMP_CENTI <= centi <= MAX_TEMP_CENTI:
        raise FrameError(
            f"bad reading at position {position}: {centi} is outside "
            f"{MIN_TEMP_CENTI}..{MAX_TEMP_CENTI} centi-degrees C"
        )
    return Reading(position, centi / 100, ReadingStatus.OK)


def _decode_unsigned(name: str, token: str, pattern: re.Pattern[str], maximum: int) -> int:
    if not pattern.fullmatch(token):
        raise FrameError(f"bad {name} {token!r}: not a canonical unsigned decimal")
    value = int(token)
    if value > maximum:
        raise FrameError(f"{name} {value} out of range 0..{maximum}")
    return value


def decode_frame(line: bytes) -> ProbeFrame:
    """Decode one complete frame line, or raise FrameError saying what is wrong with it."""
    line = bytes(line)
    if not line:
        raise FrameError("empty frame")
    if len(line) > MAX_FRAME_LEN:
        raise FrameError(f"too long: {len(line)} bytes (max {MAX_FRAME_LEN})")
    for offset, byte in enumerate(line):
        if byte > 0x7F:
            raise FrameError(f"non-ASCII byte 0x{byte:02X} at offset {offset}")
    if line[0] != ord("$"):
        raise FrameError(f"bad start: expected '$', got {line[:1]!r}")
    star = line.find(b"*")
    if star < 0:
        raise FrameError("missing checksum: no '*' in frame")
    trailer = line[star + 1 :]
    if not _CHECKSUM_RE.fullmatch(trailer):
        raise FrameError(
            f"malformed checksum {trailer!r}: expected 4 uppercase hex digits then optional CRLF"
        )
    body = line[1:star]
    for offset, byte in enumerate(body, start=1):
        if byte == ord("$"):
            raise FrameError(f"unexpected '$' at offset {offset}: truncated frame?")
        if byte < 0x20 or byte == 0x7F:
            raise FrameError(f"control byte 0x{byte:02X} at offset {offset}")
    expected = _crc(body)
    got = int(trailer[:4], 16)
    if expected != got:
        raise FrameError(f"checksum mismatch: expected {expected:04X}, got {got:04X}")
    # Checked characters are printable ASCII, so this cannot fail.
    fields = body.decode("ascii").split(",")
    if len(fields) != _FIELD_COUNT:
        raise FrameError(f"wrong field count: expected {_FIELD_COUNT}, got {len(fields)}")
    sentence, board_id, seq_text, uptime_text, readings_text = fields
    if sentence != SENTENCE:
        raise FrameError(f"unknown sentence type {sentence!r}: expected {SENTENCE!r}")
    if not _BOARD_ID_RE.fullmatch(board_id):
        raise FrameError(f"bad board id {board_id!r}: must match [A-Za-z0-9_-]{{1,16}}")
    seq = _decode_unsigned("seq", seq_text, _SEQ_RE, _MAX_SEQ)
    uptime_ms = _decode_unsigned("uptime_ms", uptime_text, _UPTIME_RE, _MAX_UPTIME)
    tokens = readings_text.split(";")
    if len(tokens) > MAX_PROBES:
        raise FrameError(f"too many readings: {len(tokens)} (max {MAX_PROBES})")
    readings = tuple(_decode_reading(k, token) for k, token in enumerate(tokens, start=1))
    return ProbeFrame(board_id, seq, uptime_ms, readings)


class FrameDecoder:
    """Split a chunked serial byte stream into frames and faults without ever raising.

    Bytes outside a frame are reported as NOISE when the next ``$`` arrives (or in pieces of at
    most ``MAX_FRAME_LEN`` bytes, so a babbling line cannot grow memory). A ``$`` before the
    previous frame's ``\\n`` makes that frame TRUNCATED; ``MAX_FRAME_LEN`` bytes after ``$``
    without ``\\n`` is an OVERFLOW and the decoder hunts for the next ``$``. A line that ends in
    ``\\n`` but does not decode is CORRUPT.
    """

    def __init__(self) -> None:
        """Start outside any frame."""
        self._in_frame = False
        self._frame = bytearray()
        self._noise = bytearray()

    def feed(self, data: bytes) -> list[ProbeFrame | FrameFault]:
        """Consume the next chunk of the stream; return what it completed, in stream order."""
        out: list[ProbeFrame | FrameFault] = []
        data = bytes(data)
        pos = 0
        end = len(data)
        while pos < end:
            if not self._in_frame:
                start = data.find(b"$", pos)
                self._add_noise(data[pos : end if start < 0 else start], out)
                if start < 0:
                    break
                noise = self._take_noise()
                if noise is not None:
                    out.append(noise)
                self._begin_frame()
                pos = start + 1
                continue
            room = MAX_FRAME_LEN - len(self._frame)
            limit = min(end, pos + room)
            match = _FRAME_BOUNDARY_RE.search(data, pos, limit)
            if match is None:
                self._frame += data[pos:limit]
                pos = limit
                if len(self._frame) >= MAX_FRAME_LEN:
                    out.append(
                        FrameFault(
                            FaultKind.OVERFLOW,
                            f"no line end within {MAX_FRAME_LEN} bytes after '$'",
                            bytes(self._frame),
                        )
                    )
                    self._end_frame()
            elif data[match.start()] == ord("\n"):
                self._frame += data[pos : match.end()]
                pos = match.end()
                out.append(self._complete(bytes(self._frame)))
                self._end_frame()
            else:
                self._frame += data[pos : match.start()]
                out.append(
                    FrameFault(
                        FaultKind.TRUNCATED,
                        f"frame cut off after {len(self._frame)} bytes by a new '$'",
                        bytes(self._frame),
                    )
                )
                self._begin_frame()
                pos = match.start() + 1
        return out

    def flush(self) -> list[FrameFault]:
        """Report whatever is pending at end of stream and reset to the initial state."""
        out: list[FrameFault] = []
        noise = self._take_noise()
        if noise is not None:
            out.append(noise)
        if self._in_frame:
            out.append(
                FrameFault(
                    FaultKind.TRUNCATED,
                    f"stream ended {len(self._frame)} bytes into a frame",
                    bytes(self._frame),
                )
            )
            self._end_frame()
        return out

    def _begin_frame(self) -> None:
        self._in_frame = True
        self._frame = bytearray(b"$")

    def _end_frame(self) -> None:
        self._in_frame = False
        self._frame = bytearray()

    def _add_noise(self, chunk: bytes, out: list[ProbeFrame | FrameFault]) -> None:
        self._noise += chunk
        while len(self._noise) >= MAX_FRAME_LEN:
            piece = bytes(self._noise[:MAX_FRAME_LEN])
            del self._noise[:MAX_FRAME_LEN]
            out.append(_noise_fault(piece))

    def _take_noise(self) -> FrameFault | None:
        if not self._noise:
            return None
        fault = _noise_fault(bytes(self._noise))
        self._noise = bytearray()
        return fault

    @staticmethod
    def _complete(line: bytes) -> ProbeFrame | FrameFault:
        try:
            return decode_frame(line)
        except FrameError as exc:
            return FrameFault(FaultKind.CORRUPT, str(exc), line)


def _noise_fault(raw: bytes) -> FrameFault:
    noun = "byte" if len(raw) == 1 else "bytes"
    return FrameFault(FaultKind.NOISE, f"skipped {len(raw)} noise {noun} outside a frame", raw)
