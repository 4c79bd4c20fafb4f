"""The virtual clock: moved by the scenario, then (an interactive demo) by real time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from firmware_sim.clock import VirtualClock

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def test_the_scenario_moves_it_forward_only() -> None:
    clock = VirtualClock(T0)
    clock.advance(90)
    clock.advance_to(T0)  # earlier: no-op
    assert clock.now() == T0 + timedelta(seconds=90)
    with pytest.raises(ValueError, match="never goes back"):
        clock.advance(-1)


def test_once_live_it_follows_real_time_from_where_it_stood() -> None:
    real = [1000.0]
    clock = VirtualClock(T0, monotonic=lambda: real[0])
    clock.advance(600)
    real[0] = 5000.0  # time passing before it goes live does not count
    clock.go_live()
    assert clock.now() == T0 + timedelta(seconds=600)
    real[0] = 5042.5
    assert clock.now() == T0 + timedelta(seconds=642.5)
    with pytest.raises(RuntimeError, match="follows real time"):
        clock.advance(1)
    with pytest.raises(RuntimeError, match="follows real time"):
        clock.advance_to(T0 + timedelta(days=1))
