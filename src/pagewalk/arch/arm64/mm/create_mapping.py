"""Boot-time kernel mappings (linux: arch/arm64/mm/mmu.c `__create_pgd_mapping()`,
`alloc_init_pud()`, `alloc_init_cont_pmd()`, `init_pmd()`, `alloc_init_cont_pte()`,
`init_pte()`, `update_mapping_prot()`, early_fixmap_init()'s tables).
Spec: arm64-boot-mappings.md B8-B10.

`create_pgd_mapping()` takes the largest leaf the VA *and* PA alignment allow:
PUD block (4K granule) > contiguous PMDs > PMD block > contiguous PTEs > PTE,
unless the flags forbid blocks (NO_BLOCK_MAPPINGS) or contiguous groups
(NO_CONT_MAPPINGS). A contiguous group must lie wholly inside the call's
range. From 7.x (Era.boot_remap_keeps_granularity) a re-map never turns a
table into a block, and sets CONT only on a group that holds no valid
non-CONT entry.

>>> from pagewalk.mm.machine import Machine
>>> from pagewalk.arch.arm64.mm.mapping import Prot
>>> m = Machine.simulated("6.12")
>>> class K:                     # what the functions need of a kernel
...     machine, hooks = m, []
...     def write_entry(self, ptr, val): m.memory.write_u64(ptr, val)
>>> k = K()
>>> prot = Prot(0x60000000000f07)                          # PAGE_KERNEL-like, PXN|UXN
>>> create_pgd_mapping(k, 0x40000000, 0xffff000000000000, 0x2200000, prot, 0)
0
>>> from pagewalk.hw.aarch64.translate import translate
>>> [translate(m.memory, m.arch.hw, m.swapper_pg_dir, va).level for va in (0xffff000000000000, 0xffff000002000000)]
[2, 2]
"""

from errno import ENOMEM

import numpy as np

from ..asm.pgtable import LEVEL_NAMES, PGD, PMD, PTE, PUD, Offset
from ..asm.pgtable_hwdef import PMD_TYPE_MASK, PMD_TYPE_SECT, PMD_TYPE_TABLE, PTE_CONT, PTE_VALID
from .mapping import Prot

__all__ = ["NO_BLOCK_MAPPINGS", "NO_CONT_MAPPINGS", "NO_EXEC_MAPPINGS", "create_pgd_mapping", "update_mapping_prot",
           "populate_pte_tables"]

NO_BLOCK_MAPPINGS, NO_CONT_MAPPINGS, NO_EXEC_MAPPINGS = 1 << 0, 1 << 1, 1 << 2


class _Call:
    """One `__create_pgd_mapping()` call: its flags, protection and table allocator."""

    def __init__(self, k, prot: Prot, flags: int, alloc: bool):
        self.k, self.flags, self.alloc = k, flags, alloc
        m = k.machine
        self.arch, self.memory, self.log = m.arch, m.memory, m.log
        self.prot = prot.value
        self.keeps_granularity = m.era.boot_remap_keeps_granularity

    # -- helpers --------------------------------------------------------------------------
    def table_at(self, depth: int, ptr: int) -> bool:
        """Make sure the entry at `depth` points to a table of the next level; False on failure."""
        arch, val = self.arch, self.memory.read_u64(ptr)
        if arch.offsets[depth + 1] is not Offset.TABLE or val & PMD_TYPE_MASK == PMD_TYPE_TABLE:
            return True
        if val:
            self.log.bug(f"alloc_init_{LEVEL_NAMES[depth + 1]}", f"{LEVEL_NAMES[depth]} {val:#018x} at {ptr:#x} "
                         "is a block where a table is needed")
            return False
        if not self.alloc:
            self.log.bug("update_mapping_prot", f"no {LEVEL_NAMES[depth + 1]} table below {ptr:#x}")
            return False
        page = self.memory.alloc_page()
        if page is None:
            return False
        self.k.write_entry(ptr, arch.table_descriptor(page, kernel=True, pxn=bool(self.flags & NO_EXEC_MAPPINGS)))
        return True

    def child(self, depth: int, ptr: int, addr: int) -> int:
        return self.arch.offset(depth + 1, ptr, self.memory.read_u64(ptr), addr)

    def leaf(self, depth: int, phys: int, cont: bool) -> int:
        arch = self.arch
        kind = PMD_TYPE_TABLE if depth == PTE else PMD_TYPE_SECT
        return (self.prot & ~PMD_TYPE_MASK | kind | arch.hw.encode_address(phys, arch.shift[depth])
                | (PTE_CONT if cont else 0))

    def has_valid_noncont(self, first: int, count: int) -> bool:
        """`pte_range_has_valid_noncont()` / `pmd_range_...` (7.x): a table entry counts too."""
        vals = self.memory.read_table(first, count)
        return bool(np.any(((vals & np.uint64(PTE_VALID)) != 0) & ((vals & np.uint64(PTE_CONT)) == 0)))

    def cont_ok(self, depth: int, first_ptr: int, addr: int, nxt: int, phys: int) -> bool:
        arch = self.arch
        entries = arch.hw.contiguous_entries(2 if depth == PMD else 3)
        size = entries << arch.shift[depth]
        if (addr | nxt | phys) % size or self.flags & NO_CONT_MAPPINGS:
            return False
        return not (self.keeps_granularity and self.has_valid_noncont(first_ptr, entries))

    # -- one function per level ---------------------------------------------------------------
    def upper(self, depth: int, ptr: int, addr: int, end: int, phys: int) -> bool:
        """PGD/P4D: descend; PUD: a block where allowed, else descend (alloc_init_pud())."""
        arch = self.arch
        while True:
            nxt = arch.addr_end(depth, addr, end)
            if depth == PUD and self.block_ok(PUD, ptr, addr, nxt, phys):
                self.k.write_entry(ptr, self.leaf(PUD, phys, False))
            else:
                if not self.table_at(depth, ptr):
                    return False
                child = self.child(depth, ptr, addr)
                if depth == PUD:
                    done = self.cont_pmd(child - 8 * arch.index(PMD, addr), addr, nxt, phys)
                else:
                    done = self.upper(depth + 1, child, addr, nxt, phys)
                if not done:
                    return False
            phys += nxt - addr
            addr, ptr = nxt, ptr + 8
            if addr == end:
                return True

    def block_ok(self, depth: int, ptr: int, addr: int, nxt: int, phys: int) -> bool:
        """A block here: PUD only with 4K pages (pud_sect_supported()), VA and PA aligned, blocks allowed, and
        (7.x) the entry not already a table."""
        if depth == PUD and self.arch.page_size != 4096:
            return False
        if (addr | nxt | phys) % (1 << self.arch.shift[depth]) or self.flags & NO_BLOCK_MAPPINGS:
            return False
        return not (self.keeps_granularity and self.memory.read_u64(ptr) & PMD_TYPE_MASK == PMD_TYPE_TABLE)

    def cont_pmd(self, base: int, addr: int, end: int, phys: int) -> bool:
        """alloc_init_cont_pmd(): the PMD table at `base`, one contiguous-PMD chunk at a time."""
        arch = self.arch
        entries = arch.hw.contiguous_entries(2)
        while True:
            nxt = min((addr | ((entries << arch.shift[PMD]) - 1)) + 1, end)
            first = base + 8 * (arch.index(PMD, addr) & ~(entries - 1))
            if not self.init_pmd(base, addr, nxt, phys, self.cont_ok(PMD, first, addr, nxt, phys)):
                return False
            phys += nxt - addr
            addr = nxt
            if addr == end:
                return True

    def init_pmd(self, base: int, addr: int, end: int, phys: int, cont: bool) -> bool:
        arch = self.arch
        ptr = base + 8 * arch.index(PMD, addr)
        while True:
            nxt = arch.addr_end(PMD, addr, end)
            if self.block_ok(PMD, ptr, addr, nxt, phys):
                self.k.write_entry(ptr, self.leaf(PMD, phys, cont))
            elif not self.table_at(PMD, ptr) or not self.cont_pte(self.child(PMD, ptr, addr), addr, nxt, phys):
                return False
            phys += nxt - addr
            addr, ptr = nxt, ptr + 8
            if addr == end:
                return True

    def cont_pte(self, ptr: int, addr: int, end: int, phys: int) -> bool:
        """alloc_init_cont_pte() + init_pte(): one PTE table's run, written at once."""
        arch = self.arch
        page, entries = arch.page_size, arch.hw.contiguous_entries(3)
        n = (end - addr) // page
        vals = np.empty(n, dtype=np.uint64)
        i = 0
        while i < n:
            a = addr + i * page
            nxt = min((a | (entries * page - 1)) + 1, end)
            count = (nxt - a) // page
            first = ptr + 8 * i - 8 * (arch.index(PTE, a) % entries)
            cont = self.cont_ok(PTE, first, a, nxt, phys + i * page)
            pas = np.uint64(phys + i * page) + np.arange(count, dtype=np.uint64) * np.uint64(page)
            vals[i:i + count] = arch.hw.oa.encode_array(pas, arch.page_shift) | np.uint64(self.leaf(PTE, 0, cont))
            i += count
        if self.k.hooks:
            for j, v in enumerate(vals):
                self.k.write_entry(ptr + 8 * j, int(v))
        else:
            self.memory.write_table(ptr, vals)
        return True


def create_pgd_mapping(k, phys: int, virt: int, size: int, prot: Prot, flags: int, *, alloc: bool = True) -> int:
    """`__create_pgd_mapping(swapper_pg_dir, phys, virt, size, prot, pgtable_alloc, flags)`; 0 or -ENOMEM."""
    arch = k.machine.arch
    page = arch.page_size
    phys &= ~(page - 1)
    addr, end = virt & ~(page - 1), -(-(virt + size) // page) * page
    if addr >= end:
        return 0
    call = _Call(k, prot, flags, alloc)
    ok = call.upper(PGD, arch.pgd_offset(k.machine.swapper_pg_dir, addr), addr, end, phys)
    return 0 if ok else -ENOMEM


def update_mapping_prot(k, phys: int, virt: int, size: int, prot: Prot, flags: int) -> int:
    """`update_mapping_prot()`: re-map an existing range with a new protection (no allocation).

    6.x passes NO_CONT_MAPPINGS, 7.x passes 0 (its engine keeps granularity, B9, B16).
    """
    return create_pgd_mapping(k, phys, virt, size, prot, flags, alloc=False)


def populate_pte_tables(k, start: int, end: int) -> int:
    """Link a PTE table under every PMD of `[start, end)` (early_fixmap_init()'s bm_pte); 0 or -ENOMEM."""
    arch = k.machine.arch
    call = _Call(k, Prot(0), 0, alloc=True)
    for va in range(start & ~((1 << arch.shift[PMD]) - 1), end, 1 << arch.shift[PMD]):
        ptr = arch.pgd_offset(k.machine.swapper_pg_dir, va)
        for depth in range(PGD, PMD + 1):
            if not call.table_at(depth, ptr):
                return -ENOMEM
            ptr = call.child(depth, ptr, va)
    return 0

