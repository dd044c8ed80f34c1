"""arm64 kernel memory permissions (linux: arch/arm64/mm/pageattr.c), every era.

`set_memory_ro/rw/x/nx/valid`, `set_direct_map_*`, `kernel_page_present`,
`__change_memory_common`, `change_memory_common` and the range engine of
each era: `apply_to_page_range()` (6.1, 6.12, BASE), the seed's walker with
PGWALK_NOLOCK (SEED-v2, SEED-review), `update_range_prot()` with
`split_kernel_leaf_mapping()` (6.18, LATER). Functions return 0 or a
negative errno and record the kernel's warnings. Spec: arm64-pageattr.md.
"""

import numpy as np

from ...errors import PagewalkError
from ...mm.era import Era
from ...mm.memory import apply_to_page_range
from ...mm.pagewalk import (
    ACTION_CONTINUE, mm_walk_ops, walk_kernel_page_table_range, walk_kernel_page_table_range_lockless,
)
from ...mm.vmalloc import VM_ALLOC, VM_ALLOW_HUGE_VMAP
from .pgtable import PMD, PUD

EINVAL, ENOMEM, EBUSY = 22, 12, 16
PTE_VALID, PTE_TABLE, PTE_RDONLY, PTE_NG = 1 << 0, 1 << 1, 1 << 7, 1 << 11
PTE_GP, PTE_WRITE, PTE_CONT, PTE_PXN = 1 << 50, 1 << 51, 1 << 52, 1 << 53
PTE_PRESENT_INVALID = PTE_NG
MASK64 = (1 << 64) - 1


class Unsupported(PagewalkError):
    """The function does not exist in this kernel era (e.g. split_kernel_leaf_mapping before 6.18)."""


class Pageattr:
    """pageattr.c for one simulated kernel (`k`: machine, config, vmalloc space, TLB, splitter)."""

    def __init__(self, kernel):
        self.k = kernel
        era = kernel.machine.era
        self.era = era
        self.later = era is Era.LATER
        self.old = era in (Era.V6_1, Era.V6_12)

    # -- masks (arm64-pageattr.md §1.2, §2) ------------------------------------
    @property
    def PTE_MAYBE_GP(self) -> int:  # noqa: N802 - kernel name
        return PTE_GP if self.k.config.bti else 0

    @property
    def PTE_MAYBE_NG(self) -> int:  # noqa: N802 - kernel name
        return PTE_NG if self.k.config.kpti else 0

    @property
    def PTE_PRESENT_VALID_KERNEL(self) -> int:  # noqa: N802 - kernel name
        return PTE_VALID | self.PTE_MAYBE_NG

    def valid_masks(self, enable: bool) -> tuple[int, int]:
        """(set, clear) of set_memory_valid()."""
        if self.later:
            pvk = self.PTE_PRESENT_VALID_KERNEL
            return (pvk, PTE_PRESENT_INVALID) if enable else (PTE_PRESENT_INVALID, pvk)
        return (PTE_VALID, 0) if enable else (0, PTE_VALID)

    # -- the range engines -------------------------------------------------------
    def _engine(self, start: int, size: int, set_mask: int, clear_mask: int) -> int:
        if self.era in (Era.V6_1, Era.V6_12, Era.BASE):
            return self._apply_engine(start, size, set_mask, clear_mask)
        if self.era.seed:
            return self.___change_memory_common(start, size, set_mask, clear_mask)
        return self.update_range_prot(start, size, set_mask, clear_mask)

    def _apply_engine(self, start: int, size: int, set_mask: int, clear_mask: int) -> int:
        k = self.k

        def change_page_range(pte: int, addr: int, data) -> int:
            k.write_entry(pte, (k.machine.memory.read_u64(pte) & ~clear_mask) | set_mask)
            return 0
        if not k.write_hooks and hasattr(k.machine.memory, "write_table"):
            change_page_range.batch = self._batch_update(set_mask, clear_mask)
        with k.lazy_mmu():
            return apply_to_page_range(k.machine.init_mm, start, size, change_page_range)

    def _batch_update(self, set_mask: int, clear_mask: int):
        """`(old & ~clear) | set` for a whole run of PTEs in one write (when no checker watches each write)."""
        memory = self.k.machine.memory

        def update(ptr: int, values, addr: int, end: int, _walk_or_data) -> int:
            memory.write_table(ptr, (values & np.uint64(~clear_mask & MASK64)) | np.uint64(set_mask))
            return 0
        return update

    def _pageattr_ops(self, set_mask: int, clear_mask: int) -> mm_walk_ops:
        k, arch = self.k, self.k.machine.arch

        def leaf_entry(depth: int, site: str):
            def entry(ptr: int, addr: int, nxt: int, walk) -> int:
                val = walk.read(ptr)
                leaf = arch.leaf(depth, val) if (self.later or self.era.seed) else \
                    (val & 3 == 1 and arch.leaf(depth, val))            # pud_sect()/pmd_sect()
                if leaf:
                    if nxt - addr != 1 << arch.shift[depth]:
                        k.machine.log.warn_on_once(site, f"partial {('pud', 'pmd')[depth - PUD]} block "
                                                         f"{val:#018x} for [{addr:#x}, {nxt:#x})")
                        return -EINVAL
                    k.write_entry(ptr, (val & ~clear_mask) | set_mask)
                    walk.action = ACTION_CONTINUE
                return 0
            return entry

        def pte_entry(ptr: int, addr: int, nxt: int, walk) -> int:
            k.write_entry(ptr, (walk.read(ptr) & ~clear_mask) | set_mask)
            return 0

        pte_table = self._batch_update(set_mask, clear_mask)
        batch = not k.write_hooks and hasattr(k.machine.memory, "write_table")
        ops = mm_walk_ops(pud_entry=leaf_entry(PUD, "pageattr_pud_entry"),
                          pmd_entry=leaf_entry(PMD, "pageattr_pmd_entry"),
                          pte_entry=None if batch else pte_entry, pte_table=pte_table if batch else None)
        if self.era.seed:
            ops.walk_lock = k.seed_walk_lock
        return ops

    def ___change_memory_common(self, start: int, size: int, set_mask: int, clear_mask: int) -> int:
        """SEED-v2: the generic walker with PGWALK_NOLOCK (no init_mm lock)."""
        k = self.k
        with k.lazy_mmu():
            return walk_kernel_page_table_range(start, start + size, self._pageattr_ops(set_mask, clear_mask),
                                                None, init_mm=k.machine.init_mm)

    def update_range_prot(self, start: int, size: int, set_mask: int, clear_mask: int) -> int:
        """UP-6.18 / LATER: split at the ends if needed, then the lockless walk."""
        k = self.k
        ret = self.split_kernel_leaf_mapping(start, start + size)
        if ret:
            k.machine.log.warn_on_once("update_range_prot", f"split_kernel_leaf_mapping returned {ret}")
            return ret
        with k.lazy_mmu():
            return walk_kernel_page_table_range_lockless(start, start + size,
                                                         self._pageattr_ops(set_mask, clear_mask), None,
                                                         init_mm=k.machine.init_mm)

    # -- splitting (UP-6.18 / LATER; mmu.c) ----------------------------------------
    def split_kernel_leaf_mapping(self, start: int, end: int) -> int:
        k, cfg = self.k, self.k.config
        if self.era not in (Era.UP_6_18, Era.LATER):
            raise Unsupported(f"split_kernel_leaf_mapping() does not exist in the {self.era.value} kernel")
        page = k.machine.arch.page_size
        if self.later:
            if not k.linear_map_requires_bbml2 or k.is_kfence_address(start):
                return 0
            if not cfg.bbml2_system_ready:
                if cfg.caps_finalized:
                    return 0
                if not cfg.page_allocator_up:
                    k.machine.log.warn_on("split_kernel_leaf_mapping", "page allocator not available yet")
                    return -EBUSY
                if cfg.online_cpus > 1:
                    k.machine.log.warn_on("split_kernel_leaf_mapping", "more than one CPU online")
                    return -EBUSY
        else:
            if not cfg.bbml2_system_ready:
                return 0
            if cfg.nov2025_fix and (k.force_pte_mapping() or k.is_kfence_address(start)):
                return 0
        if start % page or end % page:
            return -EINVAL
        k.pgtable_split_lock.lock()
        try:
            with k.lazy_mmu():
                if end - start == page:
                    tz = lambda x: (x & -x).bit_length()  # noqa: E731 - __ffs() ordering
                    return k.splitter.split_locked(start if tz(start) < tz(end) else end)
                ret = k.splitter.split_locked(start)
                return ret or k.splitter.split_locked(end)
        finally:
            k.pgtable_split_lock.unlock()

    # -- __change_memory_common / change_memory_common -------------------------------
    def __change_memory_common(self, start: int, size: int, set_mask: int, clear_mask: int) -> int:
        ret = self._engine(start, size, set_mask, clear_mask)
        if self._needs_flush(set_mask, clear_mask):
            self.k.flush_tlb_kernel_range(start, start + size)
        return ret

    def _needs_flush(self, set_mask: int, clear_mask: int) -> bool:
        if self.old:
            return True
        if self.later:
            return not (set_mask == self.PTE_PRESENT_VALID_KERNEL and clear_mask == PTE_PRESENT_INVALID)
        return not (set_mask == PTE_VALID and clear_mask == 0)

    def change_memory_common(self, addr: int, numpages: int, set_mask: int, clear_mask: int) -> int:
        k = self.k
        page = k.machine.arch.page_size
        start = addr
        size = page * numpages
        end = start + size
        if addr % page:
            start &= ~(page - 1)
            end = start + size
            k.machine.log.warn_on_once("change_memory_common", f"unaligned address {addr:#x}")
        area = k.vmalloc_space.find_vm_area(addr)
        if self.old:
            flags_ok = area is not None and bool(area.flags & VM_ALLOC)
        else:
            flags_ok = area is not None and area.flags & (VM_ALLOC | VM_ALLOW_HUGE_VMAP) == VM_ALLOC
        if area is None or end > area.addr + area.size or not flags_ok:
            return -EINVAL
        if not numpages:
            return 0
        if k.rodata_full and (set_mask == PTE_RDONLY or clear_mask == PTE_RDONLY):
            if self.later:
                idx = (start - area.addr) // page
                for i in range(idx, idx + numpages):
                    if i >= area.nr_pages:
                        k.machine.log.bug("change_memory_common", f"area->pages[{i}] read past the end of "
                                          f"{area!r} (range reaches the guard page)")
                        continue
                    ret = self.__change_memory_common(k.page_address(area.pages[i]), page, set_mask, clear_mask)
                    if ret:
                        return ret
            else:
                for pfn in area.pages:
                    self.__change_memory_common(k.page_address(pfn), page, set_mask, clear_mask)
        k.vm_unmap_aliases()
        return self.__change_memory_common(start, size, set_mask, clear_mask)

    # -- the exported functions ---------------------------------------------------------
    def set_memory_ro(self, addr: int, numpages: int) -> int:
        return self.change_memory_common(addr, numpages, PTE_RDONLY, PTE_WRITE)

    def set_memory_rw(self, addr: int, numpages: int) -> int:
        return self.change_memory_common(addr, numpages, PTE_WRITE, PTE_RDONLY)

    def set_memory_nx(self, addr: int, numpages: int) -> int:
        return self.change_memory_common(addr, numpages, PTE_PXN, self.PTE_MAYBE_GP)

    def set_memory_x(self, addr: int, numpages: int) -> int:
        return self.change_memory_common(addr, numpages, self.PTE_MAYBE_GP, PTE_PXN)

    def set_memory_valid(self, addr: int, numpages: int, enable: int) -> int:
        set_mask, clear_mask = self.valid_masks(bool(enable))
        return self.__change_memory_common(addr, self.k.machine.arch.page_size * numpages, set_mask, clear_mask)

    def _direct_map_range(self, addr: int, set_mask: int, clear_mask: int) -> int:
        """The range engine on one page, no flush (set_direct_map_*_noflush)."""
        if not self.k.can_set_direct_map():
            return 0
        page = self.k.machine.arch.page_size
        if self.old or self.era is Era.BASE:
            return self._apply_engine(addr, page, set_mask, clear_mask)
        return self._engine(addr, page, set_mask, clear_mask)

    def set_direct_map_invalid_noflush(self, addr: int) -> int:
        set_mask, clear_mask = self.valid_masks(False)
        return self._direct_map_range(addr, set_mask, clear_mask)

    def set_direct_map_default_noflush(self, addr: int) -> int:
        if self.later:
            return self._direct_map_range(addr, self.PTE_PRESENT_VALID_KERNEL | PTE_WRITE,
                                          PTE_PRESENT_INVALID | PTE_RDONLY)
        return self._direct_map_range(addr, PTE_VALID | PTE_WRITE, PTE_RDONLY)

    def set_direct_map_valid_noflush(self, addr: int, nr: int, valid: bool) -> int:
        if self.old:
            raise Unsupported(f"set_direct_map_valid_noflush() does not exist in the {self.era.value} kernel")
        if not self.k.can_set_direct_map():
            return 0
        return self.set_memory_valid(addr, nr, valid)

    def __kernel_map_pages(self, addr: int, numpages: int, enable: int) -> None:
        """DEBUG_PAGEALLOC: map or unmap freed pages in the linear map (nothing unless can_set_direct_map())."""
        if self.k.can_set_direct_map():
            self.set_memory_valid(addr, numpages, enable)

    def kernel_page_present(self, addr: int) -> bool:
        """Whether the linear-map page at `addr` is valid (a none entry on the way: False)."""
        k = self.k
        arch, read = k.machine.arch, k.machine.memory.read_u64
        ptr = arch.pgd_offset(k.machine.swapper_pg_dir, addr)
        for depth in range(4):
            if depth:
                ptr = arch.offset(depth, ptr, read(ptr), addr)
            val = read(ptr)
            if arch.none(depth, val):
                return False
            if depth in (PUD, PMD):
                if self.later and arch.leaf(depth, val):
                    return bool(val & PTE_VALID)
                if not self.later and val & 3 == 1 and arch.leaf(depth, val):
                    return True
                if not self.later and not arch.table(depth, val) and not arch.constant_predicates[depth]:
                    k.machine.log.bug("kernel_page_present", f"non-valid block {val:#018x} read as a table")
        pte = arch.offset(4, ptr, read(ptr), addr)
        return bool(read(pte) & PTE_VALID)

    # -- realm (linux: arch/arm64/mm/pageattr.c __set_memory_enc_dec(), mem_encrypt.c) ------------
    def _set_memory_enc_dec(self, addr: int, numpages: int, encrypt: bool) -> int:
        k = self.k
        if not k.config.realm:
            return 0
        if not k.is_linear_address(addr):
            return -EINVAL
        shared = k.config.realm_shared_bit
        size = k.machine.arch.page_size * numpages
        if self.later:
            set_mask = (0 if encrypt else shared) | PTE_PRESENT_INVALID
            clear_mask = (shared if encrypt else 0) | self.PTE_PRESENT_VALID_KERNEL
        else:
            set_mask, clear_mask = (0 if encrypt else shared), (shared if encrypt else 0) | PTE_VALID
        ret = self.__change_memory_common(addr, size, set_mask, clear_mask)
        if ret:
            return ret
        ret = k.rmm_set_ipa_state(addr, size, encrypt)
        if ret:
            return ret
        return self.__change_memory_common(addr, size, *self.valid_masks(True))

    def _set_memory_crypt(self, addr: int, numpages: int, encrypt: bool) -> int:
        """set_memory_encrypted/decrypted(): the CC dispatcher, then the realm hook (which warns on failure)."""
        k = self.k
        if self.old or not k.config.realm:
            return 0
        if addr % k.machine.arch.page_size:
            k.machine.log.warn_on_once("set_memory_crypt", f"unaligned address {addr:#x}")
            return 0
        ret = self._set_memory_enc_dec(addr, numpages, encrypt)
        if ret:
            k.machine.log.warn_on("realm_set_memory", f"Failed to {'en' if encrypt else 'de'}crypt memory, "
                                                      f"{numpages} pages will be leaked")
        return ret

    def set_memory_encrypted(self, addr: int, numpages: int) -> int:
        return self._set_memory_crypt(addr, numpages, True)

    def set_memory_decrypted(self, addr: int, numpages: int) -> int:
        return self._set_memory_crypt(addr, numpages, False)
