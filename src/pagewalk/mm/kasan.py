"""KASAN's zero shadow for memory added at run time (linux: mm/kasan/init.c `kasan_add_zero_shadow()`,
`kasan_remove_zero_shadow()`, `kasan_free_pmd()`). Spec: kernel-pgtable-freeing.md F15, S-p.

The shadow of `[start, start + size)` is `[start >> 3, ...) + KASAN_SHADOW_OFFSET` (generic KASAN).
Each PMD-aligned piece points at the shared early-shadow PTE table; a PMD table that did not exist is
allocated. Removal clears those entries and frees a PMD table left empty *before* clearing the PUD
entry that links it, without a TLB flush (F15): only mem_hotplug_lock could protect a walker, and
pagemap_range()'s error path calls it after mem_hotplug_done().
"""

from errno import ENOMEM

from ..arch.arm64.asm.pgtable import PGD, PMD, PUD, Offset

__all__ = ["kasan_shadow", "kasan_add_zero_shadow", "kasan_remove_zero_shadow"]

KASAN_SHADOW_SCALE_SHIFT = 3


def kasan_shadow(addr: int, offset: int) -> int:
    """`kasan_mem_to_shadow()`."""
    return ((addr >> KASAN_SHADOW_SCALE_SHIFT) + offset) & ((1 << 64) - 1)


def _pud(k, addr: int, alloc: bool = False) -> int | None:
    """The PUD entry of `addr`; `alloc`: allocate missing upper tables (p4d_alloc/pud_alloc)."""
    arch, memory = k.machine.arch, k.machine.memory
    ptr = arch.pgd_offset(k.machine.swapper_pg_dir, addr)
    for depth in range(PGD, PUD):
        if arch.offsets[depth + 1] is Offset.TABLE and memory.read_u64(ptr) == 0:
            if not alloc:
                return None
            table = memory.alloc_page()
            if table is None:
                return None
            k.write_entry(ptr, arch.table_descriptor(table, kernel=True))
        ptr = arch.offset(depth + 1, ptr, memory.read_u64(ptr), addr)
    return ptr


def kasan_add_zero_shadow(k, start: int, size: int, offset: int, early_shadow_pte: int) -> int:
    """Map the shadow of the range to the early shadow (PMD-aligned pieces only: the hot-plug case);
    0 or -ENOMEM."""
    arch, memory = k.machine.arch, k.machine.memory
    pmd_size = 1 << arch.shift[PMD]
    addr, end = kasan_shadow(start, offset), kasan_shadow(start + size, offset)
    while addr < end:
        pud = _pud(k, addr, alloc=True)
        if pud is None:
            return -ENOMEM
        if memory.read_u64(pud) == 0:
            table = memory.alloc_page()                        # pmd_alloc(&init_mm, pud, addr)
            if table is None:
                return -ENOMEM
            k.write_entry(pud, arch.table_descriptor(table, kernel=True))
        pmd = arch.offset(PMD, pud, memory.read_u64(pud), addr)
        k.write_entry(pmd, arch.table_descriptor(early_shadow_pte, kernel=True))
        addr += pmd_size
    return 0


def kasan_remove_zero_shadow(k, start: int, size: int, offset: int) -> None:
    """kasan_remove_pmd_table() then kasan_free_pmd(): clear the entries; a PMD table left empty is freed,
    then unlinked (pmd_free(); pud_clear()), with no flush."""
    arch, memory = k.machine.arch, k.machine.memory
    pmd_size = 1 << arch.shift[PMD]
    addr, end = kasan_shadow(start, offset), kasan_shadow(start + size, offset)
    puds = []
    while addr < end:
        pud = _pud(k, addr)
        if pud is not None and memory.read_u64(pud):
            k.write_entry(arch.offset(PMD, pud, memory.read_u64(pud), addr), 0)
            if pud not in puds:
                puds.append(pud)
        addr += pmd_size
    for pud in puds:
        table = arch.table_address(memory.read_u64(pud))
        if not memory.read_table(table, arch.ptrs[PMD]).any():
            memory.free_page(table)                            # pmd_free(&init_mm, pmd_start)
            k.write_entry(pud, 0)                              # pud_clear(pud)
