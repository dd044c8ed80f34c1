"""Property tests of the walker on random kernel table trees, for several geometries.

Invariants (pagewalk.md §2): the terminal callbacks (holes, PTEs, leaf or
non-present PUD/PMD entries) tile [start, end) exactly once, in address
order; a mapped tile is reported at the level the MMU finds the leaf; a hole
has the depth real_depth() gives the level where the MMU stops; and
ACTION_CONTINUE from pmd_entry removes exactly that PMD slot's subtree.
"""

from hypothesis import assume, given, settings, strategies as st, target

from pagewalk import ACTION_CONTINUE, Machine, mm_walk_ops, walk_kernel_page_table_range_lockless
from pagewalk.hw.aarch64.builder import TableBuilder
from pagewalk.hw.aarch64.translate import translate


def expected_hole_depth(m, hw_level: int) -> int:
    """pagewalk.md §1, written out: hardware level L is software depth L + 1 (PTE = 3 + 1); a depth the
    build folds away (nop4d when CONFIG_PGTABLE_LEVELS < 5, nopud < 4, nopmd < 3) reports as the level
    it folds into. Run-time folding (an LPA2 build on a 48-bit CPU) does not change the depth."""
    page, va_bits = m.arch.page_size, m.arch.va_bits
    pgtable_levels = (va_bits - 4) // (page.bit_length() - 1 - 3)          # ARM64_HW_PGTABLE_LEVELS(VA_BITS)
    folded = {depth for depth, needs in ((1, 5), (2, 4), (3, 3)) if pgtable_levels < needs}
    depth = hw_level + 1
    while depth in folded:
        depth -= 1
    return depth

# (page_size, VA_BITS, vabits_actual): 4 levels, 3 levels, 5-level LPA2, LPA2 build folded at run time, 16K, 64K
CONFIGS = [(4096, 48, 48), (4096, 39, 39), (4096, 52, 52), (4096, 52, 48), (16384, 47, 47), (65536, 48, 48),
           (16384, 52, 47)]


@st.composite
def trees(draw):
    page, va_bits, actual = draw(st.sampled_from(CONFIGS))
    m = Machine.simulated("6.18", page_size=page, va_bits=va_bits, vabits_actual=actual, ram=256 << 20)
    g = m.arch.hw
    b = TableBuilder(m.memory, g, root=m.swapper_pg_dir)
    base = g.ttbr1_base
    span = 1 << g.level_shift(1) if g.levels >= 3 else 1 << g.level_shift(2)
    region = base + draw(st.integers(0, (1 << (g.va_bits - g.level_shift(g.start_level))) - 1)) * \
        g.level_size(g.start_level)
    region -= region % span
    for _ in range(draw(st.integers(1, 12))):
        level = draw(st.sampled_from([lvl for lvl in (1, 2, 3) if lvl >= g.start_level and
                                      (lvl == 3 or g.block_allowed(lvl))]))
        size = g.level_size(level)
        va = region + draw(st.integers(0, span // size - 1)) * size if size <= span else region
        what = draw(st.sampled_from(["map", "map", "map", "table", "invalid"]))   # mostly mappings
        if what == "map":
            b.map(va, 0x40000000 - 0x40000000 % size + size, level)
        elif what == "table" and level < 3:
            b.table_for(va, level + 1)
        else:
            b.set_raw(va, level, 0x40000000 - 0x40000000 % size | 0x700)     # non-present, non-none
    lo = draw(st.integers(0, span // page - 1)) * page
    hi = draw(st.integers(lo // page + 1, span // page)) * page
    return m, region + lo, region + hi


class Recorder:
    def __init__(self, continue_pmds=()):
        self.events, self.continue_pmds, self.pmd_calls = [], set(continue_pmds), 0
        entry = lambda depth: lambda ptr, a, n, w: self.entry(depth, ptr, a, n, w)  # noqa: E731
        self.ops = mm_walk_ops(pgd_entry=entry(0), p4d_entry=entry(1), pud_entry=entry(2), pmd_entry=entry(3),
                               pte_entry=entry(4), pte_hole=self.hole)

    def entry(self, depth, ptr, addr, nxt, walk):
        val = walk.read(ptr)
        if depth == 3:
            self.pmd_calls += 1
            if self.pmd_calls in self.continue_pmds:
                walk.action = ACTION_CONTINUE
                self.events.append(("continued", addr, nxt, depth))
                return 0
        arch = walk.arch
        terminal = depth == 4 or (depth in (2, 3) and not arch.constant_predicates[depth] and
                                  (arch.leaf(depth, val) or not arch.present(depth, val)))
        if terminal:
            self.events.append(("entry", addr, nxt, depth))
        return 0

    def hole(self, addr, nxt, depth, walk):
        self.events.append(("hole", addr, nxt, depth))
        return 0


def _walk(m, start, end, rec):
    assert walk_kernel_page_table_range_lockless(start, end, rec.ops, init_mm=m.init_mm) == 0
    return rec.events


@settings(max_examples=150, deadline=None)
@given(trees())
def test_terminal_callbacks_tile_the_range(tree):
    m, start, end = tree
    events = _walk(m, start, end, Recorder())
    assert events and events[0][1] == start and events[-1][2] == end
    for a, b in zip(events, events[1:]):
        assert a[2] == b[1], (a, b)
    g = m.arch.hw
    for kind, addr, nxt, depth in events:
        t = translate(m.memory, g, m.arch.ttbr1_base(m.swapper_pg_dir), addr)
        if kind == "hole":
            assert not t.mapped and t.steps[-1].value == 0
            assert depth == expected_hole_depth(m, t.fault_level)
        elif t.mapped:
            assert depth == t.level + 1 and nxt - addr <= t.size


@settings(max_examples=100, deadline=None)
@given(trees(), st.data())
def test_action_continue_skips_exactly_the_pmd_subtree(tree, data):
    m, start, end = tree
    probe = Recorder()
    base = _walk(m, start, end, probe)
    assume(probe.pmd_calls > 0)                          # every example sets ACTION_CONTINUE somewhere
    chosen = data.draw(st.sets(st.integers(1, probe.pmd_calls), min_size=1, max_size=6))
    got = _walk(m, start, end, Recorder(chosen))
    skipped = [(a, n) for kind, a, n, d in got if kind == "continued"]
    inside = lambda e: any(a <= e[1] and e[2] <= n for a, n in skipped)  # noqa: E731
    expected = [e for e in base if not (inside(e) and e[3] >= 3)]
    target(float(len(base) - len(expected)))           # prefer examples where CONTINUE removes callbacks
    assert [e for e in got if e[0] != "continued"] == expected
