"""Replay real-kernel pageattr traces (shared/kernel-pageattr/README.md) on a simulated kernel.

The kernel is started from the capture's dump and configured from the
trace's `# state`, `# masks` and `# geometry` lines and its `# area`
records. For each `CALL` line the listed entries get their BEFORE values,
the call runs, and the line comes back with `ret`, `warn`, every AFTER value
and `nchg` filled in from the model (results in the input are never read).
"""

import re
from dataclasses import dataclass

from ..arch.arm64.asm.pgtable import LEVEL_NAMES
from ..arch.arm64.asm.pgtable_hwdef import PTE_PRESENT_INVALID
from ..arch.arm64.mm import pageattr
from ..arch.arm64.mm.pageattr import Unsupported
from ..dump.kernel_dump import KernelDump
from ..errors import PagewalkError
from ..kernel.config import RODATA_FULL_DEFAULT_SINCE
from ..kernel.from_dump import start_from_dump
from ..kernel.kernel import Kernel

__all__ = ["replay_trace", "replay_line", "configure"]

LEVELS = {name: depth for depth, name in enumerate(LEVEL_NAMES)}
CALL_FIELDS = re.compile(r"(\w+)=(\S*)")


def _fields(text: str) -> dict[str, str]:
    return dict(CALL_FIELDS.findall(text))


def _num(value: str) -> int:
    return int(value, 0)


@dataclass
class Entry:
    level: str
    va: int
    pa: int
    before: int | None      # None: the entry did not exist before the call ('-')
    text_pa: str

    @classmethod
    def parse(cls, token: str) -> "Entry":
        level, va, pa, before, _after = token.split(":")
        if level not in LEVELS:
            raise PagewalkError(f"entry {token!r}: unknown level {level!r}")
        return cls(level, int(va, 16), int(pa, 16), None if before == "-" else int(before, 16), pa)


def configure(path, header: str) -> Kernel:
    """A simulated kernel from the dump, set up as the trace header says."""
    state = _fields(next((line for line in header.splitlines() if line.startswith("# state ")), ""))
    if not state:
        raise PagewalkError("trace has no '# state' line")
    flag = lambda key: state.get(key, "0") == "1"  # noqa: E731
    dump = KernelDump.open(path, search_config=False)
    rodata = "full" if flag("rodata_full") else ("noalias" if dump.version >= RODATA_FULL_DEFAULT_SINCE else "on")
    pool = _num(state.get("kfence_pool", "0"))
    k = start_from_dump(dump, rodata=rodata, kfence=pool != 0, kfence_early_init=flag("kfence_early_init"),
                        kpti=flag("arm64_use_ng_mappings"), bbml2=flag("bbml2_system"),
                        debug_pagealloc=flag("debug_pagealloc"), realm=flag("is_realm_world"),
                        caps_finalized=state.get("caps_finalized", "1") != "0",
                        online_cpus=int(state.get("num_online_cpus", "1")),
                        kfence_pool=(pool, pool + _num(state.get("kfence_pool_size", "0"))) if pool else None,
                        linear_map_requires_bbml2=flag("linear_map_requires_bbml2"))
    if "can_set_direct_map" in state and int(state["can_set_direct_map"]) != int(k.config.can_set_direct_map()):
        raise PagewalkError(f"trace state can_set_direct_map={state['can_set_direct_map']} but the configuration "
                            f"gives {int(k.config.can_set_direct_map())}")
    geometry = _fields(next((line for line in header.splitlines() if line.startswith("# geometry ")), ""))
    if "swapper_pg_dir_pa" in geometry and _num(geometry["swapper_pg_dir_pa"]) != k.machine.swapper_pg_dir:
        raise PagewalkError(f"trace was recorded on a kernel with swapper_pg_dir at {geometry['swapper_pg_dir_pa']}, "
                            f"this dump has {k.machine.swapper_pg_dir:#x}: pair a trace with its own dump")
    _check_masks(k, _fields(next((line for line in header.splitlines() if line.startswith("# masks ")), "")))
    for line in header.splitlines():
        if line.startswith("# area ") and "vm=" in line:
            _register(k, line)
    return k


def _check_masks(k: Kernel, masks: dict[str, str]) -> None:
    ours = {"PTE_MAYBE_GP": pageattr.PTE_MAYBE_GP(k), "PTE_MAYBE_NG": pageattr.PTE_MAYBE_NG(k),
            "PTE_PRESENT_INVALID": PTE_PRESENT_INVALID}
    if k.machine.era.present_invalid_blocks:
        ours["PTE_PRESENT_VALID_KERNEL"] = pageattr.PTE_PRESENT_VALID_KERNEL(k)
    for name, value in ours.items():
        if name in masks and masks[name] != "undefined" and _num(masks[name]) != value:
            raise PagewalkError(f"trace masks {name}={masks[name]} but the model has {value:#x}")


def _register(k: Kernel, line: str) -> None:
    f = _fields(line)
    start, end = (int(x, 16) for x in f["vm"].split("-"))
    pages = []
    for run in filter(None, f.get("pfns", "").split(",")):
        first, count = run.split("+")
        pages += range(int(first, 16), int(first, 16) + int(count))
    nr_pages = int(f.get("nr_pages", len(pages)))
    k.register_area(start, end - start, _num(f["vm_flags"]), pages[:nr_pages] if nr_pages else [],
                    int(f.get("page_order", "0")), caller=line.split()[2])


def _find_entry(k: Kernel, level: str, va: int) -> int | None:
    """The PA of the model's entry at `level` for `va`, or None when no table leads there."""
    arch = k.machine.arch
    return arch.entry_for(k.machine.memory.read_u64, k.machine.swapper_pg_dir, va, LEVELS[level])


def run_call(k: Kernel, fields: dict[str, str]) -> str:
    """Run one CALL; returns the kernel's return value as the trace prints it."""
    fn = fields["fn"]
    addr = _num(fields.get("addr", "0"))
    n = int(fields.get("numpages", "0"), 0)
    enable = int(fields.get("enable", "0"), 0)
    page = k.page_address(_num(fields["page_pfn"])) if "page_pfn" in fields else addr
    calls = {
        "set_memory_ro": lambda: k.set_memory_ro(addr, n), "set_memory_rw": lambda: k.set_memory_rw(addr, n),
        "set_memory_x": lambda: k.set_memory_x(addr, n), "set_memory_nx": lambda: k.set_memory_nx(addr, n),
        "set_memory_valid": lambda: k.set_memory_valid(addr, n, enable),
        "set_direct_map_invalid_noflush": lambda: k.set_direct_map_invalid_noflush(page),
        "set_direct_map_default_noflush": lambda: k.set_direct_map_default_noflush(page),
        "set_direct_map_valid_noflush": lambda: k.set_direct_map_valid_noflush(page, n, bool(enable)),
        "kernel_page_present": lambda: int(k.kernel_page_present(page)),
        "split_kernel_leaf_mapping": lambda: k.split_kernel_leaf_mapping(addr, addr + n * k.machine.arch.page_size),
    }
    if fn not in calls:
        raise PagewalkError(f"CALL fn={fn}: not a pageattr function this replay knows")
    try:
        return str(calls[fn]())
    except Unsupported:
        return "unsupported"


def replay_line(k: Kernel, line: str) -> str:
    """One CALL line with ret, warn, AFTER values and nchg from the model."""
    head, sep, rest = line.partition(" ents= ")
    if not sep:
        raise PagewalkError(f"CALL line without 'ents=': {line[:80]!r}")
    tokens = rest.split()
    entries = [Entry.parse(t) for t in tokens if t.count(":") == 4]
    memory = k.machine.memory
    for e in entries:
        if e.before is not None:
            memory.write_u64(e.pa, e.before)
    page = k.machine.arch.page_size
    memory.place_next_allocations(list(dict.fromkeys(e.pa - e.pa % page for e in entries if e.before is None)))
    log = k.machine.log
    log.clear_warn_once()
    before = len(log.of_kind("warning"))
    ret = run_call(k, _fields(head))
    warned = len(log.of_kind("warning")) - before
    out, changed = [], 0
    for e in entries:
        ptr = _find_entry(k, e.level, e.va)          # the after-walk: top-down through table descriptors
        if e.before is not None:
            after = memory.read_u64(e.pa)
            reached = ptr == e.pa
            text = "-" if not reached else "=" if after == e.before else f"{after:016x}"
            before_text = f"{e.before:016x}"
        else:
            text = "-" if ptr is None else f"{memory.read_u64(ptr):016x}"
            before_text = "-"
        changed += text != "="
        out.append(f"{e.level}:{e.va:x}:{e.text_pa}:{before_text}:{text}")
    reached_before = sum(e.before is not None for e in entries)
    reached_after = sum(not entry.endswith(":-") for entry in out)
    head = re.sub(r"\bnent=\S*", f"nent={reached_before}/{reached_after}", head)
    head = re.sub(r"\bret=\S*", f"ret={ret}", head)
    head = re.sub(r"\bwarn=\S*", f"warn={warned}", head)
    return f"{head} ents= {' '.join(out)} nchg={changed}"


def replay_trace(dump_path, text: str) -> list[str]:
    """Every CALL line of a trace, replayed."""
    header = text.split("# ---- calls ----")[0]
    k = configure(dump_path, header)
    return [replay_line(k, line) for line in text.splitlines() if line.startswith("CALL ")]
