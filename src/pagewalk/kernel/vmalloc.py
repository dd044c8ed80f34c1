"""vmalloc, vmap and vfree on a simulated kernel (linux: mm/vmalloc.c `__vmalloc_node_range()`,
`vmap()`, `vfree()`, `vmap_range_noflush()` and `vmap_try_huge_pmd/pud()`;
arch/arm64 `arch_vmap_pte_range_map_size()`). Spec: kernel-pgtable-freeing.md F1-F5, F11.

Pages come from the kernel's data pages (physically contiguous here), the
VA from its vmalloc space with a trailing guard page. Called as the
kernel's methods: `k.vmalloc(size)`. A huge mapping over a range whose
table is still linked (a purged, reused VA) frees that table, with each
era's lock (F4); when 7.x's trylock fails it falls back to the table (F5).
The PTEs one call writes into one table are one step for the explorer.

>>> from pagewalk import boot
>>> k = boot()
>>> v = k.vmalloc(3 * 4096)
>>> k.vmalloc_space.find_vm_area(v).nr_pages, k.translate(v + 2 * 4096).mapped, k.translate(v + 3 * 4096).mapped
(3, True, False)
>>> k.vfree(v); k.translate(v).mapped
False
"""

from errno import EEXIST, ENOMEM

import numpy as np

from ..arch.arm64.asm.pgtable import PGD, PMD, PTE, PUD, Offset
from ..arch.arm64.asm.pgtable_hwdef import PTE_CONT
from ..arch.arm64.mm.mapping import Prot
from ..arch.arm64.mm.vmap import (
    arch_vmap_pmd_supported, arch_vmap_pud_supported, pmd_free_pte_page, pud_free_pmd_page, pxd_set_huge,
)
from ..phys.memory import MASK64
from ..mm.vmalloc import VM_ALLOC, VM_ALLOW_HUGE_VMAP, VM_IOREMAP, VM_MAP

__all__ = ["vmalloc", "vmalloc_huge", "vmap", "vfree", "ioremap", "vmap_range_noflush"]


def _map_unit(k, size: int, huge: bool) -> int:
    """The largest mapping unit vmap_range_noflush() uses for a `size` run: a PMD block where
    arch_vmap_pmd_supported() (F3), contiguous PTEs (v6.13+), else pages."""
    page = k.machine.arch.page_size
    pmd = 1 << k.machine.arch.shift[PMD]
    cont = page * k.machine.arch.hw.contiguous_entries(3)
    era = k.machine.era
    if huge and size >= pmd and arch_vmap_pmd_supported(k):
        return pmd
    return cont if huge and size >= cont and era.vmap_cont_ptes else page


def _map_area(k, size: int, *, huge: bool, flags: int) -> int | None:
    page = k.machine.arch.page_size
    ram_pages = sum(end - start for start, end in k.machine.memory.ranges()) // page
    if size <= 0 or size // page > ram_pages:          # size is unsigned in the kernel: negative is huge
        k.machine.log.warn_on("__vmalloc_node_range", f"vmalloc error: size {size & MASK64}, exceeds total pages")
        return None
    size = -(-size // page) * page
    if huge:
        flags |= VM_ALLOW_HUGE_VMAP
    unit = _map_unit(k, size, huge)
    size = -(-size // unit) * unit                      # huge: the size is rounded up to the mapping unit
    pfns = k.alloc_data_pages(size // page, align=unit // page)
    va = k.vmalloc_space.alloc_va(size + page, unit) if pfns else None
    if va is None:                                      # out of pages or of vmalloc space: NULL
        return None
    # __vmap_pages_range_noflush(): small pages in one walk, else one vmap_range_noflush() per unit
    shift = unit.bit_length() - 1
    step = size if unit == page else unit
    err = 0
    for off in range(0, size, step):
        err = err or vmap_range_noflush(k, va + off, va + off + step, pfns[0] * page + off, Prot.kernel(k), shift)
    if err:
        k.mapper.unmap_range(va, va + size)
        return None
    k.register_area(va, size + page, flags, pfns, (unit // page).bit_length() - 1, caller="vmalloc")
    return va


def vmalloc(k, size: int) -> int | None:
    """`vmalloc()`: pages, a VA range with a guard page, PTEs; None (NULL) when a table allocation failed."""
    return _map_area(k, size, huge=False, flags=VM_ALLOC)


def vmalloc_huge(k, size: int) -> int | None:
    """`vmalloc_huge()`: PMD blocks (or contiguous PTEs) where the size allows."""
    return _map_area(k, size, huge=True, flags=VM_ALLOC)


def ioremap(k, phys: int, size: int) -> int | None:
    """`ioremap()`: device memory (PROT_DEVICE_nGnRE) in a VM_IOREMAP area aligned to its size's order
    (IOREMAP_MAX_ORDER caps it), with huge mappings where aligned (ioremap_max_page_shift: no limit)."""
    page, pmd = k.machine.arch.page_size, 1 << k.machine.arch.shift[PMD]
    if size <= 0 or phys % page:
        return None
    size = -(-size // page) * page
    va = k.vmalloc_space.alloc_va(size + page, min(1 << (size - 1).bit_length(), pmd))
    if va is None:
        return None
    err = vmap_range_noflush(k, va, va + size, phys, Prot.device(k), 63)   # ioremap_max_page_shift
    if err:
        k.mapper.unmap_range(va, va + size)
        return None
    k.register_area(va, size + page, VM_IOREMAP, caller="ioremap")
    return va


def vmap(k, pfns: list[int]) -> int | None:
    """`vmap(pages, n, VM_MAP, PAGE_KERNEL)`."""
    page = k.machine.arch.page_size
    va = k.vmalloc_space.alloc_va((len(pfns) + 1) * page, page)
    if va is None:
        return None
    for i, pfn in enumerate(pfns):
        vmap_range_noflush(k, va + i * page, va + (i + 1) * page, pfn * page, Prot.kernel(k), k.machine.arch.page_shift)
    k.register_area(va, (len(pfns) + 1) * page, VM_MAP, list(pfns), caller="vmap")
    return va


def vfree(k, addr: int) -> None:
    """`vfree()`: clear the entries, queue the lazy TLB flush, free the pages. Page tables stay linked,
    empty, for reuse (kernel-pgtable-freeing.md F11: vunmap frees no table page). vfree(NULL) does nothing;
    an address that starts no area is a WARN, as in the kernel."""
    if not addr:
        return
    area = k.vmalloc_space.find_vm_area(addr)
    if area is None or area.addr != addr or not area.flags & (VM_ALLOC | VM_MAP):
        k.machine.log.warn_on("vfree", f"Trying to vfree() nonexistent vm area ({addr:#x})")
        return
    end = area.addr + area.usable_size(k.machine.arch.page_size)
    k.mapper.unmap_range(area.addr, end)
    k.vmalloc_space.lazy_aliases.append((area.addr, end))
    k.vmalloc_space.lazy_free.append((area.addr, area.end))
    k.vmalloc_space.remove(area)            # data pages are not recycled: every PA stays unique


def vmap_range_noflush(k, addr: int, end: int, phys: int, prot: Prot, max_page_shift: int) -> int:
    """`vmap_range_noflush()`: map with PUD/PMD blocks where `max_page_shift`, the arch and the alignment
    allow (vmap_try_huge_pud/pmd, F2), contiguous PTEs (v6.13+), else PTEs; 0 or -errno."""
    k.machine.context.might_sleep("vmap_range_noflush", "page-table allocation")
    arch = k.machine.arch
    return _vmap_level(k, PGD, arch.pgd_offset(k.machine.swapper_pg_dir, addr), addr, end, phys, prot.value,
                       max_page_shift)


def _vmap_level(k, depth: int, ptr: int, addr: int, end: int, phys: int, prot: int, max_shift: int) -> int:
    """vmap_p4d_range() .. vmap_pmd_range(): each slot a block if vmap_try_huge_*() says so, else the level
    below (allocating its table)."""
    arch, memory = k.machine.arch, k.machine.memory
    while True:
        nxt = arch.addr_end(depth, addr, end)
        if not (depth in (PUD, PMD) and _vmap_try_huge(k, depth, ptr, addr, nxt, phys, prot, max_shift)):
            if arch.offsets[depth + 1] is Offset.TABLE and memory.read_u64(ptr) == 0:
                table = memory.alloc_page()                 # __pXd_alloc(): GFP_KERNEL
                if table is None:
                    return -ENOMEM
                k.write_entry(ptr, arch.table_descriptor(table, kernel=True))
            child = arch.offset(depth + 1, ptr, memory.read_u64(ptr), addr)
            err = (_vmap_pte_range(k, child, addr, nxt, phys, prot, max_shift) if depth + 1 == PTE else
                   _vmap_level(k, depth + 1, child, addr, nxt, phys, prot, max_shift))
            if err:
                return err
        phys += nxt - addr
        addr, ptr = nxt, ptr + 8
        if addr == end:
            return 0


def _vmap_try_huge(k, depth: int, ptr: int, addr: int, end: int, phys: int, prot: int, max_shift: int) -> bool:
    """vmap_try_huge_pmd() / vmap_try_huge_pud(): gates in the kernel's order (F2, F3), then over a present
    entry the era's protection of the free (F4, F8): 7.x and 6.12.117 try init_mm's read lock and fall back
    when it is taken or contended (F5)."""
    arch = k.machine.arch
    size = 1 << arch.shift[depth]
    if max_shift < arch.shift[depth]:
        return False
    if not (arch_vmap_pmd_supported(k) if depth == PMD else arch_vmap_pud_supported(k)):
        return False
    if end - addr != size or addr % size or phys % size:
        return False
    if arch.present(depth, k.machine.memory.read_u64(ptr)):
        free = pmd_free_pte_page if depth == PMD else pud_free_pmd_page
        if k.machine.era.vmap_promotion_lock(k.config.version) == "trylock":
            lock = k.machine.init_mm.mmap_lock
            if not lock.down_read_trylock():
                k.vmap_fallbacks += 1
                return False
            free(k, ptr, addr)
            pxd_set_huge(k, depth, ptr, phys, prot)
            lock.up_read()
            return True
        free(k, ptr, addr)
    return bool(pxd_set_huge(k, depth, ptr, phys, prot))


def _vmap_pte_range(k, ptr: int, addr: int, end: int, phys: int, prot: int, max_shift: int) -> int:
    """vmap_pte_range(): every PTE must be none (BUG otherwise); contiguous groups where
    arch_vmap_pte_range_map_size() allows (v6.13+, `max_page_shift` at least CONT_PTE_SHIFT)."""
    arch = k.machine.arch
    page = arch.page_size
    n = (end - addr) // page
    if np.any(k.machine.memory.read_table(ptr, n)):
        k.machine.log.bug("vmap_pte_range", f"a PTE in [{addr:#x}, {end:#x}) is not none")
        return -EEXIST
    group = page * arch.hw.contiguous_entries(3)
    cont = (k.machine.era.vmap_cont_ptes and max_shift >= group.bit_length() - 1 and not addr % group
            and not phys % group and not (end - addr) % group)
    pas = np.uint64(phys) + np.arange(n, dtype=np.uint64) * np.uint64(page)
    vals = arch.hw.oa.encode_array(pas, arch.page_shift) | np.uint64(prot | 3 | (PTE_CONT if cont else 0))
    if k.hooks:
        for i, v in enumerate(vals):
            k.write_entry(ptr + 8 * i, int(v))
    else:
        k.machine.memory.write_table(ptr, vals)
    return 0
