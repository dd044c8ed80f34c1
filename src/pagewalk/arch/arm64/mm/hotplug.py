"""Memory hot-add and hot-remove of the linear map and vmemmap (linux: arch/arm64/mm/mmu.c
`arch_add_memory()`, `arch_remove_memory()`, `__remove_pgd_mapping()`, `unmap_hotplug_range()`,
`free_empty_tables()`, `vmemmap_free()`). Spec: kernel-pgtable-freeing.md F12, F13.

Removal clears the leaves (one TLB flush for the linear map, one per page for vmemmap), then frees
every table left empty, children before parents, each unlinked and flushed before it is freed,
and only tables that lie wholly inside [floor, ceiling) (`pgtable_range_aligned()`). The caller
holds mem_hotplug_lock for write (F14).
"""

from ..asm.pgtable import PGD, PTE, Offset
from ..asm.pgtable_hwdef import MT_NORMAL_TAGGED
from .create_mapping import NO_BLOCK_MAPPINGS, NO_CONT_MAPPINGS, NO_EXEC_MAPPINGS, create_pgd_mapping
from .mapping import Prot
from .paging_init import lm, sections, vmemmap_populate_section, vmemmap_range

__all__ = ["arch_add_memory", "arch_remove_memory", "unmap_hotplug_range", "free_empty_tables"]


def arch_add_memory(k, start: int, size: int) -> int:
    """The linear map of `[start, start + size)` (NO_EXEC; page-granular where the boot map is), then
    __add_pages(): the struct pages of each section. When those fail the linear map is removed again
    (`__remove_pgd_mapping()`); 0 or -ENOMEM. (Linux BUGs when the linear map itself gets no table page.)"""
    flags = NO_EXEC_MAPPINGS
    if k.config.linear_map_page_granular():
        flags |= NO_BLOCK_MAPPINGS | NO_CONT_MAPPINGS
    err = create_pgd_mapping(k, start, lm(k, start), size, Prot.kernel(k, attrindx=MT_NORMAL_TAGGED), flags)
    if err:
        k.machine.log.bug("pgd_pgtable_alloc_init_mm", f"no page for the linear map of {start:#x}+{size:#x}")
        return err
    for s in sections(k, start, start + size):
        err = vmemmap_populate_section(k, s)
        if err:
            _remove_pgd_mapping(k, start, size)
            return err
    return 0


def arch_remove_memory(k, start: int, size: int) -> None:
    """__remove_pages() (vmemmap_free() of each section) then __remove_pgd_mapping() of the linear map."""
    lay = k.layout
    for s in sections(k, start, start + size):
        vstart, vend = vmemmap_range(k, s)
        unmap_hotplug_range(k, vstart, vend, per_page_flush=True)
        free_empty_tables(k, vstart, vend, lay.vmemmap_start, lay.vmemmap_end)
    _remove_pgd_mapping(k, start, size)


def _remove_pgd_mapping(k, start: int, size: int) -> None:
    """`__remove_pgd_mapping(swapper_pg_dir, __phys_to_virt(start), size)`."""
    unmap_hotplug_range(k, lm(k, start), lm(k, start) + size)
    free_empty_tables(k, lm(k, start), lm(k, start) + size, k.page_offset, k.layout.page_end)


def unmap_hotplug_range(k, start: int, end: int, per_page_flush: bool = False) -> None:
    """Clear every leaf of `[start, end)` (READ_ONCE per level); flush once at the end, or after each
    vmemmap leaf (`free_mapped`)."""
    arch, memory = k.machine.arch, k.machine.memory
    va = start
    while va < end:
        found = arch.lookup(memory.read_u64, k.machine.swapper_pg_dir, va)
        if found is None:
            va += arch.page_size
            continue
        depth, ptr = found
        size = 1 << arch.shift[depth]
        k.write_entry(ptr, 0)
        if per_page_flush:
            k.flush_tlb_kernel_range(va & ~(size - 1), (va & ~(size - 1)) + size, "unmap_hotplug_range")
        va = (va & ~(size - 1)) + size
    if not per_page_flush:
        k.flush_tlb_kernel_range(start, end, "unmap_hotplug_range")


def _range_aligned(start: int, end: int, floor: int, ceiling: int, mask: int) -> bool:
    """`pgtable_range_aligned()`: the table spanning `start` lies inside [floor, ceiling)."""
    start &= mask
    if start < floor:
        return False
    ceiling &= mask
    return ceiling != 0 and end - 1 <= ceiling - 1


def free_empty_tables(k, addr: int, end: int, floor: int, ceiling: int) -> None:
    """free_empty_{p4d,pud,pmd,pte}_table() below every PGD entry of `[addr, end)`."""
    arch = k.machine.arch
    ptr = arch.pgd_offset(k.machine.swapper_pg_dir, addr)
    while addr < end:
        nxt = arch.addr_end(PGD, addr, end)
        if k.machine.memory.read_u64(ptr):
            _free_below(k, PGD, ptr, addr, nxt, floor, ceiling)
        addr, ptr = nxt, ptr + 8


def _free_below(k, depth: int, ptr: int, addr: int, end: int, floor: int, ceiling: int) -> None:
    """The table the entry at `ptr` (level `depth`) points to: its children first, then itself if now empty
    (pmd_clear/pud_clear/p4d_clear, __flush_tlb_kernel_pgtable, free_hotplug_pgtable_page)."""
    arch, memory = k.machine.arch, k.machine.memory
    child_depth = depth + 1
    child = arch.offset(child_depth, ptr, memory.read_u64(ptr), addr)
    start = addr
    if child_depth < PTE:
        a, p = addr, child
        while a < end:
            nxt = arch.addr_end(child_depth, a, end)
            val = memory.read_u64(p)
            if val and not arch.leaf(child_depth, val):
                _free_below(k, child_depth, p, a, nxt, floor, ceiling)
            a, p = nxt, p + 8
    if arch.offsets[child_depth] is not Offset.TABLE:       # a level folded at build or run time
        return
    if not _range_aligned(start, end, floor, ceiling, ~((1 << arch.shift[depth]) - 1)):
        return
    table = arch.table_address(memory.read_u64(ptr))
    if memory.read_table(table, arch.ptrs[child_depth]).any():
        return
    k.write_entry(ptr, 0)
    k.flush_tlb_kernel_range(start, start + arch.page_size, "__flush_tlb_kernel_pgtable")
    memory.free_page(table)

