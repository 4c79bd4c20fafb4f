"""The MFRC522's register map: addresses, command codes, bits and reset values (NXP datasheet)."""

from __future__ import annotations

from enum import IntEnum

# ComIrqReg; bit 7 (Set1) chooses whether written 1s set or clear.
TX_IRQ, RX_IRQ, IDLE_IRQ, HI_ALERT_IRQ, LO_ALERT_IRQ, ERR_IRQ, TIMER_IRQ = (
    0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01)
CRC_IRQ = 0x04  # DivIrqReg; bit 7 (Set2) as above
# ErrorReg
WR_ERR, BUFFER_OVFL, COLL_ERR, CRC_ERR, PARITY_ERR, PROTOCOL_ERR = (
    0x80, 0x10, 0x08, 0x04, 0x02, 0x01)
RX_ERRORS = COLL_ERR | CRC_ERR | PARITY_ERR | PROTOCOL_ERR  # cleared when the receiver starts
MF_CRYPTO1_ON = 0x08  # Status2Reg
RCV_OFF, POWER_DOWN = 0x20, 0x10  # CommandReg
START_SEND = 0x80  # BitFramingReg
T_AUTO, T_AUTO_RESTART = 0x80, 0x10  # TModeReg
TX_CRC_EN = RX_CRC_EN = 0x80  # TxModeReg, RxModeReg
VALUES_AFTER_COLL, COLL_POS_NOT_VALID = 0x80, 0x20  # CollReg
FIFO_SIZE = 64
CLOCK_HZ = 13_560_000
CRC_PRESETS = (0x0000, 0x6363, 0xA671, 0xFFFF)  # ModeReg.CRCPreset


class Reg(IntEnum):
    """Register addresses, named as in the NXP datasheet."""

    CommandReg = 0x01
    ComIEnReg = 0x02
    DivIEnReg = 0x03
    ComIrqReg = 0x04
    DivIrqReg = 0x05
    ErrorReg = 0x06
    Status1Reg = 0x07
    Status2Reg = 0x08
    FIFODataReg = 0x09
    FIFOLevelReg = 0x0A
    WaterLevelReg = 0x0B
    ControlReg = 0x0C
    BitFramingReg = 0x0D
    CollReg = 0x0E
    ModeReg = 0x11
    TxModeReg = 0x12
    RxModeReg = 0x13
    TxControlReg = 0x14
    TxASKReg = 0x15
    TxSelReg = 0x16
    RxSelReg = 0x17
    RxThresholdReg = 0x18
    DemodReg = 0x19
    MfTxReg = 0x1C
    MfRxReg = 0x1D
    SerialSpeedReg = 0x1F
    CRCResultRegH = 0x21
    CRCResultRegL = 0x22
    ModWidthReg = 0x24
    RFCfgReg = 0x26
    GsNReg = 0x27
    CWGsPReg = 0x28
    ModGsPReg = 0x29
    TModeReg = 0x2A
    TPrescalerReg = 0x2B
    TReloadRegH = 0x2C
    TReloadRegL = 0x2D
    TCounterValRegH = 0x2E
    TCounterValRegL = 0x2F
    AutoTestReg = 0x36
    VersionReg = 0x37


class Command(IntEnum):
    """The command codes of ``CommandReg``."""

    Idle = 0x0
    Mem = 0x1
    GenerateRandomID = 0x2
    CalcCRC = 0x3
    Transmit = 0x4
    NoCmdChange = 0x7
    Receive = 0x8
    Transceive = 0xC
    MFAuthent = 0xE
    SoftReset = 0xF


RESET_VALUES = {
    Reg.CommandReg: 0x20, Reg.ComIEnReg: 0x80, Reg.ComIrqReg: 0x14, Reg.WaterLevelReg: 0x08,
    Reg.ControlReg: 0x10, Reg.CollReg: 0xA0, Reg.ModeReg: 0x3F, Reg.TxControlReg: 0x80,
    Reg.TxSelReg: 0x10, Reg.RxSelReg: 0x84, Reg.RxThresholdReg: 0x84, Reg.DemodReg: 0x4D,
    Reg.MfTxReg: 0x62, Reg.SerialSpeedReg: 0xEB, Reg.CRCResultRegH: 0xFF,
    Reg.CRCResultRegL: 0xFF, Reg.ModWidthReg: 0x26, Reg.RFCfgReg: 0x48, Reg.GsNReg: 0x88,
    Reg.CWGsPReg: 0x20, Reg.ModGsPReg: 0x20, Reg.AutoTestReg: 0x40,
}
