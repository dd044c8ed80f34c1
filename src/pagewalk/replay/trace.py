"""Scripted walks in the kernel's own trace format (shared/kernel-traces/README.md).

A *scenario* names an entry point (`api=user|vma|page_vma|kernel|
kernel_lockless|debug`), the locks to take, a range, the callbacks to set
and *rules* (`rule=CB:SEL:EFFECT[,EFFECT]`) that make callbacks return values
or set `walk->action`. `traced_ops()` turns callbacks and rules into an
`mm_walk_ops` that records every call in the kernel module's line format;
`run_scenario()` runs one on a Machine (a dump's, or a simulated one).

>>> s = Scenario.parse_line("name=x api=kernel start=0xffff800080000000 end=0xffff800080200000 ops=pmd,pte")
>>> s.api, s.ops, hex(s.start)
('kernel', ('pmd', 'pte'), '0xffff800080000000')
"""

import re
from dataclasses import dataclass, field, replace
from errno import E2BIG

from ..arch.arm64.asm.pgtable import PMD, PUD
from ..arch.arm64.asm.pgtable_hwdef import PMD_TYPE_MASK, PMD_TYPE_SECT, PTE_CONT
from ..errors import PagewalkError
from ..mm.mm_types import VM_HUGETLB, vm_area_struct
from ..mm.pagewalk import (
    PGWALK_RDLOCK, PGWALK_VMA_RDLOCK_VERIFY, PGWALK_WRLOCK, PGWALK_WRLOCK_VERIFY, huge_pte_offset, mm_walk,
    ACTION_AGAIN, ACTION_CONTINUE, ACTION_SUBTREE, mm_walk_ops, walk_kernel_page_table_range,
    walk_kernel_page_table_range_lockless, walk_page_range, walk_page_range_debug, walk_page_range_vma, walk_page_vma,
)

__all__ = ["parse_number", "Scenario", "Rule", "TraceHeader", "TraceRecorder", "run_scenario", "replay", "parse_vma_line"]
#: Short callback names of the scenario grammar -> mm_walk_ops fields, in the summary's order.
CALLBACKS = {"pgd": "pgd_entry", "p4d": "p4d_entry", "pud": "pud_entry", "pmd": "pmd_entry", "pte": "pte_entry",
             "hole": "pte_hole", "hugetlb": "hugetlb_entry", "test": "test_walk", "pre": "pre_vma",
             "post": "post_vma", "install": "install_pte"}
ACTIONS = {"subtree": ACTION_SUBTREE, "continue": ACTION_CONTINUE, "again": ACTION_AGAIN}
ACTION_LETTER = {ACTION_SUBTREE: "S", ACTION_CONTINUE: "C", ACTION_AGAIN: "A"}
WALK_LOCKS = {"rd": PGWALK_RDLOCK, "wr": PGWALK_WRLOCK, "wrverify": PGWALK_WRLOCK_VERIFY,
              "vmardverify": PGWALK_VMA_RDLOCK_VERIFY}
APIS = ("user", "vma", "page_vma", "kernel", "kernel_lockless", "debug")


def parse_number(text: str, base: int = 0) -> int:
    """`text` as an integer (0x.. hex, else decimal, or the given base); PagewalkError names it otherwise."""
    try:
        return int(text, base)
    except (ValueError, TypeError):
        raise PagewalkError(f"{text!r} is not a number") from None


@dataclass(frozen=True)
class Rule:
    """`CB:SEL:EFFECTS`: when SEL matches a call of CB, set the action and/or the return value."""
    callback: str
    selector: str
    ret: int = 0
    action: int | None = None
    once: bool = False

    @classmethod
    def parse(cls, text: str) -> "Rule":
        parts = text.split(":")
        if len(parts) != 3 or parts[0] not in CALLBACKS:
            raise PagewalkError(f"rule {text!r}: expected CB:SEL:EFFECT with CB one of {', '.join(CALLBACKS)}")
        cb, sel, effects = parts
        ret, action, once = 0, None, False
        for effect in effects.split(","):
            key, _, value = effect.partition("=")
            if key == "ret":
                ret = parse_number(value)
            elif key == "act" and value in ACTIONS:
                action = ACTIONS[value]
            elif key == "once":
                once = True
            else:
                raise PagewalkError(f"rule {text!r}: unknown effect {effect!r} (ret=V, act=subtree|continue|again, once)")
        if not re.fullmatch(r"\*|\d+(-\d+)?|leaf|table|none|novma|d=-?\d+|(no)?flag=\w+", sel):
            raise PagewalkError(f"rule {text!r}: unknown selector {sel!r}")
        return cls(cb, sel, ret, action, once)

    def matches(self, n: int, kind: str | None, depth: int | None, vma) -> bool:
        sel = self.selector
        if sel == "*":
            return True
        if sel[0].isdigit():
            lo, _, hi = sel.partition("-")
            return int(lo) <= n <= int(hi or lo)
        if sel in ("leaf", "table", "none"):
            return kind == {"leaf": "L", "table": "T", "none": "N"}[sel]
        if sel == "novma":
            return vma is None
        if sel.startswith("d="):
            return depth == int(sel[2:])
        flag, _, mask = sel.partition("=")
        if vma is None:
            return False
        hit = bool(vma.vm_flags & parse_number(mask))
        return hit if flag == "flag" else not hit


@dataclass(frozen=True)
class Scenario:
    name: str
    api: str
    start: int
    end: int
    ops: tuple[str, ...]
    lock: str = "read"
    mm: str = "cur"
    pgd: str = "null"
    walk_lock: int = 0
    rules: tuple[Rule, ...] = ()
    cap: int = 200_000
    line: str = ""

    @classmethod
    def parse_line(cls, line: str, symbols: dict[str, int] | None = None) -> "Scenario":
        """A scenario line of the debugfs `ctl` grammar."""
        fields, rules = {}, []
        for token in line.split():
            key, sep, value = token.partition("=")
            if not sep:
                raise PagewalkError(f"scenario: {token!r} is not KEY=VALUE")
            if key == "rule":
                rules.append(Rule.parse(value))
            else:
                fields[key] = value
        for required in ("api", "start", "end", "ops"):
            if required not in fields:
                raise PagewalkError(f"scenario: {required}= is missing in {line!r}")
        if fields["api"] not in APIS:
            raise PagewalkError(f"scenario: api={fields['api']} is not one of {', '.join(APIS)}")
        ops = tuple(fields["ops"].split(","))
        for op in ops:
            if op not in CALLBACKS:
                raise PagewalkError(f"scenario: unknown callback {op!r} in ops=")
        walk_lock = fields.get("walk_lock", "rd")
        if walk_lock not in WALK_LOCKS and not walk_lock.isdigit():
            raise PagewalkError(f"scenario: walk_lock={walk_lock} is not one of {', '.join(WALK_LOCKS)}")
        return cls(fields.get("name", "scenario"), fields["api"], resolve(fields["start"], symbols),
                   resolve(fields["end"], symbols), ops, fields.get("lock", "read"), fields.get("mm", "cur"),
                   fields.get("pgd", "null"), WALK_LOCKS.get(walk_lock, None) if not walk_lock.isdigit()
                   else int(walk_lock), tuple(rules), parse_number(str(fields.get("cap", 200_000))), line)


def resolve(expr: str, symbols: dict[str, int] | None) -> int:
    """EXPR: a number, SYM, SYM+N, SYM-N (lm:PA needs a symbol table entry 'lm:')."""
    m = re.fullmatch(r"([A-Za-z_:][\w:]*?)([+-]\w+)?", expr)
    if not m or expr[0].isdigit():
        return parse_number(expr)
    symbols = {} if symbols is None else symbols
    if m[1] not in symbols:
        raise PagewalkError(f"scenario: symbol {m[1]!r} is not known here; give the address as a number")
    return symbols[m[1]] + (parse_number(m[2]) if m[2] else 0)


@dataclass
class TraceHeader:
    """What a trace file's `#` header says (results are never read)."""
    scenario: Scenario
    user_pgd: int | None = None
    kernel_pgd: int | None = None
    vmas: list[vm_area_struct] = field(default_factory=list)
    geometry: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "TraceHeader":
        line, api, rng, user_pgd, kernel_pgd, geometry, vmas = None, {}, None, None, None, {}, []
        for raw in text.splitlines():
            if raw.startswith("# ---- trace ----"):
                break
            if not raw.startswith("# "):
                continue
            body = raw[2:]
            if body.startswith("line: "):
                line = body[6:]
            elif body.startswith("api="):
                api = dict(tok.split("=", 1) for tok in body.split() if "=" in tok)
            elif body.startswith("range "):
                m = re.search(r"start=\S+ \((0x[0-9a-f]+)\) end=\S+ \((0x[0-9a-f]+)\)", body)
                rng = (parse_number(m[1], 16), parse_number(m[2], 16)) if m else None
            elif body.startswith(("mm.pgd ", "init_mm.pgd ")):
                m = re.search(r"pa=(0x[0-9a-f]+)", body)
                if m is None:
                    raise PagewalkError(f"trace header line {raw!r}: no pa=0x... value")
                if body.startswith("mm.pgd "):
                    user_pgd = parse_number(m[1])
                else:
                    kernel_pgd = parse_number(m[1])
            elif body.startswith("vabits_actual="):
                pairs = [t.split("=", 1) for t in body.split()]
                if any(len(p) != 2 for p in pairs):
                    raise PagewalkError(f"trace header line {raw!r}: expected KEY=VALUE pairs")
                geometry = {k: parse_number(v) for k, v in pairs}
            elif body.startswith("vma ") and "flags=" in body:
                vmas.append(parse_vma_line(body[4:]))
        if line is None:
            raise PagewalkError("trace header has no '# line:' scenario line")
        scenario = Scenario.parse_line(line, symbols=_AnySymbol())
        if rng:
            scenario = replace(scenario, start=rng[0], end=rng[1])
        if api:
            scenario = replace(scenario, lock=api.get("lock", scenario.lock), mm=api.get("mm", scenario.mm),
                               pgd=api.get("pgd", scenario.pgd),
                               walk_lock=parse_number(str(api.get("walk_lock", scenario.walk_lock))),
                               cap=parse_number(str(api.get("cap", scenario.cap))))
        return cls(scenario, user_pgd, kernel_pgd, vmas, geometry)


class _AnySymbol(dict):
    """Symbols in a trace's `# line:` are resolved by its `# range` line instead."""

    def __contains__(self, key) -> bool:
        return True

    def __getitem__(self, key) -> int:
        return 0


def parse_vma_line(text: str) -> vm_area_struct:
    """`START-END flags=F pgoff=P anon|file:NAME|special:NAME [hugetlb]` (also accepts maps-style hugetlb=SIZE)."""
    m = re.match(r"(?:0x)?([0-9a-f]+)-(?:0x)?([0-9a-f]+)\s+flags=(\w+)\s+pgoff=(\w+)\s+(\S+)(.*)$", text.strip())
    if not m:
        raise PagewalkError(f"cannot read a VMA from {text!r}")
    flags = parse_number(m[3])
    extra = m[6].split()
    size = next((parse_number(e.split("=")[1]) for e in extra if e.startswith("hugetlb=")), 0)
    if "hugetlb" in extra:
        flags |= VM_HUGETLB
    start, end = parse_number(m[1], 16), parse_number(m[2], 16)
    if start >= end:
        raise PagewalkError(f"VMA {text.strip()!r} is empty or reversed")
    vma = vm_area_struct(start, end, flags, parse_number(m[4]), m[5], huge_page_size=size)
    if size:
        vma.vm_flags |= VM_HUGETLB
    return vma


# -- tracing ops ------------------------------------------------------------------

def _vma_text(vma) -> str:
    return "-" if vma is None else f"{vma.vm_start:#x}-{vma.vm_end:#x}"


def entry_kind(arch, depth: int, val: int) -> str:
    """N none, X non-present non-none, L leaf, T table (the trace module's `kind`)."""
    if arch.none(depth, val) or (depth == 4 and val == 0):
        return "N"
    if not arch.present(depth, val):
        return "X"
    return "L" if depth == 4 or arch.leaf(depth, val) else "T"


class TraceRecorder:
    """Builds an `mm_walk_ops` whose callbacks apply rules and record trace lines."""

    def __init__(self, ops: tuple[str, ...], rules: tuple[Rule, ...] = (), cap: int = 200_000, walk_lock: int = 0):
        self.rules, self.cap = list(rules), cap
        self.lines: list[str] = []
        self.counts = {short: 0 for short in CALLBACKS}
        self.calls = self.capped = 0
        self._used_once: set[int] = set()
        fields = {CALLBACKS[short]: self._callback(short) for short in ops}
        self.ops = mm_walk_ops(walk_lock=walk_lock, **fields)

    def _decide(self, short: str, n: int, walk, kind=None, depth=None) -> tuple[int, bool]:
        self.calls += 1
        if self.calls > self.cap:
            self.capped += 1
            return -E2BIG, False
        for i, rule in enumerate(self.rules):
            if rule.callback != short or (rule.once and i in self._used_once):
                continue
            if rule.matches(n, kind, depth, walk.vma):
                if rule.once:
                    self._used_once.add(i)
                if rule.action is not None:
                    walk.action = rule.action
                return rule.ret, True
        return 0, False

    def _callback(self, short: str):
        depth_of = {"pgd": 0, "p4d": 1, "pud": 2, "pmd": 3, "pte": 4}
        name = CALLBACKS[short]

        def record(n, walk, fields, kind=None, depth=None, void=False):
            before = walk.action
            ret, matched = self._decide(short, n, walk, kind, depth)
            line = f"{name} #{n} {fields} act={ACTION_LETTER.get(before, before)}>" \
                   f"{ACTION_LETTER.get(walk.action, walk.action)} ret={'void' if void else ret}"
            self.lines.append(line + (" rule=1" if matched else ""))
            return ret

        def count() -> int:
            self.counts[short] += 1
            return self.counts[short]

        if short in depth_of:
            depth = depth_of[short]

            def entry(ptr, addr, nxt, walk):
                n = count()
                val = walk.read(ptr)
                kind = entry_kind(walk.arch, depth, val)
                kind_text = f" kind={kind}" if depth in (PUD, PMD) else ""
                return record(n, walk, f"addr={addr:#x} next={nxt:#x} ent={ptr:#x} val={val:#018x} "
                                       f"vma={_vma_text(walk.vma)}{kind_text}", kind=kind)
            return entry
        if short == "hole":
            return lambda addr, nxt, depth, walk: record(
                count(), walk, f"addr={addr:#x} next={nxt:#x} depth={depth} vma={_vma_text(walk.vma)}", depth=depth)
        if short == "hugetlb":
            def hugetlb(ptr, hmask, addr, nxt, walk):
                n = count()
                return record(n, walk, f"addr={addr:#x} next={nxt:#x} hmask={hmask:#x} ent={ptr:#x} "
                                       f"val={walk.read(ptr):#018x} vma={_vma_text(walk.vma)}")
            return hugetlb
        if short == "test":
            return lambda start, end, walk: record(
                count(), walk, f"addr={start:#x} next={end:#x} vma={_vma_text(walk.vma)} vm_flags={walk.vma.vm_flags:#x}")
        if short == "pre":
            return lambda start, end, walk: record(
                count(), walk, f"addr={start:#x} next={end:#x} vma={_vma_text(walk.vma)}")
        if short == "post":
            def post(walk):
                record(count(), walk, f"vma={_vma_text(walk.vma)}", void=True)
            return post

        def install(addr, nxt, out, walk):
            n = count()
            out[0] = 0
            return record(n, walk, f"addr={addr:#x} next={nxt:#x} vma={_vma_text(walk.vma)}")
        return install

    def summary(self) -> str:
        counts = " ".join(f"{k}={v}" for k, v in self.counts.items() if v)
        return f"# calls={self.calls} capped={self.capped}" + (f" {counts}" if counts else "")


# -- running a scenario ---------------------------------------------------------------

def run_scenario(machine, scenario: Scenario, user_mm=None) -> tuple[list[str], int]:
    """Run a scenario like the kernel module does; returns (trace lines, the walk's return value)."""
    s = scenario
    rec = TraceRecorder(s.ops, s.rules, s.cap, s.walk_lock)
    init_mm = machine.init_mm
    mm = init_mm if s.mm == "init" or user_mm is None else user_mm
    pgd = {"null": None, "swapper": machine.swapper_pg_dir, "user": user_mm.pgd if user_mm else None}.get(s.pgd)
    taken = []

    def lock(target, mode):
        if mode == "none":
            return
        (target.mmap_lock.down_write if mode == "write" else target.mmap_lock.down_read)()
        taken.append((target, mode))
    header = []
    if s.api in ("user", "vma", "page_vma"):
        if user_mm is None:
            raise PagewalkError(f"scenario {s.name}: api={s.api} needs a user mm (its root and VMAs)")
        lock(user_mm, s.lock)
    elif s.api == "kernel":
        lock(init_mm, s.lock)
    elif s.api == "debug":
        if mm is not init_mm:
            lock(mm, "write")
        lock(init_mm, "write")
    try:
        if s.api == "user":
            ret = walk_page_range(user_mm, s.start, s.end, rec.ops)
        elif s.api in ("vma", "page_vma"):
            vma = user_mm.vma_lookup(s.start)
            if vma is not None:
                fn = "walk_page_range_vma" if s.api == "vma" else "walk_page_vma"
                header.append(f"# vma {vma.vm_start:#x}-{vma.vm_end:#x} passed to {fn}")
            ret = walk_page_range_vma(vma, s.start, s.end, rec.ops) if s.api == "vma" else walk_page_vma(vma, rec.ops)
        elif s.api == "kernel":
            ret = walk_kernel_page_table_range(s.start, s.end, rec.ops, pgd, init_mm=init_mm)
        elif s.api == "kernel_lockless":
            ret = walk_kernel_page_table_range_lockless(s.start, s.end, rec.ops, pgd, init_mm=init_mm)
        else:
            ret = walk_page_range_debug(mm, s.start, s.end, rec.ops, pgd)
    finally:
        for target, mode in reversed(taken):
            (target.mmap_lock.up_write if mode == "write" else target.mmap_lock.up_read)()
    return header + rec.lines + [f"RET {ret}", rec.summary()], ret


def replay(machine, header: TraceHeader) -> tuple[list[str], int]:
    """Run a trace header's scenario on `machine`: its user mm (root, VMAs) when it has one."""
    user_mm = None
    if header.user_pgd is not None:
        user_mm = machine.new_mm(header.user_pgd, header.vmas, name="mm")
        infer_hugetlb_sizes(machine, user_mm)
    return run_scenario(machine, header.scenario, user_mm)


def infer_hugetlb_sizes(machine, mm) -> None:
    """Give each hugetlb VMA without a size the huge page size its tables (or its alignment) show."""
    arch = machine.arch
    pmd, pud = 1 << arch.shift[PMD], 1 << arch.shift[PUD]
    cont_pte = arch.page_size * arch.hw.contiguous_entries(3)
    cont_pmd = pmd * arch.hw.contiguous_entries(2)
    candidates = [s for s in (pud, cont_pmd, pmd, cont_pte) if s > arch.page_size]
    for vma in mm.vmas:
        if not vma.vm_flags & VM_HUGETLB or vma.huge_page_size:
            continue
        walk = mm_walk(mm_walk_ops(), mm, vma=vma)
        aligned = [s for s in candidates if vma.vm_start % s == 0 and vma.vm_end % s == 0]
        for size in aligned:
            ptr = None
            try:
                ptr = huge_pte_offset(walk, vma.vm_start, size)
            except PagewalkError:
                pass
            level_ok = size in (cont_pte,) and ptr is not None and walk.read(ptr) & PTE_CONT
            block_ok = size in (pmd, cont_pmd, pud) and ptr is not None and walk.read(ptr) & PMD_TYPE_MASK == PMD_TYPE_SECT
            if level_ok or block_ok:
                vma.huge_page_size = size
                break
        else:
            vma.huge_page_size = aligned[0] if aligned else arch.page_size
