"""The durable outbox: all-or-nothing commits, acks, dead letters, boot counter."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from edge.outbox import MessageClass, NewMessage, Outbox


def _msg(i: int, cls: MessageClass = MessageClass.EVENT) -> NewMessage:
    return NewMessage(f"gw-1:1:{i}", cls, "coldloop/v1/s/gw-1/evt/scan", b'{"n":%d}' % i)


def test_boot_counter_increments_across_reopen(tmp_path: Path) -> None:
    first = Outbox(tmp_path / "o.db")
    assert first.next_boot() == 1
    first.close()
    second = Outbox(tmp_path / "o.db")
    assert second.next_boot() == 2


def test_due_ack_and_retry(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.put([_msg(1), _msg(2), _msg(3)], now=100.0)
    due = box.due(limit=2, now=100.0, retry_after_s=10)
    assert [p.msg_id for p in due] == ["gw-1:1:1", "gw-1:1:2"]
    box.mark_sent([p.seq for p in due], now=100.0)
    # sent, unacked, not yet timed out: only the third is due
    assert [p.msg_id for p in box.due(10, now=105.0, retry_after_s=10)] == ["gw-1:1:3"]
    # after the ack timeout they are due again
    assert len(box.due(10, now=111.0, retry_after_s=10)) == 3
    assert box.remove(["gw-1:1:1", "gw-1:1:2", "unknown"]) == 2
    assert box.depth() == 1


def test_duplicate_id_rolls_back_whole_batch(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.put([_msg(1)], now=1.0)
    with pytest.raises(Exception, match="UNIQUE"):
        box.put([_msg(2), _msg(1)], now=2.0)
    assert box.depth() == 1  # message 2 was not half-written


def test_too_many_attempts_moves_to_dead_letter(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_attempts=2)
    box.put([_msg(1)], now=0.0)
    seq = box.due(1, 0.0, 1)[0].seq
    assert box.mark_sent([seq], 0.0) == []
    assert box.mark_sent([seq], 5.0) == ["gw-1:1:1"]
    assert box.depth() == 0
    assert box.dead_letters() == [("gw-1:1:1", "no ack after 2 attempts")]


def test_depth_by_class(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.put([_msg(1), _msg(2, MessageClass.TELEMETRY)], now=0.0)
    assert box.depth(MessageClass.EVENT) == 1
    assert box.depth(MessageClass.TELEMETRY) == 1


def _commit_then_die(path: str, ready: multiprocessing.synchronize.Event) -> None:
    box = Outbox(Path(path))
    box.put([_msg(i) for i in range(1, 51)], now=0.0)
    ready.set()
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint


def test_committed_messages_survive_kill_9(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_commit_then_die, args=(str(tmp_path / "o.db"), ready))
    proc.start()
    proc.join(timeout=60)
    assert ready.is_set() and proc.exitcode == -signal.SIGKILL
    assert Outbox(tmp_path / "o.db").depth() == 50
