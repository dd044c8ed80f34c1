"""Shared fixtures: the ground truth in ../shared (captures, traces), decompressed on the fly."""

import os
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))      # test this checkout, whatever else pip has installed
SHARED = Path(os.environ.get("PAGEWALK_SHARED", REPO.parent / "shared"))
CAPTURES = SHARED / "captures"
CAPTURE_NAMES = sorted(p.name for p in CAPTURES.glob("*") if (p / "dump.elf.zst").exists()) if CAPTURES.exists() else []

needs_shared = pytest.mark.skipif(not CAPTURES.exists(), reason=f"ground truth not found at {SHARED}")


def read_kv(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def kallsyms(path: Path) -> dict[str, int]:
    out = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[parts[2]] = int(parts[0], 16)
    return out


_dumps = {}


@pytest.fixture(scope="session")
def open_capture():
    """open_capture(name) -> KernelDump of ../shared/captures/NAME (decompressed once per session)."""
    from pagewalk import KernelDump

    def opener(name: str) -> "KernelDump":
        if name not in _dumps:
            _dumps[name] = KernelDump.open(CAPTURES / name / "dump.elf.zst")
        return _dumps[name]
    return opener


RANGE_LINE = re.compile(r"^0x([0-9a-f]{16})-0x([0-9a-f]{16})\s+\d+[KMGTPE] (PGD|P4D|PUD|PMD|PTE)(.*)$")


def ptdump_ranges(path: Path):
    """(start, end, level, attribute text, marker) for each range line of a ptdump.txt."""
    marker = None
    for line in path.read_text().splitlines():
        if line.startswith("---["):
            marker = line[5:-5]
            continue
        m = RANGE_LINE.match(line)
        assert m, f"unexpected ptdump line {line!r}"
        yield int(m[1], 16), int(m[2], 16) or 1 << 64, m[3], m[4], marker


@pytest.fixture(scope="session")
def default_elf(tmp_path_factory):
    """The bundled default dump (an extract of a real 6.12 kernel), decompressed to a private ELF file."""
    import shutil
    from pagewalk.dump.kernel_dump import DEFAULT_DUMP
    from pagewalk.phys.dumpfile import decompress_zst
    path = tmp_path_factory.mktemp("default") / "default.elf"
    shutil.copy(decompress_zst(DEFAULT_DUMP), path)
    return path


@pytest.fixture(scope="session")
def pristine(default_elf):
    """(KernelDump, table pages, [(PA, bytes)] of each segment) of the default dump, for mutations."""
    from pagewalk import KernelDump
    from pagewalk.dump.extract import table_pages
    dump = KernelDump.open(default_elf)
    pages = sorted(table_pages(dump))
    chunks = [(seg.start, dump.memory.read(seg.start, seg.end - seg.start)) for seg in dump.memory.segments]
    return dump, pages, chunks
