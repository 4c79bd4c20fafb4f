"""The air between an MFRC522's antenna and the cards: who answers, what the receiver hears.

Several cards answering at once superpose as on the air (Manchester coding at 106 kbit/s):
identical answers such as two ATQAs merge cleanly, different ones collide at the first differing
bit. Faults injected here change what the receiver hears, never the cards themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from firmware_sim.mifare import Answer, MifareClassic1K, has_valid_crc

__all__ = ["ChipFaults", "Exchange", "Reception", "RfField"]


@dataclass
class Reception:
    """What the receiver demodulated: bytes, valid bits of the last byte (0: 8), errors."""

    data: bytearray
    bits: int = 0
    collision_at: int | None = None  # 1-based position of the first collided bit
    parity_error: bool = False

    @property
    def bit_length(self) -> int:
        """How many bits were received."""
        return len(self.data) * 8 - (8 - self.bits if self.bits else 0)


def _bit_length(answer: Answer) -> int:
    return len(answer.data) * 8 - (8 - answer.bits if answer.bits else 0)


class RfField:
    """The space before the antenna: the cards in it, powered while the reader's RF is on."""

    def __init__(self, *cards: MifareClassic1K) -> None:
        self._cards: list[MifareClassic1K] = []
        self._powered = False
        for card in cards:
            self.present(card)

    @property
    def cards(self) -> tuple[MifareClassic1K, ...]:
        """The cards in the field."""
        return tuple(self._cards)

    @property
    def powered(self) -> bool:
        """Whether the reader's RF field is on."""
        return self._powered

    def present(self, card: MifareClassic1K) -> None:
        """Bring a card into the field; it powers up in IDLE if the RF is on."""
        if card in self._cards:
            raise ValueError(f"{card!r} is already in the field")
        self._cards.append(card)
        if self._powered:
            card.power_on()

    def remove(self, card: MifareClassic1K) -> None:
        """Take a card out of the field."""
        self._cards.remove(card)
        card.power_off()

    def set_powered(self, on: bool) -> None:
        """Switch the RF on or off: every card in the field resets."""
        if on != self._powered:
            self._powered = on
            for card in self._cards:
                if on:
                    card.power_on()
                else:
                    card.power_off()

    def transmit(self, frame: bytes, bits: int,
                 crypto_card: MifareClassic1K | None) -> Reception | None:
        """Send a frame to every card; return their answers as the receiver hears them."""
        if not self._powered or not frame:
            return None
        answers = [answer for card in self._cards
                   if (answer := card.receive(frame, bits, crypto=card is crypto_card))]
        if not answers:
            return None
        if len(answers) == 1:
            return Reception(bytearray(answers[0].data), answers[0].bits)
        # A collision shows wherever two cards send different bits; the demodulated value
        # there is a 1, since both half-bits carry a subcarrier.
        lengths = [_bit_length(a) for a in answers]
        total = max(lengths)
        out = bytearray((total + 7) // 8)
        first: int | None = None
        for pos in range(total):
            values = {(a.data[pos // 8] >> pos % 8) & 1
                      for a, n in zip(answers, lengths, strict=True) if pos < n}
            if len(values) > 1 and first is None:
                first = pos + 1
            if 1 in values:
                out[pos // 8] |= 1 << pos % 8
        return Reception(out, total % 8, first)

    def authenticate(self, command: int, block: int, key: bytes, uid: bytes,
                     crypto_card: MifareClassic1K | None) -> MifareClassic1K | None:
        """Run MIFARE authentication; return the one card that accepted, if any."""
        if not self._powered:
            return None
        accepted = [card for card in self._cards
                    if card.authenticate(command, block, key, uid, crypto=card is crypto_card)]
        return accepted[0] if len(accepted) == 1 else None


@dataclass
class ChipFaults:
    """Faults on the air interface; each counter is used up by the exchanges it hits."""

    remove_after_frames: int | None = None  # the cards leave after this many more frames
    remove_card: MifareClassic1K | None = None  # which card leaves (None: every card)
    no_answer: int = 0  # the next N frames are lost before reaching the cards: timeout
    crc_errors: int = 0  # the next N answers carrying a CRC_A arrive with a wrong CRC
    bit_flips: int = 0  # the next N answers arrive with bit ``bit_flip_index`` inverted
    bit_flip_index: int = 0  # counted from the first bit on the air (LSB of the first byte)
    bit_flip_keeps_parity: bool = False  # True: a double error the parity check cannot see
    corrupt_after_frames: int = 0  # CRC errors and bit flips spare this many more frames
    _corrupting: bool = field(default=False, init=False, repr=False)

    def frame_reaches_cards(self, rf: RfField) -> bool:
        """Count one frame for removal, loss and corruption; return whether it reaches cards."""
        self._corrupting = self.corrupt_after_frames <= 0
        if not self._corrupting:
            self.corrupt_after_frames -= 1
        if self.remove_after_frames is not None:
            if self.remove_after_frames <= 0:
                leaving = [self.remove_card] if self.remove_card else list(rf.cards)
                for card in leaving:
                    if card in rf.cards:
                        rf.remove(card)
                self.remove_after_frames = None
            else:
                self.remove_after_frames -= 1
        if self.no_answer > 0:
            self.no_answer -= 1
            return False
        return True

    def corrupt(self, reception: Reception) -> list[str]:
        """Apply pending CRC errors and bit flips to an answer; return notes for the log."""
        notes: list[str] = []
        if not self._corrupting:
            return notes
        data = reception.data
        if self.crc_errors > 0 and not reception.bits and has_valid_crc(bytes(data)):
            self.crc_errors -= 1
            data[-1] ^= 0xFF  # the card's parity bits still match: only the CRC is wrong
            notes.append("fault: CRC corrupted")
        if self.bit_flips > 0:
            self.bit_flips -= 1
            index = self.bit_flip_index % reception.bit_length
            data[index // 8] ^= 1 << index % 8
            # Full bytes carry an odd parity bit; a 4-bit ACK/NAK carries none.
            has_parity = not reception.bits or index // 8 < len(data) - 1
            if has_parity and not self.bit_flip_keeps_parity:
                reception.parity_error = True
            notes.append(f"fault: bit {index} flipped")
        return notes


@dataclass(frozen=True, slots=True)
class Exchange:
    """One exchange on the air, as logged by the chip."""

    command: str
    sent: bytes
    sent_bits: int
    answer: bytes | None
    answer_bits: int = 0
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        tx = self.sent.hex(" ") + (f" ({self.sent_bits} bits)" if self.sent_bits else "")
        rx = "no answer" if self.answer is None else self.answer.hex(" ") + (
            f" ({self.answer_bits} bits)" if self.answer_bits else "")
        if self.command == "MFAuthent":
            rx = "(answers stay inside the chip)"
        notes = f" [{', '.join(self.notes)}]" if self.notes else ""
        return f"{self.command}: > {tx} < {rx}{notes}"
