"""arm64's side of huge vmap (linux: arch/arm64/include/asm/vmalloc.h `arch_vmap_pmd_supported()`,
`arch_vmap_pud_supported()`; arch/arm64/mm/mmu.c `pmd_set_huge()`, `pud_set_huge()`,
`pmd_free_pte_page()`, `pud_free_pmd_page()`). Spec: kernel-pgtable-freeing.md F3, F6-F8.

Promoting a range to a block over a still-linked table frees that table: unlink, flush, free
(F6). 6.18 inserts an empty init_mm read lock while `arm64_ptdump_lock_key` is on, so a ptdump
holding the write lock finishes first (F8); its `pud_free_pmd_page()` isolates the PMD table
before freeing the PTE tables under it. The other eras free the children while the PMD table is
still linked (F7). Table pages are freed at once (F9).
"""

from ..asm.pgtable import PMD, PUD
from ..asm.pgtable_hwdef import PMD_TYPE_MASK, PMD_TYPE_SECT, PMD_TYPE_TABLE
from .ptdump import uses_ptdump_lock_key

__all__ = ["arch_vmap_pmd_supported", "arch_vmap_pud_supported", "pxd_set_huge", "pmd_free_pte_page",
           "pud_free_pmd_page"]


def arch_vmap_pmd_supported(k) -> bool:
    """False with CONFIG_PTDUMP_DEBUGFS before 6.18: "SW table walks can't handle removal of intermediate
    entries" (F3)."""
    return not (k.config.ptdump_debugfs and k.machine.era.huge_vmap_off_with_ptdump_debugfs)


def arch_vmap_pud_supported(k) -> bool:
    """pud_sect_supported() (4K pages only), and the same PTDUMP_DEBUGFS gate (F3)."""
    return k.machine.arch.page_size == 4096 and arch_vmap_pmd_supported(k)


def pxd_set_huge(k, depth: int, ptr: int, phys: int, prot: int) -> int:
    """`pmd_set_huge()` / `pud_set_huge()`: a block descriptor; 1."""
    arch = k.machine.arch
    k.write_entry(ptr, prot & ~PMD_TYPE_MASK | PMD_TYPE_SECT | arch.hw.encode_address(phys, arch.shift[depth]))
    return 1


def _read(k, ptr: int) -> int:
    return k.machine.memory.read_u64(ptr)


def _ptdump_lock_round_trip(k) -> None:
    """6.18: if a ptdump walk may be running, wait for it: mmap_read_lock(&init_mm); mmap_read_unlock()."""
    machine = k.machine
    if uses_ptdump_lock_key(machine) and machine.static_key("arm64_ptdump_lock_key").enabled():
        machine.init_mm.mmap_lock.down_read()
        machine.init_mm.mmap_lock.up_read()


def _is_table(k, ptr: int, depth: int) -> bool:
    """Step (1): READ_ONCE(*pXdp); not a table is a VM_WARN_ON and nothing is freed."""
    if _read(k, ptr) & PMD_TYPE_MASK == PMD_TYPE_TABLE:
        return True
    k.machine.log.warn_on(f"{'pmd' if depth == PMD else 'pud'}_free_{'pte' if depth == PMD else 'pmd'}_page",
                          f"entry {_read(k, ptr):#x} at {ptr:#x} is not a table")
    return False


def _table_entry_gone(k, ptr: int, addr: int, depth: int) -> int:
    """Steps (2)-(4) of F6/F7: the table below `ptr`, unlinked and flushed."""
    arch = k.machine.arch
    table = arch.table_address(_read(k, ptr))           # pte_offset_kernel() / pmd_offset() read it again
    k.write_entry(ptr, 0)
    k.flush_tlb_kernel_range(addr, addr + (1 << arch.shift[depth]), "__flush_tlb_kernel_pgtable")
    return table


def _pmd_free_pte_page(k, pmdp: int, addr: int, acquire_mmap_lock: bool) -> int:
    if not _is_table(k, pmdp, PMD):
        return 1
    table = _table_entry_gone(k, pmdp, addr, PMD)
    if acquire_mmap_lock:
        _ptdump_lock_round_trip(k)
    k.machine.memory.free_page(table)                    # pte_free_kernel()
    return 1


def pmd_free_pte_page(k, pmdp: int, addr: int) -> int:
    """Free the PTE table under a PMD entry about to become a block (F6, F8); always 1."""
    return _pmd_free_pte_page(k, pmdp, addr, True)


def pud_free_pmd_page(k, pudp: int, addr: int) -> int:
    """Free the PMD table under a PUD entry and the PTE tables under it (F7; 6.18: F8)."""
    arch, variants = k.machine.arch, k.machine.variants
    if not _is_table(k, pudp, PUD):
        return 1
    pmd_table = arch.table_address(_read(k, pudp))
    isolate_first = uses_ptdump_lock_key(k.machine) and not variants & {"children-unlocked", "children-locked"}
    if isolate_first:                                    # 6.18: pud_clear, flush, wait for ptdump, then children
        _table_entry_gone(k, pudp, addr, PUD)
        _ptdump_lock_round_trip(k)
    pmd = 1 << arch.shift[PMD]
    for i in range(arch.ptrs[PMD]):
        slot = pmd_table + 8 * i
        if arch.present(PMD, _read(k, slot)):
            _pmd_free_pte_page(k, slot, addr + i * pmd, not isolate_first and "children-unlocked" not in variants)
    if not isolate_first:
        _table_entry_gone(k, pudp, addr, PUD)
        if "children-unlocked" in variants or "children-locked" in variants:
            _ptdump_lock_round_trip(k)
    k.machine.memory.free_page(pmd_table)                # pmd_free()
    return 1
