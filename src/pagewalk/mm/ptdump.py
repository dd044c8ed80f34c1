"""The generic ptdump walker user (linux: mm/ptdump.c).

`ptdump_walk_pgd()` takes the mmap write locks the walk entry asserts, walks
each range with `walk_page_range_debug()` (6.1: `walk_page_range_novma()`),
forwards every entry and hole to the arch `note_page()`, and flushes with a
final `note_page(0, -1, 0)`. PTE tables go to `note_pages()` in one batch.
"""

from ..arch.arm64.asm.pgtable import P4D, PGD, PMD, PUD
from .pagewalk import ACTION_CONTINUE, mm_walk_ops, walk_page_range_debug, walk_page_range_novma

__all__ = ["ptdump_walk_pgd", "PTDUMP_OPS"]


def _entry(depth: int):
    def ptdump_entry(ptr: int, addr: int, next: int, walk) -> int:
        val = walk.read(ptr)
        if walk.arch.leaf(depth, val):
            walk.private.note_page(addr, depth, val)
            walk.action = ACTION_CONTINUE
        return 0
    return ptdump_entry


def _pte_table(ptr: int, vals, addr: int, end: int, walk) -> int:
    walk.private.note_pages(addr, vals, 4)
    return 0


def _hole(addr: int, next: int, depth: int, walk) -> int:
    walk.private.note_page(addr, depth, 0)
    return 0


PTDUMP_OPS = mm_walk_ops(pgd_entry=_entry(PGD), p4d_entry=_entry(P4D), pud_entry=_entry(PUD),
                         pmd_entry=_entry(PMD), pte_table=_pte_table, pte_hole=_hole)


def ptdump_walk_pgd(state, mm, ranges: list[tuple[int, int]], pgd: int | None = None,
                    online_mems: bool = True) -> None:
    """Walk `ranges` of `mm` into `state` (an arch PgState), then flush.

    Locks as kernel-pgtable-freeing.md F18 orders them: get_online_mems() (`online_mems`: the caller
    says whether this kernel takes it for this walk), mmap_write_lock(mm), the nested init_mm lock."""
    machine = mm.machine
    nested = machine.init_mm if mm is not machine.init_mm else None
    if online_mems:
        machine.mem_hotplug_lock.percpu_down_read()
    mm.mmap_lock.down_write()
    if nested is not None:
        nested.mmap_lock.down_write()
    try:
        walk = walk_page_range_novma if machine.era.novma_walk else walk_page_range_debug
        for start, end in ranges:
            walk(mm, start, end, PTDUMP_OPS, pgd, state)
    finally:
        if nested is not None:
            nested.mmap_lock.up_write()
        mm.mmap_lock.up_write()
        if online_mems:
            machine.mem_hotplug_lock.percpu_up()
    state.note_page(0, -1, 0)
