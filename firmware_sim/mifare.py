"""A MIFARE Classic 1K card (4-byte NUID) at the protocol level, and the CRC_A of ISO/IEC 14443-3.

The card answers frames as the reader's chip sees them after Crypto1: authentication is modelled
by outcome (right key and UID or not), never by cipher bits. Modelled: the ISO/IEC 14443-3 states
(IDLE, READY, ACTIVE, HALT, plus AUTHENTICATED), REQA/WUPA, cascade level 1 anticollision with
NVB 0x20 and SELECT, HALT, READ, the two-step WRITE with 4-bit ACK/NAK, and the access conditions
of the sector trailers. Not modelled: value-block commands (answered with NAK), 7-byte UIDs,
bit-oriented anticollision frames and AUTH sent by Transceive instead of MFAuthent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

REQA = 0x26
WUPA = 0x52
SEL_CL1 = 0x93
AUTH_A = 0x60
AUTH_B = 0x61
READ = 0x30
WRITE = 0xA0
HALT = 0x50
ACK = 0x0A
NAK_INVALID = 0x04  # operation not allowed or unknown
NAK_CRC = 0x05  # parity or CRC error in the reader's frame

ATQA = b"\x04\x00"
SAK = 0x08
BLOCKS = 64
BLOCK_SIZE = 16
DEFAULT_KEY = b"\xff" * 6
TRANSPORT_ACCESS = b"\xff\x07\x80\x69"  # access bits FF 07 80 plus general purpose byte 69
_MANUFACTURER = b"\x62\x63\x64\x65\x66\x67\x68\x69"

_AB = frozenset("AB")
_A = frozenset("A")
_B = frozenset("B")
_NONE: frozenset[str] = frozenset()
# Data blocks: C1C2C3 -> (keys that may read, keys that may write).
_DATA_ACCESS = {
    0b000: (_AB, _AB), 0b010: (_AB, _NONE), 0b100: (_AB, _B), 0b110: (_AB, _B),
    0b001: (_AB, _NONE), 0b011: (_B, _B), 0b101: (_B, _NONE), 0b111: (_NONE, _NONE),
}
# Sector trailer: C1C2C3 -> (write key A, read access bits, write access bits, read/write key B).
_TRAILER_ACCESS = {
    0b000: (_A, _A, _NONE, _A, _A), 0b010: (_NONE, _A, _NONE, _A, _NONE),
    0b100: (_B, _AB, _NONE, _NONE, _B), 0b110: (_NONE, _AB, _NONE, _NONE, _NONE),
    0b001: (_A, _A, _A, _A, _A), 0b011: (_B, _AB, _B, _NONE, _B),
    0b101: (_NONE, _AB, _B, _NONE, _NONE), 0b111: (_NONE, _AB, _NONE, _NONE, _NONE),
}
# Where key B is readable it is data, and the card refuses memory access after AUTH with it.
_KEY_B_READABLE = frozenset({0b000, 0b010, 0b001})


def crc_a(data: Iterable[int], preset: int = 0x6363) -> int:
    """Return the ISO/IEC 14443-3 CRC_A of ``data`` (sent low byte first)."""
    crc = preset
    for value in data:
        byte = (value ^ crc) & 0xFF
        byte = (byte ^ (byte << 4)) & 0xFF
        crc = (crc >> 8) ^ (byte << 8) ^ (byte << 3) ^ (byte >> 4)
    return crc & 0xFFFF


def with_crc(data: Iterable[int]) -> bytes:
    """Return ``data`` followed by its CRC_A, low byte first, as it goes on the air."""
    body = bytes(data)
    crc = crc_a(body)
    return body + bytes((crc & 0xFF, crc >> 8))


def has_valid_crc(frame: bytes) -> bool:
    """Return whether ``frame`` ends with a correct CRC_A of the bytes before it."""
    return len(frame) >= 3 and crc_a(frame[:-2]) == frame[-2] | frame[-1] << 8


def access_conditions(trailer: bytes | bytearray) -> tuple[int, int, int, int] | None:
    """Return C1C2C3 of blocks 0..3 of a sector from its trailer, or None if they are corrupt."""
    b6, b7, b8 = trailer[6], trailer[7], trailer[8]
    c1, c2, c3 = b7 >> 4, b8 & 0x0F, b8 >> 4
    if (b6 & 0x0F, b6 >> 4, b7 & 0x0F) != (~c1 & 0x0F, ~c2 & 0x0F, ~c3 & 0x0F):
        return None
    bits = [((c1 >> i) & 1) << 2 | ((c2 >> i) & 1) << 1 | ((c3 >> i) & 1) for i in range(4)]
    return bits[0], bits[1], bits[2], bits[3]


@dataclass(frozen=True, slots=True)
class Answer:
    """A card's answer: its bytes and how many bits of the last byte are sent (0: all 8)."""

    data: bytes
    bits: int = 0


class CardState(Enum):
    """ISO/IEC 14443-3 states, plus MIFARE's AUTHENTICATED and no power at all."""

    POWER_OFF = "power-off"
    IDLE = "idle"
    READY = "ready"
    ACTIVE = "active"
    AUTHENTICATED = "authenticated"
    HALT = "halt"


class MifareClassic1K:
    """A MIFARE Classic 1K card: 64 blocks of 16 bytes, keys and access bits per sector."""

    def __init__(self, uid: bytes) -> None:
        uid = bytes(uid)
        if len(uid) != 4 or uid[0] == 0x88:  # 0x88 is the cascade tag, never a NUID's first byte
            raise ValueError(f"a 4-byte NUID not starting with 0x88 is needed, got {uid.hex()}")
        self.uid = uid
        self.bcc = uid[0] ^ uid[1] ^ uid[2] ^ uid[3]
        self._blocks = [bytearray(BLOCK_SIZE) for _ in range(BLOCKS)]
        self._blocks[0][:] = uid + bytes((self.bcc, SAK)) + ATQA + _MANUFACTURER
        for sector in range(BLOCKS // 4):
            self._blocks[sector * 4 + 3][:] = DEFAULT_KEY + TRANSPORT_ACCESS + DEFAULT_KEY
        self._state = CardState.POWER_OFF
        self._from_halt = False  # woken by WUPA from HALT: an error sends it back to HALT
        self._auth: tuple[int, str] | None = None  # (sector, key "A"/"B")
        self._pending_write: int | None = None

    def __repr__(self) -> str:
        return f"MifareClassic1K({self.uid.hex()}, {self._state.value})"

    @property
    def state(self) -> CardState:
        """Where the card is in the ISO/IEC 14443-3 state machine."""
        return self._state

    @property
    def blocks(self) -> tuple[bytes, ...]:
        """A snapshot of all 64 blocks as stored (keys included)."""
        return tuple(bytes(b) for b in self._blocks)

    def read_block(self, block: int) -> bytes:
        """Return a block as stored, bypassing keys and access bits."""
        return bytes(self._blocks[block])

    def write_block(self, block: int, data: bytes) -> None:
        """Store 16 bytes in a block, bypassing keys and access bits (setting up a test)."""
        if len(data) != BLOCK_SIZE:
            raise ValueError(f"a block holds {BLOCK_SIZE} bytes, got {len(data)}")
        self._blocks[block][:] = data

    def set_keys(self, sector: int, *, key_a: bytes | None = None, key_b: bytes | None = None,
                 access: bytes | None = None) -> None:
        """Change a sector trailer's key A, key B or access bytes (4: access bits + GPB)."""
        trailer = self._blocks[sector * 4 + 3]
        for value, start, size in ((key_a, 0, 6), (access, 6, 4), (key_b, 10, 6)):
            if value is not None:
                if len(value) != size:
                    raise ValueError(f"expected {size} bytes, got {len(value)}")
                trailer[start:start + size] = value

    def power_on(self) -> None:
        """Enter an RF field: the card starts in IDLE."""
        self._reset(CardState.IDLE)

    def power_off(self) -> None:
        """Leave the field (or the field goes off): all session state is lost."""
        self._reset(CardState.POWER_OFF)

    def _reset(self, state: CardState) -> None:
        self._state = state
        self._from_halt = False
        self._auth = None
        self._pending_write = None

    def _fail(self) -> None:
        # A MIFARE card answers errors with silence (or a NAK) and falls back to IDLE or HALT.
        self._reset(CardState.HALT if self._from_halt else CardState.IDLE)

    def receive(self, frame: bytes, bits: int = 0, *, crypto: bool = False) -> Answer | None:
        """Handle one frame from the reader; ``crypto``: sent inside this card's Crypto1 session."""
        state = self._state
        if state is CardState.POWER_OFF:
            return None
        if crypto != (state is CardState.AUTHENTICATED):
            # Ciphertext to a card without a session, or plaintext to one with: noise to the card.
            if state in (CardState.READY, CardState.ACTIVE, CardState.AUTHENTICATED):
                self._fail()
            return None
        if len(frame) == 1 and bits == 7:
            return self._short_frame(frame[0])
        if bits or state in (CardState.IDLE, CardState.HALT):
            if state not in (CardState.IDLE, CardState.HALT):
                self._fail()
            return None
        if state is CardState.READY:
            return self._ready(frame)
        return self._selected(frame)

    def _short_frame(self, command: int) -> Answer | None:
        state = self._state
        if (command == REQA and state is CardState.IDLE) or (
            command == WUPA and state in (CardState.IDLE, CardState.HALT)
        ):
            self._reset(CardState.READY)
            self._from_halt = state is CardState.HALT
            return Answer(ATQA)
        if state not in (CardState.IDLE, CardState.HALT):
            self._fail()  # REQA/WUPA do not reach a card past IDLE: it drops back instead
        return None

    def _ready(self, frame: bytes) -> Answer | None:
        uid_bcc = self.uid + bytes((self.bcc,))
        if frame == bytes((SEL_CL1, 0x20)):
            return Answer(uid_bcc)
        if len(frame) == 9 and frame[:2] == bytes((SEL_CL1, 0x70)) and has_valid_crc(frame):
            if frame[2:7] != uid_bcc:
                return None  # another card is being selected; this one stays READY
            self._state = CardState.ACTIVE
            return Answer(with_crc((SAK,)))
        self._fail()
        return None

    def _selected(self, frame: bytes) -> Answer | None:
        authenticated = self._state is CardState.AUTHENTICATED
        if self._pending_write is not None:
            return self._write_data(frame)
        if not has_valid_crc(frame):
            self._fail()
            return Answer(bytes((NAK_CRC,)), 4) if authenticated else None
        body = frame[:-2]
        if body == bytes((HALT, 0x00)):
            self._reset(CardState.HALT)
            return None
        if not authenticated or len(body) != 2 or body[0] not in (READ, WRITE):
            return self._refuse(authenticated)
        block = body[1]
        if body[0] == READ:
            data = self._read_allowed(block)
            return Answer(with_crc(data)) if data is not None else self._refuse(True)
        if block == 0 or not self._may_write(block):
            return self._refuse(True)
        self._pending_write = block
        return Answer(bytes((ACK,)), 4)

    def _refuse(self, authenticated: bool) -> Answer | None:
        self._fail()
        return Answer(bytes((NAK_INVALID,)), 4) if authenticated else None

    def _write_data(self, frame: bytes) -> Answer | None:
        block, self._pending_write = self._pending_write, None
        assert block is not None
        if len(frame) != BLOCK_SIZE + 2 or not has_valid_crc(frame):
            self._fail()
            return Answer(bytes((NAK_CRC,)), 4)
        data = frame[:BLOCK_SIZE]
        if block % 4 == 3:
            self._write_trailer(block, data)
        else:
            self._blocks[block][:] = data
        return Answer(bytes((ACK,)), 4)

    def _conditions(self, block: int) -> tuple[int, int, str] | None:
        """Return (this block's C1C2C3, the trailer's C1C2C3, key) if ``block`` may be touched."""
        if self._auth is None or block >= BLOCKS or block // 4 != self._auth[0]:
            return None
        conditions = access_conditions(self._blocks[block | 3])
        if conditions is None:
            return None  # corrupt access bits block the whole sector
        key = self._auth[1]
        if key == "B" and conditions[3] in _KEY_B_READABLE:
            return None
        return conditions[block % 4], conditions[3], key

    def _read_allowed(self, block: int) -> bytes | None:
        found = self._conditions(block)
        if found is None:
            return None
        own, trailer_c, key = found
        if block % 4 != 3:
            return bytes(self._blocks[block]) if key in _DATA_ACCESS[own][0] else None
        _, read_access, _, read_key_b, _ = _TRAILER_ACCESS[trailer_c]
        stored = self._blocks[block]
        # Key A never reads back; access bits and key B read as zeros where not readable.
        access = bytes(stored[6:10]) if key in read_access else bytes(4)
        key_b = bytes(stored[10:16]) if key in read_key_b else bytes(6)
        return bytes(6) + access + key_b

    def _may_write(self, block: int) -> bool:
        found = self._conditions(block)
        if found is None:
            return False
        own, trailer_c, key = found
        if block % 4 != 3:
            return key in _DATA_ACCESS[own][1]
        key_a_w, _, access_w, _, key_b_w = _TRAILER_ACCESS[trailer_c]
        return key in key_a_w | access_w | key_b_w

    def _write_trailer(self, block: int, data: bytes) -> None:
        found = self._conditions(block)
        assert found is not None
        _, trailer_c, key = found
        key_a_w, _, access_w, _, key_b_w = _TRAILER_ACCESS[trailer_c]
        trailer = self._blocks[block]
        # Each part is written only where the current access bits allow it.
        for allowed, start, end in ((key_a_w, 0, 6), (access_w, 6, 10), (key_b_w, 10, 16)):
            if key in allowed:
                trailer[start:end] = data[start:end]

    def authenticate(self, command: int, block: int, key: bytes, uid: bytes, *,
                     crypto: bool = False) -> bool:
        """Run the three-pass authentication; True when the card accepts the reader's key."""
        state = self._state
        if crypto != (state is CardState.AUTHENTICATED) or state not in (
            CardState.ACTIVE, CardState.AUTHENTICATED
        ):
            if state in (CardState.READY, CardState.ACTIVE, CardState.AUTHENTICATED):
                self._fail()
            return False
        if command not in (AUTH_A, AUTH_B) or block >= BLOCKS:
            self._fail()
            return False
        trailer = self._blocks[block | 3]
        stored = trailer[0:6] if command == AUTH_A else trailer[10:16]
        # The cipher is seeded with UID xor the card's nonce: a wrong UID fails like a wrong key.
        if bytes(key) != stored or bytes(uid) != self.uid:
            self._fail()
            return False
        self._state = CardState.AUTHENTICATED
        self._auth = (block // 4, "A" if command == AUTH_A else "B")
        self._pending_write = None
        return True
