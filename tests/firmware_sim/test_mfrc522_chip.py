"""The unmodified mfrc522 driver on the simulated MFRC522: what it sees, fault by fault."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest

from firmware_sim.mfrc522_chip import Mfrc522Chip, Reg
from firmware_sim.mifare import CardState, MifareClassic1K, crc_a, has_valid_crc, with_crc
from firmware_sim.spi import FakeGpio, SimulatedReader, simulated_reader, simulated_spi
from protocols.errors import TagError
from protocols.tag import TagRecord, decode_text, encode_tag, split_blocks

UID = bytes.fromhex("deadbeef")
BCC = 0xDE ^ 0xAD ^ 0xBE ^ 0xEF
KEY = [0xFF] * 6
RECORD = TagRecord("IT-000001-1", "L261101-1", "06901234000115",
                   datetime(2026, 11, 1, 6, 30, tzinfo=UTC), high_risk=True)
DATA = encode_tag(RECORD)
TIMER_IRQ, RX_IRQ = 0x01, 0x20
COLL_ERR, CRC_ERR, PARITY_ERR = 0x08, 0x04, 0x02


@pytest.fixture
def card() -> MifareClassic1K:
    card = MifareClassic1K(UID)
    for block, chunk in split_blocks(DATA).items():
        card.write_block(block, chunk)
    return card


@pytest.fixture
def sim(card: MifareClassic1K) -> Iterator[SimulatedReader]:
    with simulated_reader(card) as sim:
        yield sim


@pytest.fixture
def mfrc522(sim: SimulatedReader) -> ModuleType:
    # inside the scope: it binds to the fake spidev and RPi.GPIO
    return importlib.import_module("mfrc522")


@pytest.fixture
def driver(mfrc522: ModuleType) -> Any:
    return mfrc522.MFRC522()


@pytest.fixture
def simple(mfrc522: ModuleType) -> Any:
    return mfrc522.SimpleMFRC522()


def select(driver: Any) -> list[int]:
    """REQA, anticollision and SELECT with the driver; return UID + BCC."""
    assert driver.MFRC522_Request(driver.PICC_REQIDL) == (driver.MI_OK, 16)
    status, serial = driver.MFRC522_Anticoll()
    assert status == driver.MI_OK
    assert driver.MFRC522_SelectTag(serial) == 0x08
    return list(serial)


def authenticated(driver: Any, key: list[int] = KEY, block: int = 11) -> list[int]:
    serial = select(driver)
    assert driver.MFRC522_Auth(driver.PICC_AUTHENT1A, block, key, serial) == driver.MI_OK
    return serial


# ---- CRC_A ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "crc"), [
    (b"\x00\x00", b"\xa0\x1e"),  # ISO/IEC 14443-3 annex B: CRC_A 0x1EA0, low byte first
    (b"\x12\x34", b"\x26\xcf"),  # annex B: CRC_A 0xCF26, low byte first
    (b"\x50\x00", b"\x57\xcd"),  # HLTA as seen in every ISO 14443-A trace
    (b"\x30\x00", b"\x02\xa8"),  # MIFARE READ of block 0
])
def test_crc_a_matches_known_vectors(data: bytes, crc: bytes) -> None:
    assert with_crc(data) == data + crc
    assert crc_a(data) == int.from_bytes(crc, "little")
    assert has_valid_crc(data + crc) and not has_valid_crc(data + bytes((crc[0] ^ 1, crc[1])))


def test_calc_crc_command_computes_crc_a(driver: Any) -> None:
    assert driver.CalulateCRC([0x00, 0x00]) == [0xA0, 0x1E]


def test_calc_crc_keeps_running_and_swallows_the_next_fifo_bytes(driver: Any) -> None:
    # Datasheet: CalcCRC does not stop when the FIFO runs empty; only another command ends it.
    driver.CalulateCRC([0x00, 0x00])
    assert driver.CalulateCRC([0x12, 0x34]) == [0x63, 0x63]  # the bytes went into the old run
    driver.Write_MFRC522(driver.CommandReg, driver.PCD_IDLE)
    assert driver.CalulateCRC([0x12, 0x34]) == [0x26, 0xCF]


# ---- registers and SPI ----------------------------------------------------------------------

def test_init_sets_timer_and_antenna_and_raises_the_reset_pin(driver: Any,
                                                              sim: SimulatedReader) -> None:
    regs = sim.chip.registers
    assert regs[Reg.TModeReg] == 0x8D and regs[Reg.TPrescalerReg] == 0x3E
    assert (regs[Reg.TReloadRegH], regs[Reg.TReloadRegL]) == (0, 30)
    assert regs[Reg.TxASKReg] == 0x40 and regs[Reg.ModeReg] == 0x3D
    assert regs[Reg.TxControlReg] & 0x03 == 0x03 and sim.field.powered
    assert driver.Read_MFRC522(driver.VersionReg) == 0x92
    assert sim.field.cards[0].state is CardState.IDLE
    gpio = sim.bus.gpio
    assert gpio.getmode() == FakeGpio.BOARD and gpio.level(22) == 1
    assert gpio.history == [(25, 1)]  # header pin 22 is GPIO25


def test_spi_address_byte_and_multi_byte_transfers(driver: Any, sim: SimulatedReader) -> None:
    spi = driver.spi
    # Read: each byte after the first clocks out the register the previous byte addressed.
    assert spi.xfer2([0x80 | 0x37 << 1, 0x80 | 0x2A << 1, 0]) == [0, 0x92, 0x8D]
    driver.SetBitMask(driver.FIFOLevelReg, 0x80)
    spi.xfer2([0x09 << 1, 1, 2, 3])  # write: every data byte goes to the same register
    assert sim.chip.fifo == b"\x01\x02\x03"
    assert spi.xfer2([0x80 | 0x0A << 1, 0x80 | 0x09 << 1, 0]) == [0, 3, 1]
    assert sim.chip.fifo == b"\x02\x03"


def test_irq_registers_use_set1_and_set2_semantics(driver: Any, sim: SimulatedReader) -> None:
    driver.Write_MFRC522(driver.CommIrqReg, 0x80 | TIMER_IRQ)  # Set1 = 1: set the marked bit
    assert driver.Read_MFRC522(driver.CommIrqReg) & TIMER_IRQ
    driver.ClearBitMask(driver.CommIrqReg, 0x80)  # writes the set bits with Set1 = 0: clears all
    assert driver.Read_MFRC522(driver.CommIrqReg) & 0x7B == 0  # LoAlert re-arms (empty FIFO)
    driver.CalulateCRC([1])
    # The driver's ClearBitMask(DivIrqReg, 0x04) writes 0 to CRCIRq with Set2 = 0: no effect.
    driver.ClearBitMask(driver.DivIrqReg, 0x04)
    assert driver.Read_MFRC522(driver.DivIrqReg) & 0x04


def test_soft_reset_switches_the_field_off_and_init_brings_it_back(
        driver: Any, sim: SimulatedReader) -> None:
    driver.MFRC522_Reset()
    assert sim.chip.registers[Reg.TxControlReg] == 0x80 and not sim.field.powered
    powered_off = sim.field.cards[0]
    assert powered_off.state is CardState.POWER_OFF
    driver.MFRC522_Init()
    assert sim.field.cards[0].state is CardState.IDLE


# ---- reading and writing --------------------------------------------------------------------

def test_simple_read_returns_uid_number_and_record_text(simple: Any) -> None:
    uid_number, text = simple.read()
    assert uid_number == simple.uid_to_num([*UID, BCC])
    assert uid_number == int.from_bytes(UID + bytes((BCC,)), "big")
    assert decode_text(text) == RECORD


def test_a_lying_card_answers_reqa_only_every_other_poll(simple: Any, sim: SimulatedReader) -> None:
    # After a read the card stays selected; REQA does not reach it but sends it back to IDLE
    # (the "None every other time" of pimylifeup/MFRC522-python#15).
    results = [simple.read_id_no_block() for _ in range(4)]
    assert results == [int.from_bytes(UID + bytes((BCC,)), "big"), None] * 2
    assert str(sim.chip.frames[2]) == "Transceive: > 26 (7 bits) < no answer"


def test_low_level_read_leaves_the_crc_bytes_in_the_fifo(driver: Any, sim: SimulatedReader,
                                                         card: MifareClassic1K) -> None:
    serial = authenticated(driver)
    assert serial == [*UID, BCC]
    assert sim.chip.crypto1_on
    block = driver.MFRC522_Read(8)
    assert bytes(block) == card.read_block(8)
    assert has_valid_crc(bytes(block) + sim.chip.fifo)  # MAX_LEN = 16 of 18 bytes read
    driver.MFRC522_StopCrypto1()
    assert not sim.chip.crypto1_on


def test_mfrc522_write_stores_a_block(driver: Any, card: MifareClassic1K) -> None:
    authenticated(driver)
    driver.MFRC522_Write(9, list(b"0123456789ABCDEF"))
    assert card.read_block(9) == b"0123456789ABCDEF"
    assert bytes(driver.MFRC522_Read(9)) == b"0123456789ABCDEF"


def test_simple_write_stores_space_padded_ascii(simple: Any, card: MifareClassic1K) -> None:
    trailer = card.read_block(11)
    uid_number, text = simple.write("hello")
    assert uid_number == int.from_bytes(UID + bytes((BCC,)), "big") and text == "hello"
    assert b"".join(card.read_block(b) for b in (8, 9, 10)) == b"hello".ljust(48)
    assert card.read_block(11) == trailer


def test_trailer_reads_without_key_a(driver: Any) -> None:
    authenticated(driver)
    assert bytes(driver.MFRC522_Read(11)) == bytes(6) + bytes.fromhex("ff078069") + b"\xff" * 6


def test_manufacturer_block_refuses_writes(driver: Any, card: MifareClassic1K) -> None:
    authenticated(driver, block=3)
    before = card.read_block(0)
    driver.MFRC522_Write(0, [0] * 16)  # the card NAKs the first step
    assert card.read_block(0) == before and card.state is CardState.IDLE


def test_readable_key_b_opens_nothing(driver: Any, sim: SimulatedReader) -> None:
    # Transport access bits make key B readable, and then it cannot be used for access.
    serial = select(driver)
    assert driver.MFRC522_Auth(driver.PICC_AUTHENT1B, 11, KEY, serial) == driver.MI_OK
    assert driver.MFRC522_Read(8) is None
    assert sim.chip.frames[-1].answer == b"\x04" and sim.chip.frames[-1].answer_bits == 4


def test_halted_card_answers_wupa_not_reqa(driver: Any, card: MifareClassic1K) -> None:
    select(driver)
    halt = [driver.PICC_HALT, 0]
    driver.MFRC522_ToCard(driver.PCD_TRANSCEIVE, halt + driver.CalulateCRC(halt))
    assert card.state is CardState.HALT
    assert driver.MFRC522_Request(driver.PICC_REQIDL)[0] == driver.MI_ERR
    assert driver.MFRC522_Request(driver.PICC_REQALL) == (driver.MI_OK, 16)


# ---- faults: what the driver sees -----------------------------------------------------------

def test_no_card_times_out_on_the_timer(driver: Any, simple: Any, sim: SimulatedReader,
                                        card: MifareClassic1K) -> None:
    sim.field.remove(card)
    start = sim.chip.now_ns
    assert driver.MFRC522_Request(driver.PICC_REQIDL) == (driver.MI_ERR, 0)
    irq = driver.Read_MFRC522(driver.CommIrqReg)
    assert irq & TIMER_IRQ and not irq & RX_IRQ
    assert sim.chip.now_ns - start > 15_000_000  # the driver polled on past TReload = 15.5 ms
    assert simple.read_no_block() == (None, None)


def test_wrong_key_fails_authentication_and_reads(driver: Any, simple: Any,
                                                   sim: SimulatedReader, card: MifareClassic1K,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    card.set_keys(2, key_a=bytes.fromhex("a0a1a2a3a4a5"))
    serial = select(driver)
    with caplog.at_level(logging.ERROR, logger="mfrc522Logger"):
        assert driver.MFRC522_Auth(driver.PICC_AUTHENT1A, 11, KEY, serial) == driver.MI_ERR
    assert "AUTH ERROR!!" in caplog.text and not sim.chip.crypto1_on
    assert card.state is CardState.IDLE
    assert driver.MFRC522_Read(8) is None  # the card dropped to IDLE: no answer
    assert simple.read_no_block() == (int.from_bytes(UID + bytes((BCC,)), "big"), "")


def test_two_cards_collide_in_anticollision(driver: Any, simple: Any,
                                            sim: SimulatedReader) -> None:
    sim.present_tag("dead0eef")  # differs from deadbeef first at bit 21 (byte 2, bit 4)
    assert driver.MFRC522_Request(driver.PICC_REQIDL) == (driver.MI_OK, 16)  # same ATQA
    assert driver.MFRC522_Anticoll() == (driver.MI_ERR, [])  # the merged bytes stay unread
    assert driver.Read_MFRC522(driver.ErrorReg) & COLL_ERR
    assert driver.Read_MFRC522(driver.CollReg) & 0x3F == 21  # CollPosNotValid clear
    merged = sim.chip.fifo  # collided bits read as 1: here the UID bytes equal deadbeef's...
    assert merged[4] != merged[0] ^ merged[1] ^ merged[2] ^ merged[3]  # ...but the BCC fails
    driver.MFRC522_Request(driver.PICC_REQIDL)  # both READY cards drop back to IDLE
    assert simple.read_no_block() == (None, None)  # looks exactly like an empty field


@pytest.mark.parametrize(("frames", "text_length"), [(4, 0), (5, 16), (6, 32)])
def test_card_removed_mid_read(simple: Any, sim: SimulatedReader, frames: int,
                               text_length: int) -> None:
    # REQA, anticollision, SELECT and MFAuthent are frames 1..4; then READs of 8, 9, 10.
    sim.chip.faults.remove_after_frames = frames
    uid_number, text = simple.read_no_block()
    assert uid_number == int.from_bytes(UID + bytes((BCC,)), "big")
    assert len(text) == text_length  # SimpleMFRC522 silently skips the blocks it missed
    if text:
        with pytest.raises(TagError, match="block read"):
            decode_text(text)
    assert not sim.field.cards


def test_crc_error_in_a_read_answer_is_invisible_to_the_driver(driver: Any,
                                                               sim: SimulatedReader) -> None:
    authenticated(driver)
    sim.chip.faults.crc_errors = 1
    block = driver.MFRC522_Read(8)
    assert bytes(block) == DATA[:16]  # returned as good data
    assert not has_valid_crc(bytes(block) + sim.chip.fifo)  # only the leftover CRC tells
    assert not driver.Read_MFRC522(driver.ErrorReg) & CRC_ERR  # RxCRCEn is off


def test_chip_crc_check_flags_crcerr_which_the_driver_ignores(driver: Any,
                                                              sim: SimulatedReader) -> None:
    authenticated(driver)
    driver.SetBitMask(driver.RxModeReg, 0x80)  # RxCRCEn, which the driver never sets
    sim.chip.faults.crc_errors = 1
    assert bytes(driver.MFRC522_Read(8)) == DATA[:16]  # ErrorReg & 0x1B leaves CRCErr out
    assert driver.Read_MFRC522(driver.ErrorReg) & CRC_ERR


def test_bit_flip_in_a_read_answer_is_a_parity_error(driver: Any, sim: SimulatedReader,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    authenticated(driver)
    sim.chip.faults.bit_flips = 1
    with caplog.at_level(logging.ERROR, logger="mfrc522Logger"):
        assert driver.MFRC522_Read(8) is None
    assert "Error while reading!" in caplog.text
    assert driver.Read_MFRC522(driver.ErrorReg) & PARITY_ERR


def test_bit_flip_keeping_parity_returns_corrupt_data(driver: Any, sim: SimulatedReader) -> None:
    authenticated(driver)
    sim.chip.faults.bit_flips, sim.chip.faults.bit_flip_keeps_parity = 1, True
    block = bytes(driver.MFRC522_Read(8))
    assert block == bytes((DATA[0] ^ 1,)) + DATA[1:16]  # "CL" became "BL", no error raised
    assert not has_valid_crc(block + sim.chip.fifo)


def test_bit_flip_in_the_uid_fails_the_bcc_check(driver: Any, sim: SimulatedReader) -> None:
    driver.MFRC522_Request(driver.PICC_REQIDL)
    sim.chip.faults.bit_flips, sim.chip.faults.bit_flip_keeps_parity = 1, True
    status, serial = driver.MFRC522_Anticoll()
    assert status == driver.MI_ERR and serial == [UID[0] ^ 1, *UID[1:], BCC]


def test_bit_flip_in_the_atqa_fails_the_request(driver: Any, sim: SimulatedReader) -> None:
    sim.chip.faults.bit_flips = 1
    assert driver.MFRC522_Request(driver.PICC_REQIDL)[0] == driver.MI_ERR
    assert driver.Read_MFRC522(driver.ErrorReg) & PARITY_ERR


def test_bit_flip_in_a_write_ack_stops_the_write(driver: Any, sim: SimulatedReader,
                                                 card: MifareClassic1K) -> None:
    authenticated(driver)
    sim.chip.faults.bit_flips = 1  # a 4-bit ACK has no parity bit: 0xA arrives as 0xB
    driver.MFRC522_Write(8, [0] * 16)  # returns nothing; the data step is never sent
    assert card.read_block(8) == DATA[:16]


def test_lost_frame_times_out_and_leaves_the_card_alone(driver: Any, sim: SimulatedReader,
                                                        card: MifareClassic1K) -> None:
    sim.chip.faults.no_answer = 1
    assert driver.MFRC522_Request(driver.PICC_REQIDL) == (driver.MI_ERR, 0)
    assert card.state is CardState.IDLE
    assert driver.MFRC522_Request(driver.PICC_REQIDL) == (driver.MI_OK, 16)
    assert [str(f) for f in sim.chip.frames] == [
        "Transceive: > 26 (7 bits) < no answer [fault: frame lost]",
        "Transceive: > 26 (7 bits) < 04 00",
    ]


# ---- the fake modules -----------------------------------------------------------------------

def test_simulated_spi_leaves_sys_modules_as_it_found_them() -> None:
    names = ("spidev", "RPi", "RPi.GPIO", "mfrc522", "mfrc522.MFRC522")
    before = {name: sys.modules.get(name) for name in names}
    handlers = list(logging.getLogger("mfrc522Logger").handlers)
    with simulated_spi({(0, 0): Mfrc522Chip()}) as bus:
        import mfrc522

        mfrc522.MFRC522()
        assert sys.modules["spidev"] is bus.spidev and sys.modules["RPi.GPIO"] is bus.rpi_gpio
        with simulated_spi({}) as inner:
            assert "mfrc522" not in sys.modules and sys.modules["spidev"] is inner.spidev
        assert sys.modules["mfrc522"] is mfrc522
    assert {name: sys.modules.get(name) for name in names} == before
    assert logging.getLogger("mfrc522Logger").handlers == handlers


def test_spidev_fake_behaves_like_spidev() -> None:
    with simulated_spi({(0, 1): Mfrc522Chip()}):
        import spidev

        spi = spidev.SpiDev()
        with pytest.raises(FileNotFoundError):
            spi.open(0, 0)
        spi.open(0, 1)
        with pytest.raises(ValueError, match=r"0\.\.255"):
            spi.xfer2([0x80, 256])
        spi.close()
        with pytest.raises(OSError, match="Bad file descriptor"):
            spi.xfer2([0x80, 0])


def test_gpio_fake_enforces_rpi_gpio_rules() -> None:
    gpio = FakeGpio()
    with pytest.raises(RuntimeError, match="setmode"):
        gpio.setup(22, gpio.OUT)
    gpio.setmode(gpio.BCM)
    with pytest.raises(ValueError, match="different mode"):
        gpio.setmode(gpio.BOARD)
    gpio.setup(25, gpio.IN, pull_up_down=gpio.PUD_UP)
    assert gpio.input(25) == 1
    with pytest.raises(RuntimeError, match="OUTPUT"):
        gpio.output(25, 0)
    gpio.cleanup()
    assert gpio.getmode() is None and not gpio.pins
