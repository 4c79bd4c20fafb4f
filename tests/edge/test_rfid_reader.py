"""Mfrc522Reader on the simulated MFRC522: provisioning, reads, and every fault as a ReaderFault."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.errors import ReaderFault
from edge.grader import RuleGrader
from edge.outbox import Outbox
from edge.ports import Light, TagRead
from edge.recorder import Recorder
from edge.rfid import Mfrc522Reader
from edge.station import Station
from firmware_sim.clock import VirtualClock
from firmware_sim.mfrc522_chip import Mfrc522Chip
from firmware_sim.mifare import CardState, MifareClassic1K
from firmware_sim.spi import FakeGpio, SimulatedReader, simulated_reader, simulated_spi
from protocols.tag import TagRecord, decode_tag, encode_tag, split_blocks

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
RECORD_UID = "a1b2c3d4"
RECORD = TagRecord("IT-000001-1", "L261101-1", "06901234000115",
                   datetime(2026, 11, 1, 6, 30, tzinfo=UTC), high_risk=True)
# Frames of one read: WUPA, anticollision, SELECT, MFAuthent, READ 8, 9, 10, HALT.
READ_FRAMES = 8


@pytest.fixture
def sim() -> Iterator[SimulatedReader]:
    with simulated_reader() as sim:
        yield sim


@pytest.fixture
def reader(sim: SimulatedReader) -> Iterator[Mfrc522Reader]:
    reader = Mfrc522Reader()
    yield reader
    reader.close()


@pytest.fixture
def tag(sim: SimulatedReader, reader: Mfrc522Reader) -> MifareClassic1K:
    """A blank tag laid on the pad and provisioned with RECORD."""
    card = sim.present_tag(RECORD_UID)
    assert reader.write_record(RECORD) == RECORD_UID
    sim.chip.frames.clear()
    return card


def test_provisioned_tag_reads_back_as_its_record(reader: Mfrc522Reader,
                                                  tag: MifareClassic1K) -> None:
    assert b"".join(tag.read_block(b) for b in (8, 9, 10)) == encode_tag(RECORD)
    read = reader.read()
    assert read == TagRead(RECORD_UID, encode_tag(RECORD))
    assert decode_tag(read.data) == RECORD
    assert tag.state is CardState.HALT


def test_a_lying_tag_is_seen_on_every_poll(reader: Mfrc522Reader, tag: MifareClassic1K) -> None:
    reads = [reader.read() for _ in range(3)]
    assert reads[0] is not None and reads == [reads[0]] * 3


def test_empty_pad_reads_none_until_a_tag_arrives(reader: Mfrc522Reader,
                                                  sim: SimulatedReader) -> None:
    assert reader.read() is None
    sim.present_tag("0badcafe", encode_tag(RECORD))
    read = reader.read()
    assert read is not None and read.uid == "0badcafe" and decode_tag(read.data) == RECORD
    sim.field.remove(sim.field.cards[0])
    assert reader.read() is None


def test_two_tags_are_a_fault_on_every_poll(reader: Mfrc522Reader, sim: SimulatedReader) -> None:
    sim.present_tag("deadbeef", encode_tag(RECORD))
    sim.present_tag("dead0eef", encode_tag(RECORD))
    for _ in range(2):
        with pytest.raises(ReaderFault, match="two or more tags in the field"):
            reader.read()


def test_wrong_key_is_a_fault(reader: Mfrc522Reader, tag: MifareClassic1K) -> None:
    tag.set_keys(2, key_a=bytes.fromhex("a0a1a2a3a4a5"))
    with pytest.raises(ReaderFault, match="wrong key or foreign tag"):
        reader.read()


def test_reader_with_a_site_key_refuses_default_tags(sim: SimulatedReader) -> None:
    sim.present_tag(RECORD_UID, encode_tag(RECORD))
    reader = Mfrc522Reader(key=bytes.fromhex("a0a1a2a3a4a5"))
    with pytest.raises(ReaderFault, match="wrong key"):
        reader.read()
    reader.close()


@pytest.mark.parametrize(("frames", "message"), [
    (1, "anticollision failed: no answer: the tag left the field"),
    (2, "SELECT failed: no answer"),
    (3, "left the field during authentication"),
    (4, "block 8 unreadable: no answer"),
    (6, "block 10 unreadable: no answer"),
])
def test_tag_removed_mid_read_is_a_fault(reader: Mfrc522Reader, tag: MifareClassic1K,
                                         sim: SimulatedReader, frames: int, message: str) -> None:
    sim.chip.faults.remove_after_frames = frames
    with pytest.raises(ReaderFault, match=message):
        reader.read()
    assert reader.read() is None


def test_crc_error_in_a_block_is_caught(reader: Mfrc522Reader, tag: MifareClassic1K,
                                        sim: SimulatedReader) -> None:
    # The driver never checks the SAK's CRC either: the first corrupted CRC goes unnoticed.
    sim.chip.faults.crc_errors = 2  # the SAK, then block 8
    with pytest.raises(ReaderFault, match="block 8 failed its CRC check"):
        reader.read()
    assert reader.read() is not None


@pytest.mark.parametrize(("keeps_parity", "message"), [
    (False, "block 9 unreadable: parity error"),
    (True, "block 9 failed its CRC check"),
])
def test_bit_flip_in_a_block_is_caught(reader: Mfrc522Reader, tag: MifareClassic1K,
                                       sim: SimulatedReader, keeps_parity: bool,
                                       message: str) -> None:
    faults = sim.chip.faults
    faults.corrupt_after_frames, faults.bit_flips, faults.bit_flip_index = 5, 1, 37
    faults.bit_flip_keeps_parity = keeps_parity
    with pytest.raises(ReaderFault, match=message):
        reader.read()


def test_garbled_wake_up_answer_is_a_fault(reader: Mfrc522Reader, tag: MifareClassic1K,
                                           sim: SimulatedReader) -> None:
    sim.chip.faults.bit_flips = 1
    with pytest.raises(ReaderFault, match="WUPA: parity error"):
        reader.read()


def test_write_record_without_a_tag_gives_up(reader: Mfrc522Reader,
                                             sim: SimulatedReader) -> None:
    with pytest.raises(ReaderFault, match="no tag on the pad after 3 attempts"):
        reader.write_record(RECORD, attempts=3)
    assert len(sim.chip.frames) == 3


def test_write_record_on_a_read_only_sector_is_refused(reader: Mfrc522Reader,
                                                       sim: SimulatedReader) -> None:
    card = sim.present_tag(RECORD_UID)
    card.set_keys(2, access=bytes.fromhex("8f078769"))  # data blocks 010: read-only
    with pytest.raises(ReaderFault, match="refused to write block 8"):
        reader.write_record(RECORD)
    assert card.read_block(8) == bytes(16)


def test_tag_removed_during_provisioning_is_a_fault(reader: Mfrc522Reader,
                                                    sim: SimulatedReader) -> None:
    card = sim.present_tag(RECORD_UID)
    sim.chip.faults.remove_after_frames = 6  # after the first WRITE's two steps
    with pytest.raises(ReaderFault, match="left the field while block 8 was written"):
        reader.write_record(RECORD)
    assert card.read_block(8) == split_blocks(encode_tag(RECORD))[8]


def test_reset_pin_is_driven_high_and_only_it_is_released(sim: SimulatedReader) -> None:
    gpio = sim.bus.gpio
    gpio.setmode(FakeGpio.BOARD)
    gpio.setup(11, FakeGpio.OUT)  # another user of RPi.GPIO in the process
    reader = Mfrc522Reader(pin_rst=22)
    assert gpio.level(22) == 1
    reader.close()
    reader.close()
    assert gpio.level(22) is None and gpio.level(11) == 0


def test_missing_spi_device_is_a_fault() -> None:
    with simulated_spi({}), pytest.raises(ReaderFault, match=r"cannot open SPI 0\.0"):
        Mfrc522Reader()


def test_silent_chip_is_a_fault() -> None:
    with simulated_spi({(0, 0): Mfrc522Chip(version=0x00)}) as bus, \
            pytest.raises(ReaderFault, match=r"no MFRC522 answers on SPI 0\.0"):
        Mfrc522Reader()
    assert not bus.gpio.pins


def test_driver_modules_stay_inside_the_scope() -> None:
    names = ("spidev", "RPi", "RPi.GPIO", "mfrc522", "mfrc522.MFRC522")
    before = {name: sys.modules.get(name) for name in names}
    with simulated_reader(MifareClassic1K(bytes.fromhex(RECORD_UID))) as sim:
        reader = Mfrc522Reader()
        assert reader.read() is not None
        reader.close()
        assert sys.modules["spidev"] is sim.bus.spidev and "mfrc522" in sys.modules
    assert {name: sys.modules.get(name) for name in names} == before


def test_importing_the_adapter_needs_no_pi() -> None:
    # A fresh interpreter: importing edge.rfid loads no driver, and building a reader off a
    # Pi fails with a ReaderFault that says why.
    code = (
        "import sys, edge.rfid as rfid\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('mfrc522', 'RPi', 'spidev')]\n"
        "try:\n    rfid.Mfrc522Reader()\n"
        "except rfid.ReaderFault as err:\n    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=True)
    assert "cannot load the MFRC522 driver" in done.stdout


class _Lights:
    def __init__(self) -> None:
        self.shown: list[Light] = []

    def show(self, light: Light) -> None:
        self.shown.append(light)


class _Probe:
    """A core probe reading a steady 2 °C (the probe path has its own tests)."""

    probe_id = "st-1-core"

    def read_celsius(self) -> float:
        return 2.0


def test_station_scans_a_lying_tag_once(reader: Mfrc522Reader, sim: SimulatedReader,
                                        tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    recorder = Recorder("gw-1", "site-a", outbox.next_boot(), outbox, VirtualClock(NOW))
    lights = _Lights()
    station = Station("st-1", reader, _Probe(), lights, RuleGrader(), recorder)
    card = sim.present_tag(RECORD_UID, encode_tag(RECORD))
    outcomes = [station.poll() for _ in range(4)]
    assert outcomes[0] is not None and outcomes[0].scan is not None
    assert outcomes[0].scan.tag_uid == RECORD_UID and outcomes[1:] == [None] * 3
    sim.field.remove(card)
    assert station.poll() is None
    sim.field.present(card)
    assert station.poll() is not None
    assert lights.shown == [Light.GREEN, Light.GREEN]
    outbox.close()
