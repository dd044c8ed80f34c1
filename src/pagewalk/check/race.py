"""A deterministic interleaving explorer: a page-table walk against page-table freeing.

The walker runs in its own thread and stops before every descriptor read; the
"freer" is a list of atomic steps (clear leaves, unlink a table, free it).
Every placement of the freer's steps between the walker's reads is run on a
fresh kernel; a read that lands in a freed table page (poisoned, so it raises)
is a use-after-free: the walk raced with the freeing. Locks decide which
placements exist: a freer that needs a lock the walker holds for its whole
walk can only run entirely before or entirely after it.

This is the question of the seed thread and of the July-2026 ptdump fix: a
lockless walk is safe only over a range the caller owns exclusively.
"""

import itertools
import math
import threading
from dataclasses import dataclass, field

from ..errors import PoisonedPageError
from ..kernel.boot import start_kernel
from ..kernel.config import KernelConfig
from ..mm.pagewalk import mm_walk_ops, walk_kernel_page_table_range_lockless, walk_page_range_debug

__all__ = ["explore", "run_scenarios", "RaceReport", "Step"]


class _Stop(Exception):
    """Ends a walker thread that the explorer abandons."""


class _SteppedMemory:
    """The machine's memory, with the walker thread pausing before each read."""

    def __init__(self, memory, scheduler):
        self._memory, self._scheduler = memory, scheduler

    def __getattr__(self, name):
        return getattr(self._memory, name)

    def read_u64(self, pa: int) -> int:
        self._scheduler.point(pa)
        return self._memory.read_u64(pa)

    def read_table(self, pa: int, entries: int):
        self._scheduler.point(pa)
        return self._memory.read_table(pa, entries)


class _Scheduler:
    def __init__(self):
        self.cond = threading.Condition()
        self.turn = "main"
        self.walker_thread = None
        self.reads: list[int] = []
        self.finished = False
        self.abandon = False

    def point(self, pa: int) -> None:
        if threading.current_thread() is not self.walker_thread:
            return                                   # the freer's own reads are not interleaving points
        with self.cond:
            self.turn = "main"
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.turn == "walker")
            if self.abandon:
                raise _Stop()
            self.reads.append(pa)

    def let_walker_read(self) -> None:
        with self.cond:
            self.turn = "walker"
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.turn == "main")

    def wait_for_walker(self) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.turn == "main")


@dataclass
class Step:
    """One atomic action of the freer, done on the kernel `k`."""
    name: str
    action: object                               # callable(kernel) -> None


@dataclass
class RaceReport:
    scenario: str
    interleavings: int = 0
    total: int = 0
    races: int = 0
    example: list[str] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        return self.races == 0

    def __str__(self) -> str:
        verdict = "safe" if self.safe else f"RACE in {self.races} of them"
        of = "" if self.total == self.interleavings else f" (of {self.total}: stopped at the limit)"
        lines = [f"{self.scenario}: {self.interleavings} interleavings explored{of}, {verdict}"]
        lines += [f"    {e}" for e in self.example]
        return "\n".join(lines)


def explore(scenario: str, make, walker, freer_steps, *, serialized: bool = False, limit: int = 5000) -> RaceReport:
    """Run `walker(k)` against `freer_steps(k)` (a list of Step) in every interleaving.

    `make()` builds a fresh kernel for each run. `serialized`: the freer needs a
    lock the walker holds for its whole walk, so it runs only before or after it.
    """
    report = RaceReport(scenario)
    reads = _run(make, walker, freer_steps, {})[1]
    positions = [0, reads] if serialized else range(reads + 1)
    steps_count = len(freer_steps(make()))
    if serialized:
        placements = [(p,) * steps_count for p in positions]
        report.total = len(placements)
    else:
        placements = itertools.combinations_with_replacement(positions, steps_count)
        report.total = math.comb(reads + steps_count, steps_count)
    for placement in itertools.islice(placements, limit):
        error, _, log = _run(make, walker, freer_steps, dict(enumerate(placement)))
        report.interleavings += 1
        if error is not None:
            report.races += 1
            if not report.example:
                report.example = log + [f"walker read {error.pa:#x}: table page {error.page:#x} was freed "
                                        "by the freer: use-after-free of a page table"]
    return report


def _run(make, walker, freer_steps, placement: dict[int, int]):
    """One interleaving: freer step j runs just before walker read placement[j]."""
    state = make()
    steps = freer_steps(state)
    scheduler = _Scheduler()
    machine = state.k.machine
    machine.memory = _SteppedMemory(machine.memory, scheduler)
    outcome: dict = {}

    def run_walker():
        try:
            walker(state)
        except PoisonedPageError as e:
            outcome["error"] = e
        except _Stop:
            pass
        finally:
            with scheduler.cond:
                scheduler.finished = True
                scheduler.turn = "main"
                scheduler.cond.notify_all()

    thread = threading.Thread(target=run_walker, daemon=True)
    scheduler.walker_thread = thread
    thread.start()
    scheduler.wait_for_walker()
    log, done = [], set()
    read_index = 0
    while True:
        for j, step in enumerate(steps):
            if j not in done and placement.get(j, -1) <= read_index and j in placement:
                step.action(state)
                done.add(j)
                log.append(f"before walker read #{read_index}: freer {step.name}")
        if scheduler.finished:
            break
        scheduler.let_walker_read()
        read_index += 1
    for j, step in enumerate(steps):                 # placements after the walk ended
        if j not in done and j in placement:
            step.action(state)
            done.add(j)
    thread.join(timeout=5)
    machine.memory = machine.memory._memory
    return outcome.get("error"), read_index, log


# -- the scenarios -----------------------------------------------------------------------

SZ_2M = 2 << 20


@dataclass
class _TwoAreas:
    """A kernel with area A (2 pages) and area B (1 page), each alone under its own PMD entry."""
    k: object
    a: int
    b: int


def _two_areas() -> _TwoAreas:
    k = start_kernel(KernelConfig(era="later", rodata="off", ram=256 << 20))
    page = k.config.page_size
    k.vmalloc_space.skip_to(-(-k.vmalloc_space.cursor // SZ_2M) * SZ_2M)
    a = k.vmalloc(2 * page)
    k.vmalloc_space.skip_to(-(-k.vmalloc_space.cursor // SZ_2M) * SZ_2M)
    return _TwoAreas(k, a, k.vmalloc(page))


def _free_b_table_steps(s: _TwoAreas) -> list[Step]:
    """B's PTE table freed as huge-vmap promotion over B's purged range does it (vunmap clears B's PTE;
    pmd_free_pte_page unlinks the table and frees it: kernel-pgtable-freeing.md F4, F6, F11)."""
    k, b = s.k, s.b
    arch, mem = k.machine.arch, k.machine.memory
    pmd = arch.entry_for(mem.read_u64, k.machine.swapper_pg_dir, b, 3)
    table = arch.table_address(mem.read_u64(pmd))
    pte = table + 8 * arch.index(4, b)
    return [Step(f"clears B's PTE at {pte:#x}", lambda s: s.k.write_entry(pte, 0)),
            Step(f"unlinks B's PTE table (PMD entry {pmd:#x} = 0)", lambda s: s.k.write_entry(pmd, 0)),
            Step(f"frees the PTE table page {table:#x}", lambda s: s.k.machine.memory.free_page(table))]


def _pageattr_like_ops():
    return mm_walk_ops(pmd_entry=lambda p, a, n, w: w.read(p) and 0,
                       pte_entry=lambda p, a, n, w: w.read(p) and 0)


def _lockless(start_of, length):
    def walker(s: _TwoAreas):
        start = start_of(s)
        walk_kernel_page_table_range_lockless(start, start + length, _pageattr_like_ops(),
                                              init_mm=s.k.machine.init_mm)
    return walker


def _ptdump_walk(s: _TwoAreas):
    """ptdump's walk (walk_page_range_debug, init_mm write-locked) over B and the page after it."""
    k, start = s.k, s.b
    init_mm = k.machine.init_mm
    init_mm.mmap_lock.down_write()
    try:
        walk_page_range_debug(init_mm, start, start + 2 * k.config.page_size, _pageattr_like_ops())
    finally:
        init_mm.mmap_lock.up_write()


def run_scenarios() -> list[RaceReport]:
    page = 4096
    return [
        explore("lockless walk of a range the caller owns (set_memory_* on its own area A) vs freeing B's PTE table",
                _two_areas, _lockless(lambda s: s.a, 2 * page), _free_b_table_steps),
        explore("lockless walk over B, which it does not own, vs freeing B's PTE table",
                _two_areas, _lockless(lambda s: s.b, 2 * page), _free_b_table_steps),
        explore("ptdump (init_mm write-locked, 7.x rule) vs PTE-table freeing that takes init_mm's lock",
                _two_areas, _ptdump_walk, _free_b_table_steps, serialized=True),
        explore("ptdump vs PTE-table freeing that takes no init_mm lock (before the July-2026 fixes)",
                _two_areas, _ptdump_walk, _free_b_table_steps),
    ]
