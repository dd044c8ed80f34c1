"""The interleaving explorer: kernel threads that yield at every shared access, scheduled in every
way that matters (kernel-pgtable-freeing.md §2-§4).

Threads are the simulated kernel's own code paths (walkers, pageattr, vmap, hot-remove, KFENCE).
Each runs in an OS thread but only one runs at a time: before every shared access (a descriptor
read or write, a table page allocated or freed, a lock taken or released, a static key read or
changed, a TLB flush) it stops and the scheduler picks who goes next. A thread that must sleep for
a lock is not runnable until the lock is granted.

Exploration is stateless (every execution re-runs from the start) with dynamic partial-order
reduction (Flanagan-Godefroid DPOR) and sleep sets: only orders of *conflicting* accesses are
varied (the same page with a write, free or allocation; the same lock; the same static key), so
each Mazurkiewicz trace is run once. `random` runs seeded random schedules instead. Every execution
is sequentially consistent: weak-memory orderings (F35) are out of scope.

Verdicts: use-after-free (a read of a freed table page), deadlock (every live thread blocked),
sleep-in-atomic and lock-assertion (the kernel log), bbm-violation and stale-tlb (the checkers), safe.
A schedule ("0:12,1:3,0:5": thread 0 for 12 steps, ...) replays one execution exactly.

Your own scenario is a kernel and threads that are functions of it (the catalogue in
scenarios.py is written this way): here a lockless walk of a range against freeing its table.

>>> import copy
>>> from pagewalk import boot
>>> from pagewalk.mm.pagewalk import mm_walk_ops, walk_kernel_page_table_range_lockless
>>> k = boot(era="later", rodata="noalias", ram=128 << 20, checks=False)
>>> v = k.vmalloc(4096)
>>> ops = mm_walk_ops(pte_entry=lambda ptr, addr, next, walk: walk.read(ptr) and 0)
>>> def walker(k):
...     walk_kernel_page_table_range_lockless(v, v + 4096, ops, init_mm=k.machine.init_mm)
>>> def freer(k):                                   # what promoting v's PMD entry to a block would do
...     arch, mem = k.machine.arch, k.machine.memory
...     pmd = arch.entry_for(mem.read_u64, k.machine.swapper_pg_dir, v, 3)
...     table = arch.table_address(mem.read_u64(pmd))
...     k.write_entry(pmd, 0)
...     mem.free_page(table)
>>> result = explore(lambda: copy.deepcopy(k), [KernelThread("walker", walker), KernelThread("freer", freer)])
>>> result.verdict, replay(lambda: copy.deepcopy(k), [KernelThread("walker", walker),
...                                                  KernelThread("freer", freer)], result.witness.schedule).verdict
('use-after-free', 'use-after-free')
"""

import random as random_module
import sys
import threading
from dataclasses import dataclass, field

from ..errors import ArgumentError, PoisonedPageError

__all__ = ["KernelThread", "Execution", "Exploration", "explore", "replay", "sequential", "parse_schedule",
           "format_schedule", "conflicts", "VERDICTS", "SC_NOTE"]

VERDICTS = ("safe", "use-after-free", "deadlock", "sleep-in-atomic", "lock-assertion", "bbm-violation", "stale-tlb")
SC_NOTE = "sequentially consistent executions only (weak-memory orderings, F35, are out of scope)"
_RULE_VERDICT = {"lock-context": "sleep-in-atomic", "lock-assertion": "lock-assertion", "bbm": "bbm-violation",
                 "tlb": "stale-tlb", "cont": "bbm-violation"}
_MEMORY_OPS = ("read", "read_table", "write", "alloc", "free")
#: Frames that are plumbing, not kernel code, when naming where an access happened.
_PLUMBING = ("explore.py", "context.py", "locks.py", "ram.py", "overlay.py")


@dataclass
class KernelThread:
    """One thread: `body(kernel)` runs the kernel code path. An `irq` thread is a softirq on the CPU the
    others run on: once it starts it runs to completion (in softirq context)."""
    name: str
    body: object
    irq: bool = False


class _Stop(BaseException):
    """Ends a thread whose execution is abandoned."""


class _ThreadState:
    def __init__(self, index: int, spec: KernelThread):
        self.index, self.spec = index, spec
        self.op: tuple | None = None            # the access it is about to do
        self.site = ""
        self.ready = None                       # when waiting: a predicate
        self.done = False
        self.started = False
        self.error: BaseException | None = None
        self.os_thread: threading.Thread | None = None


def conflicts(a: tuple, b: tuple, page_size: int) -> bool:
    """Whether two accesses do not commute: the same page with a write, free or allocation (words for
    two single-word accesses), or the same lock or static key unless both only read it (a static key's
    test, a percpu rwsem's reader side).

    >>> conflicts(("read", 0x1008), ("write", 0x1010), 4096), conflicts(("read_table", 0x1000), ("write", 0x1010), 4096)
    (False, True)
    >>> test, inc = ("key", "k", "read", "static_branch_unlikely"), ("key", "k", "write", "static_branch_inc")
    >>> conflicts(test, test, 4096), conflicts(test, inc, 4096)
    (False, True)
    """
    if a[0] in _MEMORY_OPS and b[0] in _MEMORY_OPS:
        if a[1] // page_size != b[1] // page_size:
            return False
        kinds = {a[0], b[0]}
        if kinds & {"alloc", "free"}:
            return True
        if "write" not in kinds:
            return False
        return "read_table" in kinds or a[1] == b[1]
    if a[0] in ("lock", "key", "flush") and a[0] == b[0]:
        return a[1] == b[1] and not a[2] == b[2] == "read"          # two readers commute
    return False


def _object(op: tuple, page_size: int):
    return op[1] // page_size if op[0] in _MEMORY_OPS else (op[0], op[1])


class _SharedMemory:
    """The machine's memory as the threads see it: every access is a scheduling point."""

    def __init__(self, memory, scheduler):
        self._memory, self._scheduler = memory, scheduler

    def __getattr__(self, name):
        return getattr(self._memory, name)

    def read_u64(self, pa: int) -> int:
        self._scheduler.point(("read", pa))
        return self._memory.read_u64(pa)

    def read_table(self, pa: int, entries: int):
        self._scheduler.point(("read_table", pa))
        return self._memory.read_table(pa, entries)

    def write_u64(self, pa: int, value: int) -> None:
        self._scheduler.point(("write", pa))
        self._memory.write_u64(pa, value)

    def write_table(self, pa: int, values) -> None:
        self._scheduler.point(("write", pa))
        self._memory.write_table(pa, values)

    def alloc_page(self):
        page = self._memory.alloc_page()
        if page is not None:
            self._scheduler.point(("alloc", page))
        return page

    def free_page(self, pa: int) -> None:
        self._scheduler.point(("free", pa))
        self._memory.free_page(pa)


@dataclass
class Step:
    thread: int
    op: tuple
    site: str


@dataclass
class Execution:
    """One run: the steps in order, its verdict and what showed it."""
    steps: list[Step] = field(default_factory=list)
    verdict: str = "safe"
    detail: str = ""
    threads: tuple[str, ...] = ()
    blocked: bool = False                      # cut short by the sleep sets (an equivalent run exists)
    fallbacks: int = 0
    page_size: int = 4096

    @property
    def schedule(self) -> str:
        return format_schedule([s.thread for s in self.steps])

    def switches(self) -> int:
        return sum(a.thread != b.thread for a, b in zip(self.steps, self.steps[1:]))

    def trace(self) -> list[str]:
        """Per-thread lines, kernel function names first: the accesses that conflict with another thread's,
        and a count of the private ones in between."""
        by_object, shared = {}, set()
        for s in self.steps:
            by_object.setdefault(_object(s.op, self.page_size), []).append(s)
        for steps in by_object.values():          # a pair conflicts only if one side changes something
            changing = [s for s in steps if s.op[0] not in ("read", "read_table", "start") and
                        not (len(s.op) > 2 and s.op[2] == "read")]
            for a in changing:
                for b in steps:
                    if a.thread != b.thread and conflicts(a.op, b.op, self.page_size):
                        shared.update((id(a), id(b)))
        lines, quiet = [], 0
        for s in self.steps:
            if id(s) not in shared:
                quiet += 1
                continue
            if quiet:
                lines.append(f"    ... {quiet} private step{'s' * (quiet != 1)}")
                quiet = 0
            lines.append(f"[{self.threads[s.thread]}] {s.site}: {_describe(s.op)}")
        if quiet:
            lines.append(f"    ... {quiet} private step{'s' * (quiet != 1)}")
        if self.detail:
            lines.append(f"=> {self.verdict}: {self.detail}")
        return lines


def _describe(op: tuple) -> str:
    kind = op[0]
    if kind in ("read", "write"):
        return f"{kind} entry {op[1]:#x}"
    if kind == "read_table":
        return f"read table {op[1]:#x}"
    if kind in ("alloc", "free"):
        return f"{kind} table page {op[1]:#x}"
    if kind in ("lock", "key"):
        return op[3] if op[2] == "wait" else f"{op[3]}({op[1]})"
    return f"{kind} {op[1]}"


class _Run:
    """One execution. The thread holding the baton (the main thread first) asks `choose` who does the next
    access; only when that is another thread does the baton move (a thread switch), so a thread runs on
    at native speed between the places where the schedule switches."""

    def __init__(self, setup, threads: list[KernelThread], choose, sites: bool):
        self.sites, self.choose = sites, choose
        self.kernel = setup()
        self.specs = threads
        self.threads = [_ThreadState(i, t) for i, t in enumerate(threads)]
        self.cond = threading.Condition()
        self.turn: int | None = None              # who holds the baton; None: nobody (the run is over)
        self.running_irq: int | None = None
        self.over = threading.Event()
        self.steps: list[Step] = []
        self.states: list[tuple] = []
        self.outcome: tuple[str, str] | None = None
        self.blocked = False
        machine = self.kernel.machine
        self.page_size = machine.arch.page_size
        self.reports = len(machine.log.reports) + len(self.kernel.found_violations)
        self._memory = machine.memory
        machine.memory = _SharedMemory(machine.memory, self)
        machine.context.scheduler = self
        self._flush = self.kernel.flush_tlb_kernel_range
        self.kernel.flush_tlb_kernel_range = self._flush_point

    # -- called from the kernel threads --------------------------------------------------------
    def _me(self) -> _ThreadState | None:
        current = threading.current_thread()
        return next((t for t in self.threads if t.os_thread is current), None)

    def current(self) -> str:
        me = self._me()
        return me.spec.name if me else "main"

    def point(self, op: tuple) -> None:
        me = self._me()
        if me is None:
            return
        if self.over.is_set():                   # abandoned: `finally` blocks on the way out do nothing shared
            raise _Stop()
        me.op = op
        if self.sites:
            me.site = _site()
        self._pass(me)

    def wait(self, lock: str, what: str, ready, acquire) -> None:
        me = self._me()
        if me is None:
            raise AssertionError(f"the scheduler's own thread waits for {what}")
        if self.over.is_set():
            raise _Stop()
        me.op, me.site, me.ready = ("lock", lock, "wait", f"sleeps on {what}"), f"sleeps on {what}", ready
        self._pass(me)
        me.ready = None
        acquire()

    def _flush_point(self, start: int, end: int, caller: str = "__change_memory_common") -> None:
        self.point(("flush", "tlb", "rw"))
        self._flush(start, end, caller)

    def _pass(self, me: _ThreadState) -> None:
        """`me` is at its next access: choose who goes; wait for the baton if it is someone else."""
        chosen = self._schedule()
        if chosen == me.index:
            return
        with self.cond:
            self.cond.wait_for(lambda: self.turn == me.index or self.turn is None)
            if self.turn is None:
                raise _Stop()

    def _body(self, me: _ThreadState) -> None:
        try:
            me.started = True
            if me.spec.irq:
                with self.kernel.machine.context.in_softirq():
                    me.spec.body(self.kernel)
            else:
                me.spec.body(self.kernel)
        except _Stop:
            return
        except BaseException as e:          # noqa: BLE001 - the run's verdict, or re-raised by the scheduler
            me.error = e
        me.done = True
        self._schedule()

    # -- choosing ----------------------------------------------------------------------------
    def _schedule(self) -> int | None:
        """Record the next step and hand the baton to its thread; None when the run is over."""
        outcome = self._outcome()
        chosen = None
        if outcome is None:
            runnable = self.runnable()
            pending = tuple(None if t.done else self.pending(t.index) for t in self.threads)
            chosen = self.choose(len(self.steps), runnable, pending, self.page_size)
            if chosen is None:
                self.blocked = True
            else:
                t = self.threads[chosen]
                self.states.append((runnable, pending))
                self.steps.append(Step(chosen, pending[chosen], t.site or f"{t.spec.name}()"))
                if t.spec.irq:
                    self.running_irq = chosen
        else:
            self.outcome = outcome
        with self.cond:
            self.turn = chosen
            self.cond.notify_all()
        if chosen is None:
            self.over.set()
            return None
        t = self.threads[chosen]
        if t.os_thread is None:
            t.os_thread = threading.Thread(target=self._body, args=(t,), daemon=True)
            t.os_thread.start()
        return chosen

    def runnable(self) -> list[int]:
        if self.running_irq is not None and not self.threads[self.running_irq].done:
            irq = self.threads[self.running_irq]
            return [irq.index] if irq.ready is None or irq.ready() else []
        return [t.index for t in self.threads if not t.done and (t.ready is None or t.ready())]

    def pending(self, index: int) -> tuple:
        t = self.threads[index]
        return t.op if t.started else ("start", t.spec.name)

    def _outcome(self) -> tuple[str, str] | None:
        for t in self.threads:
            if isinstance(t.error, PoisonedPageError):
                return "use-after-free", f"{t.spec.name} accessed {t.error.pa:#x} in table page " \
                                         f"{t.error.page:#x}, which another thread freed"
            if t.error is not None:
                return "error", ""
        k = self.kernel
        if len(k.machine.log.reports) + len(k.found_violations) != self.reports:
            for v in k.violations:
                return _RULE_VERDICT.get(v.rule, v.rule), str(v)
        if all(t.done for t in self.threads):
            return "safe", ""
        if not self.runnable():
            blocked = ", ".join(f"{t.spec.name} ({t.site})" for t in self.threads if not t.done)
            return "deadlock", f"every live thread sleeps: {blocked}"
        return None

    def execute(self) -> None:
        self._schedule()
        self.over.wait()
        for t in self.threads:
            if t.os_thread is not None:
                t.os_thread.join(timeout=10)
        self.kernel.machine.memory = self._memory
        self.kernel.machine.context.scheduler = None
        self.kernel.flush_tlb_kernel_range = self._flush
        for t in self.threads:
            if t.error is not None and not isinstance(t.error, PoisonedPageError):
                raise t.error


def _site() -> str:
    """`callee < caller` of the innermost kernel functions of the calling thread (model helpers, whose
    names start with one underscore, are skipped)."""
    names, frame = [], sys._getframe(2)
    while frame is not None and len(names) < 2:
        name = frame.f_code.co_name
        if not frame.f_code.co_filename.endswith(_PLUMBING) and name not in _NOT_KERNEL and (
                not name.startswith("_") or name.startswith("__")):
            names.append(name)
        frame = frame.f_back
    return " < ".join(names)


_NOT_KERNEL = {"write_entry", "call", "wrapper", "body", "run", "<lambda>", "__getattr__", "__init__"}


def _execute(setup, threads, choose, fallbacks=None, sites: bool = False) -> tuple[Execution, list]:
    """Run one execution; `choose(i, runnable, pending, page_size)` picks the thread of step i (None: stop
    here; `pending[t]` is thread t's next access). Returns the execution and, per step, (runnable,
    pending). `sites` records the kernel function of each step (slower: the trace of a witness)."""
    run = _Run(setup, threads, choose, sites)
    run.execute()
    ex = Execution(steps=run.steps, threads=tuple(t.name for t in threads), blocked=run.blocked,
                   page_size=run.page_size)
    if run.outcome:
        ex.verdict, ex.detail = run.outcome
    ex.fallbacks = fallbacks(run.kernel) if fallbacks else 0
    return ex, run.states


def parse_schedule(text: str) -> list[int]:
    """'0:2,1:1' -> [0, 0, 1]. :raises ArgumentError: not a schedule."""
    out = []
    for part in text.split(","):
        thread, sep, count = part.strip().partition(":")
        if not (thread.isdigit() and (not sep or count.isdigit())):
            raise ArgumentError(f"schedule {text!r}: '{part}' is not THREAD:STEPS")
        out += [int(thread)] * (int(count) if sep else 1)
    return out


def format_schedule(choices: list[int]) -> str:
    """[0, 0, 1] -> '0:2,1:1'."""
    out = []
    for c in choices:
        if out and out[-1][0] == c:
            out[-1][1] += 1
        else:
            out.append([c, 1])
    return ",".join(f"{c}:{n}" for c, n in out)


@dataclass
class Exploration:
    """What exploring a scenario found: the verdict of the worst execution and counts."""
    verdict: str = "safe"
    explored: int = 0
    pruned: int = 0
    complete: bool = True
    witness: Execution | None = None
    fallbacks: int = 0
    verdicts: dict = field(default_factory=dict)


def sequential(setup, threads: list[KernelThread]) -> Execution:
    """One execution, each thread to completion in turn: the shared accesses of each code path, in order."""
    return _execute(setup, threads, lambda i, runnable, pending, size: runnable[0], sites=True)[0]


def replay(setup, threads: list[KernelThread], schedule: str) -> Execution:
    """Run exactly the schedule; a thread that cannot run where the schedule says is an error."""
    choices = parse_schedule(schedule)

    def choose(i, runnable, pending, page_size):
        if i >= len(choices):
            raise ArgumentError(f"schedule {schedule!r} ends after {len(choices)} steps; the run goes on")
        if choices[i] not in runnable:
            raise ArgumentError(f"schedule {schedule!r}: step {i} runs thread {choices[i]}, which cannot run "
                                f"there (runnable: {runnable})")
        return choices[i]
    return _execute(setup, threads, choose, sites=True)[0]


def explore(setup, threads: list[KernelThread], *, bound: int = 100000, random: int = 0, seed: int = 0,
            fallbacks=None, until_violation: bool = True, on_progress=None) -> Exploration:
    """Every execution up to partial-order equivalence (or `random` seeded random ones), at most `bound`;
    `until_violation`: stop at the first execution that is not safe (its schedule is the witness)."""
    result = Exploration()
    if random:
        rng = random_module.Random(seed)
        for _ in range(random):
            ex, _ = _execute(setup, threads, lambda i, runnable, pending, size: rng.choice(runnable) if runnable
                             else None, fallbacks)
            _record(result, ex)
            if on_progress:
                on_progress(result.explored, random)
            if until_violation and result.witness is not None:
                break
        result.complete = False
        return _traced(result, setup, threads)
    nodes: list[dict] = []          # per depth: sleep, backtrack, done (sets of thread indices)
    prefix: list[int] = []
    while True:
        ex, states = _execute(setup, threads, _chooser(prefix, nodes), fallbacks)
        if ex.blocked:
            result.pruned += 1
        else:
            _record(result, ex)
        _add_backtracks(ex, states, nodes)
        if on_progress:
            on_progress(result.explored + result.pruned, bound)
        depth = _next_branch(nodes)
        if until_violation and result.witness is not None:
            result.complete = depth is None
            return _traced(result, setup, threads)
        if depth is None:
            return _traced(result, setup, threads)
        if result.explored + result.pruned >= bound:
            result.complete = False
            return _traced(result, setup, threads)
        t = min(nodes[depth]["backtrack"] - nodes[depth]["done"] - nodes[depth]["sleep"])
        nodes[depth]["done"].add(t)
        del nodes[depth + 1:]
        prefix = [n["chosen"] for n in nodes[:depth]] + [t]
        nodes[depth]["chosen"] = t


def _traced(result: Exploration, setup, threads) -> Exploration:
    """The witness run again with its kernel function names (the schedule reproduces it exactly)."""
    if result.witness is not None:
        fallbacks = result.witness.fallbacks
        result.witness = replay(setup, threads, result.witness.schedule)
        result.witness.fallbacks = fallbacks
    return result


def _record(result: Exploration, ex: Execution) -> None:
    result.explored += 1
    result.verdicts[ex.verdict] = result.verdicts.get(ex.verdict, 0) + 1
    result.fallbacks += ex.fallbacks
    if ex.verdict == "safe":
        return
    best = result.witness
    if best is None or (ex.switches(), len(ex.steps)) < (best.switches(), len(best.steps)):
        result.witness, result.verdict = ex, ex.verdict


def _chooser(prefix: list[int], nodes: list[dict]):
    def choose(i, runnable, pending, size):
        if i < len(prefix):
            node = nodes[i]
            node["pending"] = pending
            return prefix[i]
        sleep = set()
        if i > 0:
            parent = nodes[i - 1]
            op = parent["pending"][parent["chosen"]]
            sleep = {q for q in parent["sleep"] | (parent["done"] - {parent["chosen"]})
                     if pending[q] is not None and not conflicts(pending[q], op, size)}
        candidates = [t for t in runnable if t not in sleep]
        nodes.append(dict(sleep=sleep, backtrack=set(), done=set(), runnable=runnable, pending=pending))
        if not candidates:
            return None
        last = nodes[i - 1]["chosen"] if i > 0 else None
        t = last if last in candidates else candidates[0]
        nodes[-1].update(chosen=t, backtrack={t}, done={t})
        return t
    return choose


def _add_backtracks(ex: Execution, states, nodes: list[dict]) -> None:
    """Flanagan-Godefroid: for each step, the last earlier conflicting step of another thread that does not
    happen before it gets a backtrack point for this thread (or for every runnable one). Vector clocks join
    the latest conflicting step of each thread (a thread's earlier steps happen before its later ones)."""
    size = ex.page_size
    n = len(ex.threads)
    clocks: list[list[int]] = []
    last_of_thread: dict[int, int] = {}
    reads: dict = {}            # object -> thread -> indices of its reads
    changes: dict = {}          # object -> thread -> indices of its writes, frees, lock and key operations
    for j, step in enumerate(ex.steps):
        p, op = step.thread, step.op
        clock = list(clocks[last_of_thread[p]]) if p in last_of_thread else [0] * n
        if op[0] != "start":
            obj = _object(op, size)
            lists = [changes.get(obj, {})] + ([reads.get(obj, {})] if op[0] not in ("read", "read_table") else [])
            racing = None
            for by_thread in lists:
                for q, indices in by_thread.items():
                    if q == p:
                        continue
                    i = next((i for i in reversed(indices) if conflicts(ex.steps[i].op, op, size)), None)
                    if i is None:
                        continue
                    if clocks[i][q] > clock[q] and (racing is None or i > racing):
                        racing = i
                    clock = [max(a, b) for a, b in zip(clock, clocks[i])]
            if racing is not None:
                runnable = states[racing][0]
                nodes[racing]["backtrack"] |= {p} if p in runnable else set(runnable)
            kind = reads if op[0] in ("read", "read_table") else changes
            kind.setdefault(obj, {}).setdefault(p, []).append(j)
        clock[p] += 1
        clocks.append(clock)
        last_of_thread[p] = j


def _next_branch(nodes: list[dict]) -> int | None:
    for depth in range(len(nodes) - 1, -1, -1):
        node = nodes[depth]
        if "chosen" in node and node["backtrack"] - node["done"] - node["sleep"]:
            return depth
    return None
