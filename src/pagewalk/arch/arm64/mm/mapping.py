"""Kernel page protections and run-time vmap mappings (linux: asm/pgtable-prot.h `PAGE_KERNEL*`,
`PROT_DEVICE_*`; mm/vmalloc.c `vmap_pages_range()`, `vmap_range_noflush()`, `vunmap_range()`).

`Mapper.map_range()` maps `[va, va + size)` to `pa` for vmalloc/vmap/ioremap with the
largest leaves its caller allows: PUD blocks (4K granule), contiguous PMD blocks, PMD
blocks, contiguous PTEs, PTEs. Boot-time mappings follow mmu.c's own rules instead
(create_mapping.py).
"""

from dataclasses import dataclass
from errno import ENOMEM

import numpy as np

from ..asm.pgtable import PMD, PTE, PUD, Offset
from ..asm.pgtable_hwdef import (
    MT_DEVICE_nGnRE, MT_NORMAL, PMD_TYPE_MASK, PMD_TYPE_SECT, PMD_TYPE_TABLE, PTE_AF, PTE_CONT, PTE_DIRTY, PTE_NG, PTE_PXN,
    PTE_RDONLY, PTE_SHARED, PTE_TABLE_BIT, PTE_UXN, PTE_VALID, PTE_WRITE,
)

__all__ = ["Prot", "Mapper"]


@dataclass(frozen=True)
class Prot:
    """A page protection (`pgprot_t`) for kernel mappings."""
    value: int

    @classmethod
    def kernel(cls, kernel, *, ro=False, x=False, attrindx=MT_NORMAL) -> "Prot":
        """PAGE_KERNEL (RW NX), PAGE_KERNEL_RO, PAGE_KERNEL_ROX, ... for this kernel's features."""
        arch, cfg = kernel.machine.arch, kernel.config
        v = PTE_VALID | PTE_TABLE_BIT | PTE_AF | PTE_UXN | PTE_DIRTY | attrindx << 2
        if not arch.hw.ds:
            v |= PTE_SHARED
        if cfg.kpti:
            v |= PTE_NG
        v |= PTE_RDONLY if ro else PTE_WRITE
        if not x:
            v |= PTE_PXN
        return cls(v)

    @classmethod
    def device(cls, kernel, attrindx=MT_DEVICE_nGnRE) -> "Prot":
        """PROT_DEVICE_nGnRE / nGnRnE: PROT_DEFAULT (page, AF, shared, maybe nG) | PXN | UXN | WRITE."""
        v = PTE_VALID | PTE_TABLE_BIT | PTE_AF | PTE_PXN | PTE_UXN | PTE_WRITE | attrindx << 2
        if not kernel.machine.arch.hw.ds:
            v |= PTE_SHARED
        if kernel.config.kpti:
            v |= PTE_NG
        return cls(v)


class Mapper:
    """Writes kernel mappings into a kernel's tables (`k.write_entry`), allocating tables as needed."""

    def __init__(self, kernel):
        self.k = kernel
        self.arch = kernel.machine.arch

    @property
    def memory(self):
        return self.k.machine.memory

    def _entry(self, depth: int, va: int) -> int | None:
        """The entry at `depth` for `va`, allocating tables above it; None if allocation failed."""
        arch, read = self.arch, self.memory.read_u64
        ptr = arch.pgd_offset(self.k.machine.swapper_pg_dir, va)
        for d in range(1, depth + 1):
            if arch.offsets[d] is Offset.TABLE and read(ptr) & PMD_TYPE_MASK != PMD_TYPE_TABLE:
                page = self.memory.alloc_page()
                if page is None:
                    return None
                self.k.write_entry(ptr, arch.table_descriptor(page, kernel=True))
            ptr = arch.offset(d, ptr, read(ptr), va)
        return ptr

    def map_range(self, va: int, pa: int, size: int, prot: Prot, *, blocks: bool = True, cont: bool = True) -> int:
        """Map a range; 0 or -ENOMEM. New tables get UXNTable, as pXd_populate() gives init_mm's."""
        arch, hw = self.arch, self.arch.hw
        end = va + size
        page = arch.page_size
        pud, pmd = 1 << arch.shift[PUD], 1 << arch.shift[PMD]
        cont_pmd, cont_pte = pmd * hw.contiguous_entries(2), page * hw.contiguous_entries(3)
        while va < end:
            for depth, unit, group in ((PUD, pud, 0), (PMD, pmd, cont_pmd), (PTE, page, cont_pte)):
                if depth == PUD and (not blocks or arch.page_shift != 12 or arch.pgtable_levels < 3):
                    continue
                if depth == PMD and not blocks:
                    continue
                if va % unit or pa % unit or end - va < unit:
                    continue
                use_cont = cont and group and va % group == 0 and pa % group == 0 and end - va >= group
                if depth == PTE and not use_cont and not self.k.hooks:
                    done = self._pte_run(va, pa, end, prot)
                    if done is None:
                        return -ENOMEM
                    va, pa = va + done, pa + done
                    break
                count = group // unit if use_cont else 1
                for _ in range(count):
                    ptr = self._entry(depth, va)
                    if ptr is None:
                        return -ENOMEM
                    leaf_type = PMD_TYPE_TABLE if depth == PTE else PMD_TYPE_SECT
                    val = prot.value & ~PMD_TYPE_MASK | leaf_type | hw.encode_address(pa, arch.shift[depth])
                    self.k.write_entry(ptr, val | (PTE_CONT if use_cont else 0))
                    va, pa = va + unit, pa + unit
                break
        return 0

    def _pte_run(self, va: int, pa: int, end: int, prot: Prot) -> int | None:
        """Plain PTEs from `va` to the end of its PTE table (or `end`), in one write; bytes mapped."""
        arch = self.arch
        page = arch.page_size
        first = self._entry(PTE, va)
        if first is None:
            return None
        n = min((end - va) // page, arch.ptrs[PTE] - arch.index(PTE, va))
        pas = np.uint64(pa) + np.arange(n, dtype=np.uint64) * np.uint64(page)
        self.memory.write_table(first, arch.hw.oa.encode_array(pas, arch.page_shift) | np.uint64(prot.value | 3))
        return n * page

    def unmap_range(self, start: int, end: int) -> None:
        """`vunmap_range_noflush()`: clear the leaves; tables stay linked, empty (F11: no table page is freed)."""
        arch, read = self.arch, self.memory.read_u64
        root = self.k.machine.swapper_pg_dir
        va = start
        while va < end:
            found = arch.lookup(read, root, va)
            if found is None:
                va += arch.page_size
                continue
            depth, entry = found
            size = 1 << arch.shift[depth]
            self.k.write_entry(entry, 0)
            va = (va & ~(size - 1)) + size
