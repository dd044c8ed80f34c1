"""pageattr against the real kernels: replay 6.12 and 7.2 set_memory_* traces entry by entry.

Expected values are the trace files' own CALL lines; the replay is given the
lines with every result blanked (ret=?, warn=?, AFTER ?).
"""

import re

import pytest

from conftest import SHARED
from pagewalk.cli import main
from pagewalk.replay.pageattr import replay_trace

ROOT = SHARED / "kernel-pageattr"
TRACES = sorted(ROOT.glob("*/traces/*.txt")) if ROOT.exists() else []
pytestmark = pytest.mark.skipif(not TRACES, reason="pageattr traces not found")


def blank(text: str) -> str:
    """The trace with every result replaced by '?', as a checker would hand it over."""
    out = []
    for line in text.splitlines():
        if line.startswith("CALL "):
            line = re.sub(r"\bret=\S+", "ret=?", line)
            line = re.sub(r"\bwarn=\S+", "warn=?", line)
            line = re.sub(r"\bnchg=\S+", "nchg=?", line)
            line = re.sub(r"\bnent=(\d+)/\d+", r"nent=\1/?", line)
            line = re.sub(r"(\b\w+:[0-9a-f]+:[0-9a-f]+:(?:[0-9a-f]{16}|-)):\S+", r"\1:?", line)
        out.append(line)
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("path", TRACES, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_replay_is_identical(path):
    text = path.read_text()
    expected = [line for line in text.splitlines() if line.startswith("CALL ")]
    got = replay_trace(path.parent.parent / "dump.elf.zst", blank(text))
    assert "?" not in "".join(got)
    assert got == expected


def test_cli_replay(tmp_path, capsys):
    path = ROOT / "6.12-a72-on" / "traces" / "p22_unmapped.txt"
    blanked = tmp_path / "p22.txt"
    blanked.write_text(blank(path.read_text()))
    assert main(["replay-pageattr", str(ROOT / "6.12-a72-on" / "dump.elf.zst"), str(blanked)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [line for line in path.read_text().splitlines() if line.startswith("CALL ")]


def test_trace_on_the_wrong_dump_is_refused(capsys):
    path = ROOT / "6.12-a72-on" / "traces" / "p01_vm4_ro_rw.txt"
    assert main(["replay-pageattr", str(ROOT / "7.2-a72-noalias" / "dump.elf.zst"), str(path)]) == 2
    assert "pair a trace with its own dump" in capsys.readouterr().err
