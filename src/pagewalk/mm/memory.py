"""`apply_to_page_range()` (linux: mm/memory.c, __apply_to_page_range() and the
apply_to_{p4d,pud,pmd,pte}_range() helpers): visit every PTE slot of a kernel
range, allocating missing tables ("create" mode). A leaf at any upper level
is a WARN_ON_ONCE and -EINVAL; a bad entry is warned about, cleared and
replaced by a fresh table. This is arm64 pageattr's engine before v6.18.
"""

from errno import EINVAL, ENOMEM

from ..arch.arm64.asm.pgtable import LEVEL_NAMES, P4D, PGD, PTE, Offset
from ..errors import ReadOnlyMemoryError

__all__ = ["apply_to_page_range"]


def _alloc(mm, depth: int, ptr: int) -> int:
    """`pXd_alloc_track()` for the level below `depth`: allocate when the entry is none."""
    machine = mm.machine
    memory, arch = machine.memory, machine.arch
    if not arch.none(depth, memory.read_u64(ptr)):
        return 0
    if not memory.writable:
        raise ReadOnlyMemoryError(ptr, "a dump: apply_to_page_range would allocate a table")
    machine.context.might_sleep(f"__{LEVEL_NAMES[depth + 1]}_alloc", "GFP_PGTABLE_KERNEL page-table allocation")
    page = memory.alloc_page()
    if page is None:
        return -ENOMEM
    memory.write_u64(ptr, arch.table_descriptor(page, kernel=mm.is_init_mm))
    return 0


def apply_to_page_range(mm, addr: int, size: int, fn, data=None, create: bool = True, *, batch=None) -> int:
    """Call `fn(pte_ptr, addr, data)` for every PTE slot of `[addr, addr + size)`; 0 or -errno.

    `batch(pte_ptr, values, addr, end, data)`, when given, is handed each whole
    PTE-table run at once as a numpy array instead (same effect, one call per table).

    >>> from pagewalk.mm.machine import Machine
    >>> m = Machine.simulated("6.12")
    >>> seen = []
    >>> apply_to_page_range(m.init_mm, 0xffff800080000000, 3 * 4096, lambda pte, addr, data: seen.append(addr))
    0
    >>> len(seen), m.memory.live_pages        # swapper_pg_dir plus the PUD, PMD and PTE tables it allocated
    (3, 4)
    """
    machine = mm.machine
    arch, log = machine.arch, machine.log
    end = addr + size
    if addr >= end:
        log.warn_on("__apply_to_page_range", f"empty range [{addr:#x}, {end:#x})")
        return -EINVAL
    return _apply_level(mm, PGD, arch.pgd_offset(mm.pgd, addr), addr, end, fn, data, create, batch)


def _apply_level(mm, depth: int, ptr: int, addr: int, end: int, fn, data, create: bool, batch) -> int:
    machine = mm.machine
    arch, memory, log = machine.arch, machine.memory, machine.log
    site = f"apply_to_{LEVEL_NAMES[depth]}_range"
    while True:
        nxt = arch.addr_end(depth, addr, end)
        val = memory.read_u64(ptr)
        skip = False
        if arch.none(depth, val) and not create:
            skip = True
        elif arch.leaf(depth, val):
            log.warn_on_once(site, f"{LEVEL_NAMES[depth]} leaf {val:#018x} at {ptr:#x} in [{addr:#x}, {nxt:#x})")
            return -EINVAL
        elif not arch.none(depth, val) and _bad(arch, depth, val):
            log.warn_on_once(site, f"bad {LEVEL_NAMES[depth]} {val:#018x} at {ptr:#x}")
            if not create:
                skip = True
            else:
                memory.write_u64(ptr, 0)
        if not skip:
            err = _descend(mm, depth, ptr, addr, nxt, fn, data, create, batch)
            if err:
                return err
        ptr, addr = ptr + 8, nxt
        if addr == end:
            return 0


def _bad(arch, depth: int, val: int) -> bool:
    """`pXd_bad()`: a non-table entry (PUD: only where `pud_table()` is real)."""
    if depth in (PGD, P4D):
        return arch.bad(depth, val)
    return not arch.table(depth, val)


def _descend(mm, depth: int, ptr: int, addr: int, end: int, fn, data, create: bool, batch) -> int:
    arch, memory = mm.machine.arch, mm.machine.memory
    child = depth + 1
    if create and arch.offsets[child] is Offset.TABLE:
        err = _alloc(mm, depth, ptr)
        if err:
            return err
    child_ptr = arch.offset(child, ptr, memory.read_u64(ptr), addr)
    if child == PTE:
        return _apply_pte_range(mm, child_ptr, addr, end, fn, data, batch)
    return _apply_level(mm, child, child_ptr, addr, end, fn, data, create, batch)


def _apply_pte_range(mm, pte: int, addr: int, end: int, fn, data, batch) -> int:
    page = mm.machine.arch.page_size
    if batch is not None and (end - addr) % page == 0:
        return batch(pte, mm.machine.memory.read_table(pte, (end - addr) // page), addr, end, data)
    while True:
        err = fn(pte, addr, data)
        if err:
            return err
        addr += page
        pte += 8
        if addr == end:
            return 0
        if addr > end:
            mm.machine.log.bug("apply_to_pte_range", f"unaligned range: {addr:#x} steps past {end:#x} "
                               "(the kernel would run on past the PTE table)")
            return 0
