"""arm64 kernel memory permissions (linux: arch/arm64/mm/pageattr.c), every era.

`set_memory_ro/rw/x/nx/valid`, `set_direct_map_*`, `kernel_page_present`,
`__change_memory_common`, `change_memory_common` and the range engine of
each era (`Era.pageattr_engine`): `apply_to_page_range()` (6.1, 6.12, BASE),
the seed's walker with PGWALK_NOLOCK (SEED-v2, SEED-review),
`update_range_prot()` with `split_kernel_leaf_mapping()` (6.18, LATER).

Each function takes the kernel `k` first (its machine, config, vmalloc
space, splitter and TLB log) and returns 0 or a negative errno, recording
the kernel's warnings in `k.machine.log`. Spec: arm64-pageattr.md. Call
them as the kernel's methods: `k.set_memory_ro(addr, numpages)`.

>>> from pagewalk import boot
>>> k = boot(era="later")
>>> v = k.vmalloc(4 * 4096)
>>> set_memory_ro(k, v, 4), k.translate(v).writable
(0, False)
>>> set_memory_ro(k, v + 0x10000, 1)               # not inside a vmalloc area
-22
"""

from errno import EBUSY, EINVAL

import numpy as np

from ....errors import PagewalkError
from ....mm.memory import apply_to_page_range
from ....mm.pagewalk import (
    ACTION_CONTINUE, PGWALK_NOLOCK, mm_walk_ops, walk_kernel_page_table_range, walk_kernel_page_table_range_lockless,
)
from ....mm.vmalloc import VM_ALLOC, VM_ALLOW_HUGE_VMAP
from ....phys.memory import MASK64
from ..asm.pgtable import LEVEL_NAMES, PMD, PTE, PUD
from ..asm.pgtable_hwdef import PTE_GP, PTE_NG, PTE_PRESENT_INVALID, PTE_PXN, PTE_RDONLY, PTE_VALID, PTE_WRITE

__all__ = ["Unsupported", "PTE_MAYBE_GP", "PTE_MAYBE_NG", "PTE_PRESENT_VALID_KERNEL", "valid_masks",
           "update_range_prot", "split_kernel_leaf_mapping", "change_memory_common", "set_memory_ro",
           "set_memory_rw", "set_memory_x", "set_memory_nx", "set_memory_valid", "set_direct_map_invalid_noflush",
           "set_direct_map_default_noflush", "set_direct_map_valid_noflush", "kernel_page_present",
           "set_memory_encrypted", "set_memory_decrypted", "SEED_PAGEATTR_WALK_LOCK"]

#: What the seed's pageattr_ops set as walk_lock.
SEED_PAGEATTR_WALK_LOCK = PGWALK_NOLOCK


class Unsupported(PagewalkError):
    """The function does not exist in this kernel era (e.g. split_kernel_leaf_mapping before 6.18)."""


# -- masks (arm64-pageattr.md §1.2, §2) ------------------------------------------------

def PTE_MAYBE_GP(k) -> int:  # noqa: N802 - kernel name
    return PTE_GP if k.config.bti else 0


def PTE_MAYBE_NG(k) -> int:  # noqa: N802 - kernel name
    return PTE_NG if k.config.kpti else 0


def PTE_PRESENT_VALID_KERNEL(k) -> int:  # noqa: N802 - kernel name
    return PTE_VALID | PTE_MAYBE_NG(k)


def valid_masks(k, enable: bool) -> tuple[int, int]:
    """(set, clear) of set_memory_valid()."""
    if k.machine.era.present_invalid_blocks:
        pvk = PTE_PRESENT_VALID_KERNEL(k)
        return (pvk, PTE_PRESENT_INVALID) if enable else (PTE_PRESENT_INVALID, pvk)
    return (PTE_VALID, 0) if enable else (0, PTE_VALID)


# -- the range engines ---------------------------------------------------------------

def _engine(k, start: int, size: int, set_mask: int, clear_mask: int) -> int:
    engine = k.machine.era.pageattr_engine
    if engine == "apply_to_page_range":
        return _apply_engine(k, start, size, set_mask, clear_mask)
    if engine == "walk_kernel_page_table_range":
        return ___change_memory_common(k, start, size, set_mask, clear_mask)
    return update_range_prot(k, start, size, set_mask, clear_mask)


def _batch_update(k, set_mask: int, clear_mask: int):
    """`(old & ~clear) | set` for a whole run of PTEs in one write; None when checkers watch each write."""
    if k.hooks:
        return None
    memory = k.machine.memory

    def update(ptr: int, values, addr: int, end: int, _walk_or_data) -> int:
        memory.write_table(ptr, (values & np.uint64(~clear_mask & MASK64)) | np.uint64(set_mask))
        return 0
    return update


def _apply_engine(k, start: int, size: int, set_mask: int, clear_mask: int) -> int:
    def change_page_range(pte: int, addr: int, data) -> int:
        k.write_entry(pte, (k.machine.memory.read_u64(pte) & ~clear_mask) | set_mask)
        return 0
    return apply_to_page_range(k.machine.init_mm, start, size, change_page_range,
                               batch=_batch_update(k, set_mask, clear_mask))


def _pageattr_ops(k, set_mask: int, clear_mask: int) -> mm_walk_ops:
    arch, era = k.machine.arch, k.machine.era

    def leaf_entry(depth: int):
        site = f"pageattr_{LEVEL_NAMES[depth]}_entry"

        def entry(ptr: int, addr: int, nxt: int, walk) -> int:
            val = walk.read(ptr)
            if arch.leaf(depth, val) if era.pageattr_tests_present_leaf else arch.sect(depth, val):
                if nxt - addr != 1 << arch.shift[depth]:
                    k.machine.log.warn_on_once(site, f"partial {LEVEL_NAMES[depth]} block {val:#018x} "
                                                     f"for [{addr:#x}, {nxt:#x})")
                    return -EINVAL
                k.write_entry(ptr, (val & ~clear_mask) | set_mask)
                walk.action = ACTION_CONTINUE
            return 0
        return entry

    def pte_entry(ptr: int, addr: int, nxt: int, walk) -> int:
        k.write_entry(ptr, (walk.read(ptr) & ~clear_mask) | set_mask)
        return 0

    batch = _batch_update(k, set_mask, clear_mask)
    ops = mm_walk_ops(pud_entry=leaf_entry(PUD), pmd_entry=leaf_entry(PMD),
                      pte_entry=pte_entry if batch is None else None, pte_table=batch)
    if era.seed:
        ops.walk_lock = k.seed_walk_lock
    return ops


def ___change_memory_common(k, start: int, size: int, set_mask: int, clear_mask: int) -> int:
    """SEED-v2: the generic walker with PGWALK_NOLOCK (no init_mm lock)."""
    return walk_kernel_page_table_range(start, start + size, _pageattr_ops(k, set_mask, clear_mask), None,
                                        init_mm=k.machine.init_mm)


def update_range_prot(k, start: int, size: int, set_mask: int, clear_mask: int) -> int:
    """UP-6.18 / LATER: split at the ends if needed, then the lockless walk."""
    ret = split_kernel_leaf_mapping(k, start, start + size)
    if ret:
        k.machine.log.warn_on_once("update_range_prot", f"split_kernel_leaf_mapping returned {ret}")
        return ret
    return walk_kernel_page_table_range_lockless(start, start + size, _pageattr_ops(k, set_mask, clear_mask), None,
                                                 init_mm=k.machine.init_mm)


# -- splitting (UP-6.18 / LATER; mmu.c) ------------------------------------------------

def _split_refused(k, start: int) -> int | None:
    """The gates before any split: an errno or 0 to return at once, None to go on and split."""
    cfg, era, log = k.config, k.machine.era, k.machine.log
    if era.split_gated_on_boot_state:
        if not k.linear_map_requires_bbml2 or k.is_kfence_address(start):
            return 0
        if cfg.bbml2_system_ready:
            return None
        if cfg.caps_finalized:
            return 0
        if not cfg.page_allocator_up:
            log.warn_on("split_kernel_leaf_mapping", "page allocator not available yet")
            return -EBUSY
        if cfg.online_cpus > 1:
            log.warn_on("split_kernel_leaf_mapping", "more than one CPU online")
            return -EBUSY
        return None
    if not cfg.bbml2_system_ready:
        return 0
    if cfg.nov2025_fix and (k.config.force_pte_mapping() or k.is_kfence_address(start)):
        return 0
    return None


def split_kernel_leaf_mapping(k, start: int, end: int) -> int:
    """Make `start` and `end` leaf boundaries (BBML2 split-on-demand, v6.18+); 0 or -errno."""
    if not k.machine.era.has_split_on_demand:
        raise Unsupported(f"split_kernel_leaf_mapping() does not exist in the {k.machine.era.value} kernel")
    refused = _split_refused(k, start)
    if refused is not None:
        return refused
    page = k.machine.arch.page_size
    if start % page or end % page:
        return -EINVAL
    k.pgtable_split_lock.lock()
    try:
        if end - start == page:
            tz = lambda x: (x & -x).bit_length()  # noqa: E731 - __ffs() ordering
            return k.splitter.split_locked(start if tz(start) < tz(end) else end)
        return k.splitter.split_locked(start) or k.splitter.split_locked(end)
    finally:
        k.pgtable_split_lock.unlock()


# -- __change_memory_common / change_memory_common ---------------------------------------

def __change_memory_common(k, start: int, size: int, set_mask: int, clear_mask: int) -> int:
    """The engine on `[start, start + size)`, then the TLB flush unless it only makes entries valid."""
    ret = _engine(k, start, size, set_mask, clear_mask)
    if _needs_flush(k, set_mask, clear_mask):
        k.flush_tlb_kernel_range(start, start + size)
    return ret


def _needs_flush(k, set_mask: int, clear_mask: int) -> bool:
    era = k.machine.era
    if era.flushes_every_change:
        return True
    if era.present_invalid_blocks:
        return not (set_mask == PTE_PRESENT_VALID_KERNEL(k) and clear_mask == PTE_PRESENT_INVALID)
    return not (set_mask == PTE_VALID and clear_mask == 0)


def _change_linear_alias(k, area, start: int, numpages: int, set_mask: int, clear_mask: int) -> int:
    """rodata_full: the same change on the linear alias of the area's pages (7.x: only those in range)."""
    page = k.machine.arch.page_size
    if not k.machine.era.alias_change_in_range_only:
        for pfn in area.pages:
            __change_memory_common(k, k.page_address(pfn), page, set_mask, clear_mask)
        return 0
    first = (start - area.addr) // page
    for i in range(first, first + numpages):
        if i >= area.nr_pages:
            k.machine.log.bug("change_memory_common", f"area->pages[{i}] read past the end of {area!r} "
                              "(range reaches the guard page)")
            continue
        ret = __change_memory_common(k, k.page_address(area.pages[i]), page, set_mask, clear_mask)
        if ret:
            return ret
    return 0


def change_memory_common(k, addr: int, numpages: int, set_mask: int, clear_mask: int) -> int:
    """The checks of set_memory_ro/rw/x/nx: a whole non-huge vmalloc area, then the alias, then the range."""
    era, log = k.machine.era, k.machine.log
    page = k.machine.arch.page_size
    start = addr
    size = page * numpages
    end = start + size
    if addr % page:
        start &= ~(page - 1)
        end = start + size
        log.warn_on_once("change_memory_common", f"unaligned address {addr:#x}")
    area = k.vmalloc_space.find_vm_area(addr)
    if era.pageattr_accepts_huge_vmalloc:
        flags_ok = area is not None and bool(area.flags & VM_ALLOC)
    else:
        flags_ok = area is not None and area.flags & (VM_ALLOC | VM_ALLOW_HUGE_VMAP) == VM_ALLOC
    if area is None or end > area.addr + area.size or not flags_ok:
        return -EINVAL
    if not numpages:
        return 0
    if k.rodata_full and PTE_RDONLY in (set_mask, clear_mask):
        ret = _change_linear_alias(k, area, start, numpages, set_mask, clear_mask)
        if ret:
            return ret
    k.vm_unmap_aliases()
    return __change_memory_common(k, start, size, set_mask, clear_mask)


# -- the exported functions ----------------------------------------------------------------

def set_memory_ro(k, addr: int, numpages: int) -> int:
    """`set_memory_ro()`: read-only, for whole pages of a vmalloc area."""
    return change_memory_common(k, addr, numpages, PTE_RDONLY, PTE_WRITE)


def set_memory_rw(k, addr: int, numpages: int) -> int:
    """`set_memory_rw()`."""
    return change_memory_common(k, addr, numpages, PTE_WRITE, PTE_RDONLY)


def set_memory_nx(k, addr: int, numpages: int) -> int:
    """`set_memory_nx()` (clears GP under BTI)."""
    return change_memory_common(k, addr, numpages, PTE_PXN, PTE_MAYBE_GP(k))


def set_memory_x(k, addr: int, numpages: int) -> int:
    """`set_memory_x()` (sets GP under BTI)."""
    return change_memory_common(k, addr, numpages, PTE_MAYBE_GP(k), PTE_PXN)


def set_memory_valid(k, addr: int, numpages: int, enable: int) -> int:
    """`set_memory_valid()`: any kernel range (KFENCE, DEBUG_PAGEALLOC), no vmalloc checks."""
    set_mask, clear_mask = valid_masks(k, bool(enable))
    return __change_memory_common(k, addr, k.machine.arch.page_size * numpages, set_mask, clear_mask)


def set_direct_map_invalid_noflush(k, addr: int) -> int:
    """One linear-map page invalid, no TLB flush (nothing unless can_set_direct_map())."""
    if not k.config.can_set_direct_map():
        return 0
    return _engine(k, addr, k.machine.arch.page_size, *valid_masks(k, False))


def set_direct_map_default_noflush(k, addr: int) -> int:
    """One linear-map page back to PAGE_KERNEL (valid, writable), no TLB flush."""
    if not k.config.can_set_direct_map():
        return 0
    if k.machine.era.present_invalid_blocks:
        set_mask, clear_mask = PTE_PRESENT_VALID_KERNEL(k) | PTE_WRITE, PTE_PRESENT_INVALID | PTE_RDONLY
    else:
        set_mask, clear_mask = PTE_VALID | PTE_WRITE, PTE_RDONLY
    return _engine(k, addr, k.machine.arch.page_size, set_mask, clear_mask)


def set_direct_map_valid_noflush(k, addr: int, nr: int, valid: bool) -> int:
    """`set_direct_map_valid_noflush()` (v6.13+): set_memory_valid() when the direct map may change."""
    era = k.machine.era
    if not era.has_set_direct_map_valid_noflush:
        raise Unsupported(f"set_direct_map_valid_noflush() does not exist in the {era.value} kernel")
    if not k.config.can_set_direct_map():
        return 0
    return set_memory_valid(k, addr, nr, valid)


def __kernel_map_pages(k, addr: int, numpages: int, enable: int) -> None:
    """DEBUG_PAGEALLOC: map or unmap freed pages in the linear map (nothing unless can_set_direct_map())."""
    if k.config.can_set_direct_map():
        set_memory_valid(k, addr, numpages, enable)


def kernel_page_present(k, addr: int) -> bool:
    """Whether the linear-map page at `addr` is valid (a none entry on the way: False)."""
    arch, read, era = k.machine.arch, k.machine.memory.read_u64, k.machine.era
    ptr = arch.pgd_offset(k.machine.swapper_pg_dir, addr)
    for depth in range(PTE):
        if depth:
            ptr = arch.offset(depth, ptr, read(ptr), addr)
        val = read(ptr)
        if arch.none(depth, val):
            return False
        if depth in (PUD, PMD):
            if era.present_invalid_blocks:
                if arch.leaf(depth, val):
                    return bool(val & PTE_VALID)
            elif arch.sect(depth, val):
                return True
            elif not arch.table(depth, val) and not arch.constant_predicates[depth]:
                k.machine.log.bug("kernel_page_present", f"non-valid block {val:#018x} read as a table")
    pte = arch.offset(PTE, ptr, read(ptr), addr)
    return bool(read(pte) & PTE_VALID)


# -- realm (linux: arch/arm64/mm/pageattr.c __set_memory_enc_dec(), mem_encrypt.c) ---------

def _set_memory_enc_dec(k, addr: int, numpages: int, encrypt: bool) -> int:
    if not k.config.realm:
        return 0
    if not k.is_linear_address(addr):
        return -EINVAL
    shared = k.config.realm_shared_bit
    size = k.machine.arch.page_size * numpages
    if k.machine.era.present_invalid_blocks:
        set_mask = (0 if encrypt else shared) | PTE_PRESENT_INVALID
        clear_mask = (shared if encrypt else 0) | PTE_PRESENT_VALID_KERNEL(k)
    else:
        set_mask, clear_mask = (0 if encrypt else shared), (shared if encrypt else 0) | PTE_VALID
    ret = __change_memory_common(k, addr, size, set_mask, clear_mask)
    if ret:
        return ret
    ret = k.rmm_set_ipa_state(addr, size, encrypt)
    if ret:
        return ret
    return __change_memory_common(k, addr, size, *valid_masks(k, True))


def _set_memory_crypt(k, addr: int, numpages: int, encrypt: bool) -> int:
    """set_memory_encrypted/decrypted(): the CC dispatcher, then the realm hook (which warns on failure)."""
    if not k.machine.era.has_realm_pageattr or not k.config.realm:
        return 0
    if addr % k.machine.arch.page_size:
        k.machine.log.warn_on_once("set_memory_crypt", f"unaligned address {addr:#x}")
        return 0
    ret = _set_memory_enc_dec(k, addr, numpages, encrypt)
    if ret:
        k.machine.log.warn_on("realm_set_memory", f"Failed to {'en' if encrypt else 'de'}crypt memory, "
                                                  f"{numpages} pages will be leaked")
    return ret


def set_memory_encrypted(k, addr: int, numpages: int) -> int:
    """Realm: make linear-map pages protected again (break, RMM call, make valid)."""
    return _set_memory_crypt(k, addr, numpages, True)


def set_memory_decrypted(k, addr: int, numpages: int) -> int:
    """Realm: share linear-map pages with the host (break, RMM call, make valid)."""
    return _set_memory_crypt(k, addr, numpages, False)
