"""The `pagewalk` command: outputs, exit codes, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CAPTURES, needs_shared
from pagewalk.cli import main

KFENCE = "6.12-4k-a72-rodata-on-kfence"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@needs_shared
def test_default_ptdump_is_the_bundled_kernels_own(capsys):
    code, out, err = run(capsys, "ptdump")
    assert code == 0
    assert out == (CAPTURES / KFENCE / "ptdump.txt").read_text()
    assert "bundled default" in err and "symbol table" in err


@needs_shared
def test_ptdump_of_a_capture_says_where_options_came_from(capsys):
    code, out, err = run(capsys, "ptdump", str(CAPTURES / "7.2-4k-a72-default" / "dump.elf.zst"))
    assert code == 0 and out == (CAPTURES / "7.2-4k-a72-default" / "ptdump.txt").read_text()
    assert "kernel.config" in err


def test_ptdump_json_rows_cover_the_range(capsys):
    code, out, _ = run(capsys, "ptdump", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) > 100
    for a, b in zip(rows, rows[1:]):
        assert a["end"] == b["start"]
    assert rows[-1]["end"] == "0x0000000000000000"
    assert {"start", "end", "level", "attributes", "marker"} <= set(rows[0])


def test_vtop_json_fields(capsys):
    code, out, _ = run(capsys, "vtop", "--json", "swapper_pg_dir", "ffff000000000000")
    first, second = (json.loads(line) for line in out.splitlines())
    assert code == 0
    assert first["pa"] == "0x4075c000" and first["level"] == 3 and first["size"] == 4096
    assert first["writable"] is False and first["executable"] is False and first["attr"] == "MEM/NORMAL"
    assert second["pa"] is None and second["fault"].startswith("translation fault")


def test_vtop_text_trace(capsys):
    code, out, _ = run(capsys, "vtop", "init_uts_ns")
    assert code == 0
    assert "PAGE DIRECTORY: 4075c000" in out and " L3: " in out and "PAGE: 40903000  (4K)  RW NX" in out


@pytest.mark.parametrize("argv,message", [
    (["vtop", "0x1234"], "not a kernel address"),
    (["vtop", "zzz"], "not a hex address"),
    (["info", "/nonexistent/dump.elf"], "cannot open"),
    (["ptdump", __file__], "not an ELF"),
])
def test_errors_are_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code != 0
    lines = [line for line in err.splitlines() if line.startswith("pagewalk: error")]
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in err


def test_check_wx_passes_on_the_default(capsys):
    code, out, _ = run(capsys, "check-wx")
    assert code == 0 and out.strip() == "Checked W+X mappings: passed, no W+X pages found"


def test_info_json(capsys):
    code, out, _ = run(capsys, "info", "--json")
    facts = json.loads(out)
    assert code == 0 and facts["granule"] == "4K" and facts["VA bits"] == 48 and facts["levels"] == 4
    assert any(r["name"] == "vmalloc()" for r in facts["regions"])


@needs_shared
def test_extract_keeps_what_ptdump_needs(tmp_path, capsys):
    out = tmp_path / "small.elf"
    code, msg, _ = run(capsys, "extract", str(CAPTURES / "6.12-4k-max-default" / "dump.elf.zst"), str(out))
    assert code == 0 and out.stat().st_size < 8 << 20
    code, text, err = run(capsys, "ptdump", str(out))
    assert text == (CAPTURES / "6.12-4k-max-default" / "ptdump.txt").read_text()
    assert "symbol table" in err


def test_console_script_installed():
    """The `pagewalk` script pip installed (pyproject's entry point), running this checkout's code."""
    import os
    import shutil
    from conftest import REPO
    script = shutil.which("pagewalk", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    assert script, "no `pagewalk` script installed: pip install . puts it beside the interpreter"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.run([script, "vtop", "0x1"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "pagewalk: error:" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([script, "ptdump"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.startswith("---[ Linear Mapping start ]---")


def test_support_matrix_doc_is_generated_from_the_code(capsys):
    from conftest import REPO
    assert main(["matrix"]) == 0
    assert capsys.readouterr().out == (REPO / "docs" / "support-matrix.md").read_text()
