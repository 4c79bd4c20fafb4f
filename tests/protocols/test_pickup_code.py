"""Tests for pickup codes: check character, typing forgiveness and error messages."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import PickupCodeError, ProtocolError
from protocols.pickup_code import (
    ALPHABET,
    MAX_VALUE,
    code_value,
    generate,
    make_code,
    normalize,
    validate,
)

values = st.integers(0, MAX_VALUE)


def compact(code: str) -> str:
    return code.replace("-", "")


def weighted_sum(code: str) -> int:
    return sum(i * ALPHABET.index(c) for i, c in enumerate(compact(code), start=1))


def substitutions(code: str) -> list[str]:
    raw = compact(code)
    return [
        raw[:pos] + other + raw[pos + 1 :]
        for pos in range(len(raw))
        for other in ALPHABET
        if other != raw[pos]
    ]


def adjacent_transpositions(code: str) -> list[str]:
    raw = compact(code)
    return [
        raw[:pos] + raw[pos + 1] + raw[pos] + raw[pos + 2 :]
        for pos in range(len(raw) - 1)
        if raw[pos] != raw[pos + 1]
    ]


def test_alphabet_is_crockford_without_u_and_v() -> None:
    assert len(ALPHABET) == 31
    assert ALPHABET == "0123456789ABCDEFGHJKMNPQRSTWXYZ"
    assert not set("ILOUV") & set(ALPHABET)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (0, "0000-0000"),
        (1, "0000-0013"),
        (31, "0000-0107"),
        (MAX_VALUE, "ZZZZ-ZZZK"),
    ],
)
def test_known_codes(value: int, code: str) -> None:
    assert make_code(value) == code
    assert code_value(code) == value
    assert weighted_sum(code) % 31 == 0


@given(values)
@settings(deadline=None, max_examples=300)
def test_round_trip(value: int) -> None:
    code = make_code(value)
    assert re.fullmatch(r"[0-9A-HJKMNP-TW-Z]{4}-[0-9A-HJKMNP-TW-Z]{4}", code)
    assert weighted_sum(code) % 31 == 0
    assert validate(code) == code
    assert code_value(code) == value


def test_make_code_is_injective_on_a_sample() -> None:
    rng = random.Random(7)
    sample = {rng.randrange(MAX_VALUE + 1) for _ in range(5000)}
    assert len({make_code(v) for v in sample}) == len(sample)


@pytest.mark.parametrize("value", [-1, MAX_VALUE + 1, True, 1.0])
def test_make_code_rejects_out_of_range(value: int) -> None:
    with pytest.raises(PickupCodeError, match=re.escape("outside 0..")):
        make_code(value)


def test_generate_uses_only_the_given_rng() -> None:
    first = [generate(random.Random(42)) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    rng = random.Random(42)
    codes = [generate(rng) for _ in range(200)]
    assert len(set(codes)) == 200
    assert all(validate(c) == c for c in codes)
    state = random.getstate()
    generate(random.Random(1))
    assert random.getstate() == state


@pytest.mark.parametrize("value", [0, 1, 123456789, MAX_VALUE, 27_000_000_000])
def test_every_substitution_and_adjacent_transposition_fails_exhaustively(value: int) -> None:
    code = make_code(value)
    for wrong in substitutions(code) + adjacent_transpositions(code):
        with pytest.raises(PickupCodeError, match="check failed"):
            validate(wrong)


def test_every_transposition_not_only_adjacent_fails() -> None:
    code = compact(make_code(987654321))
    for i in range(8):
        for j in range(i + 1, 8):
            if code[i] != code[j]:
                swapped = list(code)
                swapped[i], swapped[j] = swapped[j], swapped[i]
                with pytest.raises(PickupCodeError, match="check failed"):
                    validate("".join(swapped))


@given(values, st.integers(0, 7), st.sampled_from(ALPHABET))
@settings(deadline=None, max_examples=300)
def test_single_substitution_fails(value: int, pos: int, other: str) -> None:
    raw = compact(make_code(value))
    if other == raw[pos]:
        return
    with pytest.raises(PickupCodeError, match="check failed"):
        validate(raw[:pos] + other + raw[pos + 1 :])


@given(values, st.integers(0, 6))
@settings(deadline=None, max_examples=300)
def test_adjacent_transposition_fails(value: int, pos: int) -> None:
    raw = compact(make_code(value))
    if raw[pos] == raw[pos + 1]:
        return
    with pytest.raises(PickupCodeError, match="check failed"):
        validate(raw[:pos] + raw[pos + 1] + raw[pos] + raw[pos + 2 :])


@given(values, st.data())
@settings(deadline=None, max_examples=200)
def test_typing_forgiveness(value: int, data: st.DataObject) -> None:
    code = make_code(value)
    typed = ""
    for ch in compact(code):
        options = {ch, ch.lower()}
        if ch == "0":
            options |= {"O", "o"}
        if ch == "1":
            options |= {"I", "i", "L", "l"}
        typed += data.draw(st.sampled_from(sorted(options)))
        typed += data.draw(st.sampled_from(["", "", " ", "-", "  "]))
    assert validate(typed) == code
    assert code_value(typed) == value


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("abcd-efgh", "ABCDEFGH"),
        ("  o1il -- OIL ", "0111011"),
        ("x y\tz", "XYZ"),
        ("", ""),
    ],
)
def test_normalize(text: str, normal: str) -> None:
    assert normalize(text) == normal


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ABCU-0000", "bad character 'U' at position 4 (U and V are not used"),
        ("abcd-000v", "bad character 'v' at position 9 (U and V are not used"),
        ("ABC_-0000", "bad character '_' at position 4"),
        ("ABCD.0000", "bad character '.' at position 5"),
        ("ÄBCD-0000", "bad character 'Ä' at position 1"),
        ("straße00", "bad character 'ß' at position 5"),
        ("ABCD-０000", "bad character '０' at position 6"),
    ],
)
def test_bad_characters_are_named_with_position(text: str, reason: str) -> None:
    with pytest.raises(PickupCodeError, match=re.escape(reason)):
        validate(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "wrong length: a pickup code has 8 characters, got 0"),
        ("ABCD-EFG", "wrong length: a pickup code has 8 characters, got 7"),
        ("0000-0000-0", "wrong length: a pickup code has 8 characters, got 9"),
        ("- - -", "got 0"),
        ("0000-0001", "check failed"),
        ("0000-00Y1", "check failed"),
    ],
)
def test_validate_names_the_problem(text: str, reason: str) -> None:
    with pytest.raises(PickupCodeError, match=re.escape(reason)):
        validate(text)
    with pytest.raises(PickupCodeError, match=re.escape(reason)):
        code_value(text)


def test_pickup_code_error_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        validate("")
