"""Reconnect backoff: doubling, capped, jittered, reset on success."""

from __future__ import annotations

import random

from edge.backoff import Backoff


def test_delays_double_to_the_cap_with_jitter() -> None:
    backoff = Backoff(0.5, 8.0, random.Random(7))
    delays = [backoff.next_delay() for _ in range(8)]
    bases = [0.5, 1, 2, 4, 8, 8, 8, 8]
    assert all(base / 2 <= d <= base for d, base in zip(delays, bases, strict=True))
    assert len(set(delays)) == len(delays)  # jittered: no two gateways retry in step


def test_reset_starts_over() -> None:
    backoff = Backoff(1.0, 60.0, random.Random(1))
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_many_gateways_spread_out() -> None:
    firsts = [Backoff(10.0, 60.0, random.Random(seed)).next_delay() for seed in range(200)]
    assert max(firsts) - min(firsts) > 4.0
