"""Kernel page protections and unmapping (linux: asm/pgtable-prot.h `PAGE_KERNEL*`,
`PROT_DEVICE_*`; mm/vmalloc.c `vunmap_range()`).

`Mapper.unmap_range()` is `vunmap_range_noflush()`. Mappings are made by
kernel/vmalloc.py (`vmap_range_noflush()`) and, at boot, create_mapping.py.
"""

from dataclasses import dataclass

from ..asm.pgtable_hwdef import (
    MT_DEVICE_nGnRE, MT_NORMAL, PTE_AF, PTE_DIRTY, PTE_NG, PTE_PXN, PTE_RDONLY, PTE_SHARED, PTE_TABLE_BIT, PTE_UXN,
    PTE_VALID, PTE_WRITE,
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
    """Clears kernel mappings in a kernel's tables (`k.write_entry`)."""

    def __init__(self, kernel):
        self.k = kernel
        self.arch = kernel.machine.arch

    @property
    def memory(self):
        return self.k.machine.memory

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
