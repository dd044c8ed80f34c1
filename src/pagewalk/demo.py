"""`pagewalk demo`: the seed series' motivating scenario, run in each era.

KFENCE protects a pool page from softirq context: `kfence_protect_page()` ->
`set_memory_valid(addr, 1, 0)`, where nothing may sleep. For each variant:
the call, its result, what the checkers and the kernel's own checks report,
and the ptdump lines that changed.
"""

import difflib
from dataclasses import dataclass

from .simulate import boot
from .mm.pagewalk import PGWALK_RDLOCK

__all__ = ["run_demo", "render", "Outcome"]


@dataclass
class Outcome:
    title: str
    expectation: str
    calls: list[str]
    reports: list[str]
    diff: list[str]


def _run(title: str, expectation: str, era: str, *, bbml2=False, nov2025_fix=True, seed_lock=None,
         take_lock_in_softirq=False) -> Outcome:
    k = boot(era=era, rodata="full", kfence=True, bbml2=bbml2, nov2025_fix=nov2025_fix)
    if seed_lock is not None:
        k.seed_walk_lock = seed_lock
    page = k.config.page_size
    addr = k.kfence_pool[0] + 4 * page           # an object's data page (valid after boot)
    before = k.ptdump()
    with k.softirq():
        if take_lock_in_softirq:
            k.machine.init_mm.mmap_lock.down_read()
        ret = k.set_memory_valid(addr, 1, 0)          # what kfence_protect_page(addr, true) does
        if take_lock_in_softirq:
            k.machine.init_mm.mmap_lock.up_read()
    after = k.ptdump()
    calls = [f"[softirq] kfence_protect_page({addr:#x}, protect=true): set_memory_valid({addr:#x}, 1, 0) -> {ret}"]
    if take_lock_in_softirq:
        calls.insert(0, "[softirq] mmap_read_lock(&init_mm)")
    reports = [str(v) for v in k.violations] + [str(w) for w in k.warnings]
    diff = [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return Outcome(title, expectation, calls, reports, diff)


SCENARIOS = [
    ("SEED-v2: the walker with PGWALK_NOLOCK", "works: no lock taken, nothing reported", "seed-v2", {}),
    ("SEED-v2 ops with PGWALK_RDLOCK, lock not held", "caught: init_mm lock assertion", "seed-v2",
     {"seed_lock": PGWALK_RDLOCK}),
    ("SEED-v2 ops with PGWALK_RDLOCK, lock taken in softirq", "caught: sleeping lock in atomic context", "seed-v2",
     {"seed_lock": PGWALK_RDLOCK, "take_lock_in_softirq": True}),
    ("6.18 as first merged (a166563e7ec3), BBML2", "caught: pgtable_split_lock (a mutex) taken in softirq",
     "6.18", {"bbml2": True, "nov2025_fix": False}),
    ("6.18 with the Nov-2025 fix, BBML2", "works: KFENCE addresses never split", "6.18", {"bbml2": True}),
    ("LATER (7.x), BBML2", "works: KFENCE address test", "later", {"bbml2": True}),
]


def run_demo() -> list[Outcome]:
    return [_run(title, expect, era, **kw) for title, expect, era, kw in SCENARIOS]


def render(outcomes: list[Outcome]) -> str:
    out = []
    for o in outcomes:
        out.append(f"== {o.title}  ({o.expectation})")
        out += [f"   {c}" for c in o.calls]
        out.append("   reports: " + ("none" if not o.reports else ""))
        out += [f"     - {r}" for r in o.reports]
        out.append("   ptdump lines that changed:")
        out += [f"     {d}" for d in o.diff] or ["     (none)"]
        out.append("")
    return "\n".join(out)
