"""Tests for the RFID tag record codec."""

from __future__ import annotations

import dataclasses
import re
import struct
import zlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import ProtocolError, TagError
from protocols.tag import (
    BLOCK_SIZE,
    TAG_BLOCKS,
    TagRecord,
    decode_tag,
    decode_text,
    encode_tag,
    gtin_check_digit,
    is_valid_gtin,
    join_blocks,
    split_blocks,
)

ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"

SAMPLE = TagRecord(
    item_id="ITM-000123",
    lot="L24-07",
    gtin="04006381333931",
    packed_at=datetime(2024, 7, 1, 6, 30, tzinfo=UTC),
    high_risk=True,
)


def with_crc(body: bytes) -> bytes:
    """Append a correct CRC so a test reaches the checks that come after it."""
    assert len(body) == 44
    return body + struct.pack(">I", zlib.crc32(body))


def patched(offset: int, new: bytes) -> bytes:
    """Return SAMPLE's encoding with bytes replaced at ``offset`` and the CRC fixed up."""
    data = bytearray(encode_tag(SAMPLE)[:44])
    data[offset : offset + len(new)] = new
    return with_crc(bytes(data))


def with_check_digit(digits13: str) -> str:
    return digits13 + str(gtin_check_digit(digits13))


records = st.builds(
    TagRecord,
    item_id=st.text(ID_CHARS, min_size=1, max_size=16),
    lot=st.text(ID_CHARS, min_size=1, max_size=10),
    gtin=st.text("0123456789", min_size=13, max_size=13).map(with_check_digit),
    packed_at=st.integers(1, 2**32 - 1).map(lambda s: datetime.fromtimestamp(s, tz=UTC)),
    high_risk=st.booleans(),
)


# --- GTIN helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "gtin",
    ["4006381333931", "04006381333931", "96385074", "036000291452", "10614141000415"],
)
def test_known_gtins_are_valid(gtin: str) -> None:
    assert is_valid_gtin(gtin)
    assert gtin_check_digit(gtin[:-1]) == int(gtin[-1])


@pytest.mark.parametrize(
    "gtin",
    [
        "4006381333932",
        "04006381333930",
        "",
        "123",
        "400638133393",
        "040063813339310",
        "0400638133393A",
        "０４００６３８１３３３９３１",  # fullwidth digits: str.isdigit() would accept these
        " 4006381333931",
    ],
)
def test_bad_gtins_are_invalid(gtin: str) -> None:
    assert not is_valid_gtin(gtin)


def test_check_digit_rejects_bad_input() -> None:
    with pytest.raises(TagError, match="13 ASCII digits"):
        gtin_check_digit("12345")


@given(st.text("0123456789", min_size=13, max_size=13), st.integers(0, 12), st.integers(1, 9))
@settings(deadline=None, max_examples=200)
def test_gtin_catches_single_digit_errors(digits: str, pos: int, delta: int) -> None:
    gtin = with_check_digit(digits)
    wrong = gtin[:pos] + str((int(gtin[pos]) + delta) % 10) + gtin[pos + 1 :]
    assert not is_valid_gtin(wrong)


# --- round trip and layout ---------------------------------------------------------------------


def test_sample_layout() -> None:
    data = encode_tag(SAMPLE)
    assert len(data) == 48
    assert data[0:4] == b"CL\x01\x01"
    assert data[4:20] == b"ITM-000123" + b"\0" * 6
    assert data[20:30] == b"L24-07" + b"\0" * 4
    assert data[30:38] == (4006381333931).to_bytes(8, "big")
    assert data[38:42] == int(SAMPLE.packed_at.timestamp()).to_bytes(4, "big")
    assert data[42:44] == b"\0\0"
    assert data[44:48] == zlib.crc32(data[:44]).to_bytes(4, "big")
    assert decode_tag(data) == SAMPLE


@given(records)
@settings(deadline=None, max_examples=300)
def test_round_trip(record: TagRecord) -> None:
    data = encode_tag(record)
    assert len(data) == 48
    assert decode_tag(data) == record
    assert decode_tag(data).packed_at.tzinfo is UTC
    assert join_blocks(split_blocks(data)) == data
    assert decode_text("".join(chr(b) for b in data)) == record


def test_sub_seconds_are_dropped() -> None:
    record = dataclasses.replace(SAMPLE, packed_at=SAMPLE.packed_at + timedelta(microseconds=999))
    assert decode_tag(encode_tag(record)) == SAMPLE


def test_other_timezones_are_stored_as_utc() -> None:
    cest = timezone(timedelta(hours=2))
    record = dataclasses.replace(SAMPLE, packed_at=datetime(2024, 7, 1, 8, 30, tzinfo=cest))
    decoded = decode_tag(encode_tag(record))
    assert decoded.packed_at == datetime(2024, 7, 1, 6, 30, tzinfo=UTC)
    assert decoded.packed_at.tzinfo is UTC


def test_every_single_bit_flip_is_rejected_exhaustively() -> None:
    data = encode_tag(SAMPLE)
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(TagError):
            decode_tag(bytes(flipped))


@given(records, st.integers(0, 48 * 8 - 1))
@settings(deadline=None, max_examples=300)
def test_every_single_bit_flip_is_rejected(record: TagRecord, bit: int) -> None:
    flipped = bytearray(encode_tag(record))
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(TagError):
        decode_tag(bytes(flipped))


@given(records, st.integers(0, 47), st.integers(1, 255))
@settings(deadline=None, max_examples=300)
def test_every_single_byte_change_is_rejected(record: TagRecord, pos: int, xor: int) -> None:
    changed = bytearray(encode_tag(record))
    changed[pos] ^= xor
    with pytest.raises(TagError):
        decode_tag(bytes(changed))


# Random bytes almost never get past the magic, so also try random bodies with a valid header+CRC.
junk_tags = st.one_of(
    st.binary(min_size=48, max_size=48),
    st.binary(min_size=41, max_size=41).map(lambda rest: with_crc(b"CL\x01" + rest)),
)


@given(junk_tags)
@settings(deadline=None, max_examples=300)
def test_decode_raises_only_tag_error(junk: bytes) -> None:
    try:
        record = decode_tag(junk)
    except TagError:
        return
    assert encode_tag(record) == junk


# --- specific bad inputs -----------------------------------------------------------------------

GOOD = encode_tag(SAMPLE)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "wrong length: expected 48 bytes, got 0"),
        (GOOD[:47], "wrong length: expected 48 bytes, got 47"),
        (GOOD + b"\0", "wrong length: expected 48 bytes, got 49"),
        (b"\0" * 48, "bad magic b'\\x00\\x00': blank or foreign tag"),
        (b"hello world".ljust(48), "bad magic b'he': blank or foreign tag"),
        (b"cl" + GOOD[2:], "bad magic b'cl'"),
        (b"CL\x02" + GOOD[3:], "unknown layout version 2"),
        (b"CL\x00" + GOOD[3:], "unknown layout version 0"),
        (GOOD[:-1] + bytes([GOOD[-1] ^ 1]), "CRC mismatch: computed"),
        (GOOD[:10] + b"X" + GOOD[11:], "CRC mismatch"),
        (patched(3, b"\x02"), "reserved flag bits set: 0x02"),
        (patched(3, b"\x81"), "reserved flag bits set: 0x80"),
        (patched(42, b"\x00\x01"), "reserved bytes 42..43 not zero: 0x0001"),
        (patched(4, b"\0" * 16), "invalid item id"),
        (patched(4, b"itm-1".ljust(16, b"\0")), "invalid item id b'itm-1"),
        (patched(4, b"AB\0C".ljust(16, b"\0")), "invalid item id b'AB\\x00C"),
        (patched(4, b"A B".ljust(16, b"\0")), "invalid item id"),
        (patched(4, b"\xc9T\xc9".ljust(16, b"\0")), "invalid item id"),
        (patched(20, b"\0" * 10), "invalid lot"),
        (patched(20, b"L_1".ljust(10, b"\0")), "invalid lot b'L_1"),
        (patched(30, (4006381333932).to_bytes(8, "big")), "invalid GTIN 04006381333932"),
        (patched(30, (10**14).to_bytes(8, "big")), "more than 14 digits"),
        (patched(30, (2**64 - 1).to_bytes(8, "big")), "more than 14 digits"),
        (patched(38, b"\0\0\0\0"), "packed_at is zero"),
    ],
)
def test_decode_names_the_problem(data: bytes, reason: str) -> None:
    with pytest.raises(TagError, match=re.escape(reason)):
        decode_tag(data)


def test_tag_error_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode_tag(b"")


def test_crc_mismatch_shows_both_values() -> None:
    bad = GOOD[:-4] + b"\xde\xad\xbe\xef"
    computed = zlib.crc32(GOOD[:44])
    with pytest.raises(TagError) as info:
        decode_tag(bad)
    assert str(info.value) == f"CRC mismatch: computed {computed:08X}, tag says DEADBEEF"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"item_id": ""}, "invalid item id ''"),
        ({"item_id": "A" * 17}, "invalid item id"),
        ({"item_id": "itm-1"}, "invalid item id 'itm-1'"),
        ({"item_id": "ÄB"}, "invalid item id"),
        ({"lot": ""}, "invalid lot ''"),
        ({"lot": "L" * 11}, "invalid lot"),
        ({"lot": "L 1"}, "invalid lot 'L 1'"),
        ({"gtin": "4006381333931"}, "must be 14 digits"),
        ({"gtin": "04006381333932"}, "wrong check digit"),
        ({"gtin": "0400638133393X"}, "not digits or wrong check digit"),
        ({"packed_at": datetime(2024, 7, 1)}, "timezone-aware"),
        ({"packed_at": datetime(1970, 1, 1, tzinfo=UTC)}, "outside 1970-01-01..2106-02-07"),
        ({"packed_at": datetime(1960, 1, 1, tzinfo=UTC)}, "outside"),
        ({"packed_at": datetime(2106, 2, 8, tzinfo=UTC)}, "outside"),
    ],
)
def test_encode_rejects_invalid_records(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(TagError, match=re.escape(reason)):
        encode_tag(dataclasses.replace(SAMPLE, **changes))  # type: ignore[arg-type]


def test_latest_timestamp_fits() -> None:
    last = datetime.fromtimestamp(2**32 - 1, tz=UTC)
    record = dataclasses.replace(SAMPLE, packed_at=last)
    assert decode_tag(encode_tag(record)).packed_at == last


# --- blocks and SimpleMFRC522 text -------------------------------------------------------------


def test_split_blocks_uses_sector_2_data_blocks() -> None:
    blocks = split_blocks(GOOD)
    assert TAG_BLOCKS == (8, 9, 10)
    assert list(blocks) == [8, 9, 10]
    assert blocks[8] == GOOD[:16] and blocks[9] == GOOD[16:32] and blocks[10] == GOOD[32:]
    assert all(len(b) == BLOCK_SIZE for b in blocks.values())


def test_join_blocks_ignores_other_blocks_and_accepts_reader_lists() -> None:
    blocks: dict[int, bytes] = {k: v for k, v in split_blocks(GOOD).items()}
    blocks[11] = b"\xff" * 16
    assert join_blocks(blocks) == GOOD
    # MFRC522_Read returns a list of ints per block; bytes() of it is what the reader passes.
    as_lists = {k: list(v) for k, v in split_blocks(GOOD).items()}
    assert join_blocks({k: bytes(v) for k, v in as_lists.items()}) == GOOD


@pytest.mark.parametrize(
    ("blocks", "reason"),
    [
        ({8: b"\0" * 16, 9: b"\0" * 16}, "missing block 10"),
        ({0: b"\0" * 16, 1: b"\0" * 16, 2: b"\0" * 16}, "missing block 8"),
        ({8: b"\0" * 16, 9: b"\0" * 15, 10: b"\0" * 16}, "block 9 has 15 bytes, expected 16"),
    ],
)
def test_join_blocks_names_the_problem(blocks: dict[int, bytes], reason: str) -> None:
    with pytest.raises(TagError, match=re.escape(reason)):
        join_blocks(blocks)


def test_split_blocks_rejects_wrong_length() -> None:
    with pytest.raises(TagError, match="wrong length"):
        split_blocks(GOOD[:32])


def simple_mfrc522_text(block_data: list[list[int]]) -> str:
    """Build text exactly as SimpleMFRC522.read_no_block does from MFRC522_Read results."""
    data: list[int] = []
    for block in block_data:
        if block:
            data += block
    return "".join(chr(i) for i in data) if data else ""


def test_decode_text_matches_simple_mfrc522_read() -> None:
    text = simple_mfrc522_text([list(split_blocks(GOOD)[b]) for b in TAG_BLOCKS])
    assert any(ord(c) > 0x7F for c in text)  # the record is binary, not ASCII
    assert decode_text(text) == SAMPLE


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty read"),
        (GOOD[:32].decode("latin-1"), "got 32 (1 block read(s) failed)"),
        (GOOD[:16].decode("latin-1"), "got 16 (2 block read(s) failed)"),
        (GOOD[:40].decode("latin-1"), "wrong length: expected 48 bytes, got 40"),
        (GOOD.decode("latin-1") + "x", "wrong length: expected 48 bytes, got 49"),
        ("CL\u20ac" + GOOD[3:].decode("latin-1"), "character U+20AC at position 2"),
        (GOOD.decode("latin-1").encode("utf-8").decode("latin-1"), "wrong length"),
    ],
)
def test_decode_text_names_the_problem(text: str, reason: str) -> None:
    with pytest.raises(TagError, match=re.escape(reason)):
        decode_text(text)


def test_simple_mfrc522_write_cannot_store_the_record() -> None:
    # SimpleMFRC522.write does text.ljust(48).encode('ascii'); the record needs raw bytes.
    with pytest.raises(UnicodeEncodeError):
        GOOD.decode("latin-1").ljust(48).encode("ascii")
