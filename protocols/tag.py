"""Encode and decode the coldloop record stored on a MIFARE Classic 1K RFID tag.

The record lives in the three data blocks of sector 2 (blocks 8, 9, 10; block 11 is the sector
trailer and is never written), which are the blocks ``mfrc522.SimpleMFRC522`` reads with the
default key. Together they hold 48 bytes; multi-byte integers are big-endian:

======  ====  ===========================================================================
bytes   size  content
======  ====  ===========================================================================
0..1    2     magic ``b"CL"``
2       1     layout version, 1
3       1     flags: bit 0 = high-risk product family; bits 1..7 reserved, must be 0
4..19   16    item id, ASCII ``[A-Z0-9-]{1,16}``, NUL-padded on the right
20..29  10    lot, ASCII ``[A-Z0-9-]{1,10}``, NUL-padded on the right
30..37  8     product code: GTIN-14 as an unsigned 64-bit integer (GS1 mod-10 check digit)
38..41  4     packed_at: unsigned 32-bit unix seconds, UTC, never 0
42..43  2     reserved, must be 0
44..47  4     CRC-32 (``zlib.crc32``) of bytes 0..43
======  ====  ===========================================================================

Reading: ``SimpleMFRC522.read()`` returns ``(uid, text)`` where ``text`` is
``''.join(chr(b) for b in data)``, one character per byte, so ``decode_text`` maps it back with
latin-1. That call silently skips a block it failed to read and returns ``''`` when
authentication fails, so a short text means a bad read, not a short record.

Writing: ``SimpleMFRC522.write()`` cannot store this record: it space-pads a ``str`` and encodes
it as ASCII, which fails on bytes >= 0x80 (the GTIN, timestamp and CRC produce them). Write each
block of ``split_blocks(encode_tag(record))`` with ``MFRC522.MFRC522_Write`` instead.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from protocols.errors import TagError

__all__ = [
    "BLOCK_SIZE",
    "LAYOUT_VERSION",
    "MAGIC",
    "RECORD_SIZE",
    "TAG_BLOCKS",
    "TagRecord",
    "decode_tag",
    "decode_text",
    "encode_tag",
    "gtin_check_digit",
    "is_valid_gtin",
    "join_blocks",
    "split_blocks",
]

TAG_BLOCKS = (8, 9, 10)
BLOCK_SIZE = 16
RECORD_SIZE = BLOCK_SIZE * len(TAG_BLOCKS)
MAGIC = b"CL"
LAYOUT_VERSION = 1

_FLAG_HIGH_RISK = 0x01
_ITEM_ID_SIZE = 16
_LOT_SIZE = 10
_MAX_GTIN14 = 10**14 - 1
_MAX_U32 = 0xFFFF_FFFF
# Everything but the trailing CRC, which covers exactly these bytes.
_BODY = struct.Struct(">2sBB16s10sQIH")
_CRC = struct.Struct(">I")
assert _BODY.size + _CRC.size == RECORD_SIZE

_ITEM_ID_RE = re.compile(r"[A-Z0-9-]{1,16}")
_LOT_RE = re.compile(r"[A-Z0-9-]{1,10}")
_DIGITS_RE = re.compile(r"[0-9]+")
# GTIN-8, -12, -13 and -14 without their check digit.
_GTIN_DATA_LENGTHS = (7, 11, 12, 13)


@dataclass(frozen=True, slots=True)
class TagRecord:
    """What a tag says about the item it is attached to; ``gtin`` is the 14-digit GTIN."""

    item_id: str
    lot: str
    gtin: str
    packed_at: datetime
    high_risk: bool = False


def gtin_check_digit(digits13: str) -> int:
    """Return the GS1 mod-10 check digit for a GTIN's data digits (13 for a GTIN-14)."""
    if (
        not isinstance(digits13, str)
        or len(digits13) not in _GTIN_DATA_LENGTHS
        or not _DIGITS_RE.fullmatch(digits13)
    ):
        raise TagError(f"GTIN data digits must be 7, 11, 12 or 13 ASCII digits, got {digits13!r}")
    # Weights alternate 3, 1, 3, ... from the rightmost data digit, so leading zeros are neutral
    # and a GTIN-13 padded to 14 digits keeps its check digit.
    total = sum(int(d) * (3 if k % 2 == 0 else 1) for k, d in enumerate(reversed(digits13)))
    return (10 - total % 10) % 10


def is_valid_gtin(gtin: str) -> bool:
    """Return whether ``gtin`` is an 8, 12, 13 or 14 digit GTIN with a correct check digit."""
    if (
        not isinstance(gtin, str)
        or len(gtin) - 1 not in _GTIN_DATA_LENGTHS
        or not _DIGITS_RE.fullmatch(gtin)
    ):
        return False
    return gtin_check_digit(gtin[:-1]) == int(gtin[-1])


def _pad(name: str, value: str, pattern: re.Pattern[str], size: int) -> bytes:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise TagError(f"invalid {name} {value!r}: must be 1..{size} characters of A-Z, 0-9, '-'")
    return value.encode("ascii").ljust(size, b"\0")


def encode_tag(record: TagRecord) -> bytes:
    """Encode a record as the 48 bytes for blocks 8..10, or raise TagError if it is invalid.

    The sub-second part of ``packed_at`` is dropped: the tag stores whole seconds.
    """
    item_id = _pad("item id", record.item_id, _ITEM_ID_RE, _ITEM_ID_SIZE)
    lot = _pad("lot", record.lot, _LOT_RE, _LOT_SIZE)
    if not isinstance(record.gtin, str) or len(record.gtin) != 14:
        raise TagError(
            f"invalid GTIN {record.gtin!r}: must be 14 digits (left-pad GTIN-8/12/13 with zeros)"
        )
    if not is_valid_gtin(record.gtin):
        raise TagError(f"invalid GTIN {record.gtin!r}: not digits or wrong check digit")
    packed_at = record.packed_at
    if not isinstance(packed_at, datetime) or packed_at.utcoffset() is None:
        raise TagError(f"packed_at must be a timezone-aware datetime, got {packed_at!r}")
    seconds = int(packed_at.replace(microsecond=0).timestamp())
    if not 0 < seconds <= _MAX_U32:
        raise TagError(f"packed_at {packed_at.isoformat()} outside 1970-01-01..2106-02-07 (UTC)")
    flags = _FLAG_HIGH_RISK if record.high_risk else 0
    body = _BODY.pack(MAGIC, LAYOUT_VERSION, flags, item_id, lot, int(record.gtin), seconds, 0)
    return body + _CRC.pack(zlib.crc32(body))


def _unpad(name: str, raw: bytes, pattern: re.Pattern[str], size: int) -> str:
    # Only trailing NULs are padding; a NUL followed by anything else fails the pattern below.
    text = raw.rstrip(b"\0").decode("latin-1")
    if not pattern.fullmatch(text):
        raise TagError(
            f"invalid {name} {raw!r}: must be 1..{size} characters of A-Z, 0-9, '-' NUL-padded"
        )
    return text


def decode_tag(data: bytes) -> TagRecord:
    """Decode the 48 bytes of blocks 8..10, or raise TagError naming what is wrong."""
    data = bytes(data)
    if len(data) != RECORD_SIZE:
        raise TagError(f"wrong length: expected {RECORD_SIZE} bytes, got {len(data)}")
    body, crc_bytes = data[: _BODY.size], data[_BODY.size :]
    magic, version, flags, item_raw, lot_raw, gtin_value, seconds, reserved = _BODY.unpack(body)
    if magic != MAGIC:
        raise TagError(f"bad magic {magic!r}: blank or foreign tag")
    # Version before CRC: a later layout may move or widen the CRC, and "unknown version" is
    # the actionable message for a tag written by newer software.
    if version != LAYOUT_VERSION:
        raise TagError(f"unknown layout version {version} (this side reads {LAYOUT_VERSION})")
    (stored_crc,) = _CRC.unpack(crc_bytes)
    computed_crc = zlib.crc32(body)
    if stored_crc != computed_crc:
        raise TagError(f"CRC mismatch: computed {computed_crc:08X}, tag says {stored_crc:08X}")
    if flags & ~_FLAG_HIGH_RISK:
        raise TagError(f"reserved flag bits set: 0x{flags & ~_FLAG_HIGH_RISK:02X}")
    if reserved:
        raise TagError(f"reserved bytes 42..43 not zero: 0x{reserved:04X}")
    item_id = _unpad("item id", item_raw, _ITEM_ID_RE, _ITEM_ID_SIZE)
    lot = _unpad("lot", lot_raw, _LOT_RE, _LOT_SIZE)
    if gtin_value > _MAX_GTIN14:
        raise TagError(f"invalid GTIN: {gtin_value} has more than 14 digits")
    gtin = f"{gtin_value:014d}"
    if not is_valid_gtin(gtin):
        raise TagError(f"invalid GTIN {gtin}: wrong check digit")
    if seconds == 0:
        raise TagError("packed_at is zero: the record was never stamped")
    packed_at = datetime.fromtimestamp(seconds, tz=UTC)
    return TagRecord(item_id, lot, gtin, packed_at, high_risk=bool(flags & _FLAG_HIGH_RISK))


def split_blocks(data: bytes) -> dict[int, bytes]:
    """Split a 48-byte record into ``{block_number: 16 bytes}`` for blocks 8, 9 and 10."""
    data = bytes(data)
    if len(data) != RECORD_SIZE:
        raise TagError(f"wrong length: expected {RECORD_SIZE} bytes, got {len(data)}")
    return {
        block: data[k * BLOCK_SIZE : (k + 1) * BLOCK_SIZE] for k, block in enumerate(TAG_BLOCKS)
    }


def join_blocks(blocks: Mapping[int, bytes]) -> bytes:
    """Join blocks 8, 9 and 10 into the 48-byte record; other block numbers are ignored."""
    parts = []
    for block in TAG_BLOCKS:
        if block not in blocks:
            raise TagError(f"missing block {block}")
        part = bytes(blocks[block])
        if len(part) != BLOCK_SIZE:
            raise TagError(f"block {block} has {len(part)} bytes, expected {BLOCK_SIZE}")
        parts.append(part)
    return b"".join(parts)


def decode_text(text: str) -> TagRecord:
    """Decode the ``text`` that ``SimpleMFRC522.read()`` returns (one ``chr`` per byte)."""
    if not text:
        raise TagError("empty read: authentication failed or no data blocks were read")
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        raise TagError(
            f"character U+{ord(bad):04X} at position {exc.start} is not a byte value; "
            "expected the text returned by SimpleMFRC522.read()"
        ) from None
    if len(data) < RECORD_SIZE and len(data) % BLOCK_SIZE == 0:
        missing = (RECORD_SIZE - len(data)) // BLOCK_SIZE
        raise TagError(
            f"wrong length: expected {RECORD_SIZE} bytes, got {len(data)} "
            f"({missing} block read(s) failed)"
        )
    return decode_tag(data)
