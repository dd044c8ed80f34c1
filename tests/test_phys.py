"""Physical memory: simulated RAM and its allocator, ELF cores (several segments, holes, zero fill)."""

import struct

import numpy as np
import pytest

from pagewalk.errors import DumpError, PhysicalAddressError, PoisonedPageError, ReadOnlyMemoryError
from pagewalk.phys.dumpfile import open_dump_memory
from pagewalk.phys.elfcore import ElfCoreMemory, Note, write_elf_core
from pagewalk.phys.memory import PhysicalMemory
from pagewalk.phys.ram import SimulatedRAM
from pagewalk.phys.vmcoreinfo import VmcoreInfo


def test_simulated_ram_reads_zero_and_writes_words():
    ram = SimulatedRAM(base=0x40000000, size=1 << 20)
    assert isinstance(ram, PhysicalMemory)
    assert ram.read_u64(0x40001000) == 0
    ram.write_u64(0x40001008, 0x1122334455667788)
    assert ram.read(0x40001008, 8) == struct.pack("<Q", 0x1122334455667788)
    assert ram.read_table(0x40001000, 2).tolist() == [0, 0x1122334455667788]
    with pytest.raises(PhysicalAddressError, match="0x3ffff000"):
        ram.read_u64(0x3ffff000)


def test_allocator_counts_poisons_and_fails_on_demand():
    ram = SimulatedRAM(base=0x40000000, size=16 * 4096)
    a, b = ram.alloc_page(), ram.alloc_page()
    assert ram.live_pages == 2 and a != b
    ram.write_u64(a, 5)
    ram.free_page(a)
    assert ram.live_pages == 1
    with pytest.raises(PoisonedPageError, match="stale table pointer"):
        ram.read_u64(a + 16)
    ram.fail_nth_allocation(2)
    assert ram.alloc_page() is not None
    assert ram.alloc_page() is None
    assert ram.alloc_page() is not None
    pages = [ram.alloc_page() for _ in range(20)]
    assert None in pages                                   # exhaustion returns None, like NULL
    again = [p for p in pages if p == a]
    assert again and ram.read_u64(a) == 0                   # reallocated pages come back zeroed


def _core(tmp_path, segments, notes=None, name="core.elf"):
    path = tmp_path / name
    write_elf_core(path, notes or [Note("VMCOREINFO", 0, b"PAGESIZE=4096\n")], segments)
    return path


def test_elf_core_segments_holes_and_zero_fill(tmp_path):
    path = _core(tmp_path, [(0x1000, b"\x01" * 0x1000), (0x4000, b"\x02" * 0x1000)])
    data = bytearray(path.read_bytes())
    # make the second segment's memsz larger than its filesz: the tail reads as zero
    phoff = struct.unpack_from("<Q", data, 32)[0]
    struct.pack_into("<Q", data, phoff + 2 * 56 + 40, 0x2000)
    path.write_bytes(data)
    mem = ElfCoreMemory(path)
    assert mem.ranges() == [(0x1000, 0x2000), (0x4000, 0x6000)]
    assert mem.read_u64(0x1008) == 0x0101010101010101
    assert mem.read_u64(0x5000) == 0 and mem.read(0x4ffc, 8) == b"\x02" * 4 + b"\0" * 4
    assert not mem.is_backed(0x2000) and mem.is_backed(0x5ff8)
    with pytest.raises(PhysicalAddressError, match="0x3000"):
        mem.read_u64(0x3000)
    with pytest.raises(ReadOnlyMemoryError):
        mem.write_u64(0x1000, 1)
    values, ok = mem.gather_u64(np.array([0x1000, 0x3000, 0x5008], dtype=np.uint64))
    assert ok.tolist() == [True, False, True] and values[0] == 0x0101010101010101 and values[2] == 0


@pytest.mark.parametrize("mutate,message", [
    (lambda d: b"garbage" + bytes(100), "not an ELF"),
    (lambda d: d[:40], "not an ELF core|outside the file"),
    (lambda d: d[:-100], "truncated"),
    (lambda d: d[:18] + struct.pack("<H", 62) + d[20:], "not arm64"),
    (lambda d: d[:16] + struct.pack("<H", 2) + d[18:], "not a core dump"),
])
def test_bad_elf_files_give_clear_errors(tmp_path, mutate, message):
    path = _core(tmp_path, [(0x1000, b"\x01" * 0x1000)])
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(DumpError, match=message):
        open_dump_memory(path)


def test_missing_file(tmp_path):
    with pytest.raises(DumpError, match="cannot open"):
        open_dump_memory(tmp_path / "nope.elf")


def test_zst_is_streamed_to_a_file(tmp_path):
    import zstandard
    path = _core(tmp_path, [(0x1000, b"\x03" * 0x2000)])
    zst = tmp_path / "core.elf.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(path.read_bytes()))
    assert open_dump_memory(zst).read_u64(0x2ff8) == 0x0303030303030303
    zst.write_bytes(zst.read_bytes()[:-20])
    with pytest.raises(DumpError, match="zstd"):
        open_dump_memory(zst)


def test_vmcoreinfo_value_rules():
    info = VmcoreInfo.parse("OSRELEASE=6.12.117-ptdump\nNUMBER(PHYS_OFFSET)=0xfff0ddf400000000\n"
                            "SYMBOL(swapper_pg_dir)=ffff99c54315c000\nKERNELOFFSET=19c4c2c00000\n"
                            "NUMBER(VA_BITS)=52\nNUMBER(PAGE_SLAB_MAPCOUNT_VALUE)=-184549376\nNUMBER(TCR_EL1_T1SZ)=0xc\n")
    assert info.kernel_version == (6, 12, 117)
    assert info.phys_offset == 0xfff0ddf400000000
    assert info.swapper_pg_dir == 0xffff99c54315c000 and info.kernel_offset == 0x19c4c2c00000
    assert info.va_bits == 52 and info.t1sz == 12
    assert info.number("PAGE_SLAB_MAPCOUNT_VALUE") == -184549376
    with pytest.raises(DumpError, match="VMALLOC_START"):
        info.number("VMALLOC_START")


def test_overlapping_segments_like_kdump(tmp_path):
    """kdump writes the kernel text again as its own PT_LOAD inside the RAM segment."""
    ram = bytes(range(256)) * 32                              # 8 KiB
    path = _core(tmp_path, [(0x1000, ram * 4), (0x3000, ram[:0x1000]), (0x20000, ram)])
    mem = ElfCoreMemory(path)
    for pa in (0x1000, 0x2ff8, 0x3000, 0x4000, 0x8ff8):
        assert mem.read_u64(0x20000) == int.from_bytes(ram[:8], "little")    # move the lookup cache away
        assert mem.read(pa, 8) == (ram * 4)[pa - 0x1000:pa - 0x1000 + 8]
        mem.read_u64(0x20000)
        assert mem.read_u64(pa) == int.from_bytes((ram * 4)[pa - 0x1000:pa - 0x1000 + 8], "little")
    assert mem.is_backed(0x5000) and mem.ranges() == [(0x1000, 0x9000), (0x20000, 0x22000)]
    values, ok = mem.gather_u64(np.array([0x4000, 0x8ff8], dtype=np.uint64))
    assert ok.all() and values[0] == mem.read_u64(0x4000)
