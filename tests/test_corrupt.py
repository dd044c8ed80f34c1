"""Corrupted page tables and dumps: always a clear error or a fault, never a crash or a hang."""


import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dumphelp import patched_core
from pagewalk import KernelDump
from pagewalk.errors import PagewalkError
from pagewalk.phys.elfcore import ElfCoreMemory, Note, write_elf_core


def _corrupted(tmp_path, pristine, flips):
    """The pristine dump with bits flipped in its table pages (or PagewalkError: open refused it)."""
    dump, pages, chunks = pristine
    data = {pa: bytearray(blob) for pa, blob in chunks}
    for page_index, word, bit in flips:
        page = pages[page_index % len(pages)]
        for base, blob in data.items():
            if base <= page < base + len(blob):
                off = page - base + (word % 512) * 8 + bit // 8
                blob[off] ^= 1 << (bit % 8)
    path = tmp_path / "corrupt.elf"
    write_elf_core(path, dump.memory.notes, [(pa, bytes(b)) for pa, b in data.items()])
    try:
        return KernelDump(ElfCoreMemory(path), search_config=False)
    except PagewalkError as e:
        return e


flip = st.tuples(st.integers(0, 10_000), st.integers(0, 511), st.integers(0, 63))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(flip, min_size=1, max_size=8), st.lists(st.integers(0, (1 << 48) - 1), min_size=1, max_size=20))
def test_bit_flips_never_crash(tmp_path, pristine, flips, offsets):
    dump = _corrupted(tmp_path, pristine, flips)
    if isinstance(dump, PagewalkError):
        assert "0x" in str(dump) or "swapper_pg_dir" in str(dump)
        return
    for off in offsets:
        t = dump.translate((0xffff << 48) | off)
        assert t.mapped or t.fault
        if t.corrupt:
            assert "0x" in t.fault
    try:
        dump.ptdump()
        dump.check_wx()
    except PagewalkError as e:
        assert "0x" in str(e)


def _with_entry(tmp_path, pristine, entry_pa: int, value: int) -> KernelDump:
    """The pristine dump with one 64-bit word replaced."""
    return KernelDump.open(patched_core(tmp_path, pristine, {entry_pa: value}), search_config=False, force=True)


def test_self_referencing_table_is_reported(tmp_path, pristine):
    dump = pristine[0]
    l1 = dump.translate(dump.vmcoreinfo.swapper_pg_dir).steps[1]
    loop = _with_entry(tmp_path, pristine, l1.entry_pa, (l1.table_pa & 0x0000FFFFFFFFF000) | 3)  # its own table
    t = loop.translate(dump.vmcoreinfo.swapper_pg_dir)
    assert t.fault_kind == "table-loop" and f"{l1.table_pa:#x}" in t.fault


def test_table_pointer_outside_ram(tmp_path, pristine):
    dump = pristine[0]
    step = dump.translate(dump.vmcoreinfo.swapper_pg_dir).steps[2]
    bad = _with_entry(tmp_path, pristine, step.entry_pa, 0x7770000000 | 3)
    t = bad.translate(dump.vmcoreinfo.swapper_pg_dir)
    assert t.fault_kind == "external-abort" and "0x7770000000" in t.fault
    text = bad.ptdump()                       # the walk goes on elsewhere and says what it skipped
    assert text.startswith("---[ Linear Mapping start ]---") and len(text.splitlines()) > 20
    assert any("0x7770000000" in p and "outside memory" in p for p in bad.problems)


def test_no_vmcoreinfo(tmp_path):
    path = tmp_path / "plain.elf"
    write_elf_core(path, [Note("CORE", 1, b"x" * 8)], [(0x40000000, bytes(4096))])
    with pytest.raises(PagewalkError, match="no VMCOREINFO"):
        KernelDump.open(path)


def test_vmcoreinfo_with_impossible_geometry(tmp_path):
    text = b"OSRELEASE=6.12.0\nPAGESIZE=4096\nNUMBER(VA_BITS)=48\nNUMBER(TCR_EL1_T1SZ)=0x4\n" \
           b"SYMBOL(swapper_pg_dir)=ffff800081000000\nNUMBER(kimage_voffset)=0xffff800040000000\n"
    path = tmp_path / "odd.elf"
    write_elf_core(path, [Note("VMCOREINFO", 0, text)], [(0x40000000, bytes(4096))])
    with pytest.raises(PagewalkError, match="geometry"):
        KernelDump.open(path)
