"""Phone numbers as one string per line: E.164 ("+8613800000001"), however they were written.

A customer's phone arrives from the order system ("+86 138 0000 0001"), the hotline's caller
id ("13800000001"), the mini-program ("138-0000-0001") or an agent's search box ("0086 138
0000 0001"). Comparing them as typed would make one customer several (a verified caller not
found, a complaint on two channels not merged), so every phone the hub stores or looks up is
first brought to E.164 by Google's libphonenumber (``phonenumbers``). A number without a
country code is read in :data:`DEFAULT_REGION`, where the customers are.
"""

from __future__ import annotations

import re
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator, Field

DEFAULT_REGION = "CN"
MAX_LENGTH = 32  # characters as written
_WRITTEN = re.compile(r"^\+?[0-9 ().-]+$")
_WHY = {
    phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "is a local number: add the area code",
    phonenumbers.ValidationResult.TOO_SHORT: "is too short",
    phonenumbers.ValidationResult.TOO_LONG: "is too long",
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "has no such country code",
}


def normalise(written: str, region: str = DEFAULT_REGION) -> str:
    """Return ``written`` in E.164; ``ValueError`` says why it is not a phone number."""
    text = written.strip()
    if not text or len(text) > MAX_LENGTH or not _WRITTEN.match(text):
        raise ValueError(f"not a phone number: {written[:40]!r} (digits, spaces, '-', '.', "
                         f"brackets and a leading '+', at most {MAX_LENGTH} characters)")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"not a phone number: {written!r} ({error.args[0]})") from None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        raise ValueError(f"not a phone number: {written!r} "
                         f"{_WHY.get(reason, 'has the wrong number of digits')} "
                         f"(country code +{number.country_code})")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def as_phone(text: str) -> str | None:
    """Return ``text`` in E.164 if it reads as a phone number, else None (for searches)."""
    try:
        return normalise(text)
    except ValueError:
        return None


def written(e164: str) -> str:
    """Return a stored number as people read it ("+86 138 0000 0001"); anything that does
    not parse (a value stored before phones were checked) as it is."""
    try:
        number = phonenumbers.parse(e164, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


Phone = Annotated[str, Field(min_length=1, max_length=MAX_LENGTH), AfterValidator(normalise)]
"""A pydantic field holding a phone number, stored in E.164."""
