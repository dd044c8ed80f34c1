"""The `pagewalk` command.

    pagewalk info [DUMP]              what kernel, geometry and layout a dump has
    pagewalk vtop [--dump DUMP] VA..  translate kernel addresses, with the walk
    pagewalk ptdump [DUMP]            /sys/kernel/debug/kernel_page_tables, from the dump
    pagewalk check-wx [DUMP]          the kernel's W^X check
    pagewalk sim [--like DIR] ptdump  what a kernel's tables will be after boot, from its own files
    pagewalk extract DUMP OUT         keep only what the tools need

Without DUMP the bundled default (an extract of a real 4K/48-bit 6.12 kernel)
is used. Errors are one line on stderr and a non-zero exit status.
"""

import argparse
import json
import os
import signal
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from .dump.kernel_dump import KernelDump, warn
from .errors import PagewalkError
from .progress import progress
from .phys.memory import MASK64

__all__ = ["main", "build_parser"]

EXIT_ERROR = 2
#: The dump's page tables are corrupt: the output holds what could be walked.
EXIT_CORRUPT = 3


def _open(args) -> KernelDump:
    with progress("opening the dump", not args.quiet) as update:
        dump = KernelDump.open(getattr(args, "dump", None), config=getattr(args, "config", None),
                               nr_cpus=getattr(args, "nr_cpus", None),
                               search_config=not getattr(args, "no_config", False),
                               force=getattr(args, "force", False), progress=update)
    args.opened.append(dump)
    if getattr(args, "dump", None) is None:
        warn(f"no dump given: using the bundled default ({dump.release})")
    return dump


def _parse_va(text: str, dump: KernelDump) -> int:
    """A hex address, or a VMCOREINFO symbol, optionally `+N`/`-N`."""
    base, sign, off = text, 1, "0"
    for op in ("+", "-"):
        if op in text[1:]:
            base, off = text.rsplit(op, 1)
            sign = 1 if op == "+" else -1
    key = f"SYMBOL({base})"
    try:
        value = dump.vmcoreinfo.symbol(base) if dump.vmcoreinfo.has(key) else int(base, 16)
        value += sign * int(off, 0)
    except ValueError:
        raise PagewalkError(f"{text!r} is not a hex address or a VMCOREINFO symbol") from None
    if not 0 <= value < 1 << 64:
        raise PagewalkError(f"{text!r} is outside the 64-bit address space")
    return value


# -- info -----------------------------------------------------------------------

def cmd_info(args) -> int:
    d = _open(args)
    g, info = d.geometry, d.vmcoreinfo
    layout = d.layout
    facts = {
        "dump": d.name,
        **d.memory.describe(),
        "kernel": d.release,
        "version": ".".join(map(str, d.version)),
        "walker era": d.machine().era.value,
        "granule": f"{d.page_size // 1024}K",
        "VA bits": g.va_bits,
        "VA_BITS (build)": d.va_bits,
        "CONFIG_PGTABLE_LEVELS": d.arch.pgtable_levels,
        "levels": g.levels,
        "start level": g.start_level,
        "top-table entries": g.top_entries,
        "output addresses": "LPA2 (TCR.DS=1)" if g.ds else "52-bit (64K, OA[51:48] in [15:12])" if g.pa52_64k else "48-bit",
        "swapper_pg_dir": f"{d.swapper_pg_dir:#x} (VA {info.swapper_pg_dir:#x})",
        "TTBR1 base": f"{d.ttbr1:#x}",
        "PAGE_OFFSET": f"{layout.page_offset:#x}",
        "PHYS_OFFSET": f"{info.phys_offset:#x}",
        "kimage_voffset": f"{info.kimage_voffset:#x}",
        "KERNELOFFSET": f"{info.kernel_offset:#x}",
        "RAM ranges": [f"{a:#x}-{b:#x}" for a, b in d.memory.ranges()],
        "regions": [{"name": n, "start": f"{a:#x}", "end": f"{b:#x}"} for n, a, b in layout.regions()],
    }
    warn(d.options_source.note)
    if args.json:
        print(json.dumps(facts, indent=2))
        return 0
    for key, value in facts.items():
        if key == "regions":
            print("regions:")
            for r in value:
                print(f"  {r['name']:<16} {r['start']}-{r['end']}")
        elif key == "RAM ranges":
            print(f"{key + ':':<24}{len(value)} range(s)")
            for r in value[:16]:
                print(f"  {r}")
            if len(value) > 16:
                print(f"  ... {len(value) - 16} more")
        else:
            print(f"{key + ':':<24}{value}")
    return 0


# -- vtop -----------------------------------------------------------------------

LEVEL_TAG = {-1: "L-1", 0: " L0", 1: " L1", 2: " L2", 3: " L3"}


def _size_text(size: int) -> str:
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift}{unit}"
    return str(size)


def _translation_json(t) -> dict:
    return {
        "va": f"{t.va:#018x}", "pa": None if t.pa is None else f"{t.pa:#x}", "level": t.level,
        "size": t.size, "writable": t.writable if t.mapped else None,
        "executable": t.executable if t.mapped else None,
        "user_readable": t.user_readable if t.mapped else None,
        "user_executable": t.user_executable if t.mapped else None,
        "attr": t.attr, "memory_type": t.memory_type,
        "descriptor": None if t.descriptor is None else f"{t.descriptor:#018x}",
        "fault": t.fault, "fault_kind": t.fault_kind, "fault_level": t.fault_level,
        "steps": [{"level": s.level, "table": f"{s.table_pa:#x}", "index": s.index, "entry": f"{s.entry_pa:#x}",
                   "value": f"{s.value:#018x}", "meaning": s.descriptor.describe()} for s in t.steps],
    }


def _print_translation(d: KernelDump, t) -> None:
    print(f"{'VIRTUAL':<18}  PHYSICAL")
    print(f"{t.va:016x}  {'(not mapped)' if t.pa is None else f'{t.pa:x}'}")
    print()
    print(f"PAGE DIRECTORY: {d.ttbr1:x}  [{d.geometry}]")
    for s in t.steps:
        print(f"  {LEVEL_TAG[s.level]}: {s.entry_pa:x} => {s.value:016x}  [{s.index}] {s.descriptor.describe()}")
    if t.mapped:
        perms = ("RW" if t.writable else "ro") + (" x" if t.executable else " NX")
        if t.user_readable:
            perms += " USR"
        print(f"  PAGE: {t.pa - t.pa % t.size:x}  ({_size_text(t.size)})  {perms}  {t.attr or 'AttrIndx ' + str(t.attrindx)}"
              f" ({t.memory_type})  region: {d.layout.region_of(t.va) or '-'}")
    else:
        print(f"  FAULT: {t.fault}")


def cmd_vtop(args) -> int:
    d = _open(args)
    status = 0
    for i, text in enumerate(args.va):
        try:
            t = d.translate(_parse_va(text, d))
        except PagewalkError as e:
            print(f"pagewalk: error: {e}", file=sys.stderr)
            status = EXIT_ERROR
            continue
        if t.corrupt:
            print(f"pagewalk: error: {t.va:#018x}: {t.fault}", file=sys.stderr)
            status = EXIT_CORRUPT
        if args.json:
            print(json.dumps(_translation_json(t)))
        else:
            if i:
                print()
            _print_translation(d, t)
    return status


# -- ptdump / check-wx ------------------------------------------------------------

def cmd_ptdump(args) -> int:
    d = _open(args)
    warn(d.options_source.note)
    out = sys.stdout
    if args.json:
        for kind, row in d.ptdump_rows():
            if kind == "range":
                out.write(json.dumps({
                    "start": f"{row.start:#018x}", "end": f"{row.end:#018x}", "size": (row.end - row.start) & MASK64,
                    "level": row.level_name, "prot": f"{row.prot:#x}",
                    "attributes": row.attributes.split(), "marker": row.marker}) + "\n")
        return 0
    d.ptdump(out=out)
    return 0


def cmd_check_wx(args) -> int:
    d = _open(args)
    state = d.check_wx()
    for w in dict.fromkeys(state.wx_warnings):
        print(w)
    print(state.wx_summary())
    return 1 if state.wx_pages or state.uxn_pages else 0


def cmd_sim(args) -> int:
    from .kernel.boot import start_kernel
    from .kernel.files import BootFiles, boot_config
    given = dict(config=args.config, iomem=args.iomem, symbols=args.symbols, vmcoreinfo=args.vmcoreinfo,
                 cpuinfo=args.cpuinfo)
    files = BootFiles.from_dir(args.like, **given) if args.like else BootFiles.from_paths(**given)
    if args.cmdline is not None:
        files = replace(files, cmdline=args.cmdline)
    cfg, defaulted = boot_config(files, era=args.era, cpu=args.cpu)
    for line in defaulted:
        warn(f"defaulted: {line}")
    k = start_kernel(cfg)
    if args.what == "ptdump":
        sys.stdout.write(k.ptdump())
        return 0
    if args.what == "check-wx":
        state = k.check_wx()
        for w in dict.fromkeys(state.wx_warnings):
            print(w)
        print(state.wx_summary())
        return 1 if state.wx_pages or state.uxn_pages else 0
    img, lay = k.image, k.layout
    pool = "none" if k.kfence_pool is None else f"{k.kfence_pool[0]:#x}-{k.kfence_pool[1]:#x}"
    rows = [("kernel", ".".join(map(str, cfg.version)) + f" (era {cfg.era.value})"),
            ("granule", f"{cfg.page_size // 1024}K, VA_BITS {cfg.va_bits}, {k.machine.arch.vabits_actual} at run time"),
            ("RAM", ", ".join(f"{a:#x}-{b:#x}" for a, b in cfg.ram_banks)),
            ("PHYS_OFFSET", f"{k.phys_offset:#x}"), ("kimage_voffset", f"{img.kimage_voffset:#x}"),
            ("_text", f"{img.text:#x} (pa {img.pa(img.text):#x}, KASLR offset {lay.kernel_offset:#x})"),
            ("rodata", f"{cfg.rodata} (rodata_full {'on' if cfg.rodata_full else 'off'})"),
            ("linear map", "page-granular" if cfg.linear_map_page_granular() else "blocks and contiguous ranges"),
            ("KFENCE", ("early pool " + pool) if k.kfence_pool else "late or off" if cfg.kfence else "not built"),
            ("KPTI", "on (nG)" if cfg.kpti else "off"), ("BBML2", "yes" if cfg.bbml2 else "no")]
    for key, value in rows:
        print(f"{key + ':':16}{value}")
    return 0


def _dump_symbols(d: KernelDump) -> dict[str, int]:
    """The scenario-grammar symbols a dump determines by itself."""
    lay, ram = d.layout, d.memory.ranges()
    return {"ttbr1_start": lay.page_offset_actual, "page_offset": lay.page_offset,
            "lm_ram": d.phys_to_virt(ram[0][0]), "lm_ram_end": d.phys_to_virt(ram[-1][1]),
            "modules_vaddr": lay.modules_vaddr, "modules_end": lay.modules_end, "kimg": lay.kimage_vaddr,
            "vmalloc_start": lay.vmalloc_start, "vmalloc_end": lay.vmalloc_end,
            "vmemmap_start": lay.vmemmap_start_actual, "vmemmap_end": lay.vmemmap_end,
            "pci_io_start": lay.vmemmap_end + (8 << 20), "pci_io_end": lay.vmemmap_end + (24 << 20),
            "fixaddr_tot_start": lay.fixmap_start, "fixaddr_top": lay.fixaddr_top,
            "swapper_pg_dir": d.vmcoreinfo.swapper_pg_dir}


def cmd_trace(args) -> int:
    from .replay.trace import Scenario, TraceHeader, parse_number, parse_vma_line, replay
    d = KernelDump.open(args.dump, search_config=False)
    source = Path(args.scenario)
    user_root, vmas = None, []
    if "=" not in args.scenario and not source.is_file():
        raise PagewalkError(f"{args.scenario}: no such trace file, and not a scenario line (KEY=VALUE ...)")
    if source.is_file():
        try:
            header = TraceHeader.parse(source.read_text(errors="replace"))
        except PagewalkError as e:
            raise PagewalkError(f"{source}: {e}") from None
        if header.kernel_pgd is not None and header.kernel_pgd != d.swapper_pg_dir:
            raise PagewalkError(f"{source}: recorded with init_mm.pgd at {header.kernel_pgd:#x}, but this dump's "
                                f"swapper_pg_dir is at {d.swapper_pg_dir:#x}: pair a trace with its own dump")
        if header.geometry and header.geometry.get("vabits_actual") != d.vabits_actual:
            raise PagewalkError(f"{source}: recorded with vabits_actual={header.geometry.get('vabits_actual')}, "
                                f"this dump runs {d.vabits_actual}")
        scenario, user_root, vmas = header.scenario, header.user_pgd, header.vmas
    else:
        symbols = _dump_symbols(d)
        for token in args.scenario.split():
            for value in token.split("=", 1)[1:]:
                if value.startswith("lm:"):
                    symbols[value.split("+")[0].split("-")[0]] = d.phys_to_virt(parse_number(value[3:].split("+")[0]))
        scenario = Scenario.parse_line(args.scenario, symbols)
    if args.root is not None:
        user_root = parse_number(args.root)
    if args.vmas:
        try:
            text = Path(args.vmas).read_text(errors="replace")
        except OSError as e:
            raise PagewalkError(f"{args.vmas}: cannot read: {e.strerror}") from None
        vmas = [parse_vma_line(line[6:] if line.startswith("# vma ") else line)
                for line in text.splitlines()
                if line.strip() and not line.startswith("#") or line.startswith("# vma 0x") and "flags=" in line]
    if user_root is not None and not d.memory.is_backed(user_root, d.page_size):
        raise PagewalkError(f"user root {user_root:#x} is not in the dump")
    machine = d.machine(args.era)
    lines, _ = replay(machine, TraceHeader(scenario, user_root, None, vmas))
    print("\n".join(lines))
    for report in machine.log:
        warn(str(report))
    return 0


def cmd_replay_pageattr(args) -> int:
    from .replay.pageattr import replay_trace
    try:
        text = Path(args.trace).read_text(errors="replace")
    except OSError as e:
        raise PagewalkError(f"{args.trace}: cannot read: {e.strerror}") from None
    for line in replay_trace(args.dump, text):
        print(line)
    return 0


def cmd_explore(args) -> int:
    from .check.explore import SC_NOTE
    from .check.scenarios import SCENARIOS, Options
    if args.list or not args.scenario:
        for s in SCENARIOS.values():
            print(f"{s.name}  ({s.spec})\n    {s.threads}")
            for how, verdict in s.expected:
                print(f"    {how}: {verdict}")
        return 0
    if args.scenario not in SCENARIOS:
        raise PagewalkError(f"no scenario {args.scenario!r}; `pagewalk explore --list` names them")
    if args.random and args.replay:
        raise PagewalkError("--random and --replay exclude each other")
    config = []
    for item in args.config:
        symbol, sep, value = item.partition("=")
        if not sep or value not in ("y", "n"):
            raise PagewalkError(f"--config {item!r}: SYMBOL=y or SYMBOL=n")
        config.append((symbol, value == "y"))
    options = Options(era=args.era, variant=args.variant, config=tuple(config), page_size=args.page_size,
                      level=args.level, walker=args.walker, bound=args.bound, random=args.random, seed=args.seed)
    scenario = SCENARIOS[args.scenario]
    if args.replay:
        ex = scenario.replay(options, args.replay)
        explored, pruned, complete, fallbacks = 1, 0, True, ex.fallbacks
    else:
        with progress(f"exploring {scenario.name}", not args.quiet) as update:
            result = scenario.run(options, update)
        ex, explored, pruned, complete = result.witness, result.explored, result.pruned, result.complete
        fallbacks = result.fallbacks
    verdict = ex.verdict if ex else "safe"
    report = {"scenario": scenario.name, "era": args.era, "variant": args.variant, "verdict": verdict,
              "explored": explored, "pruned": pruned, "complete": complete,
              "schedule": ex.schedule if ex else None, "trace": ex.trace() if ex else [], "fallbacks": fallbacks,
              "note": SC_NOTE}
    if args.json:
        print(json.dumps(report))
    else:
        extent = "all of them" if complete else ("until the first violation" if ex and not args.replay
                                                   else f"stopped at --bound {args.bound}")
        if args.random:
            extent = f"{args.random} random schedules (seed {args.seed})"
        print(f"{scenario.name} ({scenario.spec}), era {args.era}" + (f", variant {args.variant}" if args.variant
                                                                      else ""))
        print(f"verdict: {verdict}")
        print(f"explored {explored} executions, {pruned} cut by sleep sets ({extent})"
              + (f"; huge vmap fell back to the table {fallbacks} times" if fallbacks else ""))
        if ex:
            print(f"schedule: {ex.schedule}    (pagewalk explore {scenario.name} ... --replay SCHEDULE)")
            print("\n".join(f"  {line}" for line in ex.trace()))
        print(f"note: {SC_NOTE}")
    return 0 if verdict == "safe" else 1


def cmd_matrix(args) -> int:
    from .matrix import render
    print(render(), end="")
    return 0


def cmd_demo(args) -> int:
    from .demo import render, run_demo
    print(render(run_demo()))
    return 0


def cmd_extract(args) -> int:
    from .dump.extract import extract
    out = Path(args.out)
    if out.is_dir():
        raise PagewalkError(f"{out}: is a directory; name the file to write")
    if not out.parent.is_dir():
        raise PagewalkError(f"{out}: no such directory {out.parent}")
    if out.exists() and Path(args.dump).exists() and os.path.samefile(out, args.dump):
        raise PagewalkError(f"{out}: is the dump itself: extract writes a new file")
    if out.exists() and not out.is_file():
        raise PagewalkError(f"{out}: exists and is not a regular file (a device or a pipe): not replaced")
    dump = _open(args)
    # written beside the target and renamed over it only when complete: an interrupted run leaves no half file
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with progress("extracting page tables", not args.quiet) as update:
            if out.suffix == ".zst":
                import zstandard
                with tempfile.NamedTemporaryFile(suffix=".elf") as elf:
                    pages, _ = extract(dump, elf.name, update)
                    with open(elf.name, "rb") as src, open(tmp, "wb") as dst:
                        zstandard.ZstdCompressor(level=19, write_checksum=True).copy_stream(src, dst)
            else:
                pages, _ = extract(dump, tmp, update)
        os.replace(tmp, out)
    except OSError as e:
        raise PagewalkError(f"{out}: cannot write: {e.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(f"{out}: {pages} pages kept, {out.stat().st_size} bytes")
    return 0


# -- argument parsing ---------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pagewalk", description=__doc__.split("\n\n")[0])
    p.add_argument("--quiet", action="store_true", help="no progress bars on long work (they only show on a terminal)")
    sub = p.add_subparsers(dest="command", required=True)

    def dump_options(sp, positional=True):
        if positional:
            sp.add_argument("dump", nargs="?", help="ELF core (or .zst); default: the bundled extract")
        sp.add_argument("--config", help="kernel .config (default: kernel.config beside the dump, else kallsyms)")
        sp.add_argument("--no-config", action="store_true", help="ignore a config beside the dump: infer from kallsyms")
        sp.add_argument("--nr-cpus", type=int, help="CONFIG_NR_CPUS when it matters (7.x with KVM)")
        sp.add_argument("--force", action="store_true",
                        help="go on when VMCOREINFO contradicts the dump (checked at open; see README)")

    sp = sub.add_parser("info", help="kernel, geometry and layout of a dump")
    dump_options(sp)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_info)

    sp = sub.add_parser("vtop", help="translate kernel virtual addresses")
    sp.add_argument("--dump", help="ELF core (or .zst); default: the bundled extract")
    dump_options(sp, positional=False)
    sp.add_argument("--json", action="store_true", help="one JSON object per address")
    sp.add_argument("va", nargs="+", help="hex address or VMCOREINFO symbol (e.g. swapper_pg_dir+0x10)")
    sp.set_defaults(func=cmd_vtop)

    sp = sub.add_parser("ptdump", help="the kernel's kernel_page_tables text")
    dump_options(sp)
    sp.add_argument("--json", action="store_true", help="one JSON object per range")
    sp.set_defaults(func=cmd_ptdump)

    sp = sub.add_parser("check-wx", help="the kernel's W^X check (exit 1 if W+X pages exist)")
    dump_options(sp)
    sp.set_defaults(func=cmd_check_wx)

    sp = sub.add_parser("sim", help="predict a kernel's kernel_page_tables after boot from its own files")
    sp.add_argument("what", choices=("ptdump", "check-wx", "info"))
    sp.add_argument("--like", metavar="DIR", help="a folder laid out like ../shared/captures/NAME/")
    sp.add_argument("--config", help="the kernel's .config")
    sp.add_argument("--cmdline", metavar="STR", help="the kernel command line (text, not a file)")
    sp.add_argument("--iomem", help="/proc/iomem: RAM banks, the image's load address")
    sp.add_argument("--symbols", help="/proc/kallsyms or System.map: the image's section symbols")
    sp.add_argument("--vmcoreinfo", help="VMCOREINFO text: version, VA bits, PHYS_OFFSET, KASLR offset")
    sp.add_argument("--cpuinfo", help="/proc/cpuinfo: the boot CPU (KPTI, BBML2)")
    sp.add_argument("--era", help="the era whose rules apply (default: the kernel version's)")
    sp.add_argument("--cpu", choices=("a72", "max"), help="a QEMU CPU instead of --cpuinfo (default max)")
    sp.set_defaults(func=cmd_sim)

    sp = sub.add_parser("trace", help="run a scripted walk on a dump and print the kernel-format trace")
    sp.add_argument("dump")
    sp.add_argument("scenario", help="a trace file (its # header) or a scenario line")
    sp.add_argument("--root", help="PA of the user mm's top-level table (overrides the trace header)")
    sp.add_argument("--vmas", help="file of '# vma START-END flags=F pgoff=P anon|file:N [hugetlb]' lines")
    sp.add_argument("--era", help="walker era (default: from the dump's kernel version)")
    sp.set_defaults(func=cmd_trace)

    sp = sub.add_parser("replay-pageattr", help="replay a real kernel's set_memory_* trace on a simulated kernel")
    sp.add_argument("dump", help="the capture's dump (the trace's starting tables)")
    sp.add_argument("trace", help="a pageattr trace; ret/warn/AFTER may be blanked ('?')")
    sp.set_defaults(func=cmd_replay_pageattr)

    for name, text in (("explore", "explore the interleavings of the kernel's own code paths (a scenario)"),
                       ("race", "the same as explore")):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("scenario", nargs="?", help="a scenario of --list")
        sp.add_argument("--list", action="store_true", help="the scenarios, their spec statements and verdicts")
        sp.add_argument("--era", default="later", help="6.12, 6.12-early, base, seed-v2, 6.18, later")
        sp.add_argument("--variant", help="a historical or hypothetical code variant (see --list)")
        sp.add_argument("--config", action="append", default=[], metavar="SYM=y|n",
                        help="PTDUMP_DEBUGFS or DEBUG_WX (default both y)")
        sp.add_argument("--page-size", type=int, default=4096, choices=(4096, 16384, 65536))
        sp.add_argument("--level", default="pmd", choices=("pmd", "pud"), help="huge vmap level (pud: 4K only)")
        sp.add_argument("--walker", default="ptdump", choices=("ptdump", "check-wx"))
        sp.add_argument("--bound", type=int, default=1000, help="most executions to explore")
        sp.add_argument("--random", type=int, default=0, metavar="N", help="N seeded random schedules instead")
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--replay", metavar="SCHEDULE", help="run exactly this schedule (as printed)")
        sp.add_argument("--json", action="store_true")
        sp.set_defaults(func=cmd_explore)

    sp = sub.add_parser("matrix", help="the support matrix (eras, geometries, version rules) as Markdown")
    sp.set_defaults(func=cmd_matrix)

    sp = sub.add_parser("demo", help="the seed's KFENCE-in-softirq scenario in every era, with the checkers")
    sp.set_defaults(func=cmd_demo)

    sp = sub.add_parser("extract", help="write a small ELF core with only page tables, kallsyms and notes")
    sp.add_argument("dump")
    sp.add_argument("out", help="output ELF core (.zst to compress)")
    sp.set_defaults(func=cmd_extract)
    return p


def _exit_on_signal(signum, frame) -> None:
    """SIGTERM/SIGHUP end the run like Ctrl-C does, so temporary files are removed on the way out."""
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    args = build_parser().parse_args(argv)
    args.opened = []
    try:
        status = args.func(args)
        for dump in args.opened:
            for line in dump.memory.read_warnings():
                warn(f"{dump.name}: {line}")
            for problem in dump.problems[:10]:
                warn(f"{dump.name}: corrupt page tables: {problem}")
            if len(dump.problems) > 10:
                warn(f"{dump.name}: ... and {len(dump.problems) - 10} more tables not walked")
            if dump.problems:
                status = EXIT_CORRUPT
        return status
    except PagewalkError as e:
        print(f"pagewalk: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug of ours: one line, not a traceback, unless asked
        if os.environ.get("PAGEWALK_DEBUG"):
            raise
        print(f"pagewalk: internal error: {type(e).__name__}: {e} (set PAGEWALK_DEBUG=1 for a traceback)",
              file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
