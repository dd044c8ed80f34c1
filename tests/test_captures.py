"""The walker and translation against the real kernels in ../shared/captures.

Expected values come from the captures themselves: ptdump.txt (the kernel's
own dump), vmcoreinfo.txt and kallsyms.txt, never from pagewalk's output.
"""

import random

import numpy as np
import pytest

from conftest import CAPTURE_NAMES, CAPTURES, kallsyms, needs_shared, ptdump_ranges, read_kv

pytestmark = needs_shared


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_ptdump_is_byte_identical(open_capture, name):
    dump = open_capture(name)
    assert dump.ptdump() == (CAPTURES / name / "ptdump.txt").read_text()


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_ptdump_from_kallsyms_only_is_byte_identical(open_capture, name):
    """Without a kernel config the fixmap marker comes from the dump's own symbol table."""
    from pagewalk import KernelDump
    dump = KernelDump(open_capture(name).memory, search_config=False)
    assert dump.options_source.options.source == "kallsyms"
    assert dump.ptdump() == (CAPTURES / name / "ptdump.txt").read_text()


def _columns(attrs: str) -> dict:
    """Attribute columns by position (arm64-ptdump.md §6.2), relative to the text after the level name."""
    line = " " * 54 + attrs
    return {"valid": line[55] != "F", "user": line[57:60] == "USR", "ro": line[61:63] == "ro",
            "nx": line[64:66] == "NX", "memtype": line[92:] or None}


def _samples(name):
    """(va, start, end, level, attrs, marker): start, middle, last byte and 7 random addresses of every line."""
    rng = random.Random(f"samples-{name}")
    out = []
    for start, end, level, attrs, marker in ptdump_ranges(CAPTURES / name / "ptdump.txt"):
        vas = {start, start + (end - start) // 2 & ~7, end - 1} | {rng.randrange(start, end) for _ in range(7)}
        out += [(va, start, end, level, attrs, marker) for va in sorted(vas)]
    return out


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_vtop_agrees_with_the_kernels_ptdump(open_capture, name):
    dump = open_capture(name)
    info = read_kv(CAPTURES / name / "vmcoreinfo.txt")
    syms = kallsyms(CAPTURES / name / "kallsyms.txt")
    page_offset = (1 << 64) - (1 << int(info["NUMBER(VA_BITS)"]))
    phys_offset = int(info["NUMBER(PHYS_OFFSET)"], 16)
    kimage_voffset = int(info["NUMBER(kimage_voffset)"], 16)
    hw_level = {"PTE": 3, "PMD": 2}
    samples = _samples(name)
    assert len(samples) > 1000
    checked = {"hole": 0, "F": 0, "linear": 0, "image": 0, "mapped": 0}
    for va, start, end, level, attrs, marker in samples:
        t = dump.translate(va)
        where = f"{name}: {va:#x} in line {start:#x}-{end:#x} {level}{attrs}"
        if not attrs.strip():
            assert not t.mapped, where
            checked["hole"] += 1
            continue
        col = _columns(attrs)
        if not col["valid"]:
            assert not t.mapped and t.fault_kind == "translation", where
            checked["F"] += 1
            continue
        assert t.mapped, where
        assert t.writable == (not col["ro"]), where
        assert t.executable == (not col["nx"]), where
        assert t.attr == col["memtype"], where
        if level in hw_level:
            assert t.level == hw_level[level], where
        if marker == "Linear Mapping start":
            assert t.pa == (va - page_offset + phys_offset) % (1 << 64), where
            checked["linear"] += 1
        if syms["_text"] <= va < syms["_end"]:
            assert t.pa == va - kimage_voffset, where
            checked["image"] += 1
        checked["mapped"] += 1
    assert checked["hole"] and checked["mapped"] and checked["linear"] and checked["image"], checked
    if "kfence" in name:
        assert checked["F"], checked


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_batch_and_fast_translation_match_the_traced_walk(open_capture, name):
    dump = open_capture(name)
    rng = random.Random(name)
    vas = [va + rng.randrange(0, 4096, 8) % max(1, end - va) for va, start, end, *_ in _samples(name)]
    batch = dump.translate_batch(np.array(vas, dtype=np.uint64))
    for i, va in enumerate(vas):
        t = dump.translate(va)
        assert dump.virt_to_phys(va) == t.pa, hex(va)
        assert bool(batch.mapped[i]) == t.mapped, hex(va)
        if t.mapped:
            assert int(batch.pa[i]) == t.pa and int(batch.level[i]) == t.level, hex(va)


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_swapper_pg_dir_translates_to_the_ttbr1_table(open_capture, name):
    """aarch64-vmsa.md §8.5/8.14: swapper_pg_dir's PA is TTBR1's base (regs.txt) and its linear alias maps to it."""
    dump = open_capture(name)
    regs = read_kv(CAPTURES / name / "regs.txt")
    ttbr1 = int(regs["TTBR1_EL1"], 16)
    tcr = int(regs["TCR_EL1"], 16)
    ds = (tcr >> 59) & 1
    pa52 = dump.geometry.pa52_64k or ds
    base = ((ttbr1 & 0x0000FFFFFFFFFFC0) | ((ttbr1 >> 2) & 0xF) << 48) if pa52 else ttbr1 & 0x0000FFFFFFFFFFFE
    assert dump.ttbr1 == base
    assert dump.translate(dump.vmcoreinfo.swapper_pg_dir).pa == dump.swapper_pg_dir
    assert dump.translate(dump.phys_to_virt(dump.swapper_pg_dir)).pa == dump.swapper_pg_dir


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_check_wx_agrees_with_dmesg(open_capture, name):
    dmesg = (CAPTURES / name / "dmesg.txt").read_text()
    summary = open_capture(name).check_wx().wx_summary()
    assert summary in dmesg
