"""/proc/kcore of a real 7.2 kernel (../shared/kcore): the image assemble.py builds from the kernel's
own kcore header and the same moment's RAM, read like the live file (never mapped: ~2^52 bytes)."""

import os
import random
import shutil
import struct
import subprocess
import sys

import pytest

from conftest import CAPTURES, SHARED, ptdump_ranges
from pagewalk import KernelDump, boot_from_dump
from pagewalk.cli import main
from pagewalk.errors import DumpError
from pagewalk.phys.dumpfile import decompress_zst

KCORE = SHARED / "kcore"
NAMES = sorted(p.name for p in KCORE.glob("*") if (p / "kcore-head.bin").exists()) if KCORE.exists() else []
SHM = "/dev/shm"


@pytest.fixture(scope="module", params=NAMES)
def kcore(request, tmp_path_factory):
    """(path of the assembled image on tmpfs, capture name); removed afterwards."""
    name = request.param
    work = tmp_path_factory.mktemp("kcore")
    (work / "kcore-head.bin").symlink_to(KCORE / name / "kcore-head.bin")
    (work / "dump.elf").symlink_to(decompress_zst(CAPTURES / name / "dump.elf.zst"))
    image = os.path.join(SHM, f"pagewalk-test-kcore-{name}-{os.getpid()}")
    subprocess.run([sys.executable, str(KCORE / "assemble.py"), str(work), image], check=True, capture_output=True)
    yield image, name
    os.unlink(image)


def test_kcore_ptdump_is_the_kernels_own(kcore):
    image, name = kcore
    dump = KernelDump.open(image, config=CAPTURES / name / "kernel.config")
    assert dump.ptdump() == (CAPTURES / name / "ptdump.txt").read_text()
    assert dump.memory.file_size > 1 << 50                    # the apparent size a reader sees
    chunks = dump.memory._backing.chunks
    assert len(chunks) * 4096 < 16 << 20, "bounded: only the pages read are held"


def test_kcore_vtop_and_check_wx_agree_with_the_elf_dump(kcore, open_capture):
    image, name = kcore
    live, elf = KernelDump.open(image, search_config=False), open_capture(name)
    rng = random.Random(name)
    ranges = [(a, b) for a, b, level, attrs, marker in ptdump_ranges(CAPTURES / name / "ptdump.txt") if attrs]
    for a, b in rng.choices(ranges, k=300):
        va = rng.randrange(a, b) & ~7
        x, y = live.translate(va), elf.translate(va)
        assert (x.pa, x.level, x.writable, x.executable, x.steps) == (y.pa, y.level, y.writable, y.executable,
                                                                       y.steps), hex(va)
    assert live.check_wx().wx_summary() in (CAPTURES / name / "dmesg.txt").read_text()


def test_kcore_info_says_live_kernel_and_lists_segments(kcore, capsys):
    image, _ = kcore
    assert main(["info", image]) == 0
    out = capsys.readouterr().out
    assert "/proc/kcore of a live kernel" in out and "virtual only (0xffff8" in out


def test_kcore_changed_pages_are_reported(kcore):
    """A live kernel's tables change under a walk: the command says which pages changed."""
    image, _ = kcore
    dump = KernelDump.open(image, search_config=False)
    dump.ptdump()
    assert dump.memory.read_warnings() == []
    table = dump.swapper_pg_dir
    seg = next(s for s in dump.memory.segments if s.start <= table < s.end)
    offset = seg.offset + table - seg.start + 8 * 511
    with open(image, "r+b") as f:
        f.seek(offset)
        old = f.read(1)
        f.seek(offset)
        f.write(bytes([old[0] ^ 0xFF]))
    try:
        warnings = dump.memory.read_warnings()
        assert len(warnings) == 1 and f"{table:#x}" in warnings[0] and "changed while they were read" in warnings[0]
    finally:
        with open(image, "r+b") as f:
            f.seek(offset)
            f.write(old)


def test_kcore_extract_and_simulated_kernel(kcore, tmp_path):
    image, name = kcore
    out = tmp_path / "mini.elf.zst"
    assert main(["extract", image, str(out)]) == 0
    assert KernelDump.open(out, config=CAPTURES / name / "kernel.config").ptdump() == \
        (CAPTURES / name / "ptdump.txt").read_text()
    k = boot_from_dump(image)
    v = k.vmalloc(2 * k.config.page_size)
    assert k.set_memory_ro(v, 2) == 0 and not k.translate(v).writable


def test_a_non_arm64_kcore_is_named_as_such(tmp_path):
    if not NAMES:
        pytest.skip("ground truth not found")
    head = bytearray((KCORE / NAMES[0] / "kcore-head.bin").read_bytes())
    struct.pack_into("<H", head, 18, 62)                                   # e_machine = EM_X86_64
    path = tmp_path / "kcore"
    path.write_bytes(bytes(head))
    with pytest.raises(DumpError, match="x86_64 kernel, not arm64"):
        KernelDump.open(path)


@pytest.mark.skipif(os.geteuid() == 0 or not os.path.exists("/proc/kcore"), reason="needs a non-root user")
def test_proc_kcore_without_root_says_so():
    with pytest.raises(DumpError, match="needs root"):
        KernelDump.open("/proc/kcore")


def test_kcore_head_alone_is_a_clear_error(tmp_path):
    """The header without the RAM behind it: segments end past the end of the file."""
    if not NAMES:
        pytest.skip("ground truth not found")
    path = tmp_path / "kcore-head.bin"
    shutil.copy(KCORE / NAMES[0] / "kcore-head.bin", path)
    with pytest.raises(DumpError, match="truncated"):
        KernelDump.open(path)
