"""Dumps of geometries the captures lack (16K, 39/47/52-bit, 64K/42, 2-5 levels).

A kernel is booted in the simulator, its RAM is written as an ELF core with a
VMCOREINFO note, and the dump is opened like any other: linear-map addresses
must translate to `VA - PAGE_OFFSET + PHYS_OFFSET`, kernel-image addresses to
`VA - kimage_voffset`, and ptdump must follow the format rules of
arm64-ptdump.md §10 (line regex, contiguity, size unit, first marker).
"""

import random
import re

import pytest

from pagewalk import KernelDump, boot
from pagewalk.phys.elfcore import Note, write_elf_core

#: (granule, build VA_BITS, CPU VA bits): the last three are 52-bit builds on smaller CPUs (run-time folding).
GEOMETRIES = [(4096, 39, 39), (4096, 48, 48), (4096, 52, 52), (16384, 36, 36), (16384, 47, 47), (16384, 48, 48),
              (16384, 52, 52), (65536, 42, 42), (65536, 48, 48), (65536, 52, 52),
              (4096, 52, 48), (16384, 52, 47), (65536, 52, 48)]
LINE = re.compile(r"^0x[0-9a-f]{16}-0x[0-9a-f]{16}   [ 0-9]{8}[0-9][KMGTPE] (PGD|P4D|PUD|PMD|PTE)( .*)?$")


def write_dump(k, path, version="6.12.117"):
    """The booted kernel as a QEMU-style ELF core: one PT_LOAD of its RAM, a VMCOREINFO note."""
    cfg, lay, mem = k.config, k.layout, k.machine.memory
    kimage_voffset = k.image.kimage_voffset
    swapper_va = k.machine.swapper_pg_dir + kimage_voffset
    info = "\n".join([
        f"OSRELEASE={version}-synthetic", f"PAGESIZE={cfg.page_size}", f"NUMBER(VA_BITS)={cfg.va_bits}",
        f"NUMBER(TCR_EL1_T1SZ)={64 - k.machine.arch.vabits_actual:#x}", f"SYMBOL(swapper_pg_dir)={swapper_va:x}",
        f"NUMBER(kimage_voffset)={kimage_voffset:#x}", f"NUMBER(PHYS_OFFSET)={k.phys_offset:#x}",
        f"KERNELOFFSET={0:x}", f"NUMBER(MODULES_VADDR)={lay.modules_vaddr:#x}",
        f"NUMBER(MODULES_END)={lay.modules_end:#x}", f"NUMBER(VMALLOC_START)={lay.vmalloc_start:#x}",
        f"NUMBER(VMALLOC_END)={lay.vmalloc_end:#x}", f"NUMBER(VMEMMAP_START)={lay.vmemmap_start:#x}",
        f"NUMBER(VMEMMAP_END)={lay.vmemmap_end:#x}", "SIZE(page)=64",
        f"NUMBER(MAX_PHYSMEM_BITS)={52 if cfg.va_bits == 52 else 48}", ""]).encode()
    write_elf_core(path, [Note("VMCOREINFO", 0, info)], [(cfg.ram_base, mem.read(cfg.ram_base, cfg.ram))])
    return kimage_voffset


@pytest.mark.parametrize("page_size,va_bits,actual", GEOMETRIES)
def test_synthetic_dump_translates_and_dumps(tmp_path, page_size, va_bits, actual):
    k = boot(era="6.12", page_size=page_size, va_bits=va_bits, vabits_actual=actual, rodata="on",
             ram=256 << 20, checks=False)
    v = k.vmalloc(3 * page_size)
    path = tmp_path / "core.elf"
    kimage_voffset = write_dump(k, path)
    d = KernelDump.open(path, search_config=False)
    assert d.geometry.levels == k.machine.arch.hw.levels and d.swapper_pg_dir == k.machine.swapper_pg_dir
    rng = random.Random(page_size * va_bits + actual)
    for _ in range(200):
        pa = k.config.ram_base + rng.randrange(0, k.config.ram, 8)
        va = (pa - k.config.ram_base) + d.layout.page_offset_actual
        assert d.translate(va).pa == pa and d.virt_to_phys(va) == pa and d.lm_to_phys(va) == pa
    text_va = d.layout.kimage_vaddr + 0x1234
    assert d.translate(text_va).pa == text_va - kimage_voffset
    backing = k.vmalloc_space.find_vm_area(v).pages                   # the frames vmalloc() mapped
    assert [d.translate(v + i * page_size).pa for i in range(3)] == [pfn * page_size for pfn in backing]
    assert d.translate(v + 3 * page_size).fault_kind == "translation"  # the guard page
    lines = d.ptdump().splitlines()
    assert lines[0] == "---[ Linear Mapping start ]---"
    ranges = [line for line in lines if not line.startswith("---[")]
    assert all(LINE.match(line) and line == line.rstrip() for line in ranges)
    ends = [(int(line[2:18], 16), int(line[21:37], 16)) for line in ranges]
    assert all(a[1] == b[0] for a, b in zip(ends, ends[1:])) and ends[-1][1] == 0
    assert d.check_wx().wx_summary() == "Checked W+X mappings: passed, no W+X pages found"   # text ROX, rest NX


@pytest.mark.parametrize("page_size,va_bits,actual,p4d_folded,pud_folded", [
    (4096, 48, 48, True, False),        # 4 levels: P4D folded at build time, PUD real
    (4096, 52, 52, False, False),       # 5 levels, LPA2 CPU
    (4096, 52, 48, True, False),        # LPA2 5-level build running 4 levels: P4D folded at run time
    (16384, 52, 47, True, True),        # 16K LPA2 build running 3 levels: PUD folded at run time
    (4096, 39, 39, True, True),         # any 3-level build
    (65536, 48, 48, True, True),
])
def test_ptdump_top_hardware_level_is_pgd(page_size, va_bits, actual, p4d_folded, pud_folded):
    """arm64-ptdump.md §5 (6.12, 7.x): the top hardware level is always named PGD; note_page() remaps a P4D
    note when mm_p4d_folded() and a PUD note when mm_pud_folded(), and only then."""
    from pagewalk.arch.arm64.asm.pgtable import Arm64PageTables
    pt = Arm64PageTables(page_size, va_bits, actual, (6, 12, 117))
    assert (pt.mm_p4d_folded(), pt.mm_pud_folded()) == (p4d_folded, pud_folded)
