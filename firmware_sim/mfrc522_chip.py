"""An NXP MFRC522 reader IC at register level, with an RF field of MIFARE cards before its antenna.

Faithful enough for the unmodified ``mfrc522`` driver over ``firmware_sim.spi``: SPI address
bytes, the IRQ and error bits it polls (``ComIrqReg`` Set1 and ``DivIrqReg`` Set2 semantics
included), the FIFO, CalcCRC with CRC_A, Transceive with TxLastBits/RxLastBits, MFAuthent with
``Status2Reg.MFCrypto1On``, the timer and SoftReset. An exchange with the cards completes at
once when StartSend (or MFAuthent) is written; only a missing answer takes time. Time is
virtual: it moves when the SPI bus says a transfer took its bit time, so the timer expires
deterministically while the driver polls (TimerIRq after ~15 ms, about 970 reads at 1 MHz,
well inside the driver's 2000-read loop).

With the driver's settings (``RxModeReg.RxCRCEn`` = 0) the chip does not check the CRC of an
answer, and the driver masks ``ErrorReg`` with 0x1B, which leaves out CRCErr (0x04): a CRC
error is visible only to code that checks the two CRC bytes the driver leaves in the FIFO.
"""

from __future__ import annotations

from collections.abc import Sequence

from firmware_sim.mfrc522_regs import (
    BUFFER_OVFL,
    CLOCK_HZ,
    COLL_ERR,
    COLL_POS_NOT_VALID,
    CRC_ERR,
    CRC_IRQ,
    CRC_PRESETS,
    ERR_IRQ,
    FIFO_SIZE,
    HI_ALERT_IRQ,
    IDLE_IRQ,
    LO_ALERT_IRQ,
    MF_CRYPTO1_ON,
    PARITY_ERR,
    POWER_DOWN,
    PROTOCOL_ERR,
    RCV_OFF,
    RESET_VALUES,
    RX_CRC_EN,
    RX_ERRORS,
    RX_IRQ,
    START_SEND,
    T_AUTO,
    T_AUTO_RESTART,
    TIMER_IRQ,
    TX_CRC_EN,
    TX_IRQ,
    VALUES_AFTER_COLL,
    WR_ERR,
    Command,
    Reg,
)
from firmware_sim.mifare import MifareClassic1K, crc_a, has_valid_crc
from firmware_sim.rf_field import ChipFaults, Exchange, Reception, RfField

__all__ = ["ChipFaults", "Command", "Exchange", "Mfrc522Chip", "Reg", "RfField"]


class Mfrc522Chip:
    """An MFRC522 as the SPI host sees it: registers, FIFO, commands and the cards beyond."""

    def __init__(self, field: RfField | None = None, *, version: int = 0x92) -> None:
        self.field = field if field is not None else RfField()
        self.faults = ChipFaults()
        self.frames: list[Exchange] = []
        self.version = version
        self._now_ns = 0
        self._regs = [0] * 64
        self._fifo = bytearray()
        self._cmd_bits = RCV_OFF
        self._command: int = Command.Idle
        self._awaiting_start = False
        self._modem_state = 0
        self._crc = 0xFFFF
        self._crc_ready = True
        self._crypto_card: MifareClassic1K | None = None
        self._timer_start: int | None = None
        self._timer_period = 1
        self._timer_last = 0
        self._reset()

    # ---- inspection -------------------------------------------------------------------------

    @property
    def now_ns(self) -> int:
        """Virtual time since power-up."""
        return self._now_ns

    @property
    def registers(self) -> dict[Reg, int]:
        """Every named register's value, read without side effects (the FIFO is not popped)."""
        return {reg: self._read(reg, pop=False) for reg in Reg}

    @property
    def fifo(self) -> bytes:
        """The FIFO's content."""
        return bytes(self._fifo)

    @property
    def command(self) -> Command:
        """The command running now."""
        return Command(self._command)

    @property
    def crypto1_on(self) -> bool:
        """Whether ``Status2Reg.MFCrypto1On`` is set."""
        return bool(self._regs[Reg.Status2Reg] & MF_CRYPTO1_ON)

    def advance(self, ns: int) -> None:
        """Let ``ns`` nanoseconds of virtual time pass (the timer may expire)."""
        self._now_ns += ns
        self._update_timer()

    # ---- SPI --------------------------------------------------------------------------------

    def spi_transfer(self, mosi: Sequence[int]) -> list[int]:
        """Clock bytes through SPI; address byte: bit 7 set to read, bits 6..1 the register."""
        if not mosi:
            return []
        address = (mosi[0] >> 1) & 0x3F
        miso = [0]
        if mosi[0] & 0x80:
            # Each further byte clocks out the register addressed by the byte before it.
            for byte in mosi[1:]:
                miso.append(self.read_register(address))
                address = (byte >> 1) & 0x3F
        else:
            for byte in mosi[1:]:
                self.write_register(address, byte)
                miso.append(0)
        return miso

    def read_register(self, address: int) -> int:
        """Read a register as the host does (reading FIFODataReg pops a byte)."""
        return self._read(address, pop=True)

    def write_register(self, address: int, value: int) -> None:
        """Write a register as the host does, with that register's side effects."""
        regs = self._regs
        if address == Reg.CommandReg:
            self._start_command(value)
        elif address == Reg.ComIrqReg:
            self._set_or_clear(Reg.ComIrqReg, value, 0x7F)
        elif address == Reg.DivIrqReg:
            self._set_or_clear(Reg.DivIrqReg, value, 0x14)
        elif address == Reg.FIFODataReg:
            self._fifo_write(value)
        elif address == Reg.FIFOLevelReg:
            if value & 0x80:  # FlushBuffer
                self._fifo.clear()
                regs[Reg.ErrorReg] &= ~BUFFER_OVFL
                self._update_alerts()
        elif address == Reg.Status2Reg:
            # MFCrypto1On can be cleared by the host but only MFAuthent sets it.
            regs[address] = (value & 0xC0) | (regs[address] & value & MF_CRYPTO1_ON)
            if not regs[address] & MF_CRYPTO1_ON:
                self._crypto_card = None
        elif address == Reg.ControlReg:
            if value & 0x80:  # TStopNow
                self._stop_timer()
            elif value & 0x40:  # TStartNow
                self._start_timer()
            regs[address] = (value & 0x38) | (regs[address] & 0x07)
        elif address == Reg.BitFramingReg:
            regs[address] = value
            if value & START_SEND and self._command == Command.Transceive and \
                    self._awaiting_start:
                self._transceive()
        elif address == Reg.CollReg:
            regs[address] = (value & VALUES_AFTER_COLL) | (regs[address] & 0x3F)
        elif address == Reg.TxControlReg:
            regs[address] = value
            self._update_rf()
        elif address not in (Reg.ErrorReg, Reg.Status1Reg, Reg.CRCResultRegH, Reg.CRCResultRegL,
                             Reg.TCounterValRegH, Reg.TCounterValRegL, Reg.VersionReg):
            regs[address] = value

    # ---- registers --------------------------------------------------------------------------

    def _read(self, address: int, *, pop: bool) -> int:
        regs = self._regs
        if address == Reg.FIFODataReg:
            if not self._fifo:
                return 0
            if not pop:
                return self._fifo[0]
            value = self._fifo.pop(0)
            self._update_alerts()
            return value
        if address == Reg.FIFOLevelReg:
            return len(self._fifo)
        if address == Reg.CommandReg:
            return self._cmd_bits | self._command
        if address == Reg.Status1Reg:
            irq = (regs[Reg.ComIrqReg] & regs[Reg.ComIEnReg] & 0x7F) or (
                regs[Reg.DivIrqReg] & regs[Reg.DivIEnReg] & 0x14)
            level, water = len(self._fifo), regs[Reg.WaterLevelReg] & 0x3F
            return ((0x40 if self._crc_ready and self._crc == 0 else 0)
                    | (0x20 if self._crc_ready else 0) | (0x10 if irq else 0)
                    | (0x08 if self._timer_start is not None else 0)
                    | (0x02 if FIFO_SIZE - level <= water else 0) | (0x01 if level <= water else 0))
        if address == Reg.Status2Reg:
            return regs[address] | self._modem_state
        if address in (Reg.TCounterValRegH, Reg.TCounterValRegL):
            counter = self._timer_counter()
            return counter >> 8 if address == Reg.TCounterValRegH else counter & 0xFF
        if address == Reg.VersionReg:
            return self.version
        return regs[address]

    def _set_or_clear(self, reg: Reg, value: int, mask: int) -> None:
        # Bit 7 (Set1/Set2) says whether the marked bits are set or cleared; unmarked stay.
        if value & 0x80:
            self._regs[reg] |= value & mask
        else:
            self._regs[reg] &= ~(value & mask)

    def _fifo_write(self, value: int) -> None:
        if self._command == Command.MFAuthent:
            self._regs[Reg.ErrorReg] |= WR_ERR
        if len(self._fifo) >= FIFO_SIZE:
            self._regs[Reg.ErrorReg] |= BUFFER_OVFL
            return
        self._fifo.append(value)
        if self._command == Command.CalcCRC:
            self._calc_crc()  # a running CalcCRC takes in every byte written to the FIFO
        self._update_alerts()

    def _update_alerts(self) -> None:
        level, water = len(self._fifo), self._regs[Reg.WaterLevelReg] & 0x3F
        if level <= water:
            self._regs[Reg.ComIrqReg] |= LO_ALERT_IRQ
        if FIFO_SIZE - level <= water:
            self._regs[Reg.ComIrqReg] |= HI_ALERT_IRQ

    def _reset(self) -> None:
        self._regs = [0] * 64
        for reg, value in RESET_VALUES.items():
            self._regs[reg] = value
        self._fifo.clear()
        self._cmd_bits = RCV_OFF  # set after reset; writing any command clears it
        self._command = Command.Idle
        self._awaiting_start = False
        self._modem_state = 0
        self._crc = 0xFFFF
        self._crc_ready = True
        self._crypto_card = None
        self._timer_start = None
        self._timer_last = 0
        self._update_rf()  # TxControlReg resets with both antenna drivers off

    def _update_rf(self) -> None:
        on = bool(self._regs[Reg.TxControlReg] & 0x03) and not self._cmd_bits & POWER_DOWN
        self.field.set_powered(on)

    # ---- timer ------------------------------------------------------------------------------

    def _timer_setting(self) -> tuple[int, int]:
        regs = self._regs
        prescaler = (regs[Reg.TModeReg] & 0x0F) << 8 | regs[Reg.TPrescalerReg]
        reload = regs[Reg.TReloadRegH] << 8 | regs[Reg.TReloadRegL]
        divider = 2 * prescaler + (2 if regs[Reg.DemodReg] & 0x10 else 1)  # TPrescalEven
        return reload, max(1, divider * (reload + 1) * 1_000_000_000 // CLOCK_HZ)

    def _start_timer(self) -> None:
        self._timer_start = self._now_ns
        self._timer_period = self._timer_setting()[1]

    def _stop_timer(self) -> None:
        self._timer_last = self._timer_counter()
        self._timer_start = None

    def _timer_counter(self) -> int:
        reload, _ = self._timer_setting()
        if self._timer_start is None:
            return self._timer_last
        elapsed = self._now_ns - self._timer_start
        return max(0, reload - elapsed * (reload + 1) // self._timer_period)

    def _update_timer(self) -> None:
        start = self._timer_start
        if start is None or self._now_ns - start < self._timer_period:
            return
        self._regs[Reg.ComIrqReg] |= TIMER_IRQ
        if self._regs[Reg.TModeReg] & T_AUTO_RESTART:
            periods = (self._now_ns - start) // self._timer_period
            self._timer_start = start + periods * self._timer_period
        else:
            self._timer_start = None
            self._timer_last = 0

    # ---- commands ---------------------------------------------------------------------------

    def _start_command(self, value: int) -> None:
        command = value & 0x0F
        if command == Command.SoftReset:
            self._reset()
            return
        self._cmd_bits = value & (RCV_OFF | POWER_DOWN)
        self._update_rf()
        if command == Command.NoCmdChange:
            return
        self._command = command
        self._awaiting_start = False
        self._modem_state = 0
        if command == Command.CalcCRC:
            self._crc = CRC_PRESETS[self._regs[Reg.ModeReg] & 0x03]
            self._calc_crc()
        elif command == Command.Transceive:
            self._awaiting_start = True
            self._modem_state = 1  # waiting for StartSend
        elif command == Command.Transmit:
            frame, bits = self._take_frame()
            self._exchange("Transmit", frame, bits)  # the receiver is off: answers are lost
            self._regs[Reg.ComIrqReg] |= TX_IRQ
            self._finish()
        elif command == Command.MFAuthent:
            self._mf_authent()
        elif command in (Command.Mem, Command.GenerateRandomID):
            raise NotImplementedError(f"the simulated MFRC522 has no {Command(command).name}")
        elif command not in (Command.Idle, Command.Receive):
            self._finish()  # an unknown command ends at once, as on the chip

    def _finish(self) -> None:
        self._command = Command.Idle
        self._modem_state = 0
        self._regs[Reg.ComIrqReg] |= IDLE_IRQ

    def _calc_crc(self) -> None:
        self._crc = crc_a(self._fifo, self._crc)
        self._fifo.clear()
        self._regs[Reg.CRCResultRegH] = self._crc >> 8
        self._regs[Reg.CRCResultRegL] = self._crc & 0xFF
        self._crc_ready = True
        self._regs[Reg.DivIrqReg] |= CRC_IRQ

    def _take_frame(self) -> tuple[bytes, int]:
        frame = bytes(self._fifo)
        self._fifo.clear()
        self._update_alerts()
        bits = self._regs[Reg.BitFramingReg] & 0x07
        if self._regs[Reg.TxModeReg] & TX_CRC_EN and frame and not bits:
            crc = crc_a(frame)
            frame += bytes((crc & 0xFF, crc >> 8))
        return frame, bits

    def _exchange(self, name: str, frame: bytes, bits: int) -> Reception | None:
        notes: list[str] = []
        reception = None
        if self.faults.frame_reaches_cards(self.field):
            reception = self.field.transmit(frame, bits, self._crypto_card)
        else:
            notes.append("fault: frame lost")
        if reception is not None:
            notes += self.faults.corrupt(reception)
            if reception.collision_at is not None:
                notes.append(f"collision at bit {reception.collision_at}")
        self.frames.append(Exchange(name, frame, bits,
                                    None if reception is None else bytes(reception.data),
                                    0 if reception is None else reception.bits, tuple(notes)))
        return reception

    def _transceive(self) -> None:
        frame, bits = self._take_frame()
        regs = self._regs
        regs[Reg.ComIrqReg] |= TX_IRQ
        regs[Reg.ErrorReg] &= ~RX_ERRORS
        reception = self._exchange("Transceive", frame, bits)
        if self._cmd_bits & RCV_OFF:  # the analog receiver is off: it hears nothing
            reception = None
        if reception is None:
            self._modem_state = 5  # waiting for data
            if regs[Reg.TModeReg] & T_AUTO:  # the timer starts when transmission ends
                self._start_timer()
            return
        self._receive(reception)
        self._modem_state = 1

    def _receive(self, reception: Reception) -> None:
        regs = self._regs
        errors = 0
        values_after_coll = regs[Reg.CollReg] & VALUES_AFTER_COLL
        data = reception.data
        position = reception.collision_at
        if position is not None:
            errors |= COLL_ERR
            regs[Reg.CollReg] = values_after_coll | (
                position & 0x1F if position <= 32 else COLL_POS_NOT_VALID)
            if not values_after_coll:
                for pos in range(position - 1, len(data) * 8):
                    data[pos // 8] &= ~(1 << pos % 8)
        else:
            regs[Reg.CollReg] = values_after_coll | COLL_POS_NOT_VALID
        if reception.parity_error:
            errors |= PARITY_ERR
        if regs[Reg.RxModeReg] & RX_CRC_EN and (reception.bits or not has_valid_crc(bytes(data))):
            errors |= CRC_ERR  # whether the chip then drops the CRC bytes is not modelled
        for byte in data:
            if len(self._fifo) >= FIFO_SIZE:
                errors |= BUFFER_OVFL
                break
            self._fifo.append(byte)
        self._update_alerts()
        regs[Reg.ControlReg] = (regs[Reg.ControlReg] & ~0x07) | reception.bits
        regs[Reg.ErrorReg] |= errors
        regs[Reg.ComIrqReg] |= RX_IRQ | (ERR_IRQ if regs[Reg.ErrorReg] else 0)
        self._stop_timer()

    def _mf_authent(self) -> None:
        data = bytes(self._fifo)
        self._fifo.clear()
        regs = self._regs
        regs[Reg.Status2Reg] &= ~MF_CRYPTO1_ON
        crypto_card, self._crypto_card = self._crypto_card, None
        regs[Reg.ErrorReg] &= ~RX_ERRORS
        if len(data) < 12:
            self.frames.append(Exchange("MFAuthent", data, 0, None, 0, ("too few bytes",)))
            regs[Reg.ErrorReg] |= PROTOCOL_ERR
            regs[Reg.ComIrqReg] |= ERR_IRQ
            self._finish()
            return
        command, block, key, uid = data[0], data[1], data[2:8], data[8:12]
        card = None
        notes = [f"key {key.hex()} uid {uid.hex()}"]
        if self.faults.frame_reaches_cards(self.field):
            card = self.field.authenticate(command, block, key, uid, crypto_card)
        else:
            notes.append("fault: frame lost")
        notes.append("Crypto1 on" if card else "no Crypto1")
        self.frames.append(Exchange("MFAuthent", data[:2], 0, None, 0, tuple(notes)))
        if card is None:
            # The card stays silent after a wrong key: the command never ends, the timer fires.
            if regs[Reg.TModeReg] & T_AUTO:
                self._start_timer()
            return
        regs[Reg.Status2Reg] |= MF_CRYPTO1_ON
        self._crypto_card = card
        self._finish()
