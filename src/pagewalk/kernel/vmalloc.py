"""vmalloc, vmap and vfree on a simulated kernel (linux: mm/vmalloc.c `__vmalloc_node_range()`,
`vmap()`, `vfree()`; arch/arm64 `arch_vmap_pmd_supported()` / `arch_vmap_pte_range_map_size()`).

Pages come from the kernel's data pages (physically contiguous here), the
VA from its vmalloc space with a trailing guard page. Called as the
kernel's methods: `k.vmalloc(size)`.

>>> from pagewalk import boot
>>> k = boot()
>>> v = k.vmalloc(3 * 4096)
>>> k.vmalloc_space.find_vm_area(v).nr_pages, k.translate(v + 2 * 4096).mapped, k.translate(v + 3 * 4096).mapped
(3, True, False)
>>> k.vfree(v); k.translate(v).mapped
False
"""

from ..arch.arm64.asm.pgtable import PMD
from ..arch.arm64.mm.mapping import Prot
from ..phys.memory import MASK64
from ..mm.vmalloc import VM_ALLOC, VM_ALLOW_HUGE_VMAP, VM_IOREMAP, VM_MAP

__all__ = ["vmalloc", "vmalloc_huge", "vmap", "vfree", "ioremap"]


def _map_unit(k, size: int, huge: bool) -> int:
    """The largest mapping unit vmap_range_noflush() uses for a `size` run: a PMD block where
    arch_vmap_pmd_supported() (F3), contiguous PTEs (v6.13+), else pages."""
    page = k.machine.arch.page_size
    pmd = 1 << k.machine.arch.shift[PMD]
    cont = page * k.machine.arch.hw.contiguous_entries(3)
    era = k.machine.era
    if huge and size >= pmd and not (k.config.ptdump_debugfs and era.huge_vmap_off_with_ptdump_debugfs):
        return pmd
    return cont if huge and size >= cont and era.vmap_cont_ptes else page


def _map_area(k, size: int, *, huge: bool, flags: int) -> int | None:
    page = k.machine.arch.page_size
    ram_pages = sum(end - start for start, end in k.machine.memory.ranges()) // page
    if size <= 0 or size // page > ram_pages:          # size is unsigned in the kernel: negative is huge
        k.machine.log.warn_on("__vmalloc_node_range", f"vmalloc error: size {size & MASK64}, exceeds total pages")
        return None
    size = -(-size // page) * page
    pmd = 1 << k.machine.arch.shift[PMD]
    if huge:
        flags |= VM_ALLOW_HUGE_VMAP
    unit = _map_unit(k, size, huge)
    pfns = k.alloc_data_pages(size // page, align=unit // page)
    va = k.vmalloc_space.alloc_va(size + page, unit) if pfns else None
    if va is None:                                      # out of pages or of vmalloc space: NULL
        return None
    if unit == page:     # the pages are physically contiguous here: one run of plain PTEs
        err = k.mapper.map_range(va, pfns[0] * page, size, Prot.kernel(k), blocks=False, cont=False)
    else:
        err = k.mapper.map_range(va, pfns[0] * page, size, Prot.kernel(k), blocks=unit == pmd, cont=True)
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
    unit = _map_unit(k, size, huge=phys % pmd == 0)
    err = k.mapper.map_range(va, phys, size, Prot.device(k), blocks=unit == pmd, cont=unit != page)
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
        k.mapper.map_range(va + i * page, pfn * page, page, Prot.kernel(k), blocks=False, cont=False)
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
    k.vmalloc_space.remove(area)            # data pages are not recycled: every PA stays unique
