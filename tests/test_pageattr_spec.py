"""arm64-pageattr.md §10: observable behaviours, one test per number, in each era they name.

Defaults as in the spec: 4K pages, 48-bit VA, BTI/KPTI/realm/DEBUG_PAGEALLOC/KFENCE off,
rodata_full off unless a test says otherwise. RAM is 2 GiB + 34 MiB + 128 KiB so that the
linear map holds a PUD block (G), a contiguous-PMD group, a lone PMD block (B) and a
contiguous-PTE tail (C) whenever it is not page-granular; the first GiB holds the image's
linear alias, so no PUD block is ever there (arm64-boot-mappings.md B12-B14).
"""

import pytest

from pagewalk import boot
from pagewalk.arch.arm64.mm.pageattr import Unsupported

EINVAL, ENOMEM, EBUSY = -22, -12, -16
PAGE, SZ_2M, SZ_1G = 4096, 2 << 20, 1 << 30
RAM = 2 * SZ_1G + 34 * (1 << 20) + (128 << 10)
ALL = ["6.12", "base", "seed-v2", "6.18", "later"]
WALKER = ["seed-v2", "6.18", "later"]
BIT = {n: 1 << n for n in range(64)}


def kernel(era, **kw):
    kw.setdefault("rodata", "off")
    return boot(era=era, ram=RAM, **kw)


def G(k):
    return k.page_offset + SZ_1G


def Bc(k):
    return k.page_offset + 2 * SZ_1G


def B(k):
    return k.page_offset + 2 * SZ_1G + 32 * (1 << 20)


def C(k):
    return k.page_offset + 2 * SZ_1G + 34 * (1 << 20)


def entry(k, va):
    """(level, entry PA, value) of the last descriptor the MMU reads for `va`."""
    s = k.translate(va).steps[-1]
    return s.level, s.entry_pa, s.value


def val(k, va):
    return entry(k, va)[2]


def flushes(k):
    return [(f.start, f.end) for f in k.tlb_flushes]


def reset(k):
    k.tlb_flushes.clear()
    k.events.clear()
    k.machine.log.clear()


def warned(k):
    return len(k.warnings)


@pytest.mark.parametrize("era", ALL)
def test_pageattr_1_set_memory_ro(era):
    k = kernel(era)
    v = k.vmalloc(4 * PAGE)
    before = [val(k, v + i * PAGE) for i in range(4)]
    reset(k)
    assert k.set_memory_ro(v, 4) == 0
    for i, old in enumerate(before):
        assert val(k, v + i * PAGE) == (old | BIT[7]) & ~BIT[51]
    assert k.events.count(("vm_unmap_aliases",)) == 1
    assert flushes(k) == [(v, v + 4 * PAGE)]
    assert not k.violations


@pytest.mark.parametrize("era", ALL)
def test_pageattr_2_rw_restores(era):
    k = kernel(era)
    v = k.vmalloc(4 * PAGE)
    before = [val(k, v + i * PAGE) for i in range(4)]
    k.set_memory_ro(v, 4)
    assert k.set_memory_rw(v, 4) == 0
    assert [val(k, v + i * PAGE) for i in range(4)] == before


@pytest.mark.parametrize("era", ALL)
@pytest.mark.parametrize("bti", [False, True])
def test_pageattr_3_x_nx(era, bti):
    k = kernel(era, bti=bti)
    v = k.vmalloc(PAGE)
    old = val(k, v)
    k.set_memory_x(v, 1)
    assert val(k, v) == (old & ~BIT[53]) | (BIT[50] if bti else 0)
    k.set_memory_nx(v, 1)
    assert val(k, v) == old


@pytest.mark.parametrize("era", ALL)
def test_pageattr_4_unaligned_address(era):
    k = kernel(era)
    v = k.vmalloc(4 * PAGE)
    reset(k)
    assert k.set_memory_ro(v + 0x800, 1) == 0
    assert warned(k) == 1 and val(k, v) & BIT[7] and not val(k, v + PAGE) & BIT[7]


@pytest.mark.parametrize("era", ALL)
def test_pageattr_5_guard_page(era):
    k = kernel(era)
    v = k.vmalloc(4 * PAGE)
    assert val(k, v + 4 * PAGE) == 0
    assert k.set_memory_ro(v, 5) == 0
    assert val(k, v + 4 * PAGE) == BIT[7]
    assert k.set_memory_ro(v, 6) == EINVAL


@pytest.mark.parametrize("era", ALL)
def test_pageattr_6_not_vmalloc(era):
    k = kernel(era)
    m = k.vmap(k.alloc_data_pages(1))
    h_small = k.vmalloc_huge(64 << 10)
    h_block = k.vmalloc_huge(SZ_2M)
    state = [val(k, a) for a in (B(k), m, h_small, h_block)]
    reset(k)
    assert k.set_memory_ro(B(k), 1) == EINVAL and k.set_memory_ro(m, 1) == EINVAL
    if era == "6.12":
        assert k.set_memory_ro(h_small, 1) == 0                          # accepted: only VM_ALLOC is tested
        assert k.set_memory_ro(h_block, 1) == EINVAL and warned(k) == 1  # the range engine meets the block
        assert (h_block, h_block + PAGE) in flushes(k)
    else:
        assert k.set_memory_ro(h_small, 1) == EINVAL and k.set_memory_ro(h_block, 1) == EINVAL
        assert [val(k, a) for a in (B(k), m, h_small, h_block)] == state and not flushes(k)


@pytest.mark.parametrize("era", ALL)
def test_pageattr_7_zero_pages(era):
    k = kernel(era)
    v = k.vmalloc(PAGE)
    reset(k)
    assert k.set_memory_ro(v, 0) == 0 and not flushes(k) and ("vm_unmap_aliases",) not in k.events
    assert k.set_memory_ro(B(k), 0) == EINVAL


@pytest.mark.parametrize("era", ALL)
def test_pageattr_8_linear_alias_under_rodata_full(era):
    k = kernel(era, rodata="full")
    v = k.vmalloc(4 * PAGE)
    area = k.vmalloc_space.find_vm_area(v)
    aliases = [k.page_address(pfn) for pfn in area.pages]
    reset(k)
    assert k.set_memory_ro(v + PAGE, 1) == 0
    touched = [bool(val(k, a) & BIT[7]) for a in aliases]
    assert touched == ([False, True, False, False] if era == "later" else [True] * 4)
    assert sum((a, a + PAGE) in flushes(k) for a in aliases) == sum(touched)
    k.set_memory_nx(v, 4)
    assert [bool(val(k, a) & BIT[7]) for a in aliases] == touched


@pytest.mark.parametrize("era", ALL)
def test_pageattr_9_set_memory_valid(era):
    k = kernel(era, rodata="full")                                      # a PTE-mapped linear map
    kva = k.page_address(k.alloc_data_pages(1)[0])
    old = val(k, kva)
    reset(k)
    assert k.set_memory_valid(kva, 1, 0) == 0
    assert val(k, kva) == (old & ~1) | (BIT[11] if era == "later" else 0)
    assert flushes(k) == [(kva, kva + PAGE)]
    reset(k)
    assert k.set_memory_valid(kva, 1, 1) == 0
    assert val(k, kva) == old
    assert flushes(k) == ([(kva, kva + PAGE)] if era == "6.12" else [])


@pytest.mark.parametrize("era", ALL)
@pytest.mark.parametrize("enable", [0, 1])
def test_pageattr_10_empty_range(era, enable):
    k = kernel(era, rodata="full")
    kva = k.page_address(k.alloc_data_pages(1)[0])
    reset(k)
    assert k.set_memory_valid(kva, 0, enable) == EINVAL
    assert warned(k) == (1 if era in ("6.12", "base") else 0)
    expect_flush = era == "6.12" or enable == 0
    assert flushes(k) == ([(kva, kva)] if expect_flush else [])


@pytest.mark.parametrize("era", ALL)
@pytest.mark.parametrize("full", [False, True])
def test_pageattr_11_direct_map_invalid(era, full):
    k = kernel(era, rodata="full" if full else "off")
    kva = k.page_address(k.alloc_data_pages(1)[0])
    old = val(k, kva)
    reset(k)
    assert k.set_direct_map_invalid_noflush(kva) == 0
    if not full:
        assert val(k, kva) == old
    else:
        assert val(k, kva) == (old & ~1) | (BIT[11] if era == "later" else 0)
    assert not flushes(k)


@pytest.mark.parametrize("era", ALL)
def test_pageattr_12_direct_map_default(era):
    k = kernel(era, rodata="full")
    kva = k.page_address(k.alloc_data_pages(1)[0])
    k.set_memory_ro(k.vmalloc(PAGE), 1)
    k.machine.memory.write_u64(entry(k, kva)[1], (val(k, kva) | BIT[7]) & ~(BIT[51] | 1))
    reset(k)
    assert k.set_direct_map_default_noflush(kva) == 0
    v = val(k, kva)
    assert v & 1 and v & BIT[51] and not v & BIT[7] and not flushes(k)


@pytest.mark.parametrize("era", ALL)
def test_pageattr_13_direct_map_valid_flushes(era):
    k = kernel(era, rodata="full")
    pfn = k.alloc_data_pages(2)[0]
    kva = k.page_address(pfn)
    reset(k)
    if era == "6.12":
        with pytest.raises(Unsupported):
            k.set_direct_map_valid_noflush(kva, 2, False)
        return
    assert k.set_direct_map_valid_noflush(kva, 2, False) == 0
    assert flushes(k) == [(kva, kva + 2 * PAGE)]


def test_pageattr_14_base_refuses_blocks():
    k = kernel("base")
    k.splitter.range_split_to_ptes(B(k) - SZ_2M, B(k))                   # a PTE-mapped page before B
    before = val(k, B(k) - PAGE)
    reset(k)
    assert k.set_memory_valid(B(k) - PAGE, 2, 0) == EINVAL
    assert warned(k) == 1
    assert val(k, B(k) - PAGE) == before & ~1                            # modified before the block: no rollback
    assert val(k, B(k)) & 1 and flushes(k) == [(B(k) - PAGE, B(k) + PAGE)]


@pytest.mark.parametrize("era", WALKER)
@pytest.mark.parametrize("bbml2", [False, True])
def test_pageattr_15_whole_block(era, bbml2):
    k = kernel(era, bbml2=bbml2)
    level, pa, old = entry(k, B(k))
    reset(k)
    assert k.set_memory_valid(B(k), 512, 0) == 0
    writes = [e for e in k.events if e[0] == "write"]
    assert len(writes) == 1 and writes[0][1] == pa and level == 2
    assert val(k, B(k)) == (old & ~1) | (BIT[11] if era == "later" else 0)
    assert flushes(k) == [(B(k), B(k) + SZ_2M)]


@pytest.mark.parametrize("era", ["seed-v2", "6.18", "later"])
def test_pageattr_16_partial_block_without_split(era):
    k = kernel(era)
    old = val(k, B(k))
    reset(k)
    assert k.__change_memory_common(B(k) + PAGE, PAGE, BIT[7], BIT[51]) == EINVAL
    assert warned(k) == 1 and val(k, B(k)) == old and flushes(k) == [(B(k) + PAGE, B(k) + 2 * PAGE)]


def test_pageattr_17_split_for_one_page():
    k = kernel("6.18", rodata="full", bbml2=True)
    level, pmd, block = entry(k, B(k))
    assert level == 2
    reset(k)
    assert k.set_direct_map_invalid_noflush(B(k) + PAGE) == 0
    table = k.machine.memory.read_u64(pmd)
    assert table & 3 == 3 and table & BIT[60] and table & BIT[59] and table & BIT[10]
    pfn0 = (block & 0xfffffffff000) >> 12
    for i in range(512):
        v = val(k, B(k) + i * PAGE)
        assert (v >> 12) & 0xfffffffff == pfn0 + i
        assert bool(v & BIT[52]) == (i >= 16)
        assert v & 1 == (0 if i == 1 else 1)
    assert not flushes(k) and not k.violations


def test_pageattr_18_split_inside_a_pud_block():
    k = kernel("6.18", rodata="full", bbml2=True)
    assert entry(k, G(k))[0] == 1
    g2 = G(k) + SZ_2M
    assert k.set_memory_ro(g2, 512) == EINVAL                        # linear map: not a vmalloc area
    assert k.__change_memory_common(g2, SZ_2M, BIT[7], BIT[51]) == 0
    for i in range(512):
        lvl, _, v = entry(k, G(k) + i * SZ_2M)
        assert lvl == 2 and v & 3 == 1
        assert bool(v & BIT[52]) == (i >= 16)
        assert bool(v & BIT[7]) == (i == 1)


def test_pageattr_19_split_point_is_the_less_aligned_end():
    k = kernel("6.18", rodata="full", bbml2=True)
    a = B(k) + (64 << 10)
    assert k.__change_memory_common(a, PAGE, BIT[7], BIT[51]) == 0
    for i in range(512):
        v = val(k, B(k) + i * PAGE)
        assert bool(v & BIT[52]) == (not 16 <= i < 32)
    assert val(k, a) & BIT[7] and not val(k, a + PAGE) & BIT[7]


@pytest.mark.parametrize("era", ["6.18", "later"])
def test_pageattr_20_unaligned_split(era):
    k = kernel(era, rodata="full", bbml2=True)
    assert k.split_kernel_leaf_mapping(B(k) + 0x800, B(k) + 0x1800) == EINVAL
    reset(k)
    assert k.set_memory_valid(B(k) + 0x800, 1, 0) == EINVAL
    assert warned(k) == 1 and val(k, B(k)) & 1


def test_pageattr_21_allocation_failure_in_split():
    k = kernel("6.18", rodata="full", bbml2=True)
    old = val(k, B(k))
    k.allocation_failure(1)
    reset(k)
    assert k.__change_memory_common(B(k) + PAGE, PAGE, BIT[7], BIT[51]) == ENOMEM
    assert warned(k) == 1 and val(k, B(k)) == old


@pytest.mark.parametrize("era", ["6.18", "later"])
def test_pageattr_22_invalidated_block_revalidation(era):
    k = kernel(era)
    old = val(k, B(k))
    assert k.set_memory_valid(B(k), 512, 0) == 0
    assert not k.kernel_page_present(B(k) + PAGE)
    assert k.set_memory_valid(B(k), 512, 1) == 0
    if era == "6.18":
        assert not val(k, B(k)) & 1                                     # the known upstream bug
    else:
        assert val(k, B(k)) == old and k.kernel_page_present(B(k) + PAGE)


@pytest.mark.parametrize("era,bbml2,ret", [("seed-v2", False, EINVAL), ("6.18", True, 0)])
def test_pageattr_23_pte_then_block(era, bbml2, ret):
    k = kernel(era, rodata="full" if bbml2 else "off", bbml2=bbml2)
    k.splitter.range_split_to_ptes(B(k) - SZ_2M, B(k))
    before = val(k, B(k) - PAGE)
    assert k.__change_memory_common(B(k) - PAGE, 2 * PAGE, BIT[7], BIT[51]) == ret
    assert val(k, B(k) - PAGE) == (before | BIT[7]) & ~BIT[51]
    assert bool(val(k, B(k)) & BIT[7]) == (ret == 0)


@pytest.mark.parametrize("era", ["base", "seed-v2", "6.18", "later"])
def test_pageattr_24_none_pmd(era):
    k = kernel(era)
    far = k.layout.vmalloc_end - 64 * SZ_2M
    before = k.machine.memory.live_pages
    assert k.set_memory_valid(far, 2, 1) == 0
    if era == "base":
        assert k.machine.memory.live_pages > before and val(k, far) == 1 and val(k, far + PAGE) == 1
    else:
        assert k.machine.memory.live_pages == before and not k.translate(far).mapped


@pytest.mark.parametrize("era,bbml2", [("seed-v2", False), ("6.18", False), ("6.18", True)])
def test_pageattr_25_partial_contiguous_group(era, bbml2):
    k = kernel(era, rodata="full" if bbml2 else "off", bbml2=bbml2)
    c = C(k)
    assert all(val(k, c + i * PAGE) & BIT[52] for i in range(16))
    assert k.__change_memory_common(c + 8 * 1024, 4 * PAGE, BIT[7], BIT[51]) == 0
    changed = [bool(val(k, c + i * PAGE) & BIT[7]) for i in range(16)]
    assert changed == [i in (2, 3, 4, 5) for i in range(16)]
    conts = {bool(val(k, c + i * PAGE) & BIT[52]) for i in range(16)}
    if bbml2:
        assert conts == {False}
    else:
        assert conts == {True}
        assert any(v.rule == "contiguous-group" for v in k.violations)


@pytest.mark.parametrize("era,fix,debug,reported", [
    ("6.18", True, False, False), ("6.18", False, False, True), ("6.18", False, True, True), ("later", True, False, False)])
def test_pageattr_26_kfence_in_atomic_context(era, fix, debug, reported):
    k = kernel(era, rodata="full", bbml2=True, kfence=True, nov2025_fix=fix, debug_pagealloc=debug)
    with k.softirq():
        k.kfence_protect_page(k.kfence_pool[0] + 4 * PAGE, True)
    assert any(v.rule == "lock-context" and "pgtable_split_lock" in v.detail for v in k.violations) == reported
    assert not k.translate(k.kfence_pool[0] + 4 * PAGE).mapped


def test_pageattr_27_seed_nolock_vs_rdlock():
    k = kernel("seed-v2", rodata="full", kfence=True)
    with k.softirq():
        k.kfence_protect_page(k.kfence_pool[0] + 4 * PAGE, True)
    assert not k.violations
    k.seed_walk_lock = 0
    with k.softirq():
        k.kfence_protect_page(k.kfence_pool[0] + 6 * PAGE, True)
    assert any(v.rule == "lock-assertion" for v in k.violations)


@pytest.mark.parametrize("era", ALL)
def test_pageattr_28_kernel_page_present(era):
    k = kernel(era, rodata="full")
    kva = k.page_address(k.alloc_data_pages(1)[0])
    assert k.kernel_page_present(kva)
    k.set_memory_valid(kva, 1, 0)
    assert not k.kernel_page_present(kva)
    blocks = kernel(era)
    assert blocks.kernel_page_present(B(blocks) + PAGE)
    assert not blocks.kernel_page_present(blocks.layout.vmalloc_end - 64 * SZ_2M)


@pytest.mark.parametrize("debug,bbml2,full,kfence_late,expected", [
    (True, True, False, False, True), (False, True, True, False, False), (False, False, True, False, True),
    (False, False, False, True, True), (False, False, False, False, False)])
def test_pageattr_30_force_pte_mapping(debug, bbml2, full, kfence_late, expected):
    k = kernel("6.18", debug_pagealloc=debug, bbml2=bbml2, rodata="full" if full else "off", kfence=kfence_late,
               kfence_early_init=not kfence_late)
    assert k.config.force_pte_mapping() == expected
    assert (entry(k, G(k))[0] == 3) == expected                          # the linear map follows it


@pytest.mark.parametrize("finalized,allocator,cpus,ret", [
    (False, False, 1, EBUSY), (False, True, 2, EBUSY), (True, True, 1, 0), (False, True, 1, 0)])
def test_pageattr_31_later_split_gating(finalized, allocator, cpus, ret):
    k = kernel("later", rodata="full", bbml2=True)
    assert k.linear_map_requires_bbml2
    k.config.bbml2 = False
    k.config.caps_finalized, k.config.page_allocator_up, k.config.online_cpus = finalized, allocator, cpus
    assert k.split_kernel_leaf_mapping(B(k) + PAGE, B(k) + 2 * PAGE) == ret
    split = val(k, B(k)) & 3 == 3
    assert split == (not finalized and allocator and cpus == 1)


@pytest.mark.parametrize("era", ALL)
def test_pageattr_32_order_of_events(era):
    k = kernel(era, rodata="full")
    v = k.vmalloc(2 * PAGE)
    aliases = [k.page_address(p) for p in k.vmalloc_space.find_vm_area(v).pages]
    reset(k)
    k.set_memory_ro(v, 2)
    kinds = [e for e in k.events if e[0] != "write"]
    assert kinds == [("flush", a, a + PAGE) for a in aliases] + [("vm_unmap_aliases",), ("flush", v, v + 2 * PAGE)]


@pytest.mark.parametrize("era", ALL)
def test_batch_path_equals_per_entry_path(era):
    """Without checkers pageattr updates a PTE table in one write; the tables must come out the same."""
    results = []
    for checks in (True, False):
        k = boot(era=era, ram=RAM, rodata="full", checks=checks)
        v = k.vmalloc(40 * PAGE)
        k.set_memory_ro(v + 3 * PAGE, 30)
        k.set_memory_valid(v, 7, 0)
        k.set_memory_x(v + PAGE, 2)
        kva = k.page_address(k.alloc_data_pages(1)[0])
        k.set_direct_map_invalid_noflush(kva)
        results.append([val(k, a) for a in [v + i * PAGE for i in range(41)] + [kva]])
    assert results[0] == results[1]


@pytest.mark.parametrize("era", ["base", "6.18", "later", "6.12"])
def test_pageattr_29_realm(era):
    k = kernel(era, rodata="full", realm=True)
    S = k.config.realm_shared_bit
    lm = k.page_address(k.alloc_data_pages(2)[0])
    old = [val(k, lm), val(k, lm + PAGE)]
    reset(k)
    if era == "6.12":
        assert k.set_memory_decrypted(lm, 2) == 0 and [val(k, lm), val(k, lm + PAGE)] == old
        return
    assert k.set_memory_decrypted(lm, 2) == 0
    assert [val(k, lm), val(k, lm + PAGE)] == [o | S for o in old]
    writes = [e for e in k.events if e[0] == "write"]
    invalid = [w for w in writes if not w[3] & 1]
    assert len(invalid) == 2 and all(w[3] & S for w in invalid)
    assert all(bool(w[3] & BIT[11]) == (era == "later") for w in invalid)
    kinds = [e[0] for e in k.events if e[0] != "write"]
    assert kinds == ["flush", "rmm"] and flushes(k) == [(lm, lm + 2 * PAGE)]
    k.rmm_failure = -5
    reset(k)
    assert k.set_memory_encrypted(lm, 2) == -5
    assert not k.translate(lm).mapped and warned(k) == 1
    reset(k)
    assert k.set_memory_decrypted(k.vmalloc(PAGE), 1) == EINVAL and "leaked" in k.warnings[0].message
    reset(k)
    assert k.set_memory_decrypted(lm + 0x800, 1) == 0 and warned(k) == 1
    plain = kernel(era, rodata="full")
    plain_lm = plain.page_address(plain.alloc_data_pages(1)[0])
    before = val(plain, plain_lm)
    assert plain.set_memory_decrypted(plain_lm, 1) == 0 and val(plain, plain_lm) == before


@pytest.mark.parametrize("era", ALL)
def test_kernel_map_pages_follows_can_set_direct_map(era):
    for debug in (False, True):
        k = kernel(era, debug_pagealloc=debug)
        lm = k.page_address(k.alloc_data_pages(1)[0])
        k.__kernel_map_pages(lm, 1, 0)
        assert k.translate(lm).mapped == (not debug)


@pytest.mark.parametrize("era,kept", [("later", True), ("6.12", True), ("6.18", True)])
def test_pageattr_masks_kpti_keeps_ng_on_revalidation(era, kept):
    """§1.2/§2 and the 7.2.13 note: PTE_MAYBE_NG = PTE_NG under KPTI; 7.x revalidates with
    PTE_PRESENT_VALID_KERNEL = PTE_VALID | PTE_MAYBE_NG, older eras only touch PTE_VALID: nG stays."""
    k = kernel(era, kpti=True)
    v = k.vmalloc(PAGE)
    assert val(k, v) & BIT[11]                                       # PAGE_KERNEL with KPTI is non-global
    assert k.set_memory_valid(v, 1, 0) == 0 and not val(k, v) & BIT[0]
    assert k.set_memory_valid(v, 1, 1) == 0
    assert val(k, v) & BIT[0] and bool(val(k, v) & BIT[11]) == kept
    assert not k.violations


@pytest.mark.parametrize("era", ["6.18", "later"])
def test_pageattr_late_kfence_pool_is_split_to_ptes_with_bbml2(era):
    """§5.4/§9: with BBML2 the linear map keeps blocks (force_pte_mapping() false), and a late KFENCE
    pool is split to plain PTEs (arch_kfence_init_pool / range_split_to_ptes): KFENCE memory is always
    PTE-mapped, one page at a time, no contiguous hint."""
    k = kernel(era, bbml2=True, rodata="full", kfence=True, kfence_early_init=False)
    assert not k.config.force_pte_mapping() and k.kfence_pool is None      # B23: no pool at boot
    assert k.kfence_init_late() == 0
    start, end = k.kfence_pool
    assert k.translate(end + (64 << 20)).level < 3                  # the rest of the linear map: blocks
    for va in range(start, end, PAGE):                              # valid or protected (invalid) pages
        t = k.translate(va)
        assert t.steps[-1].level == 3 and not t.descriptor & BIT[52], hex(va)


@pytest.mark.parametrize("era", ["6.1", "6.12", "base", "seed-v2", "6.18", "later"])
def test_freeing_f11_vfree_frees_no_page_table(era):
    """kernel-pgtable-freeing.md F11: vunmap/vfree only clear entries; every table page stays allocated and
    linked (for reuse or later huge promotion); the entries read as none."""
    k = kernel(era)
    v = k.vmalloc(3 * PAGE)
    tables = k.machine.memory.live_pages
    k.vfree(v)
    assert k.machine.memory.live_pages == tables
    assert all(not k.translate(v + i * PAGE).mapped for i in range(3))
    assert k.translate(v).steps[-1].level == 3                       # the PTE table is still there, empty


@pytest.mark.parametrize("era,debugfs,level", [("6.12", True, 3), ("6.12", False, 2), ("base", True, 3),
                                               ("6.18", True, 2), ("later", True, 2)])
def test_freeing_f3_huge_vmap_gate(era, debugfs, level):
    """kernel-pgtable-freeing.md F3: before 6.18, CONFIG_PTDUMP_DEBUGFS turns PMD/PUD vmap off, so
    vmalloc_huge(2 MiB) is PTE-mapped; 6.18 and later map a PMD block."""
    k = kernel(era, ptdump_debugfs=debugfs)
    v = k.vmalloc_huge(SZ_2M)
    assert k.translate(v).level == level and k.translate(v + SZ_2M - PAGE).mapped


@pytest.mark.parametrize("era,debugfs,level", [("6.12", True, 3), ("6.18", True, 2), ("later", True, 2),
                                               ("later", False, 2)])
def test_freeing_f3_ioremap_of_an_aligned_region(era, debugfs, level):
    """F1/F3: a 2 MiB-aligned ioremap is PTE-mapped on 6.12 with PTDUMP_DEBUGFS, a PMD block from 6.18 (as the
    real 6.12 and 7.2 captures map the 256 MiB ECAM window); device memory, never executable."""
    k = kernel(era, ptdump_debugfs=debugfs)
    v = k.ioremap(0x10_0000_0000, 4 * SZ_2M)
    t = k.translate(v + SZ_2M + 0x123)
    assert t.level == level and t.pa == 0x10_0000_0000 + SZ_2M + 0x123
    assert t.attr == "DEVICE/nGnRE" and not t.executable and t.writable
    assert k.set_memory_ro(v, 1) == -22                                # not VM_ALLOC: pageattr refuses


def test_pageattr_26_demo_reports_exactly_where_the_spec_says():
    """§8 behaviour 26 as `pagewalk demo` shows it: KFENCE's set_memory_valid() from softirq is clean with the
    seed's NOLOCK walk, 6.18 after the Nov-2025 fix and 7.x; the seed with RDLOCK trips the lock assertion (or,
    taking the lock, sleeps in atomic context); 6.18 as merged takes pgtable_split_lock in softirq."""
    from pagewalk.demo import run_demo
    rules = [sorted({r.split(":")[0] for r in o.reports}) for o in run_demo()]
    assert rules == [[], ["lock-assertion"], ["lock-context"], ["lock-context"], [], []]
