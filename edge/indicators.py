"""A station's light tower and buzzer through gpiozero (real pins on a Pi, mock pins elsewhere)."""

from __future__ import annotations

from typing import Any

from edge.ports import Light

# Which lamps each answer lights, and how many beeps the buzzer gives.
_LAMPS = {
    Light.OFF: (), Light.GREEN: ("green",), Light.AMBER: ("amber",), Light.RED: ("red",),
    Light.UNKNOWN_TAG: ("green", "amber"), Light.PROBE_FAULT: ("green", "red"),
    Light.FAULT: ("amber", "red"), Light.REFUSED: ("green", "amber", "red"),
}
_BEEPS = {Light.OFF: 0, Light.GREEN: 1, Light.AMBER: 2, Light.RED: 3, Light.UNKNOWN_TAG: 4,
          Light.FAULT: 5, Light.PROBE_FAULT: 6, Light.REFUSED: 8}


class LightTower:
    """Green/amber/red lamps, a buzzer and the scrap-bin gate; ``pin_factory`` picks the back end.

    The gate opens for red (scrap goes to the bin) and closes for any other answer.
    """

    def __init__(self, pins: tuple[int, int, int], buzzer_pin: int,
                 gate_pin: int | None = None, pin_factory: Any = None) -> None:
        from gpiozero import LED, Buzzer, DigitalOutputDevice  # the only gpiozero import

        green, amber, red = pins
        self.lamps = {name: LED(pin, pin_factory=pin_factory)
                      for name, pin in (("green", green), ("amber", amber), ("red", red))}
        self.buzzer = Buzzer(buzzer_pin, pin_factory=pin_factory)
        self.gate = (DigitalOutputDevice(gate_pin, pin_factory=pin_factory)
                     if gate_pin is not None else None)
        self._numbers = {**dict(zip(("green", "amber", "red"), pins, strict=True)),
                         "gate": gate_pin}
        self.current = Light.OFF

    def show(self, light: Light) -> None:
        """Light the lamps of ``light`` (others off), beep its pattern, set the bin gate."""
        wanted = _LAMPS[light]
        for name, lamp in self.lamps.items():
            lamp.on() if name in wanted else lamp.off()
        if self.gate is not None:
            self.gate.on() if light is Light.RED else self.gate.off()
        beeps = _BEEPS[light]
        if beeps:
            self.buzzer.beep(on_time=0.08, off_time=0.08, n=beeps, background=True)
        else:
            self.buzzer.off()
        self.current = light

    def lit(self) -> tuple[str, ...]:
        """Names of the lamps that are on, read back from the pins."""
        return tuple(name for name, lamp in self.lamps.items() if lamp.is_lit)

    def outputs(self) -> dict[int, bool]:
        """State of each lamp and gate pin (BCM number -> on), read back from the pins."""
        devices = {**self.lamps, "gate": self.gate}
        return {number: bool(devices[name].value) for name, number in self._numbers.items()
                if number is not None and devices[name] is not None}

    def gate_open(self) -> bool:
        """Whether the scrap-bin gate is open, read back from its pin."""
        return bool(self.gate is not None and self.gate.value)

    def close(self) -> None:
        """Release the pins."""
        for lamp in self.lamps.values():
            lamp.close()
        self.buzzer.close()
        if self.gate is not None:
            self.gate.close()


class DamageButton:
    """The station's "damaged" button: a press marks the next scanned item as damaged."""

    def __init__(self, pin: int, pin_factory: Any = None) -> None:
        from gpiozero import Button

        self.button = Button(pin, pin_factory=pin_factory)
        self._pressed = False
        self.button.when_pressed = self._press  # gpiozero calls this on its own thread

    def _press(self) -> None:
        self._pressed = True

    def take(self) -> bool:
        """Whether it was pressed since the last call (and forget the press)."""
        pressed, self._pressed = self._pressed, False
        return pressed

    def close(self) -> None:
        """Release the pin."""
        self.button.close()
