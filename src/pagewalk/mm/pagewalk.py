"""The generic page-table walker (linux: mm/pagewalk.c, include/linux/pagewalk.h).

One function per level, as in the kernel: walk_pgd_range -> walk_p4d_range ->
walk_pud_range -> walk_pmd_range -> walk_pte_range(_inner); a VMA layer
(walk_page_test, __walk_page_range, walk_hugetlb_range); and every entry
point with its -EINVAL checks and lock assertions, per era (BASE, SEED-v2,
SEED-review, UP-6.18, LATER, and the real 6.1 / 6.12 trees). Spec:
shared/spec/pagewalk.md.

Entry pointers handed to callbacks are physical addresses; read the entry
with `walk.read(ptr)` (READ_ONCE) and write it with `walk.write(ptr, val)`.
Kernel-shaped functions return 0, a callback's non-zero value, or a negative
errno, exactly as the kernel does.

>>> from pagewalk.mm.machine import Machine
>>> from pagewalk.mm.mm_types import vm_area_struct
>>> m = Machine.simulated("6.18")
>>> mm = m.new_user_mm([vm_area_struct(0x10000, 0x20000)])
>>> mm.mmap_lock.down_read()
>>> holes = []
>>> hole = lambda addr, next, depth, walk: holes.append((hex(addr), depth)) or 0
>>> walk_page_range(mm, 0x10000, 0x20000, mm_walk_ops(pte_hole=hole))
0
>>> holes                  # pte_hole alone does not descend: no holes inside a VMA (spec §2)
[]
>>> walk_page_range(mm, 0x10000, 0x20000, mm_walk_ops(pte_hole=hole, pte_entry=lambda *args: 0))
0
>>> holes                  # an empty user mm: one hole, reported at the PGD level
[('0x10000', 0)]
>>> walk_page_range(mm, 0x20000, 0x10000, mm_walk_ops())
-22
"""

import contextvars
from dataclasses import dataclass
from errno import EINVAL, ENOMEM
from typing import Any, Callable

from ..arch.arm64.asm.pgtable import LEVEL_NAMES, P4D, PGD, PMD, PTE, PUD, Offset
from ..errors import PagewalkError, ReadOnlyMemoryError
from ..phys.memory import MASK64
from .mm_types import VM_PFNMAP, mm_struct, vm_area_struct

# enum page_walk_action
ACTION_SUBTREE, ACTION_CONTINUE, ACTION_AGAIN = 0, 1, 2
# enum page_walk_lock; value 3 means different things in different eras (spec §1.6).
PGWALK_RDLOCK, PGWALK_WRLOCK, PGWALK_WRLOCK_VERIFY = 0, 1, 2
PGWALK_NOLOCK = 3                 # SEED-v2 / SEED-review only
PGWALK_VMA_RDLOCK_VERIFY = 3      # v6.17 and later
# SEED-review capability flags for check_ops_valid().
OPS_MAY_INSTALL_PTE, OPS_MAY_AVOID_LOCK = 1 << 0, 1 << 1

__all__ = ["ACTION_SUBTREE", "ACTION_CONTINUE", "ACTION_AGAIN", "PGWALK_RDLOCK", "PGWALK_WRLOCK",
           "PGWALK_WRLOCK_VERIFY", "PGWALK_NOLOCK", "PGWALK_VMA_RDLOCK_VERIFY", "OPS_MAY_INSTALL_PTE",
           "OPS_MAY_AVOID_LOCK", "EINVAL", "ENOMEM", "mm_walk_ops", "mm_walk", "address_space", "use_machine",
           "walk_page_range", "walk_page_range_mm", "walk_page_range_vma", "walk_page_vma", "walk_page_mapping",
           "walk_kernel_page_table_range", "walk_kernel_page_table_range_lockless", "walk_page_range_debug",
           "walk_page_range_novma", "walk_kernel_tables"]


def _lock_mode(era, walk_lock: int) -> str | None:
    """The name `walk_lock` has in this era's `enum page_walk_lock` (value 3 differs, spec §1.6)."""
    return ("PGWALK_RDLOCK", "PGWALK_WRLOCK", "PGWALK_WRLOCK_VERIFY", era.pgwalk_value_3)[walk_lock]

Callback = Callable[..., int] | None


@dataclass
class mm_walk_ops:  # noqa: N801 - kernel name
    """`struct mm_walk_ops`: every callback is optional.

    Entry callbacks are `(ptr, addr, next, walk) -> int`; `pte_hole(addr, next,
    depth, walk)`; `hugetlb_entry(ptr, hmask, addr, next, walk)`;
    `test_walk(addr, next, walk)`; `pre_vma(start, end, walk)`;
    `post_vma(walk)`; `install_pte(addr, next, out, walk)` stores the new PTE
    in `out[0]`. `pte_table(ptr, values, addr, end, walk)` is pagewalk's batch
    extension: instead of one `pte_entry` call per PTE it receives the run's
    values as a numpy array (only used when `pte_entry` is not set).
    """
    pgd_entry: Callback = None
    p4d_entry: Callback = None
    pud_entry: Callback = None
    pmd_entry: Callback = None
    pte_entry: Callback = None
    pte_hole: Callback = None
    hugetlb_entry: Callback = None
    test_walk: Callback = None
    pre_vma: Callback = None
    post_vma: Callable[..., None] | None = None
    install_pte: Callback = None
    walk_lock: int = PGWALK_RDLOCK
    pte_table: Callback = None


@dataclass(eq=False)
class mm_walk:  # noqa: N801 - kernel name
    """`struct mm_walk`: the state every callback receives."""
    ops: mm_walk_ops
    mm: mm_struct
    pgd: int | None = None
    vma: vm_area_struct | None = None
    action: int = ACTION_SUBTREE
    no_vma: bool = False
    private: Any = None

    def __post_init__(self):
        self.arch = self.mm.machine.arch
        self.memory = self.mm.machine.memory
        self.read = self.memory.read_u64        # READ_ONCE(*ptr)
        self.tables = TableGuard(self)

    def write(self, ptr: int, val: int) -> None:
        """WRITE_ONCE(*ptr, val) / set_pte_at()."""
        self.memory.write_u64(ptr, val)


class TableGuard:
    """Keeps a walk over untrusted tables (a dump) finite and honest; never fires on a kernel's own tables.

    Before the walk descends into a table it checks that the table is in memory, is not already on the
    walk's path (a loop), and, when reached from a second entry, holds one repeated entry (as KASAN's
    shared early-shadow tables do; a real table reached twice is a fan-out of a corrupt dump). A table
    that fails is reported (`log.bug`) and skipped: the walk goes on with the next slot.
    """

    def __init__(self, walk: "mm_walk"):
        self.walk = walk
        self.path: list[int] = []
        self.entered: dict[int, int] = {}

    def enter(self, depth: int, parent: int, table: int) -> bool:
        walk = self.walk
        name, page = LEVEL_NAMES[depth], walk.arch.page_size
        problem = None
        if table in self.path:
            problem = f"table loop: the entry at {parent:#x} points back to the {name} table at {table:#x}"
        elif not walk.memory.is_backed(table, page):
            problem = f"the {name} table at {table:#x} (entry at {parent:#x}) is outside memory"
        elif self.entered.setdefault(table, parent) != parent and \
                len(set(walk.memory.read_table(table, walk.arch.ptrs[depth]).tolist())) > 1:
            problem = (f"the {name} table at {table:#x} is reached from two entries ({self.entered[table]:#x} "
                       f"and {parent:#x})")
        if problem:
            walk.mm.machine.log.bug("walk_pgd_range", f"{problem}: not walked")
            return False
        self.path.append(table)
        return True

    def leave(self) -> None:
        self.path.pop()


# -- helpers ------------------------------------------------------------------

def real_depth(walk: mm_walk, depth: int) -> int:
    """Map a hole's depth through build-time folding (not run-time folding)."""
    folded = walk.arch.compile_folded
    if depth == PMD and folded[PMD]:
        depth = PUD
    if depth == PUD and folded[PUD]:
        depth = P4D
    if depth == P4D and folded[P4D]:
        depth = PGD
    return depth


def _has_pte_handler(ops: mm_walk_ops) -> bool:
    return ops.pte_entry is not None or ops.pte_table is not None


def _alloc_table(walk: mm_walk, depth: int, ptr: int) -> int:
    """`__p4d_alloc` .. `__pte_alloc`: a zeroed table for the level below `depth`."""
    machine = walk.mm.machine
    memory = machine.memory
    if not memory.writable:
        raise ReadOnlyMemoryError(ptr, "a dump: install_pte would allocate a page table")
    page = memory.alloc_page()
    if page is None:
        return -ENOMEM
    walk.write(ptr, walk.arch.table_descriptor(page, kernel=walk.mm.is_init_mm))
    return 0


def _none_or_clear_bad(walk: mm_walk, depth: int, ptr: int) -> bool:
    """`pgd_none_or_clear_bad()` / `p4d_none_or_clear_bad()`: a bad entry is reported and zeroed."""
    arch, val = walk.arch, walk.read(ptr)
    if arch.none(depth, val):
        return True
    if arch.bad(depth, val):
        name = LEVEL_NAMES[depth]
        walk.mm.machine.log.warn_on_once(f"{name}_clear_bad", f"bad {name} {val:#018x} at {ptr:#x}")
        if walk.memory.writable:                          # a dump is read-only: warn and go on as if empty
            walk.write(ptr, 0)
        return True
    return False


# -- the recursive core (spec §2) --------------------------------------------

def _fill_or_hole(walk: mm_walk, depth: int, ptr: int, addr: int, nxt: int, hole_depth: int) -> tuple[bool, int]:
    """A none slot: `(descend, err)`. Install walks allocate the next table and descend into it
    (-ENOMEM when they cannot); other walks report the hole and go on with the next slot."""
    ops = walk.ops
    if ops.install_pte is not None:
        err = _alloc_table(walk, depth, ptr)
        return not err, err
    return False, ops.pte_hole(addr, nxt, hole_depth, walk) if ops.pte_hole else 0


def _walk_slots(walk: mm_walk, depth: int, ptr: int, addr: int, end: int, visit) -> int:
    """The loop every level shares: `visit(ptr, addr, next, walk) -> (err, again)` for each slot of
    `[addr, end)` (pXd_addr_end() steps), the same slot again while it says so (`goto again`)."""
    arch = walk.arch
    while True:
        nxt = arch.addr_end(depth, addr, end)
        err, again = visit(ptr, addr, nxt, walk)
        while again and not err:
            err, again = visit(ptr, addr, nxt, walk)
        if err or nxt == end:
            return err
        ptr, addr = ptr + 8, nxt


def _has_handler_below(ops: mm_walk_ops, depth: int) -> bool:
    """An entry callback (or a PTE handler) exists below `depth`."""
    return _has_pte_handler(ops) or any(getattr(ops, f"{LEVEL_NAMES[d]}_entry") for d in range(depth + 1, PTE))


def _directory_slot(depth: int):
    """One slot of walk_pgd_range() / walk_p4d_range(): none-or-bad test (bad entries are cleared),
    hole or table allocation, the entry callback (its action is ignored), descent."""
    def visit(ptr: int, addr: int, nxt: int, walk: mm_walk) -> tuple[int, bool]:
        ops = walk.ops
        if _none_or_clear_bad(walk, depth, ptr):
            descend, err = _fill_or_hole(walk, depth, ptr, addr, nxt, real_depth(walk, depth))
            if err or not descend:
                return err, False
        entry = ops.pgd_entry if depth == PGD else ops.p4d_entry
        err = entry(ptr, addr, nxt, walk) if entry else 0
        if not err and (ops.install_pte is not None or _has_handler_below(ops, depth)):
            err = (walk_p4d_range if depth == PGD else walk_pud_range)(ptr, addr, nxt, walk)
        return err, False
    return visit


_PGD_SLOT, _P4D_SLOT = _directory_slot(PGD), _directory_slot(P4D)


def walk_pgd_range(addr: int, end: int, walk: mm_walk) -> int:
    root = walk.pgd if walk.pgd is not None else walk.mm.pgd
    walk.tables.path.append(root - root % walk.arch.page_size)
    try:
        return _walk_slots(walk, PGD, walk.arch.pgd_offset(root, addr), addr, end, _PGD_SLOT)
    finally:
        walk.tables.leave()


def _walk_table(walk: mm_walk, depth: int, parent: int, parent_val: int, addr: int, end: int, visit) -> int:
    """The slots of the table below `parent` (the parent's own table when the level is folded)."""
    first = walk.arch.offset(depth, parent, parent_val, addr)
    if walk.arch.offsets[depth] is not Offset.TABLE:
        return _walk_slots(walk, depth, first, addr, end, visit)
    if not walk.tables.enter(depth, parent, first - first % walk.arch.page_size):
        return 0
    try:
        return _walk_slots(walk, depth, first, addr, end, visit)
    finally:
        walk.tables.leave()


def walk_p4d_range(pgd: int, addr: int, end: int, walk: mm_walk) -> int:
    return _walk_table(walk, P4D, pgd, walk.read(pgd), addr, end, _P4D_SLOT)


def walk_pud_range(p4d: int, addr: int, end: int, walk: mm_walk) -> int:
    return _walk_table(walk, PUD, p4d, walk.read(p4d), addr, end, _pud_slot)


def _pud_slot(ptr: int, addr: int, nxt: int, walk: mm_walk) -> tuple[int, bool]:
    ops, arch = walk.ops, walk.arch
    retry_at_pmd = walk.mm.machine.era.pud_refault_retry
    walk.action = ACTION_SUBTREE
    if arch.none(PUD, walk.read(ptr)):
        descend, err = _fill_or_hole(walk, PUD, ptr, addr, nxt, real_depth(walk, 2))
        if err or not descend:
            return err, False
    if ops.pud_entry:
        err = ops.pud_entry(ptr, addr, nxt, walk)
        if err:
            return err, False
    if walk.action == ACTION_AGAIN:
        return 0, True
    if walk.action == ACTION_CONTINUE or not _pud_descend(walk, ptr, _has_handler_below(ops, PUD),
                                                           ops.install_pte is not None):
        return 0, False
    if not retry_at_pmd and arch.none(PUD, walk.read(ptr)):
        return 0, True                                    # BASE: the split zapped it, redo the slot
    err = walk_pmd_range(ptr, addr, nxt, walk)
    return err, retry_at_pmd and walk.action == ACTION_AGAIN


def _pud_descend(walk: mm_walk, ptr: int, has_handler: bool, has_install: bool) -> bool:
    arch = walk.arch
    val = walk.read(ptr)
    if not has_handler:
        if not has_install or (arch.present(PUD, val) and arch.trans_huge(PUD, val)):
            return False
    if walk.vma is not None:
        return True                                       # split_huge_pud(): a no-op on arm64
    return not (arch.leaf(PUD, val) or not arch.present(PUD, val))


def walk_pmd_range(pud: int, addr: int, end: int, walk: mm_walk) -> int:
    arch = walk.arch
    pud_val = walk.read(pud)
    if walk.mm.machine.era.pud_refault_retry and (not arch.present(PUD, pud_val) or arch.leaf(PUD, pud_val)):
        if walk.vma is not None:
            # split_huge_pud() cannot change it on arm64: the kernel would retry forever.
            walk.mm.machine.log.bug("walk_pmd_range", f"PUD {pud_val:#018x} at {pud:#x} stays a leaf or "
                                    f"non-present in a VMA walk: the slot would be retried forever")
            return 0
        walk.action = ACTION_AGAIN
        return 0
    return _walk_table(walk, PMD, pud, pud_val, addr, end, _pmd_slot)


def _pmd_slot(ptr: int, addr: int, nxt: int, walk: mm_walk) -> tuple[int, bool]:
    ops, arch, read = walk.ops, walk.arch, walk.read
    walk.action = ACTION_SUBTREE
    val = read(ptr)
    if arch.none(PMD, val):
        descend, err = _fill_or_hole(walk, PMD, ptr, addr, nxt, real_depth(walk, 3))
        if err or not descend:
            return err, False
        val = read(ptr)
    if ops.pmd_entry:
        err = ops.pmd_entry(ptr, addr, nxt, walk)
        if err:
            return err, False
        val = read(ptr)
    if walk.action == ACTION_AGAIN:
        return 0, True
    if walk.action == ACTION_CONTINUE or not _pmd_descend(walk, ptr, val, addr, _has_pte_handler(ops),
                                                           ops.install_pte is not None):
        return 0, False
    err = walk_pte_range(ptr, addr, nxt, walk, None if walk.vma is not None else val)
    return err, walk.mm.machine.era.pmd_retry_after_pte and walk.action == ACTION_AGAIN


def _pmd_descend(walk: mm_walk, ptr: int, val: int, addr: int, has_handler: bool, has_install: bool) -> bool:
    arch = walk.arch
    if not has_handler:
        if not has_install or (arch.present(PMD, val) and arch.trans_huge(PMD, val)):
            return False
    if walk.vma is not None:
        split_huge_pmd(walk, ptr, addr)
        return True
    return arch.present(PMD, val) and not arch.leaf(PMD, val)


def split_huge_pmd(walk: mm_walk, ptr: int, addr: int) -> None:
    """`split_huge_pmd()`: anonymous THP -> PTE table with the same pages; file THP -> cleared."""
    arch, val = walk.arch, walk.read(ptr)
    if val == 0 or (arch.present(PMD, val) and not arch.trans_huge(PMD, val)):
        return
    if not walk.mm.machine.era.splits_nonpresent_pmd and not arch.present(PMD, val):
        return
    memory = walk.mm.machine.memory
    if not memory.writable:
        raise ReadOnlyMemoryError(ptr, f"a dump: split_huge_pmd({addr:#x}) would rewrite the PMD")
    if not walk.vma.is_anonymous or not arch.present(PMD, val):
        walk.write(ptr, 0)
        return
    table = memory.alloc_page()
    if table is None:
        walk.write(ptr, 0)                                # the kernel zaps and refaults instead
        return
    hw, page = arch.hw, arch.page_size
    base = hw.output_address(val, arch.shift[PMD])
    attrs = val & ~hw.encode_address(base, arch.shift[PMD]) | 3
    for i in range(arch.ptrs[PTE]):
        memory.write_u64(table + 8 * i, attrs | hw.encode_address(base + i * page, arch.page_shift))
    walk.write(ptr, arch.table_descriptor(table, kernel=False))


def walk_pte_range(pmd: int, addr: int, end: int, walk: mm_walk, pmd_val: int | None = None) -> int:
    """Map the PTE table (locking it for VMA walks) and walk the run; AGAIN if it cannot be mapped.

    `pmd_val` is the entry the PMD level just read, when nothing can have changed it since.
    """
    arch, mm = walk.arch, walk.mm
    if pmd_val is None:
        pmd_val = walk.read(pmd)
    kernel_map = walk.no_vma and (mm.is_init_mm or addr >= 1 << arch.vabits_actual)
    if not kernel_map and not (arch.present(PMD, pmd_val) and arch.table(PMD, pmd_val)):
        walk.action = ACTION_AGAIN                        # pte_offset_map() failed
        return 0
    pte = arch.offset(PTE, pmd, pmd_val, addr)
    if not walk.tables.enter(PTE, pmd, pte - pte % arch.page_size):
        return 0
    try:
        if walk.no_vma:
            return walk_pte_range_inner(pte, addr, end, walk)
        ptl = mm.page_table_lock
        ptl.lock()
        try:
            return walk_pte_range_inner(pte, addr, end, walk)
        finally:
            ptl.unlock()
    finally:
        walk.tables.leave()


def walk_pte_range_inner(pte: int, addr: int, end: int, walk: mm_walk) -> int:
    ops = walk.ops
    page = walk.arch.page_size
    install, pte_entry = ops.install_pte, ops.pte_entry
    if pte_entry is None and install is None and ops.pte_table is not None:
        count = max(1, -(-(end - addr) // page))
        return ops.pte_table(pte, walk.memory.read_table(pte, count), addr, end, walk)
    last = end - page
    while True:
        if install is not None and walk.read(pte) == 0:
            out = [0]
            err = install(addr, addr + page, out, walk)
            if err:
                return err
            walk.write(pte, out[0])
            if walk.no_vma:
                walk.mm.machine.log.warn_on_once("walk_pte_range_inner", "install_pte in a no-VMA walk")
        else:
            if pte_entry is None:
                raise PagewalkError("install_pte without pte_entry reached a non-none PTE (a NULL call in the kernel)")
            err = pte_entry(pte, addr, addr + page, walk)
            if err:
                return err
        if addr >= last:
            return 0
        addr += page
        pte += 8


# -- hugetlb and the VMA layer (spec §3) ---------------------------------------

def huge_pte_offset(walk: mm_walk, addr: int, size: int) -> int | None:
    """arm64 `huge_pte_offset()`: the slot for a huge page, or None when tables are missing."""
    arch = walk.arch
    pgd = arch.pgd_offset(walk.mm.pgd, addr)
    if not arch.present(PGD, walk.read(pgd)):
        return None
    p4d = arch.offset(P4D, pgd, walk.read(pgd), addr)
    if not arch.present(P4D, walk.read(p4d)):
        return None
    pud = arch.offset(PUD, p4d, walk.read(p4d), addr)
    pud_val = walk.read(pud)
    if size != 1 << arch.shift[PUD] and arch.none(PUD, pud_val):
        return None
    if arch.leaf(PUD, pud_val) or not arch.present(PUD, pud_val):
        return pud
    pmd_size = 1 << arch.shift[PMD]
    cont_pmd = pmd_size * arch.hw.contiguous_entries(2)
    if size == cont_pmd:
        addr &= ~(cont_pmd - 1)
    pmd = arch.offset(PMD, pud, pud_val, addr)
    pmd_val = walk.read(pmd)
    if size not in (pmd_size, cont_pmd) and arch.none(PMD, pmd_val):
        return None
    if arch.leaf(PMD, pmd_val) or not arch.present(PMD, pmd_val):
        return pmd
    cont_pte = arch.page_size * arch.hw.contiguous_entries(3)
    if size == cont_pte:
        return arch.offset(PTE, pmd, pmd_val, addr & ~(cont_pte - 1))
    return None


def walk_hugetlb_range(addr: int, end: int, walk: mm_walk) -> int:
    ops, size = walk.ops, walk.vma.huge_page_size
    hmask = ~(size - 1) & MASK64
    while True:
        nxt = min((addr & hmask) + size, end)
        ptr = huge_pte_offset(walk, addr & hmask, size)
        err = 0
        if ptr is not None:
            err = ops.hugetlb_entry(ptr, hmask, addr, nxt, walk)
        elif ops.pte_hole:
            err = ops.pte_hole(addr, nxt, -1, walk)
        if err:
            return err
        addr = nxt
        if addr == end:
            return 0


def walk_page_test(start: int, end: int, walk: mm_walk) -> int:
    ops = walk.ops
    if ops.test_walk:
        return ops.test_walk(start, end, walk)
    if walk.vma.vm_flags & VM_PFNMAP:
        err = ops.pte_hole(start, end, -1, walk) if ops.pte_hole else 0
        return err if err else 1
    return 0


def __walk_page_range(start: int, end: int, walk: mm_walk) -> int:
    ops, vma = walk.ops, walk.vma
    if ops.install_pte and vma.is_hugetlb:
        return -EINVAL
    if ops.pre_vma:
        err = ops.pre_vma(start, end, walk)
        if err:
            return err
    err = 0
    if vma.is_hugetlb:
        if ops.hugetlb_entry:
            err = walk_hugetlb_range(start, end, walk)
    else:
        err = walk_pgd_range(start, end, walk)
    if ops.post_vma:
        ops.post_vma(walk)
    return err


# -- locks and checks (spec §5, §6) -------------------------------------------

def _assert_mmap_locked(mm: mm_struct, site: str, write: bool) -> None:
    lock = mm.mmap_lock
    if write and not lock.is_write_locked():
        mm.machine.log.assertion(site, f"mmap_assert_write_locked({mm.name}) failed")
    elif not write and not lock.is_locked():
        mm.machine.log.assertion(site, f"mmap_assert_locked({mm.name}) failed")


def process_mm_walk_lock(mm: mm_struct, walk_lock: int) -> bool:
    """Assert the mm lock the walk mode needs; True means SEED-v2's PGWALK_NOLOCK."""
    era = mm.machine.era
    site = "process_mm_walk_lock"
    if not era.has_walk_lock:
        _assert_mmap_locked(mm, site, write=False)
        return False
    mode = _lock_mode(era, walk_lock)
    if mode == "PGWALK_NOLOCK" and not era.ops_capabilities:
        return True                                       # SEED-v2 refuses NOLOCK on user walks
    if mode == "PGWALK_RDLOCK":
        _assert_mmap_locked(mm, site, write=False)
    elif mode == "PGWALK_VMA_RDLOCK_VERIFY":
        pass
    else:
        _assert_mmap_locked(mm, site, write=True)
    return False


def process_vma_walk_lock(vma: vm_area_struct, walk_lock: int) -> None:
    mm = vma.vm_mm
    log, era = mm.machine.log, mm.machine.era
    if not mm.machine.per_vma_lock or not era.has_walk_lock:
        return
    mode = _lock_mode(era, walk_lock)
    if mode == "PGWALK_WRLOCK":
        _assert_mmap_locked(mm, "vma_start_write", write=True)
        vma.lock_state = "write"
    elif mode == "PGWALK_WRLOCK_VERIFY":
        if vma.lock_state != "write":
            log.assertion("vma_assert_write_locked", f"{vma!r} is not write-locked")
    elif mode == "PGWALK_NOLOCK" and era.ops_capabilities:
        log.warn_on_once("process_vma_walk_lock", "PGWALK_NOLOCK on a VMA walk")
    elif mode == "PGWALK_VMA_RDLOCK_VERIFY" and vma.lock_state is None:
        log.assertion("vma_assert_locked", f"{vma!r} is not locked")


def check_ops_valid(mm: mm_struct, ops: mm_walk_ops, capabilities: int = 0) -> bool:
    """`check_ops_valid()` (`check_ops_safe()` in 7.x); SEED-review takes capabilities."""
    era = mm.machine.era
    if not era.has_install_pte:
        if ops.install_pte is not None:
            raise PagewalkError(f"install_pte does not exist in the {era.value} walker (added in v6.13)")
        return True
    if era.ops_capabilities:
        if ops.install_pte and not capabilities & OPS_MAY_INSTALL_PTE:
            return False
        return not (ops.walk_lock == PGWALK_NOLOCK and not capabilities & OPS_MAY_AVOID_LOCK)
    return ops.install_pte is None


def _require(mm: mm_struct, name: str, present: bool) -> None:
    if not present:
        raise PagewalkError(f"{name}() does not exist in the {mm.machine.era.value} kernel")


# -- entry points (spec §4) ---------------------------------------------------

_current_machine: contextvars.ContextVar = contextvars.ContextVar("pagewalk_machine", default=None)


def use_machine(machine) -> contextvars.Token:
    """Make `machine` the one whose init_mm the kernel entry points walk."""
    return _current_machine.set(machine)


def _init_mm(init_mm: mm_struct | None) -> mm_struct:
    if init_mm is not None:
        return init_mm
    machine = _current_machine.get()
    if machine is None:
        raise PagewalkError("no machine: pass init_mm= or call pagewalk.use_machine(machine) first")
    return machine.init_mm


def _walk_user_range(mm: mm_struct, start: int, end: int, ops: mm_walk_ops, private) -> int:
    """The VMA loop of walk_page_range_mm() after its checks."""
    walk = mm_walk(ops, mm, private=private)
    vma = mm.find_vma(start)
    while True:
        err = 0
        if vma is None or start < vma.vm_start:
            walk.vma = None
            nxt = end if vma is None else min(end, vma.vm_start)
            if ops.pte_hole:
                err = ops.pte_hole(start, nxt, -1, walk)
        else:
            process_vma_walk_lock(vma, ops.walk_lock)
            walk.vma = vma
            nxt = min(end, vma.vm_end)
            vma = mm.next_vma(vma)
            err = walk_page_test(start, nxt, walk)
            if err > 0:
                err = 0
            elif err == 0:
                err = __walk_page_range(start, nxt, walk)
        if err:
            return err
        start = nxt
        if start >= end:
            return 0


def walk_page_range_mm(mm: mm_struct, start: int, end: int, ops: mm_walk_ops, private=None) -> int:
    """Walk `[start, end)` of a user mm VMA by VMA; may install PTEs (mm/internal.h)."""
    if mm is not None:
        _require(mm, "walk_page_range_mm", mm.machine.era.has_install_pte)
    if mm is not None and mm.machine.era.ops_capabilities and not check_ops_valid(mm, ops, OPS_MAY_INSTALL_PTE):
        return -EINVAL
    return _walk_page_range_mm_unchecked(mm, start, end, ops, private)


def _walk_page_range_mm_unchecked(mm, start, end, ops, private) -> int:
    if start >= end or mm is None:
        return -EINVAL
    if process_mm_walk_lock(mm, ops.walk_lock):
        return -EINVAL
    return _walk_user_range(mm, start, end, ops, private)


def walk_page_range(mm: mm_struct, start: int, end: int, ops: mm_walk_ops, private=None) -> int:
    """Walk a user address range with the caller's callbacks (exported).

    Returns 0, the first non-zero callback value, or -EINVAL (-22) for
    `start >= end`, a NULL mm, ops with install_pte, or (SEED-v2) PGWALK_NOLOCK.
    """
    if mm is not None and not check_ops_valid(mm, ops):
        return -EINVAL
    return _walk_page_range_mm_unchecked(mm, start, end, ops, private)


def walk_kernel_tables(mm: mm_struct, start: int, end: int, ops: mm_walk_ops, pgd=None, private=None) -> int:
    """The no-VMA walk every kernel/debug entry point ends in, without their checks or lock
    assertions: for the model's own bookkeeping walks (not a kernel function)."""
    return walk_pgd_range(start, end, mm_walk(ops, mm, pgd=pgd, no_vma=True, private=private))


def walk_kernel_page_table_range_lockless(start: int, end: int, ops: mm_walk_ops, pgd: int | None = None,
                                          private=None, *, init_mm: mm_struct | None = None) -> int:
    """Walk kernel tables with no lock: the caller owns the range (UP-6.18 and later)."""
    mm = _init_mm(init_mm)
    _require(mm, "walk_kernel_page_table_range_lockless", mm.machine.era.has_lockless_entry)
    if start >= end or not check_ops_valid(mm, ops):
        return -EINVAL
    return walk_kernel_tables(mm, start, end, ops, pgd, private)


def walk_kernel_page_table_range(start: int, end: int, ops: mm_walk_ops, pgd: int | None = None,
                                 private=None, *, init_mm: mm_struct | None = None) -> int:
    """Walk kernel tables (init_mm, or the root `pgd`) under the init_mm mmap lock (v6.16+)."""
    mm = _init_mm(init_mm)
    era = mm.machine.era
    site = "walk_kernel_page_table_range"
    _require(mm, site, not era.novma_walk)
    if era.has_lockless_entry:
        _assert_mmap_locked(mm, site, write=False)
        return walk_kernel_page_table_range_lockless(start, end, ops, pgd, private, init_mm=mm)
    if start >= end:
        return -EINVAL
    caps = OPS_MAY_AVOID_LOCK if era.ops_capabilities else 0
    if not check_ops_valid(mm, ops, caps):
        return -EINVAL
    if not (era.seed and ops.walk_lock == PGWALK_NOLOCK):
        _assert_mmap_locked(mm, site, write=False)
    return walk_kernel_tables(mm, start, end, ops, pgd, private)


def walk_page_range_debug(mm: mm_struct, start: int, end: int, ops: mm_walk_ops, pgd: int | None = None,
                          private=None) -> int:
    """Walk any mm's tables without VMAs, for ptdump (v6.16+; 6.12.117 by backport)."""
    era = mm.machine.era if mm is not None else None
    site = "walk_page_range_debug"
    if era is not None:
        _require(mm, site, not era.novma_walk)
    if era is not None and era.debug_walk_locks_both:
        _assert_mmap_locked(mm, site, write=True)
        _assert_mmap_locked(mm.machine.init_mm, site, write=True)
        if start >= end or not check_ops_valid(mm, ops):
            return -EINVAL
        return walk_kernel_tables(mm, start, end, ops, pgd, private)
    if mm is not None and mm.is_init_mm:
        return walk_kernel_page_table_range(start, end, ops, pgd, private, init_mm=mm)
    if start >= end or mm is None or not check_ops_valid(mm, ops):
        return -EINVAL
    _assert_mmap_locked(mm, site, write=True)
    return walk_kernel_tables(mm, start, end, ops, pgd, private)


def walk_page_range_novma(mm: mm_struct, start: int, end: int, ops: mm_walk_ops, pgd: int | None = None,
                          private=None) -> int:
    """The pre-v6.16 no-VMA walk, as the 6.1.192 tree has it (used by its ptdump)."""
    if start >= end or mm is None:
        return -EINVAL
    _require(mm, "walk_page_range_novma", mm.machine.era.novma_walk)
    _assert_mmap_locked(mm, "walk_page_range_novma", write=True)
    _assert_mmap_locked(mm.machine.init_mm, "walk_page_range_novma", write=True)
    return walk_kernel_tables(mm, start, end, ops, pgd, private)


def _vma_walk(vma: vm_area_struct, start: int, end: int, ops: mm_walk_ops, private) -> int:
    mm = vma.vm_mm
    if process_mm_walk_lock(mm, ops.walk_lock):
        return -EINVAL
    process_vma_walk_lock(vma, ops.walk_lock)
    return __walk_page_range(start, end, mm_walk(ops, mm, vma=vma, private=private))


def walk_page_range_vma(vma: vm_area_struct, start: int, end: int, ops: mm_walk_ops, private=None) -> int:
    """Walk `[start, end)` inside one VMA: no test_walk, no VM_PFNMAP skip."""
    if start >= end or vma is None or vma.vm_mm is None:
        return -EINVAL
    if start < vma.vm_start or end > vma.vm_end:
        return -EINVAL
    if not check_ops_valid(vma.vm_mm, ops):
        return -EINVAL
    return _vma_walk(vma, start, end, ops, private)


def walk_page_vma(vma: vm_area_struct, ops: mm_walk_ops, private=None) -> int:
    """Walk a whole VMA (6.1 still applies walk_page_test here)."""
    if vma is None or vma.vm_mm is None or not check_ops_valid(vma.vm_mm, ops):
        return -EINVAL
    mm = vma.vm_mm
    if mm.machine.era.walk_page_vma_tests:
        process_mm_walk_lock(mm, ops.walk_lock)
        walk = mm_walk(ops, mm, vma=vma, private=private)
        err = walk_page_test(vma.vm_start, vma.vm_end, walk)
        if err:
            return 0 if err > 0 else err
        return __walk_page_range(vma.vm_start, vma.vm_end, walk)
    return _vma_walk(vma, vma.vm_start, vma.vm_end, ops, private)


@dataclass(eq=False)
class address_space:  # noqa: N801 - kernel name
    """The part of `struct address_space` walk_page_mapping uses: i_mmap and its lock."""
    vmas: list[vm_area_struct]
    i_mmap_rwsem_held: bool = True


def walk_page_mapping(mapping: address_space, first_index: int, nr: int, ops: mm_walk_ops,
                      private=None) -> int:
    """Walk every VMA mapping file pages `[first_index, first_index + nr)`; walk_lock is ignored."""
    if not mapping.vmas:
        return 0
    machine = mapping.vmas[0].vm_mm.machine
    if not check_ops_valid(mapping.vmas[0].vm_mm, ops):
        return -EINVAL
    if not mapping.i_mmap_rwsem_held:
        machine.log.assertion("walk_page_mapping", "lockdep_assert_held(&mapping->i_mmap_rwsem) failed")
    err = 0
    for vma in sorted(mapping.vmas, key=lambda v: (v.vm_pgoff, v.vm_start)):
        first, last = max(first_index, vma.vm_pgoff), min(first_index + nr, vma.vm_pgoff + vma.pages())
        if first >= last:
            continue
        page = vma.vm_mm.page_size
        start = vma.vm_start + (first - vma.vm_pgoff) * page
        end = vma.vm_start + (last - vma.vm_pgoff) * page
        walk = mm_walk(ops, vma.vm_mm, vma=vma, private=private)
        err = walk_page_test(vma.vm_start, vma.vm_end, walk)
        if err > 0:
            return 0
        if err < 0:
            return err
        err = __walk_page_range(start, end, walk)
        if err:
            return err
    return err
