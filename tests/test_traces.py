"""The walker against a real 7.2 kernel: reproduce its recorded callback traces from its RAM dump.

Expected output is the trace file itself (everything after '# ---- trace ----');
only the '#' header is given to pagewalk.
"""

from pathlib import Path

import pytest

from conftest import SHARED
from pagewalk import KernelDump
from pagewalk.cli import main
from pagewalk.replay.trace import TraceHeader, replay

TRACES = SHARED / "kernel-traces" / "7.2-4k-a72"
FILES = sorted((TRACES / "traces").glob("*.txt")) if TRACES.exists() else []
pytestmark = pytest.mark.skipif(not FILES, reason="kernel traces not found")


@pytest.fixture(scope="module")
def dump():
    return KernelDump.open(TRACES / "dump.elf.zst", search_config=False)


def expected(path: Path) -> list[str]:
    text = path.read_text()
    return text[text.index("# ---- trace ----\n") + len("# ---- trace ----\n"):].splitlines()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_trace_reproduces_byte_for_byte(dump, path):
    header_only = path.read_text().split("# ---- trace ----")[0]
    lines, ret = replay(dump.machine(), TraceHeader.parse(header_only))
    assert lines == expected(path)


def test_walker_era_follows_the_dump(dump):
    assert dump.machine().era.value == "later"


def test_bare_scenario_line_with_root_and_vmas(dump, tmp_path, capsys):
    """A user's own scenario: the line plus --root and --vmas, same result as the recorded trace."""
    path = TRACES / "traces" / "u12_c1_pmd_again.txt"
    header = TraceHeader.parse(path.read_text())
    vmas = tmp_path / "vmas.txt"
    vmas.write_text("".join(line + "\n" for line in path.read_text().splitlines() if line.startswith("# vma 0x")))
    code = main(["trace", str(TRACES / "dump.elf.zst"), header.scenario.line,
                 "--root", hex(header.user_pgd), "--vmas", str(vmas)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out == expected(path)


def test_kernel_scenario_with_dump_symbols(capsys):
    code = main(["trace", str(TRACES / "dump.elf.zst"),
                 "name=k api=kernel start=fixaddr_tot_start end=fixaddr_top ops=pgd,p4d,pud,pmd,pte,hole"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out == expected(TRACES / "traces" / "k16_fixmap_all.txt")


def test_missing_lock_is_reported_and_walk_proceeds(dump, capsys):
    line = "name=nolock api=kernel lock=none start=fixaddr_tot_start end=fixaddr_top ops=pte"
    code = main(["trace", str(TRACES / "dump.elf.zst"), line])
    captured = capsys.readouterr()
    assert code == 0 and "RET 0" in captured.out and "mmap_assert_locked(init_mm)" in captured.err


def test_trace_from_another_dump_is_refused(capsys):
    from conftest import CAPTURES
    code = main(["trace", str(CAPTURES / "7.2-4k-a72-default" / "dump.elf.zst"), str(FILES[0])])
    assert code == 2 and "pair a trace with its own dump" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["no/such/trace.txt", "api=user start=0 end=1", "name=x api=warp start=0 end=1 ops=pte",
                                 "name=x api=user start=0 end=1 ops=pte rule=pte:zz:ret=1",
                                 "name=x api=kernel start=vwin end=vwin+1 ops=pte"])
def test_bad_scenarios_are_one_line_errors(bad, capsys):
    code = main(["trace", str(TRACES / "dump.elf.zst"), bad])
    err = capsys.readouterr().err
    assert code == 2 and err.count("pagewalk: error") == 1
