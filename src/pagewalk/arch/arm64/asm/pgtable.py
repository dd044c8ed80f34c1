"""arm64's software page-table levels as the generic mm code sees them.

Models arch/arm64/include/asm/pgtable.h and pgtable-hwdef.h plus the
asm-generic folding headers (pgtable-nop4d.h, pgtable-nopud.h,
pgtable-nopmd.h): the five software levels PGD, P4D, PUD, PMD, PTE (depth
0..4), which of them are folded at build time (CONFIG_PGTABLE_LEVELS) or at
run time (an LPA2 build on a CPU without 52-bit VA: `pgtable_l5_enabled()` /
`pgtable_l4_enabled()` false), the `pXd_offset()` pointer arithmetic, and the
`pXd_none/bad/present/leaf/table` predicates of each kernel version.

Entry pointers are physical addresses (what `virt_to_phys(ptr)` gives).
"""

from dataclasses import dataclass
from enum import Enum
from functools import cached_property

from ....hw.aarch64.geometry import Geometry
from ....phys.memory import MASK64
from .pgtable_hwdef import (
    LEVEL_NAMES, PMD_PRESENT_INVALID_61, PMD_TYPE_MASK, PMD_TYPE_SECT, PMD_TYPE_TABLE, PTE_PRESENT_INVALID,
    PTE_PROT_NONE_61, PTE_TABLE_BIT, PTE_VALID, PXD_TABLE_AF, PXD_TABLE_PXN, PXD_TABLE_UXN,
)

__all__ = ["Arm64PageTables", "Offset", "PGD", "P4D", "PUD", "PMD", "PTE", "LEVEL_NAMES", "PRESENT_INVALID_SINCE",
           "TYPE_MASK_BAD_SINCE", "TABLE_AF_SINCE"]

PGD, P4D, PUD, PMD, PTE = range(5)
#: v6.10: PTE_PRESENT_INVALID (= PTE_NG with the valid bit clear) replaced PTE_PROT_NONE.
PRESENT_INVALID_SINCE = (6, 10)
#: pgd_bad()/p4d_bad() test the whole type field (bits[1:0] != 0b11) instead of bit 1.
TYPE_MASK_BAD_SINCE = (6, 14)
#: *_TABLE_AF (bit 10) is set in table descriptors the kernel writes.
TABLE_AF_SINCE = (6, 13)


class Offset(Enum):
    """How `pXd_offset(parent, addr)` finds this level's entry."""
    TABLE = "table"     # next table from the parent entry, plus index
    SAME = "same"       # folded at build time: the parent pointer itself
    REBASE = "rebase"   # parent folded at run time: page_base(parent pointer) + index


@dataclass(frozen=True)
class Arm64PageTables:
    """The kernel's software view of one arm64 build running on one CPU.

    >>> pt = Arm64PageTables(page_size=4096, va_bits=52, vabits_actual=48, version=(7, 2, 13))
    >>> pt.pgtable_levels, pt.runtime_folded, pt.shift
    (5, 1, (48, 39, 30, 21, 12))
    """

    page_size: int
    va_bits: int                 # compile-time VA_BITS
    vabits_actual: int           # 64 - T1SZ at run time
    version: tuple[int, int, int] = (7, 2, 0)
    pa52: bool = False           # 64K build with 52-bit PAs (CONFIG_ARM64_PA_BITS_52)

    # -- geometry ----------------------------------------------------------
    @cached_property
    def page_shift(self) -> int:
        return self.page_size.bit_length() - 1

    @cached_property
    def hw(self) -> Geometry:
        """The geometry the MMU walks (run-time VA size)."""
        ds = self.page_size != 65536 and self.vabits_actual == 52
        return Geometry(self.page_size, self.vabits_actual, ds=ds, pa52_64k=self.pa52 and self.page_size == 65536)

    @cached_property
    def pgtable_levels(self) -> int:
        """CONFIG_PGTABLE_LEVELS = ARM64_HW_PGTABLE_LEVELS(VA_BITS)."""
        return (self.va_bits - 4) // (self.page_shift - 3)

    @cached_property
    def runtime_folded(self) -> int:
        """How many top levels the CPU lacks (1 for an LPA2 build on a 48/47-bit CPU)."""
        return self.pgtable_levels - self.hw.levels

    @cached_property
    def compile_folded(self) -> tuple[bool, ...]:
        """Per depth: folded by the asm-generic nopXd headers."""
        n = self.pgtable_levels
        return (False, n <= 4, n <= 3, n <= 2, False)

    @cached_property
    def shift(self) -> tuple[int, ...]:
        """PGDIR_SHIFT, P4D_SHIFT, PUD_SHIFT, PMD_SHIFT, PAGE_SHIFT (folded = parent's)."""
        g, s, n = self.page_shift, self.page_shift - 3, self.pgtable_levels
        pgdir = g + s * (n - 1)
        pmd = g + s if n > 2 else pgdir
        pud = g + 2 * s if n > 3 else pgdir
        p4d = g + 3 * s if n > 4 else pgdir
        return (pgdir, p4d, pud, pmd, g)

    @cached_property
    def ptrs(self) -> tuple[int, ...]:
        """PTRS_PER_PGD .. PTRS_PER_PTE (1 for a level folded at build time)."""
        s = self.page_shift - 3
        pgd = 1 << (self.va_bits - self.shift[PGD])
        return (pgd,) + tuple(1 if f else 1 << s for f in self.compile_folded[1:4]) + (1 << s,)

    @cached_property
    def _top_group(self) -> list[int]:
        """PGD plus the levels folded into it at build time (they share its entry)."""
        group = [PGD]
        while self.compile_folded[group[-1] + 1]:
            group.append(group[-1] + 1)
        return group

    @cached_property
    def constant_predicates(self) -> tuple[bool, ...]:
        """Per depth: none/bad are always false and present always true."""
        const = set(self._top_group[:-1])
        if self.runtime_folded:
            const.add(self._top_group[-1])
        return tuple(d in const for d in range(5))

    @cached_property
    def offsets(self) -> tuple[Offset, ...]:
        out = [Offset.TABLE] * 5
        for d in range(1, 5):
            if self.compile_folded[d]:
                out[d] = Offset.SAME
        if self.runtime_folded:
            out[self._top_group[-1] + 1] = Offset.REBASE
        return tuple(out)

    def mm_p4d_folded(self) -> bool:
        return self.compile_folded[P4D] or (self.runtime_folded > 0 and self.pgtable_levels == 5)

    def mm_pud_folded(self) -> bool:
        return self.compile_folded[PUD] or (self.runtime_folded > 0 and self.pgtable_levels == 4)

    # -- pointers ----------------------------------------------------------
    def index(self, depth: int, addr: int) -> int:
        return (addr >> self.shift[depth]) & (self.ptrs[depth] - 1)

    def table_address(self, val: int) -> int:
        """`pXd_page_paddr()`: the next table's PA from a table entry."""
        return self.hw.output_address(val, self.page_shift)

    def pgd_offset(self, root: int, addr: int) -> int:
        return root + 8 * self.index(PGD, addr)

    def offset(self, depth: int, parent_ptr: int, parent_val: int, addr: int) -> int:
        """`p4d_offset()` .. `pte_offset()`: the entry pointer at `depth` below a parent entry."""
        kind = self.offsets[depth]
        if kind is Offset.SAME:
            return parent_ptr
        if kind is Offset.REBASE:
            return (parent_ptr & ~(self.page_size - 1)) + 8 * self.index(depth, addr)
        return self.table_address(parent_val) + 8 * self.index(depth, addr)

    def ttbr1_base(self, swapper_pg_dir: int) -> int:
        """What TTBR1_EL1.BADDR holds: swapper_pg_dir, or its last entries when a build with the same
        number of levels runs with fewer VA bits (64K 52-bit on 48-bit: `offset_ttbr1`, +0x1e00)."""
        hw = self.hw
        if self.pgtable_levels != hw.levels or self.va_bits == self.vabits_actual:
            return swapper_pg_dir
        shift = hw.level_shift(hw.start_level)
        return swapper_pg_dir + ((1 << (self.va_bits - shift)) - (1 << (self.vabits_actual - shift))) * 8

    def entry_for(self, read, root: int, va: int, depth: int) -> int | None:
        """The entry pointer at `depth` for `va` below `root`, or None when an upper entry is no table."""
        ptr = self.pgd_offset(root, va)
        for d in range(1, depth + 1):
            parent = read(ptr)
            if self.offsets[d] is Offset.TABLE and parent & PMD_TYPE_MASK != PMD_TYPE_TABLE:
                return None
            ptr = self.offset(d, ptr, parent, va)
        return ptr

    def lookup(self, read, root: int, va: int) -> tuple[int, int] | None:
        """`(depth, entry pointer)` of the leaf mapping `va` (a block or a non-zero PTE), or None."""
        ptr = self.pgd_offset(root, va)
        for d in range(1, PTE + 1):
            parent = read(ptr)
            if self.offsets[d] is Offset.TABLE:
                if parent == 0:
                    return None
                if parent & PMD_TYPE_MASK != PMD_TYPE_TABLE:
                    return d - 1, ptr
            ptr = self.offset(d, ptr, parent, va)
        return (PTE, ptr) if read(ptr) else None

    def addr_end(self, depth: int, addr: int, end: int) -> int:
        """`pXd_addr_end()`: next `1 << shift` boundary, or `end` if that comes first."""
        size = 1 << self.shift[depth]
        boundary = ((addr + size) & ~(size - 1)) & MASK64
        return boundary if (boundary - 1) & MASK64 < (end - 1) & MASK64 else end

    # -- predicates --------------------------------------------------------
    def none(self, depth: int, val: int) -> bool:
        return not self.constant_predicates[depth] and val == 0

    def bad(self, depth: int, val: int) -> bool:
        """`pgd_bad()` / `p4d_bad()` (only called at directory levels)."""
        if self.constant_predicates[depth]:
            return False
        if self.version >= TYPE_MASK_BAD_SINCE:
            return val & PMD_TYPE_MASK != PMD_TYPE_TABLE
        return not val & PTE_TABLE_BIT

    def present(self, depth: int, val: int) -> bool:
        if self.constant_predicates[depth]:
            return True
        if depth in (PGD, P4D):
            return val != 0
        if self.version >= PRESENT_INVALID_SINCE:
            return bool(val & (PTE_VALID | PTE_PRESENT_INVALID))
        extra = PMD_PRESENT_INVALID_61 if depth == PMD else 0
        return bool(val & (PTE_VALID | PTE_PROT_NONE_61 | extra))

    def table(self, depth: int, val: int) -> bool:
        """`pmd_table()` / `pud_table()` (constant true for PUD on 64K or < 3 levels)."""
        if depth == PUD and (self.page_size == 65536 or self.pgtable_levels < 3):
            return True
        return val & PMD_TYPE_MASK == PMD_TYPE_TABLE

    def leaf(self, depth: int, val: int) -> bool:
        """`pmd_leaf()` / `pud_leaf()`; `pgd_leaf()`/`p4d_leaf()` are always false on arm64."""
        if depth not in (PUD, PMD) or self.constant_predicates[depth]:
            return False
        return self.present(depth, val) and not self.table(depth, val)

    def table_descriptor(self, table_pa: int, kernel: bool, pxn: bool = False) -> int:
        """What `pXd_populate()` writes: UXNTable for kernel tables (+ PXNTable if asked), PXNTable for
        user ones; the table AF bit (bit 10) from v6.13 (FEAT_HAFT support)."""
        attrs = (PXD_TABLE_UXN | (PXD_TABLE_PXN if pxn else 0)) if kernel else PXD_TABLE_PXN
        if self.version >= TABLE_AF_SINCE:
            attrs |= PXD_TABLE_AF
        return self.hw.encode_address(table_pa, self.page_shift) | PMD_TYPE_TABLE | attrs

    def sect(self, depth: int, val: int) -> bool:
        """`pud_sect()` / `pmd_sect()`: a valid block descriptor (bits[1:0] == 0b01)."""
        return val & PMD_TYPE_MASK == PMD_TYPE_SECT and self.leaf(depth, val)

    def trans_huge(self, depth: int, val: int) -> bool:
        """`pmd_trans_huge()` / `pud_trans_huge()` (no PUD THP on arm64)."""
        if depth != PMD:
            return False
        return val != 0 and self.present(PMD, val) and (val | PTE_VALID) & PMD_TYPE_MASK != PMD_TYPE_TABLE
