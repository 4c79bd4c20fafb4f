"""Make and check the pickup codes a driver types on a phone, e.g. ``7K3M-Q0PZ``.

A code is 7 data characters and 1 check character over the 31-symbol alphabet
``0123456789ABCDEFGHJKMNPQRSTWXYZ`` (Crockford base32 without U and V, leaving a prime number
of symbols). The 7 data characters are the value ``0..31**7 - 1`` in base 31, most significant
first. It is shown as ``XXXX-XXXX``.

Check character. With ``v_i`` the value of the character at position ``i = 1..8`` (the check
character is position 8), the check character is the one that makes

    S = sum(i * v_i for i in 1..8) ≡ 0 (mod 31).

Since ``8 * 4 = 32 ≡ 1``, it is ``v_8 = -4 * sum(i * v_i for i in 1..7) mod 31``.

Why this catches every single substitution and every adjacent transposition: ℤ/31 is a field
because 31 is prime, so a product of two non-zero residues is non-zero.

* Substituting ``a`` by ``b != a`` at position ``i`` changes S by ``i * (b - a)``. The weight
  ``i`` is in 1..8 and ``b - a`` is in ±1..30, so neither is ≡ 0 and neither is the product:
  the check fails.
* Swapping unequal ``a`` (position ``i``) and ``b`` (position ``i + 1``), check character
  included, changes S by ``i*b + (i+1)*a - i*a - (i+1)*b = a - b``, in ±1..30, so not ≡ 0.
  (Any transposition of positions ``i < j`` changes S by ``(j - i) * (a - b)`` with
  ``j - i`` in 1..7, so all of them are caught, not only adjacent ones.)

Typing forgiveness: ``normalize`` uppercases, drops spaces and hyphens, and reads O as 0 and
I and L as 1, as Crockford base32 does. Those letters never appear in generated codes, so the
mapping cannot turn one valid code into another.
"""

from __future__ import annotations

import random

from protocols.errors import PickupCodeError

__all__ = [
    "ALPHABET",
    "CODE_LENGTH",
    "DATA_LENGTH",
    "MAX_VALUE",
    "code_value",
    "generate",
    "make_code",
    "normalize",
    "validate",
]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTWXYZ"
BASE = len(ALPHABET)
DATA_LENGTH = 7
CODE_LENGTH = DATA_LENGTH + 1
MAX_VALUE = BASE**DATA_LENGTH - 1

_VALUE = {ch: k for k, ch in enumerate(ALPHABET)}
_TYPO = {"O": "0", "I": "1", "L": "1"}
# Multiplicative inverse of the check character's weight (8 * 4 = 32 ≡ 1 mod 31).
_INV_CHECK_WEIGHT = pow(CODE_LENGTH, -1, BASE)


def _weighted_sum(chars: str) -> int:
    return sum(pos * _VALUE[ch] for pos, ch in enumerate(chars, start=1))


def _check_char(data: str) -> str:
    return ALPHABET[(-_weighted_sum(data) * _INV_CHECK_WEIGHT) % BASE]


def _display(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def normalize(text: str) -> str:
    """Return ``text`` uppercased without spaces or hyphens, with O read as 0 and I, L as 1.

    Raises PickupCodeError naming the first character outside the alphabet and its 1-based
    position in ``text``. The length is not checked here.
    """
    out = []
    for pos, ch in enumerate(text, start=1):
        if ch == "-" or ch.isspace():
            continue
        # Uppercase only ASCII: "ß".upper() is "SS", which would silently become two characters.
        upper = ch.upper() if ch.isascii() else ch
        upper = _TYPO.get(upper, upper)
        if upper not in _VALUE:
            hint = " (U and V are not used in pickup codes)" if upper in "UV" else ""
            raise PickupCodeError(f"bad character {ch!r} at position {pos}{hint}")
        out.append(upper)
    return "".join(out)


def make_code(value: int) -> str:
    """Return the display form of the code for ``value`` in ``0..31**7 - 1``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VALUE:
        raise PickupCodeError(f"pickup code value {value!r} outside 0..{MAX_VALUE}")
    digits = []
    for _ in range(DATA_LENGTH):
        value, digit = divmod(value, BASE)
        digits.append(ALPHABET[digit])
    data = "".join(reversed(digits))
    return _display(data + _check_char(data))


def generate(rng: random.Random) -> str:
    """Return a uniformly random code drawn from ``rng``."""
    return make_code(rng.randrange(MAX_VALUE + 1))


def validate(text: str) -> str:
    """Return the display form of a typed code, or raise PickupCodeError saying what is wrong."""
    code = normalize(text)
    if len(code) != CODE_LENGTH:
        raise PickupCodeError(
            f"wrong length: a pickup code has {CODE_LENGTH} characters, got {len(code)}"
        )
    if _weighted_sum(code) % BASE != 0:
        raise PickupCodeError("check failed: a character is mistyped or two are swapped")
    return _display(code)


def code_value(text: str) -> int:
    """Return the value a typed code stands for, or raise PickupCodeError if it is invalid."""
    code = validate(text).replace("-", "")
    value = 0
    for ch in code[:DATA_LENGTH]:
        value = value * BASE + _VALUE[ch]
    return value
