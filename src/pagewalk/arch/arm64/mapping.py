"""Creating kernel mappings (linux: arch/arm64/mm/mmu.c `__create_pgd_mapping()`,
`alloc_init_cont_pmd()`, `alloc_init_cont_pte()`, `map_mem()`; mm/vmalloc.c
`vmap_pages_range()`, `vunmap_range()`).

`map_range()` maps `[va, va + size)` to `pa` with the largest leaves the
flags allow: PUD blocks (4K granule), contiguous PMD blocks, PMD blocks,
contiguous PTEs, PTEs — or PTEs only (`NO_BLOCK_MAPPINGS | NO_CONT_MAPPINGS`).
"""

from dataclasses import dataclass

import numpy as np

from .pgtable import PMD, PTE, PUD

PTE_VALID, PTE_AF, PTE_SHARED, PTE_NG = 1, 1 << 10, 3 << 8, 1 << 11
PTE_RDONLY, PTE_WRITE, PTE_CONT, PTE_PXN, PTE_UXN, PTE_DIRTY = 1 << 7, 1 << 51, 1 << 52, 1 << 53, 1 << 54, 1 << 55
MT_NORMAL, MT_DEVICE_nGnRE = 0, 4  # noqa: N816 - kernel names


@dataclass(frozen=True)
class Prot:
    """A page protection (`pgprot_t`) for kernel mappings."""
    value: int

    @classmethod
    def kernel(cls, kernel, *, ro=False, x=False, attrindx=MT_NORMAL) -> "Prot":
        """PAGE_KERNEL (RW NX), PAGE_KERNEL_RO, PAGE_KERNEL_ROX, ... for this kernel's features."""
        arch, cfg = kernel.machine.arch, kernel.config
        v = PTE_VALID | 2 | PTE_AF | PTE_UXN | PTE_DIRTY | attrindx << 2
        if not arch.hw.ds:
            v |= PTE_SHARED
        if cfg.kpti:
            v |= PTE_NG
        v |= PTE_RDONLY if ro else PTE_WRITE
        if not x:
            v |= PTE_PXN
        return cls(v)


class Mapper:
    """Writes kernel mappings into a kernel's tables, allocating tables as needed."""

    def __init__(self, kernel):
        self.k = kernel
        self.arch = kernel.machine.arch
        self.memory = kernel.machine.memory

    def _entry(self, depth: int, va: int, pxn_tables: bool = False) -> int | None:
        """The entry at `depth` for `va`, allocating tables above it; None if allocation failed."""
        arch, read = self.arch, self.memory.read_u64
        ptr = arch.pgd_offset(self.k.machine.swapper_pg_dir, va)
        for d in range(1, depth + 1):
            if arch.offsets[d].value == "table" and read(ptr) & 3 != 3:
                page = self.memory.alloc_page()
                if page is None:
                    return None
                self.k.write_entry(ptr, arch.table_descriptor(page, kernel=True, pxn=pxn_tables))
            ptr = arch.offset(d, ptr, read(ptr), va)
        return ptr

    def map_range(self, va: int, pa: int, size: int, prot: Prot, *, blocks: bool = True, cont: bool = True,
                  pxn_tables: bool = False) -> int:
        """Map a range; 0 or -ENOMEM. Linear-map style table attributes: UXNTable (+PXNTable)."""
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
                if depth == PTE and not use_cont and not self.k.write_hooks and hasattr(self.memory, "write_table"):
                    done = self._pte_run(va, pa, end, prot, pxn_tables)
                    if done is None:
                        return -12
                    va, pa = va + done, pa + done
                    break
                count = group // unit if use_cont else 1
                for i in range(count):
                    ptr = self._entry(depth, va, pxn_tables)
                    if ptr is None:
                        return -12
                    typ = 3 if depth == PTE else 1
                    val = prot.value & ~3 | typ | hw.encode_address(pa, arch.shift[depth])
                    self.k.write_entry(ptr, val | (PTE_CONT if use_cont else 0))
                    va, pa = va + unit, pa + unit
                break
        return 0

    def _pte_run(self, va: int, pa: int, end: int, prot: Prot, pxn_tables: bool) -> int | None:
        """Plain PTEs from `va` to the end of its PTE table (or `end`), in one write; bytes mapped."""
        arch, hw = self.arch, self.arch.hw
        page = arch.page_size
        first = self._entry(PTE, va, pxn_tables)
        if first is None:
            return None
        index = arch.index(PTE, va)
        n = min((end - va) // page, arch.ptrs[PTE] - index)
        pas = np.uint64(pa) + np.arange(n, dtype=np.uint64) * np.uint64(page)
        if hw.ds:
            pas = (pas & np.uint64(((1 << 50) - 1))) | ((pas >> np.uint64(50)) & np.uint64(3)) << np.uint64(8)
        elif hw.pa52_64k:
            pas = (pas & np.uint64((1 << 48) - 1)) | ((pas >> np.uint64(48)) & np.uint64(0xF)) << np.uint64(12)
        self.memory.write_table(first, pas | np.uint64(prot.value | 3))
        return n * page

    def unmap_range(self, start: int, end: int, free_tables: bool = True) -> None:
        """`vunmap_range()`: clear the leaves; then free PTE/PMD tables left empty (and clear their entries)."""
        arch = self.arch
        page = arch.page_size
        va = start
        while va < end:
            ptr = self._lookup(va)
            if ptr is None:
                va += page
                continue
            depth, entry = ptr
            size = 1 << arch.shift[depth]
            self.k.write_entry(entry, 0)
            va = (va & ~(size - 1)) + size
        if free_tables:
            self._free_empty(start, end)

    def _lookup(self, va: int) -> tuple[int, int] | None:
        arch, read = self.arch, self.memory.read_u64
        ptr = arch.pgd_offset(self.k.machine.swapper_pg_dir, va)
        for d in range(1, 5):
            parent = read(ptr)
            if arch.offsets[d].value == "table":
                if parent == 0:
                    return None
                if parent & 3 != 3:
                    return d - 1, ptr
            ptr = arch.offset(d, ptr, parent, va)
        return (4, ptr) if read(ptr) else None

    def _free_empty(self, start: int, end: int) -> None:
        """Free every PTE and PMD table under [start, end) whose entries are all zero."""
        arch, read, memory = self.arch, self.memory.read_u64, self.memory
        for depth in (PMD, PUD):                      # the entry pointing at a PTE table, then at a PMD table
            size = 1 << arch.shift[depth]
            va = start & ~(size - 1)
            while va < end:
                found = self._lookup_entry(depth, va)
                if found is not None:
                    value = read(found)
                    if value & 3 == 3 and arch.offsets[depth + 1].value == "table":
                        table = arch.table_address(value)
                        if not memory.read_table(table, arch.ptrs[depth + 1]).any() and \
                                getattr(memory, "is_live", lambda p: True)(table):
                            self.k.write_entry(found, 0)
                            self.k.flush_tlb_kernel_range(va, va + size, "free_empty_tables")
                            memory.free_page(table)
                va += size

    def _lookup_entry(self, depth: int, va: int) -> int | None:
        return self.arch.entry_for(self.memory.read_u64, self.k.machine.swapper_pg_dir, va, depth)
