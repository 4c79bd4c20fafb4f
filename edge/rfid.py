"""The RFID pad of a real station: an MFRC522 on SPI, through the ``mfrc522`` driver.

The only module that imports ``mfrc522``, and only in the constructor, so importing this one
needs neither a Pi nor the driver. Each ``read`` is one non-blocking attempt: WUPA,
anticollision, SELECT, authentication of sector 2 with key A, READ of blocks 8..10, then HALT
and StopCrypto1.

Why WUPA and HALT rather than the REQA of ``SimpleMFRC522``: a tag left selected after a read
ignores the next REQA and drops back to IDLE, so REQA reports a lying tag only every other
poll (pimylifeup/MFRC522-python#15), which the station would count as a new presentation each
time. A halted tag answers WUPA, so every poll sees a lying tag the same way.

What the driver leaves unchecked is checked here: it keeps 16 of the 18 bytes of a READ answer
and never verifies the CRC_A, it returns the same failure for no tag and for a collision, and
it does not report whether a WRITE was acknowledged (hence the read-back in ``write_record``).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from edge.errors import ReaderFault
from edge.ports import TagRead
from protocols.tag import TAG_BLOCKS, TagRecord, encode_tag, split_blocks

__all__ = ["DEFAULT_KEY", "Mfrc522Reader"]

logger = logging.getLogger(__name__)

DEFAULT_KEY = b"\xff" * 6
_TRAILER_BLOCK = 11  # sector 2's trailer: its key A opens blocks 8..10
_DRIVER_LOGGER = "mfrc522Logger"
# Register bits the driver knows only as numbers.
_RX_IRQ = 0x20  # ComIrqReg
_BUFFER_OVFL, _COLL_ERR, _PARITY_ERR, _PROTOCOL_ERR = 0x10, 0x08, 0x02, 0x01  # ErrorReg
_MF_CRYPTO1_ON = 0x08  # Status2Reg
_SAK_MIFARE_CLASSIC = 0x08  # SAK bit 3: MIFARE Classic protocol
_NO_ANSWER = "no answer: the tag left the field"
_COLLISION = "two or more tags in the field: lay one tag at a time on the pad"


class Mfrc522Reader:
    """A ``TagReader`` on an MFRC522: the coldloop record in blocks 8..10 of a MIFARE Classic.

    ``pin_rst`` is numbered the way RPi.GPIO is already set up in this process, BOARD if it is
    not (the driver's rule): 22 is header pin 22 (GPIO25) under BOARD but GPIO22 under BCM.
    """

    def __init__(self, bus: int = 0, device: int = 0, pin_rst: int = 22,
                 key: bytes = DEFAULT_KEY) -> None:
        if len(key) != 6:
            raise ValueError(f"a MIFARE key has 6 bytes, got {len(key)}")
        self._key = list(key)
        self._pin_rst = pin_rst
        self._where = f"SPI {bus}.{device}"
        try:
            from mfrc522 import MFRC522
            from RPi import GPIO
        except ImportError as err:
            raise ReaderFault(
                f"the MFRC522 driver is missing ({err}): install coldloop[edge]") from err
        except RuntimeError as err:  # RPi.GPIO refuses to load anywhere but on a Raspberry Pi
            raise ReaderFault(f"cannot load the MFRC522 driver: {err}") from err
        driver_logger = logging.getLogger(_DRIVER_LOGGER)
        handlers = list(driver_logger.handlers)
        try:
            self._drv: Any = MFRC522(bus=bus, device=device, pin_rst=pin_rst)
        except OSError as err:
            raise ReaderFault(f"cannot open {self._where}: {err}; enable SPI (raspi-config) "
                              "and check the reader's wiring") from err
        finally:
            # The driver adds a StreamHandler per instance, so each line would print once per
            # reader plus once through the application's handlers; its records still propagate.
            for handler in list(driver_logger.handlers):
                if handler not in handlers:
                    driver_logger.removeHandler(handler)
        self._gpio: Any = GPIO
        self._closed = False
        version = self._drv.Read_MFRC522(self._drv.VersionReg)
        if version in (0x00, 0xFF):
            self.close()
            raise ReaderFault(f"no MFRC522 answers on {self._where} (VersionReg 0x{version:02x}):"
                              " check the wiring and the 3.3 V supply")
        logger.info("MFRC522 (VersionReg 0x%02x) ready on %s", version, self._where)

    def read(self) -> TagRead | None:
        """Return the tag on the pad, or None when there is none; raise ReaderFault on error."""
        try:
            if not self._wake():
                return None
            try:
                uid, serial = self._select()
                self._authenticate(uid, serial)
                data = b"".join(self._read_block(uid, block) for block in TAG_BLOCKS)
            finally:
                self._release()
        except OSError as err:
            raise ReaderFault(f"SPI error on {self._where}: {err}") from err
        return TagRead(uid, data)

    def write_record(self, record: TagRecord, *, attempts: int = 50) -> str:
        """Write ``record`` to the next tag laid on the pad, verify it, return the UID (hex)."""
        # Each of the ``attempts`` polls for a tag costs a timeout, a few tens of ms on a Pi.
        blocks = split_blocks(encode_tag(record))
        try:
            for _ in range(attempts):
                if self._wake():
                    break
            else:
                raise ReaderFault(f"no tag on the pad after {attempts} attempts")
            try:
                uid, serial = self._select()
                self._authenticate(uid, serial)
                for block, chunk in blocks.items():
                    self._write_block(uid, block, chunk)
            finally:
                self._release()
        except OSError as err:
            raise ReaderFault(f"SPI error on {self._where}: {err}") from err
        logger.info("wrote record %s to tag %s", record.item_id, uid)
        return uid

    def close(self) -> None:
        """Close the SPI device and release the reset pin."""
        if self._closed:
            return
        self._closed = True
        self._drv.spi.close()
        # Not the driver's Close_MFRC522: its GPIO.cleanup() releases every pin of the process,
        # the station's lights included when gpiozero drives them through RPi.GPIO.
        self._gpio.cleanup(self._pin_rst)

    # ---- steps of a read --------------------------------------------------------------------

    def _wake(self) -> bool:
        """Send WUPA; True if a tag answered, False if none did."""
        drv = self._drv
        status, _bits = drv.MFRC522_Request(drv.PICC_REQALL)
        if status == drv.MI_OK:
            return True
        problem = self._rf_problem()
        if problem == _NO_ANSWER:
            return False
        self._release()
        if problem == _COLLISION:
            raise ReaderFault(_COLLISION)
        raise ReaderFault(f"unreadable answer to WUPA: {problem}")

    def _select(self) -> tuple[str, list[int]]:
        """Run anticollision and SELECT; return the UID (hex) and UID+BCC for the driver."""
        drv = self._drv
        status, serial = drv.MFRC522_Anticoll()
        if status != drv.MI_OK:
            problem = self._rf_problem()
            if problem == _COLLISION:
                raise ReaderFault(_COLLISION)
            if len(serial) == 5:
                raise ReaderFault(f"UID {bytes(serial[:4]).hex()} failed its check byte (BCC): "
                                  "RF error, present the tag again")
            raise ReaderFault(f"anticollision failed: {problem}")
        uid = bytes(serial[:4]).hex()
        sak = drv.MFRC522_SelectTag(serial)
        if not sak & _SAK_MIFARE_CLASSIC:
            if sak:
                raise ReaderFault(f"tag {uid} is not a MIFARE Classic (SAK 0x{sak:02x})")
            raise ReaderFault(f"tag {uid}: SELECT failed: {self._rf_problem()}")
        return uid, serial

    def _authenticate(self, uid: str, serial: list[int]) -> None:
        drv = self._drv
        status = drv.MFRC522_Auth(drv.PICC_AUTHENT1A, _TRAILER_BLOCK, self._key, serial)
        if status == drv.MI_OK and drv.Read_MFRC522(drv.Status2Reg) & _MF_CRYPTO1_ON:
            return
        if self._still_there():
            raise ReaderFault(f"tag {uid}: sector 2 refused the key: wrong key or foreign tag")
        raise ReaderFault(f"tag {uid} left the field during authentication")

    def _still_there(self) -> bool:
        """Return whether a tag still answers WUPA after it fell silent."""
        # A refusing tag and a vanished one look alike, but the first has dropped to IDLE.
        # WUPA must go out in clear: under Crypto1 an IDLE tag hears only noise.
        drv = self._drv
        drv.MFRC522_StopCrypto1()
        return bool(drv.MFRC522_Request(drv.PICC_REQALL)[0] == drv.MI_OK)

    def _read_block(self, uid: str, block: int) -> bytes:
        drv = self._drv
        data = drv.MFRC522_Read(block)
        if data is None:
            raise ReaderFault(f"tag {uid}: block {block} unreadable: {self._rf_problem()}")
        # The driver keeps MAX_LEN = 16 of the 18 bytes received: the CRC_A is still in the FIFO.
        level = drv.Read_MFRC522(drv.FIFOLevelReg)
        crc = [drv.Read_MFRC522(drv.FIFODataReg) for _ in range(level)]
        expected = drv.CalulateCRC(data)
        # CalcCRC runs until another command starts and would swallow the next bytes written
        # to the FIFO (the driver's own CalulateCRC starts with a flush, not with Idle).
        drv.Write_MFRC522(drv.CommandReg, drv.PCD_IDLE)
        if crc != expected:
            raise ReaderFault(f"tag {uid}: block {block} failed its CRC check (RF error): "
                              "present the tag again")
        return bytes(data)

    def _write_block(self, uid: str, block: int, data: bytes) -> None:
        """Write a block and read it back: the driver does not say whether the tag ACKed."""
        drv = self._drv
        # The driver formats a debug line with backData[0] even when no answer came back, so
        # a silent tag raises IndexError; the read-back below then fails and says why.
        with contextlib.suppress(IndexError):
            drv.MFRC522_Write(block, list(data))
        try:
            written = self._read_block(uid, block)
        except ReaderFault as err:
            if self._still_there():
                raise ReaderFault(f"tag {uid} refused to write block {block}: its access bits "
                                  "forbid writing with key A") from err
            raise ReaderFault(f"tag {uid} left the field while block {block} was written") \
                from err
        if written != data:
            raise ReaderFault(f"tag {uid}: block {block} reads back different from what was "
                              "written")

    def _release(self) -> None:
        """HALT the tag (inside its Crypto1 session if any) and stop Crypto1."""
        drv = self._drv
        # A halted tag never answers, so this exchange always ends on the chip's timer.
        frame = [drv.PICC_HALT, 0x00]
        drv.MFRC522_ToCard(drv.PCD_TRANSCEIVE, frame + drv.CalulateCRC(frame))
        drv.MFRC522_StopCrypto1()

    def _rf_problem(self) -> str:
        """Say from the chip's registers why the last exchange failed."""
        drv = self._drv
        errors = drv.Read_MFRC522(drv.ErrorReg)
        if errors & _COLL_ERR:
            return _COLLISION
        if errors & _PARITY_ERR:
            return "parity error (RF interference)"
        if errors & _PROTOCOL_ERR:
            return "protocol error"
        if errors & _BUFFER_OVFL:
            return "FIFO overflow"
        if not drv.Read_MFRC522(drv.CommIrqReg) & _RX_IRQ:
            return _NO_ANSWER
        if drv.Read_MFRC522(drv.ControlReg) & 0x07 == 4:
            return "the tag refused (NAK)"
        return "unexpected answer"
