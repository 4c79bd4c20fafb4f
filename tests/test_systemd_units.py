"""The shipped systemd units parse cleanly (`systemd-analyze verify` prints nothing)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "config" / "systemd"
SHIPPED_BINARY = "/opt/coldloop/.venv/bin/coldloop"


@pytest.mark.parametrize("name", ["coldloop-edge.service", "coldloop-hub.service"])
def test_unit_verifies_without_a_warning(name: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    text = (UNITS / name).read_text()
    assert SHIPPED_BINARY in text
    unit = tmp_path / name  # verify also checks that ExecStart's binary exists
    unit.write_text(text.replace(SHIPPED_BINARY, "/bin/true"))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "")


def test_a_unit_with_a_mistake_is_caught(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "broken.service"
    unit.write_text("[Service]\nExecStart=/bin/true\nRestart=sometimes\n")
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60)
    assert "restart specifier" in done.stderr
