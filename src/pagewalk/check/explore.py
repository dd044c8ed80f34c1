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
"""

import random as random_module
import sys
import threading
from dataclasses import dataclass, field

from ..errors import ArgumentError, PoisonedPageError

__all__ = ["KernelThread", "Execution", "Exploration", "explore", "replay", "parse_schedule", "format_schedule",
           "VERDICTS", "SC_NOTE"]

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
        self.acquire = None
        self.done = False
        self.started = False
        self.error: BaseException | None = None
        self.os_thread: threading.Thread | None = None


def conflicts(a: tuple, b: tuple, page_size: int) -> bool:
    """Whether two accesses do not commute: the same page with a write, free or allocation (words for
    two single-word accesses), or the same lock or static key."""
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
        return a[1] == b[1]
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
        for steps in by_object.values():
            for i, a in enumerate(steps):
                for b in steps[i + 1:]:
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
    if kind == "wait":
        return f"sleeps on {op[1]}"
    return f"{kind} {op[1]}"


class _Run:
    """One execution under a chooser: `choose(step, runnable, threads) -> index`."""

    def __init__(self, setup, threads: list[KernelThread]):
        self.kernel = setup()
        self.specs = threads
        self.threads = [_ThreadState(i, t) for i, t in enumerate(threads)]
        self.cond = threading.Condition()
        self.turn: int | None = None              # index of the thread allowed to run, None: the scheduler
        self.running_irq: int | None = None
        self.abandon = False
        machine = self.kernel.machine
        self.page_size = machine.arch.page_size
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
        me.op, me.site = op, _site()
        self._yield(me)

    def wait(self, lock: str, what: str, ready, acquire) -> None:
        me = self._me()
        if me is None:
            raise AssertionError(f"the scheduler's own thread waits for {what}")
        me.op, me.site, me.ready, me.acquire = ("lock", lock, "wait"), f"sleeps on {what}", ready, acquire
        self._yield(me)
        me.ready = None
        acquire()

    def _flush_point(self, start: int, end: int, caller: str = "__change_memory_common") -> None:
        self.point(("flush", "tlb"))
        self._flush(start, end, caller)

    def _yield(self, me: _ThreadState) -> None:
        with self.cond:
            self.turn = None
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.turn == me.index or self.abandon)
            if self.abandon:
                raise _Stop()

    def _body(self, me: _ThreadState) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.turn == me.index or self.abandon)
        try:
            if self.abandon:
                return
            me.started = True
            if me.spec.irq:
                with self.kernel.machine.context.in_softirq():
                    me.spec.body(self.kernel)
            else:
                me.spec.body(self.kernel)
        except _Stop:
            pass
        except BaseException as e:          # noqa: BLE001 - reported as the run's verdict or re-raised
            me.error = e
        finally:
            me.done = True
            with self.cond:
                self.turn = None
                self.cond.notify_all()

    # -- the scheduler's side ---------------------------------------------------------------
    def runnable(self) -> list[int]:
        if self.running_irq is not None and not self.threads[self.running_irq].done:
            irq = self.threads[self.running_irq]
            return [irq.index] if irq.ready is None or irq.ready() else []
        return [t.index for t in self.threads if not t.done and (t.ready is None or t.ready())]

    def pending(self, index: int) -> tuple:
        t = self.threads[index]
        return t.op if t.started else ("start", t.spec.name)

    def advance(self, index: int) -> Step:
        """Let thread `index` do its pending access and run to its next one."""
        t = self.threads[index]
        step = Step(index, self.pending(index), t.site or f"{t.spec.name}()")
        if t.spec.irq:
            self.running_irq = index
        if t.os_thread is None:
            t.os_thread = threading.Thread(target=self._body, args=(t,), daemon=True)
            t.os_thread.start()
        with self.cond:
            self.turn = index
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.turn is None)
        return step

    def finish(self) -> None:
        with self.cond:
            self.abandon = True
            self.cond.notify_all()
        for t in self.threads:
            if t.os_thread is not None:
                t.os_thread.join(timeout=10)
        self.kernel.machine.memory = self._memory
        self.kernel.machine.context.scheduler = None
        self.kernel.flush_tlb_kernel_range = self._flush

    def verdict(self) -> tuple[str, str] | None:
        for t in self.threads:
            if isinstance(t.error, PoisonedPageError):
                return "use-after-free", f"{t.spec.name} read {t.error.pa:#x} in table page {t.error.page:#x}, " \
                                         "which another thread freed"
            if t.error is not None:
                raise t.error
        for v in self.kernel.violations:
            return _RULE_VERDICT.get(v.rule, v.rule), f"{v.site}: {v.message}"
        if all(t.done for t in self.threads):
            return "safe", ""
        if not self.runnable():
            blocked = ", ".join(f"{t.spec.name} ({t.site})" for t in self.threads if not t.done)
            return "deadlock", f"every live thread sleeps: {blocked}"
        return None


def _site() -> str:
    """`callee < caller` of the innermost kernel frames of the calling thread."""
    names, frame = [], sys._getframe(2)
    while frame is not None and len(names) < 2:
        if not frame.f_code.co_filename.endswith(_PLUMBING) and frame.f_code.co_name not in (
                "write_entry", "call", "wrapper", "__getattr__"):
            names.append(frame.f_code.co_name)
        frame = frame.f_back
    return " < ".join(names)


def _execute(setup, threads, choose, fallbacks=None) -> tuple[Execution, list]:
    """Run one execution; `choose(i, runnable, run)` picks the thread of step i (None: stop here).
    Returns the execution and, per step, (runnable, pending ops of every live thread)."""
    run = _Run(setup, threads)
    ex = Execution(threads=tuple(t.name for t in threads))
    states = []
    try:
        while True:
            found = run.verdict()
            if found is not None:
                ex.verdict, ex.detail = found
                break
            runnable = run.runnable()
            pending = {i: run.pending(i) for i in range(len(threads)) if not run.threads[i].done}
            choice = choose(len(ex.steps), runnable, pending, run.page_size)
            if choice is None:
                ex.blocked = True
                break
            states.append((runnable, pending))
            ex.steps.append(run.advance(choice))
        ex.fallbacks = fallbacks(run.kernel) if fallbacks else 0
    finally:
        run.finish()
    ex.page_size = run.page_size
    return ex, states


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
    return _execute(setup, threads, choose)[0]


def explore(setup, threads: list[KernelThread], *, bound: int = 100000, random: int = 0, seed: int = 0,
            fallbacks=None) -> Exploration:
    """Every execution up to partial-order equivalence (or `random` seeded random ones)."""
    result = Exploration()
    if random:
        rng = random_module.Random(seed)
        for _ in range(random):
            ex, _ = _execute(setup, threads, lambda i, runnable, pending, size: rng.choice(runnable) if runnable
                             else None, fallbacks)
            _record(result, ex)
        result.complete = False
        return result
    nodes: list[dict] = []          # per depth: sleep, backtrack, done (sets of thread indices)
    prefix: list[int] = []
    while True:
        ex, states = _execute(setup, threads, _chooser(prefix, nodes, threads), fallbacks)
        if ex.blocked:
            result.pruned += 1
        else:
            _record(result, ex)
        _add_backtracks(ex, states, nodes, threads)
        depth = _next_branch(nodes)
        if depth is None:
            return result
        if result.explored + result.pruned >= bound:
            result.complete = False
            return result
        t = min(nodes[depth]["backtrack"] - nodes[depth]["done"] - nodes[depth]["sleep"])
        nodes[depth]["done"].add(t)
        del nodes[depth + 1:]
        prefix = [n["chosen"] for n in nodes[:depth]] + [t]
        nodes[depth]["chosen"] = t


def _record(result: Exploration, ex: Execution) -> None:
    result.explored += 1
    result.verdicts[ex.verdict] = result.verdicts.get(ex.verdict, 0) + 1
    result.fallbacks += ex.fallbacks
    if ex.verdict == "safe":
        return
    best = result.witness
    if best is None or (ex.switches(), len(ex.steps)) < (best.switches(), len(best.steps)):
        result.witness, result.verdict = ex, ex.verdict


def _chooser(prefix: list[int], nodes: list[dict], threads):
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
                     if q in pending and not conflicts(pending[q], op, size)}
        candidates = [t for t in runnable if t not in sleep]
        nodes.append(dict(sleep=sleep, backtrack=set(), done=set(), runnable=runnable, pending=pending))
        if not candidates:
            return None
        last = nodes[i - 1]["chosen"] if i > 0 else None
        t = last if last in candidates else candidates[0]
        nodes[-1].update(chosen=t, backtrack={t}, done={t})
        return t
    return choose


def _add_backtracks(ex: Execution, states, nodes: list[dict], threads) -> None:
    """Flanagan-Godefroid: for each step, the last earlier conflicting step of another thread that does not
    happen before it gets a backtrack point for this thread (or for every runnable one)."""
    size = ex.page_size
    n = len(threads)
    clocks: list[list[int]] = []
    last_of_thread: dict[int, int] = {}
    by_object: dict = {}
    for j, step in enumerate(ex.steps):
        clock = list(clocks[last_of_thread[step.thread]]) if step.thread in last_of_thread else [0] * n
        earlier = by_object.get(_object(step.op, size), []) if step.op[0] != "start" else []
        racing = None
        for i in reversed(earlier):
            other = ex.steps[i]
            if other.thread == step.thread or not conflicts(other.op, step.op, size):
                continue
            if clocks[i][other.thread] > clock[other.thread] and racing is None:
                racing = i
            clock = [max(a, b) for a, b in zip(clock, clocks[i])]
        if racing is not None:
            node = nodes[racing]
            runnable = states[racing][0]
            node["backtrack"] |= {step.thread} if step.thread in runnable else set(runnable)
        clock[step.thread] += 1
        clocks.append(clock)
        last_of_thread[step.thread] = j
        by_object.setdefault(_object(step.op, size), []).append(j)


def _next_branch(nodes: list[dict]) -> int | None:
    for depth in range(len(nodes) - 1, -1, -1):
        node = nodes[depth]
        if "chosen" in node and node["backtrack"] - node["done"] - node["sleep"]:
            return depth
    return None
