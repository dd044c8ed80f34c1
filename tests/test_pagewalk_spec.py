"""pagewalk.md §8: the walker's observable behaviours, one test per numbered item.

Defaults as in the spec: 4K pages, 4 levels with P4D folded, era UP-6.18, -EINVAL = -22.
"""

import pytest

from pagewalk import (
    ACTION_AGAIN, ACTION_CONTINUE, OPS_MAY_AVOID_LOCK, PGWALK_NOLOCK, PGWALK_VMA_RDLOCK_VERIFY,
    PGWALK_WRLOCK, PGWALK_WRLOCK_VERIFY, address_space, vm_area_struct, walk_kernel_page_table_range,
    walk_kernel_page_table_range_lockless, walk_page_mapping, walk_page_range, walk_page_range_debug,
    walk_page_range_mm, walk_page_range_vma, walk_page_vma,
)
from pagewalk.errors import PagewalkError
from pagewalk.mm.log import LockAssertion
from pagewalk.mm.mm_types import VM_HUGETLB, VM_PFNMAP, VM_READ, VM_WRITE
from walkhelp import Rec, act_on, kernel_builder, user_machine

EINVAL, ENOMEM = -22, -12
PAGE, PMD_SIZE = 0x1000, 0x200000


def assertions(m):
    return m.log.of_kind("assertion")


def test_pagewalk_1_empty_range():
    m, mm, _ = user_machine(lock=None)
    r = Rec("pte_entry", "pte_hole")
    assert walk_page_range(mm, 0x10000, 0x10000, r.ops) == EINVAL
    assert r.calls == [] and not assertions(m)


def test_pagewalk_2_install_pte_refused_by_walk_page_range():
    m, mm, b = user_machine()
    r = Rec("install_pte", "pte_entry")
    assert walk_page_range(mm, 0x20000, 0x10000, r.ops) == EINVAL
    assert walk_page_range(mm, 0x10000, 0x20000, r.ops) == EINVAL
    assert walk_page_range_mm(mm, 0x10000, 0x11000, r.ops) == 0 and r.named("install_pte")


def test_pagewalk_3_null_mm():
    assert walk_page_range(None, 0, 4096, Rec("pte_entry").ops) == EINVAL


def test_pagewalk_4_lock_assertions():
    m, mm, _ = user_machine(lock=None)
    walk_page_range(mm, 0x10000, 0x20000, Rec("pte_hole").ops)
    assert len(assertions(m)) == 1 and "mmap_assert_locked" in assertions(m)[0].message
    m.log.clear()
    mm.mmap_lock.down_read()
    walk_page_range(mm, 0x10000, 0x20000, Rec("pte_hole").ops)
    assert not assertions(m)
    walk_page_range(mm, 0x10000, 0x20000, Rec("pte_hole", walk_lock=PGWALK_WRLOCK).ops)
    assert "write_locked" in assertions(m)[0].message


def test_pagewalk_5_hole_only_ops_do_not_descend():
    m, mm, _ = user_machine()
    r = Rec("pte_hole")
    assert walk_page_range(mm, 0, 0x30000, r.ops) == 0
    assert r.calls == [("pte_hole", 0, 0x10000, -1), ("pte_hole", 0x20000, 0x30000, -1)]


def test_pagewalk_6_empty_tables_hole_at_folded_p4d_is_depth_0():
    m, mm, _ = user_machine()
    r = Rec("pte_hole", "pte_entry")
    walk_page_range(mm, 0, 0x30000, r.ops)
    assert r.calls == [("pte_hole", 0, 0x10000, -1), ("pte_hole", 0x10000, 0x20000, 0),
                       ("pte_hole", 0x20000, 0x30000, -1)]


@pytest.mark.parametrize("present_level,depth", [(1, 2), (2, 3)])
def test_pagewalk_7_hole_depths(present_level, depth):
    m, mm, b = user_machine()
    b.table_for(0x10000, present_level)
    r = Rec("pte_hole", "pte_entry")
    walk_page_range(mm, 0, 0x30000, r.ops)
    assert r.calls[1] == ("pte_hole", 0x10000, 0x20000, depth)


def test_pagewalk_7_pte_table_present_all_none():
    m, mm, b = user_machine()
    b.table_for(0x10000, 3)
    r = Rec("pte_hole", "pte_entry")
    walk_page_range(mm, 0, 0x30000, r.ops)
    assert r.named("pte_entry") == [("pte_entry", 0x10000 + k * PAGE, 0x11000 + k * PAGE) for k in range(16)]
    assert r.named("pte_hole") == [("pte_hole", 0, 0x10000, -1), ("pte_hole", 0x20000, 0x30000, -1)]


def test_pagewalk_8_three_levels():
    m, mm, _ = user_machine(va_bits=39)
    r = Rec("pgd_entry", "p4d_entry", "pud_entry", "pte_hole", "pte_entry")
    walk_page_range(mm, 0x10000, 0x20000, r.ops)
    assert r.calls == [("pgd_entry", 0x10000, 0x20000), ("p4d_entry", 0x10000, 0x20000),
                       ("pte_hole", 0x10000, 0x20000, 0)]


def test_pagewalk_9_holes_split_at_pmd_boundary():
    m, mm, b = user_machine(vmas=[(0x100000, 0x400000)])
    b.table_for(0x1ff000, 2)
    r = Rec("pte_hole", "pte_entry")
    walk_page_range(mm, 0x1ff000, 0x201000, r.ops)
    assert r.calls == [("pte_hole", 0x1ff000, 0x200000, 3), ("pte_hole", 0x200000, 0x201000, 3)]


def test_pagewalk_10_pte_entry_error_stops_after_post_vma():
    m, mm, b = user_machine(vmas=[(0x10000, 0x20000), (0x30000, 0x40000)])
    b.table_for(0x10000, 3)
    b.table_for(0x30000, 3)
    r = Rec("pte_entry", "pte_hole", "post_vma", rules={"pte_entry": lambda n, w, c: 7 if n == 3 else 0})
    assert walk_page_range(mm, 0, 0x50000, r.ops) == 7
    assert len(r.named("pte_entry")) == 3 and r.named("post_vma") == [("post_vma",)]
    assert r.calls[-1] == ("post_vma",) and ("pte_hole", 0x20000, 0x30000, -1) not in r.calls


def test_pagewalk_11_hole_error_stops():
    m, mm, _ = user_machine()
    r = Rec("pte_hole", rules={"pte_hole": lambda n, w, c: 5})
    assert walk_page_range(mm, 0, 0x30000, r.ops) == 5 and len(r.calls) == 1


def test_pagewalk_12_pmd_continue_skips_ptes():
    m, mm, b = user_machine(vmas=[(0, 0x400000)])
    b.table_for(0, 3)
    b.table_for(PMD_SIZE, 3)

    r = Rec("pmd_entry", "pte_entry", rules={"pmd_entry": act_on(1, ACTION_CONTINUE)})
    walk_page_range(mm, 0, 0x400000, r.ops)
    ptes = r.named("pte_entry")
    assert len(ptes) == 512 and ptes[0][1] == PMD_SIZE


def test_pagewalk_13_pmd_again_once():
    m, mm, b = user_machine()
    b.table_for(0x10000, 3)

    r = Rec("pmd_entry", "pte_entry", rules={"pmd_entry": act_on(1, ACTION_AGAIN)})
    walk_page_range(mm, 0x10000, 0x20000, r.ops)
    assert r.calls[:2] == [("pmd_entry", 0x10000, 0x20000)] * 2
    assert len(r.named("pte_entry")) == 16 and len(r.named("pmd_entry")) == 2


@pytest.mark.parametrize("name", ["pgd_entry", "p4d_entry"])
def test_pagewalk_14_pgd_p4d_actions_ignored(name):
    m, mm, b = user_machine(vmas=[(0x10000, 0x20000)], va_bits=52, vabits_actual=52)
    b.table_for(0x10000, 3)

    r = Rec("pgd_entry", "p4d_entry", "pud_entry", "pmd_entry", "pte_entry", rules={name: act_on(None, ACTION_CONTINUE)})
    walk_page_range(mm, 0x10000, 0x20000, r.ops)
    assert r.named("pud_entry") and r.named("pmd_entry") and len(r.named("pte_entry")) == 16


def test_pagewalk_15_test_walk_skip_and_abort():
    m, mm, b = user_machine(vmas=[(0x10000, 0x20000), (0x30000, 0x40000)])
    r = Rec("test_walk", "pte_hole", "pte_entry", rules={"test_walk": lambda n, w, c: 1 if n == 1 else 0})
    assert walk_page_range(mm, 0x10000, 0x40000, r.ops) == 0
    assert r.calls[:2] == [("test_walk", 0x10000, 0x20000), ("pte_hole", 0x20000, 0x30000, -1)]
    r = Rec("test_walk", "pte_hole", rules={"test_walk": lambda n, w, c: -14})
    assert walk_page_range(mm, 0x10000, 0x40000, r.ops) == -14 and len(r.calls) == 1


@pytest.mark.parametrize("hole_ret,result,after", [(0, 0, True), (3, 0, True), (-5, -5, False)])
def test_pagewalk_16_pfnmap_is_a_hole(hole_ret, result, after):
    m, mm, b = user_machine(vmas=[vm_area_struct(0x10000, 0x20000, VM_READ | VM_PFNMAP), (0x30000, 0x40000)])
    b.table_for(0x10000, 3)
    r = Rec("pte_hole", "pte_entry", rules={"pte_hole": lambda n, w, c: hole_ret if n == 1 else 0})
    assert walk_page_range(mm, 0x18000, 0x40000, r.ops) == result
    assert r.calls[0] == ("pte_hole", 0x18000, 0x20000, -1)
    assert not [c for c in r.calls if c[0] == "pte_entry" and c[1] < 0x20000]
    assert (("pte_hole", 0x20000, 0x30000, -1) in r.calls) == after


def test_pagewalk_17_pre_vma_error_and_clipping():
    m, mm, b = user_machine(vmas=[(0x10000, 0x20000), (0x30000, 0x40000)])
    r = Rec("pre_vma", "post_vma", "pte_entry", rules={"pre_vma": lambda n, w, c: -12})
    assert walk_page_range(mm, 0x18000, 0x40000, r.ops) == -12
    assert r.calls == [("pre_vma", 0x18000, 0x20000)]
    r = Rec("pre_vma", "post_vma", "pte_hole")
    walk_page_range(mm, 0x18000, 0x38000, r.ops)
    assert [c for c in r.calls if c[0] != "pte_hole"] == [
        ("pre_vma", 0x18000, 0x20000), ("post_vma",), ("pre_vma", 0x30000, 0x38000), ("post_vma",)]


@pytest.mark.parametrize("era", ["6.18", "6.1"])
def test_pagewalk_18_vma_walks_skip_test_walk(era):
    m, mm, b = user_machine(era, vmas=[vm_area_struct(0x10000, 0x20000, VM_READ | VM_PFNMAP)])
    b.table_for(0x10000, 3)
    vma = mm.vmas[0]
    r = Rec("test_walk", "pte_entry", rules={"test_walk": lambda n, w, c: 1})
    walk_page_vma(vma, r.ops)
    if era == "6.1":
        assert r.calls == [("test_walk", 0x10000, 0x20000)]          # 6.1 still applies walk_page_test
    else:
        assert not r.named("test_walk") and len(r.named("pte_entry")) == 16
    r = Rec("test_walk", "pte_entry", rules={"test_walk": lambda n, w, c: 1})
    walk_page_range_vma(vma, 0x10000, 0x12000, r.ops)
    assert not r.named("test_walk") and len(r.named("pte_entry")) == 2


def test_pagewalk_19_walk_page_range_vma_bounds():
    m, mm, b = user_machine()
    vma, ops = mm.vmas[0], Rec("pte_entry").ops
    assert walk_page_range_vma(vma, 0x10000 - PAGE, 0x20000, ops) == EINVAL
    assert walk_page_range_vma(vma, 0x10000, 0x20000 + PAGE, ops) == EINVAL
    assert walk_page_range_vma(vma, 0x11000, 0x11000, ops) == EINVAL


def _hugetlb_vma(start, end, size=PMD_SIZE):
    return vm_area_struct(start, end, VM_READ | VM_WRITE | VM_HUGETLB, huge_page_size=size)


def test_pagewalk_20_hugetlb_lookup():
    """Per the spec's arm64 caveat the two huge pages sit in different 1 GiB slots."""
    start = 0x3fe00000
    m, mm, b = user_machine(vmas=[_hugetlb_vma(start, start + 2 * PMD_SIZE)])
    b.table_for(start, 2)                         # first: PUD table present, PMD slot empty
    r = Rec("hugetlb_entry", "pte_hole")
    assert walk_page_range(mm, start + 0x100000, start + 2 * PMD_SIZE, r.ops) == 0
    hmask = ~(PMD_SIZE - 1) & (1 << 64) - 1
    assert r.calls == [("hugetlb_entry", hmask, start + 0x100000, start + PMD_SIZE),
                       ("pte_hole", start + PMD_SIZE, start + 2 * PMD_SIZE, -1)]
    r = Rec("pte_hole", "pte_entry")
    walk_page_range(mm, start, start + 2 * PMD_SIZE, r.ops)
    assert r.calls == []


def test_pagewalk_21_install_over_hugetlb():
    m, mm, b = user_machine(vmas=[_hugetlb_vma(0x400000, 0x800000)])
    r = Rec("install_pte", "pte_entry", "test_walk", "pre_vma", "post_vma", "hugetlb_entry")
    assert walk_page_range_mm(mm, 0x400000, 0x800000, r.ops) == EINVAL
    assert r.calls == [("test_walk", 0x400000, 0x800000)]


def test_pagewalk_22_install_allocates_and_stores():
    m, mm, b = user_machine(vmas=[(0x10000, 0x12000)])
    before = m.memory.live_pages
    r = Rec("install_pte", "pte_entry", "pte_hole")
    assert walk_page_range_mm(mm, 0x10000, 0x12000, r.ops) == 0
    assert r.calls == [("install_pte", 0x10000, 0x11000), ("install_pte", 0x11000, 0x12000)]
    assert m.memory.live_pages == before + 3                   # PUD, PMD and PTE tables
    for va in (0x10000, 0x11000):
        assert m.memory.read_u64(b.entry_address(va, 3)) == r.install_value
    r = Rec("install_pte", "pte_entry")
    walk_page_range_mm(mm, 0x10000, 0x12000, r.ops)
    assert r.calls == [("pte_entry", 0x10000, 0x11000), ("pte_entry", 0x11000, 0x12000)]


def test_pagewalk_23_allocation_failure():
    m, mm, b = user_machine(vmas=[(0x10000, 0x12000)])
    m.memory.fail_nth_allocation(2)
    r = Rec("install_pte", "pte_entry")
    assert walk_page_range_mm(mm, 0x10000, 0x12000, r.ops) == ENOMEM and r.calls == []


def _thp(m, b, va, backing="anon"):
    b.map(va, 0x48000000, level=2, user=True, pxn=True, uxn=False)
    return m.memory.read_u64(b.entry_address(va, 2))


def test_pagewalk_24_install_only_leaves_thp():
    m, mm, b = user_machine(vmas=[(0x200000, 0x400000)])
    value = _thp(m, b, 0x200000)
    r = Rec("install_pte")
    r.ops.pte_entry = None
    assert walk_page_range_mm(mm, 0x200000, 0x400000, r.ops) == 0
    assert r.calls == [] and m.memory.read_u64(b.entry_address(0x200000, 2)) == value


def test_pagewalk_25_thp_split_by_pte_entry():
    m, mm, b = user_machine(vmas=[(0x200000, 0x400000)])
    value = _thp(m, b, 0x200000)
    r = Rec("pmd_entry")
    walk_page_range(mm, 0x200000, 0x400000, r.ops)
    assert r.calls == [("pmd_entry", 0x200000, 0x400000)] and m.memory.read_u64(b.entry_address(0x200000, 2)) == value

    r = Rec("pmd_entry", "pte_entry", rules={"pmd_entry": act_on(None, ACTION_CONTINUE)})
    walk_page_range(mm, 0x200000, 0x400000, r.ops)
    assert not r.named("pte_entry") and m.memory.read_u64(b.entry_address(0x200000, 2)) == value
    r = Rec("pte_entry")
    walk_page_range(mm, 0x200000, 0x400000, r.ops)
    assert len(r.named("pte_entry")) == 512
    assert m.memory.read_u64(b.entry_address(0x200000, 2)) & 3 == 3           # now a table
    pte = m.memory.read_u64(b.entry_address(0x203000, 3))
    assert pte & 0xfffffffff000 == 0x48003000 and pte & 3 == 3
    assert pte & ~0xfffffffff003 == value & ~0xfffffffff003                  # same attributes


def test_pagewalk_26_file_thp_split_clears_and_reports_hole():
    m, mm, b = user_machine(vmas=[vm_area_struct(0x200000, 0x400000, backing="file:data")])
    _thp(m, b, 0x200000)
    r = Rec("pmd_entry", "pte_entry", "pte_hole")
    walk_page_range(mm, 0x200000, 0x400000, r.ops)
    assert r.calls == [("pmd_entry", 0x200000, 0x400000), ("pte_hole", 0x200000, 0x400000, 3)]


def _kernel(era="6.18", lock=True):
    from pagewalk import Machine
    m = Machine.simulated(era)
    if lock:
        m.init_mm.mmap_lock.down_read()
    return m, kernel_builder(m)


K = 0xffff800080000000


@pytest.mark.parametrize("entry", ["locked", "lockless"])
def test_pagewalk_27_kernel_walk_blocks_and_ptes(entry):
    m, b = _kernel()
    b.map(K, 0x40200000, level=2)
    b.table_for(K + PMD_SIZE, 3)
    b.map(K + PMD_SIZE + PAGE, 0x40001000)
    walk = walk_kernel_page_table_range if entry == "locked" else walk_kernel_page_table_range_lockless
    r = Rec("pmd_entry", "pte_entry")
    assert walk(K, K + 2 * PMD_SIZE, r.ops, init_mm=m.init_mm) == 0
    assert r.calls[0] == ("pmd_entry", K, K + PMD_SIZE)
    assert [c for c in r.calls if c[1] < K + PMD_SIZE and c[0] == "pte_entry"] == []
    assert len(r.named("pte_entry")) == 512 and not assertions(m)
    assert m.memory.read_u64(b.entry_address(K, 2)) & 3 == 1                  # not split


def test_pagewalk_28_non_present_pmd_in_kernel_walk():
    m, b = _kernel()
    b.set_raw(K, 2, 0x0060000040200700)                                      # valid bit and nG clear
    r = Rec("pmd_entry", "pte_entry")
    assert walk_kernel_page_table_range(K, K + PMD_SIZE, r.ops, init_mm=m.init_mm) == 0
    assert r.calls == [("pmd_entry", K, K + PMD_SIZE)]


def test_pagewalk_29_alternate_root():
    m, b = _kernel()
    from pagewalk.hw.aarch64.builder import TableBuilder
    alt = TableBuilder(m.memory, m.arch.hw)
    alt.table_for(K, 3)
    r = Rec("pte_entry", "pte_hole")
    walk_kernel_page_table_range(K, K + 2 * PAGE, r.ops, alt.root, init_mm=m.init_mm)
    assert r.calls == [("pte_entry", K, K + PAGE), ("pte_entry", K + PAGE, K + 2 * PAGE)]
    r = Rec("pte_entry", "pte_hole")
    walk_kernel_page_table_range(K, K + 2 * PAGE, r.ops, init_mm=m.init_mm)
    assert r.calls == [("pte_hole", K, K + 2 * PAGE, 0)]


@pytest.mark.parametrize("era", ["base", "6.12", "6.18", "later"])
def test_pagewalk_30_kernel_walk_locks_and_einval(era):
    m, b = _kernel(era, lock=False)
    r = Rec("pte_entry")
    walk_kernel_page_table_range(K, K + PAGE, r.ops, init_mm=m.init_mm)
    assert len(assertions(m)) == 1
    m.log.clear()
    if era in ("6.18", "later"):
        assert walk_kernel_page_table_range_lockless(K, K + PAGE, r.ops, init_mm=m.init_mm) == 0
        assert not assertions(m)
        assert walk_kernel_page_table_range_lockless(K, K, r.ops, init_mm=m.init_mm) == EINVAL
    assert walk_kernel_page_table_range(K, K, r.ops, init_mm=m.init_mm) == EINVAL
    assert bool(assertions(m)) == (era in ("6.18", "later"))                # assertion first in UP/LATER
    m.log.strict = True
    if era in ("6.18", "later"):
        with pytest.raises(LockAssertion):
            walk_kernel_page_table_range(K, K, r.ops, init_mm=m.init_mm)
    m.log.strict = False
    m.init_mm.mmap_lock.down_read()
    if era != "6.12":
        assert walk_kernel_page_table_range(K, K + PAGE, Rec("install_pte", "pte_entry").ops,
                                            init_mm=m.init_mm) == EINVAL


@pytest.mark.parametrize("era", ["base", "6.18", "6.12", "later"])
def test_pagewalk_31_debug_walk_locks(era):
    from pagewalk import Machine
    m = Machine.simulated(era)
    mm = m.new_user_mm()
    r = Rec("pte_hole")
    m.init_mm.mmap_lock.down_read()
    walk_page_range_debug(m.init_mm, K, K + PAGE, r.ops)
    assert bool(assertions(m)) == (era in ("6.12", "later"))
    m.log.clear()
    mm.mmap_lock.down_read()
    walk_page_range_debug(mm, 0x10000, 0x20000, r.ops)
    assert assertions(m) and "write_locked(mm)" in assertions(m)[0].message
    m.log.clear()
    mm.mmap_lock.up_read()
    mm.mmap_lock.down_write()
    walk_page_range_debug(mm, 0x10000, 0x20000, r.ops)
    assert bool(assertions(m)) == (era in ("6.12", "later"))                # needs init_mm's write lock too
    m.log.clear()
    mm.mmap_lock.up_write()
    assert walk_page_range_debug(mm, 0x10000, 0x10000, r.ops) == EINVAL
    assert bool(assertions(m)) == (era in ("6.12", "later"))


def test_pagewalk_32_bad_directory_entries_are_zeroed():
    m, mm, b = user_machine(vmas=[(0x10000, 0x20000), (0x40000000, 0x80000000)])
    l0 = b.root + 8 * m.arch.hw.index(0x10000, 0)
    m.memory.write_u64(l0, 0x40000001)                                       # a block at level 0: bad
    r = Rec("pte_hole")
    walk_page_range(mm, 0x10000, 0x20000, r.ops)                             # no descent: not reached
    assert m.memory.read_u64(l0) == 0x40000001
    r = Rec("pte_hole", "pte_entry")
    walk_page_range(mm, 0x10000, 0x20000, r.ops)
    assert r.calls == [("pte_hole", 0x10000, 0x20000, 0)] and m.memory.read_u64(l0) == 0
    assert m.log.of_kind("warning")
    km, kb = _kernel()
    kb.map(K, 0x40000000, level=1)                                           # a 1G leaf at PUD level
    kb.map(K + (1 << 30), 0x40000000, level=2)                               # a 2M leaf at PMD level
    leaves = [km.memory.read_u64(kb.entry_address(K, 1)), km.memory.read_u64(kb.entry_address(K + (1 << 30), 2))]
    walk_kernel_page_table_range(K, K + (2 << 30), Rec("pte_hole", "pte_entry").ops, init_mm=km.init_mm)
    assert [km.memory.read_u64(kb.entry_address(K, 1)),
            km.memory.read_u64(kb.entry_address(K + (1 << 30), 2))] == leaves


def test_pagewalk_later_pud_leaf_in_vma_walk_is_flagged_not_hung():
    """pagewalk.md §2.3 (c): LATER retries a PUD that stays a leaf forever; the model flags it."""
    m, mm, b = user_machine("later", vmas=[(0x40000000, 0x80000000)])
    b.map(0x40000000, 0x80000000, level=1, user=True)
    r = Rec("pmd_entry", "pte_entry")
    assert walk_page_range(mm, 0x40000000, 0x80000000, r.ops) == 0
    assert r.calls == [] and any("retried forever" in x.message for x in m.log.of_kind("bug"))


def test_pagewalk_33_pte_lock():
    m, mm, b = user_machine()
    b.table_for(0x10000, 3)
    seen = []
    r = Rec("pmd_entry", "pte_entry", rules={
        "pmd_entry": lambda n, w, c: seen.append(("pmd", mm.page_table_lock.held)) or 0,
        "pte_entry": lambda n, w, c: seen.append(("pte", mm.page_table_lock.held, m.context.in_atomic())) or 0})
    walk_page_range(mm, 0x10000, 0x12000, r.ops)
    assert seen == [("pmd", False), ("pte", True, True), ("pte", True, True)]
    km, kb = _kernel()
    kb.table_for(K, 3)
    seen.clear()
    r = Rec("pte_entry", rules={"pte_entry": lambda n, w, c: seen.append(km.init_mm.page_table_lock.held) or 0})
    walk_kernel_page_table_range(K, K + PAGE, r.ops, init_mm=km.init_mm)
    assert seen == [False]


def test_pagewalk_34_per_vma_locks():
    m, mm, b = user_machine(vmas=[(0x10000, 0x20000), (0x30000, 0x40000), (0x50000, 0x60000)], lock="write")
    r = Rec("test_walk", "pte_hole", walk_lock=PGWALK_WRLOCK, rules={"test_walk": lambda n, w, c: 1})
    walk_page_range(mm, 0x18000, 0x38000, r.ops)
    assert [v.lock_state for v in mm.vmas] == ["write", "write", None]
    r = Rec("pte_hole", walk_lock=PGWALK_WRLOCK_VERIFY)
    walk_page_range(mm, 0x50000, 0x60000, r.ops)
    assert any("not write-locked" in a.message for a in assertions(m))


def test_pagewalk_35_walk_page_mapping_stops_on_skip():
    m, mm, b = user_machine(vmas=[vm_area_struct(0x100000, 0x110000, backing="file:f", vm_pgoff=0),
                                  vm_area_struct(0x200000, 0x210000, backing="file:f", vm_pgoff=0)])
    r = Rec("test_walk", "pte_hole", "pte_entry", rules={"test_walk": lambda n, w, c: 1})
    assert walk_page_mapping(address_space(mm.vmas), 4, 2, r.ops) == 0
    assert r.calls == [("test_walk", 0x100000, 0x110000)]


def test_pagewalk_36_walk_page_mapping_clips_by_pgoff():
    m, mm, b = user_machine(vmas=[vm_area_struct(0x100000, 0x110000, backing="file:f", vm_pgoff=4)])
    b.table_for(0x100000, 3)
    r = Rec("pte_entry")
    walk_page_mapping(address_space(mm.vmas), 5, 3, r.ops)
    assert [c[1] for c in r.calls] == [0x101000, 0x102000, 0x103000]


def test_pagewalk_37_positive_pre_vma_is_returned():
    m, mm, b = user_machine(vmas=[(0x10000, 0x20000), (0x30000, 0x40000)])
    r = Rec("pre_vma", "pte_hole", rules={"pre_vma": lambda n, w, c: 9})
    assert walk_page_range(mm, 0x10000, 0x40000, r.ops) == 9 and r.calls == [("pre_vma", 0x10000, 0x20000)]


def test_pagewalk_38_seed_nolock():
    m, mm, b = user_machine("seed-v2", lock=None)
    r = Rec("pte_entry", "pte_hole", walk_lock=PGWALK_NOLOCK)
    assert walk_page_range(mm, 0x10000, 0x20000, r.ops) == EINVAL
    assert walk_page_range_vma(mm.vmas[0], 0x10000, 0x20000, r.ops) == EINVAL
    assert walk_page_vma(mm.vmas[0], r.ops) == EINVAL
    assert r.calls == [] and not assertions(m)
    kb = kernel_builder(m)
    kb.table_for(K, 3)
    assert walk_kernel_page_table_range(K, K + PAGE, r.ops, init_mm=m.init_mm) == 0
    assert r.calls == [("pte_entry", K, K + PAGE)] and not assertions(m)
    walk_kernel_page_table_range(K, K + PAGE, Rec("pte_entry").ops, init_mm=m.init_mm)
    assert len(assertions(m)) == 1


def test_pagewalk_39_seed_nolock_untouched_paths():
    m, mm, b = user_machine("seed-v2", vmas=[vm_area_struct(0x100000, 0x110000, backing="file:f")], lock="read")
    b.table_for(0x100000, 3)
    r = Rec("pte_entry", walk_lock=PGWALK_NOLOCK)
    assert walk_page_mapping(address_space(mm.vmas), 0, 2, r.ops) == 0 and len(r.calls) == 2
    walk_page_range_debug(mm, 0x100000, 0x101000, r.ops)
    assert any("write_locked(mm)" in a.message for a in assertions(m))


def test_pagewalk_40_seed_review_capabilities():
    m, mm, b = user_machine("seed-review", vmas=[vm_area_struct(0x100000, 0x110000, backing="file:f")])
    assert walk_page_range_mm(mm, 0x100000, 0x110000, Rec("pte_entry", walk_lock=PGWALK_NOLOCK).ops) == EINVAL
    assert walk_page_range_mm(mm, 0x100000, 0x101000, Rec("install_pte", "pte_entry").ops) == 0
    m.init_mm.mmap_lock.down_read()
    assert walk_kernel_page_table_range(K, K + PAGE, Rec("install_pte", "pte_entry").ops,
                                        init_mm=m.init_mm) == EINVAL
    m.init_mm.mmap_lock.up_read()
    r = Rec("pte_hole", "pte_entry", walk_lock=PGWALK_NOLOCK)
    assert walk_kernel_page_table_range(K, K + PAGE, r.ops, init_mm=m.init_mm) == 0 and r.calls
    assert not assertions(m)
    assert walk_page_mapping(address_space(mm.vmas), 0, 1, Rec("pte_entry", walk_lock=PGWALK_NOLOCK).ops) == EINVAL
    assert OPS_MAY_AVOID_LOCK == 2


@pytest.mark.parametrize("per_vma_lock", [True, False])
def test_pagewalk_41_vma_rdlock_verify(per_vma_lock):
    m, mm, b = user_machine("6.18", lock=None)
    m.per_vma_lock = per_vma_lock
    assert PGWALK_VMA_RDLOCK_VERIFY == 3
    walk_page_range(mm, 0x10000, 0x20000, Rec("pte_hole", walk_lock=PGWALK_VMA_RDLOCK_VERIFY).ops)
    msgs = [a.message for a in assertions(m)]
    assert not any("mmap_assert" in s for s in msgs)
    assert any("is not locked" in s for s in msgs) == per_vma_lock
    m.log.clear()
    mm.vmas[0].lock_state = "read"
    walk_page_range(mm, 0x10000, 0x20000, Rec("pte_hole", walk_lock=PGWALK_VMA_RDLOCK_VERIFY).ops)
    assert not assertions(m)


def test_pagewalk_42_unaligned_end():
    m, b = _kernel()
    b.table_for(0x1000, 3)
    r = Rec("pte_entry")
    walk_kernel_page_table_range(0x1000, 0x2800, r.ops, init_mm=m.init_mm)
    assert [c[1] for c in r.calls] == [0x1000, 0x2000]


# -- the spec's additional behaviours (A1-A4) ------------------------------------

def test_pagewalk_A1_pte_again_restarts_pmd_slot():
    m, mm, b = user_machine()
    b.table_for(0x10000, 3)

    r = Rec("pmd_entry", "pte_entry", rules={"pte_entry": act_on(2, ACTION_AGAIN)})
    walk_page_range(mm, 0x10000, 0x14000, r.ops)
    assert [c[0] for c in r.calls] == ["pmd_entry"] + ["pte_entry"] * 4 + ["pmd_entry"] + ["pte_entry"] * 4


@pytest.mark.parametrize("era,holes", [("6.18", 1), ("base", 1), ("later", 2), ("6.12", 2)])
def test_pagewalk_A2_hole_again_restarts_pud_slot(era, holes):
    m, mm, b = user_machine(era, vmas=[(0x200000, 0x400000)])
    b.table_for(0x200000, 2)

    r = Rec("pte_hole", "pte_entry", rules={"pte_hole": act_on(1, ACTION_AGAIN)})
    walk_page_range(mm, 0x200000, 0x400000, r.ops)
    assert r.calls == [("pte_hole", 0x200000, 0x400000, 3)] * holes


def test_pagewalk_A3_debug_walk_of_init_mm_needs_write_lock():
    m, b = _kernel("later")
    walk_page_range_debug(m.init_mm, K, K + PAGE, Rec("pte_hole").ops)
    assert assertions(m)
    m.log.clear()
    m.init_mm.mmap_lock.up_read()
    m.init_mm.mmap_lock.down_write()
    r = Rec("pte_hole", "pte_entry")
    walk_page_range_debug(m.init_mm, K, K + PAGE, r.ops)
    assert not assertions(m) and r.calls == [("pte_hole", K, K + PAGE, 0)]


@pytest.mark.parametrize("era,asserted,ret", [("6.18", True, EINVAL), ("later", True, EINVAL), ("6.12", False, EINVAL)])
def test_pagewalk_A4_empty_kernel_range_ordering(era, asserted, ret):
    m, b = _kernel(era, lock=False)
    assert walk_kernel_page_table_range(K, K, Rec("pte_entry").ops, init_mm=m.init_mm) == ret
    assert bool(assertions(m)) == asserted


def test_read_only_dump_refuses_writes():
    """On a dump anything that would write (install_pte, a split) is a clear error."""
    from pagewalk import KernelDump
    dump = KernelDump.open()
    m = dump.machine(era="6.18")
    mm = m.new_mm(m.swapper_pg_dir, [vm_area_struct(0xffff800000000000, 0xffff800000200000)])
    mm.mmap_lock.down_read()
    with pytest.raises(PagewalkError, match="read-only"):
        walk_page_range_mm(mm, 0xffff800000000000, 0xffff800000001000, Rec("install_pte", "pte_entry").ops)


def test_pagewalk_5_holes_below_the_last_entry_callback_are_not_reported():
    """§2.1 step 3: a level descends only if a callback below it exists; with pud_entry and pte_hole a none
    PMD inside an existing PMD table is not visited, so no depth-3 hole is reported (only upper holes)."""
    m, mm, b = user_machine(vmas=[vm_area_struct(0x10000, 0x400000)])
    b.map(0x200000, 0x40200000, level=3)                 # a PMD table whose other entries are none
    r = Rec("pud_entry", "pte_hole")
    assert walk_page_range(mm, 0x10000, 0x400000, r.ops) == 0
    assert [c for c in r.calls if c[0] == "pte_hole" and c[3] == 3] == []
    r2 = Rec("pmd_entry", "pte_hole")                    # with a callback at the PMD level, they are
    assert walk_page_range(mm, 0x10000, 0x400000, r2.ops) == 0
    assert any(c[0] == "pte_hole" and c[3] == 3 for c in r2.calls)


def test_pagewalk_36_walk_page_mapping_outside_every_vma_is_zero():
    """§4: pages no VMA maps: nothing is walked and the result is 0."""
    m, mm, b = user_machine(vmas=[vm_area_struct(0x100000, 0x110000, backing="file:f", vm_pgoff=4)])
    r = Rec("pte_entry", "pte_hole")
    assert walk_page_mapping(address_space(mm.vmas), 100, 3, r.ops) == 0 and r.calls == []


# -- kernel-pgtable-freeing.md F29-F34: the lock semantics an interleaving explorer needs -------------------

def _rwsem():
    from pagewalk.mm.context import ExecutionContext
    from pagewalk.mm.locks import RWSemaphore
    return RWSemaphore("init_mm->mmap_lock", ExecutionContext())


def test_freeing_f30_trylock_fails_on_a_writer_or_any_waiter():
    lock = _rwsem()
    assert lock.try_read("a")
    assert not lock.request_write("w")                 # queued behind the reader
    assert not lock.try_read("b")                      # a waiter is queued: trylock fails without sleeping
    lock.release("a")
    assert lock.is_write_locked() and not lock.try_read("b")


def test_freeing_f29_f32_readers_block_behind_a_queued_writer_only_while_another_reader_holds():
    lock = _rwsem()
    assert lock.request_read("p")                       # ptdump-like reader holds
    assert not lock.request_write("w")                 # writer queues
    assert not lock.request_read("q")                  # reader: waiter queued and another reader holds -> blocks
    assert lock.release("p") == ["w"]                  # FIFO: the writer first
    assert lock.release("w") == ["q"]


def test_freeing_f31_writers_are_served_in_order():
    lock = _rwsem()
    assert lock.request_write("w1") and not lock.request_write("w2") and not lock.request_write("w3")
    assert lock.release("w1") == ["w2"] and lock.release("w2") == ["w3"]


def test_freeing_f33_hotplug_writer_blocks_new_readers_and_waits_for_old_ones():
    from pagewalk.mm.locks import PercpuRWSemaphore
    lock = PercpuRWSemaphore("mem_hotplug_lock")
    assert lock.request_read("ptdump")
    assert not lock.request_write("hot-remove")        # pending: the reader is in
    assert not lock.request_read("check_wx")           # writer preference: new readers wait
    lock.release("ptdump")
    assert lock.request_write("hot-remove") and not lock.request_read("check_wx")


def test_freeing_f34_static_keys_count_with_inc_dec_and_not_with_enable_disable():
    from pagewalk.mm.locks import StaticKey
    counted, boolean = StaticKey("inc/dec"), StaticKey("enable/disable")
    counted.inc(); counted.inc(); counted.dec()
    boolean.enable(); boolean.enable(); boolean.disable()
    assert counted.enabled() and not boolean.enabled()     # v6's inc/dec survives two walkers; v3-v5 did not
