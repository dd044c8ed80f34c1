"""Splitting live kernel leaf mappings (linux: arch/arm64/mm/mmu.c, v6.18+):
`split_pud()`, `split_pmd()`, `split_contpmd()`, `split_contpte()`,
`split_kernel_leaf_mapping_locked()` and `range_split_to_ptes()`.
Spec: arm64-pageattr.md §5.
"""

from errno import ENOMEM

from ....mm.pagewalk import ACTION_CONTINUE, mm_walk_ops, walk_kernel_page_table_range_lockless, walk_kernel_tables
from ..asm.pgtable import LEVEL_NAMES, P4D, PGD, PMD, PTE, PUD
from ..asm.pgtable_hwdef import PMD_TYPE_SECT, PMD_TYPE_TABLE, PTE_CONT, PTE_PRESENT_INVALID, PTE_PXN, PTE_VALID

__all__ = ["Splitter"]


class Splitter:
    """The split helpers for one kernel (its machine, era and `write_entry`)."""

    def __init__(self, kernel):
        self.k = kernel

    @property
    def arch(self):
        return self.k.machine.arch

    def read(self, ptr: int) -> int:
        return self.k.machine.memory.read_u64(ptr)

    def write(self, ptr: int, val: int) -> None:
        self.k.write_entry(ptr, val)

    def _fill(self, table: int, first: int, step: int, attrs: int, count: int, page_type: int) -> None:
        hw = self.arch.hw
        for i in range(count):
            self.write(table + 8 * i, attrs | page_type | hw.encode_address(first + i * step, self._shift_of(step)))

    def _shift_of(self, step: int) -> int:
        return step.bit_length() - 1

    def _split_block(self, ptr: int, depth: int, to_cont: bool) -> int:
        """split_pud() / split_pmd(): replace a block by a table of the next level, same translation."""
        arch, hw = self.arch, self.arch.hw
        val = self.read(ptr)
        child = depth + 1
        self.k.machine.context.might_sleep(f"split_{LEVEL_NAMES[depth]}", "page-table allocation")
        table = self.k.machine.memory.alloc_page()
        if table is None:
            return -ENOMEM
        block_shift = arch.shift[depth]
        step = 1 << arch.shift[child]
        base = hw.output_address(val, block_shift)
        attrs = val & ~hw.encode_address(base, block_shift) & ~PMD_TYPE_TABLE & ~PTE_CONT
        valid = val & PTE_VALID
        keep_invalid = self.k.machine.era.present_invalid_blocks and not valid
        if keep_invalid:
            attrs |= PTE_PRESENT_INVALID                  # 7.x keeps an invalid block invalid
        page_type = PMD_TYPE_TABLE if child == PTE else PMD_TYPE_SECT
        if keep_invalid:
            page_type &= ~PTE_VALID
        if to_cont:
            attrs |= PTE_CONT
        self._fill(table, base, step, attrs, arch.ptrs[child], page_type)
        self.write(ptr, arch.table_descriptor(table, kernel=True, pxn=bool(val & PTE_PXN)))
        return 0

    def _clear_cont_group(self, ptr: int, entries: int) -> None:
        """split_contpte() / split_contpmd(): clear bit 52 on every entry of the aligned group."""
        first = ptr & ~(8 * entries - 1)
        for i in range(entries):
            p = first + 8 * i
            self.write(p, self.read(p) & ~PTE_CONT)

    def split_locked(self, addr: int) -> int:
        """split_kernel_leaf_mapping_locked(): make `addr` a page-granular leaf boundary."""
        arch = self.arch
        hw = arch.hw
        root = self.k.machine.swapper_pg_dir
        ptr = arch.pgd_offset(root, addr)
        for depth in (PGD, P4D):
            if addr % (1 << arch.shift[depth]) == 0 or not arch.present(depth, self.read(ptr)):
                return 0
            ptr = arch.offset(depth + 1, ptr, self.read(ptr), addr)
        if addr % (1 << arch.shift[PUD]) == 0 or not arch.present(PUD, self.read(ptr)):
            return 0
        if arch.leaf(PUD, self.read(ptr)):
            err = self._split_block(ptr, PUD, to_cont=True)
            if err:
                return err
        pud = ptr
        ptr = arch.offset(PMD, pud, self.read(pud), addr)
        cont_pmds = hw.contiguous_entries(2)
        if addr % ((1 << arch.shift[PMD]) * cont_pmds) == 0 or not arch.present(PMD, self.read(ptr)):
            return 0
        if arch.leaf(PMD, self.read(ptr)):
            if self.read(ptr) & PTE_CONT:
                self._clear_cont_group(ptr, cont_pmds)
            if addr % (1 << arch.shift[PMD]) == 0:
                return 0
            err = self._split_block(ptr, PMD, to_cont=True)
            if err:
                return err
        pmd = ptr
        ptr = arch.offset(PTE, pmd, self.read(pmd), addr)
        cont_ptes = hw.contiguous_entries(3)
        if addr % (arch.page_size * cont_ptes) == 0 or not arch.present(PTE, self.read(ptr)):
            return 0
        if self.read(ptr) & PTE_CONT:
            self._clear_cont_group(ptr, cont_ptes)
        return 0

    def range_split_to_ptes(self, start: int, end: int) -> int:
        """range_split_to_ptes(): every block and contiguous group in [start, end) becomes plain PTEs."""
        arch, hw = self.arch, self.arch.hw

        def pud_entry(ptr, addr, nxt, walk):
            return self._split_block(ptr, PUD, to_cont=False) if arch.leaf(PUD, self.read(ptr)) else 0

        def pmd_entry(ptr, addr, nxt, walk):
            val = self.read(ptr)
            if arch.leaf(PMD, val):
                if val & PTE_CONT:
                    self._clear_cont_group(ptr, hw.contiguous_entries(2))
                err = self._split_block(ptr, PMD, to_cont=False)
                if err:
                    return err
                walk.action = ACTION_CONTINUE
            return 0

        def pte_entry(ptr, addr, nxt, walk):
            if self.read(ptr) & PTE_CONT:
                self._clear_cont_group(ptr, hw.contiguous_entries(3))
            return 0
        ops = mm_walk_ops(pud_entry=pud_entry, pmd_entry=pmd_entry, pte_entry=pte_entry)
        if not self.k.machine.era.has_lockless_entry:      # before 6.18 only the model itself splits
            return walk_kernel_tables(self.k.machine.init_mm, start, end, ops)
        return walk_kernel_page_table_range_lockless(start, end, ops, init_mm=self.k.machine.init_mm)
