"""Start a simulated kernel, checkers attached: `boot()` from a configuration or a kernel's own
files, `boot_like()` from a folder of them, `boot_from_dump()` from a real kernel's tables.

>>> k = boot(era="later", rodata="full")
>>> k.set_memory_ro(k.vmalloc(4 * 4096), 4), k.violations
(0, [])
>>> k = boot(config="CONFIG_ARM64_16K_PAGES=y\\nCONFIG_ARM64_VA_BITS=48\\n", cmdline="rodata=on", era="6.12")
>>> k.config.page_size, k.config.rodata_full, k.check_wx().wx_summary()
(16384, False, 'Checked W+X mappings: passed, no W+X pages found')
"""

from dataclasses import replace
from pathlib import Path

from .check import attach_checkers
from .dump.kernel_dump import KernelDump
from .kernel.boot import start_kernel
from .kernel.config import KernelConfig
from .kernel.files import BootFiles, boot_config, read_text
from .kernel.from_dump import start_from_dump
from .kernel.kernel import Kernel
from .mm.era import Era

__all__ = ["boot", "boot_like", "boot_from_dump"]


def boot(era=None, page_size: int = 4096, va_bits: int = 48, rodata: str = "full", bbml2: bool = False,
         kfence: bool = False, kpti: bool = False, bti: bool = False, debug_pagealloc: bool = False,
         realm: bool = False, ram: int = 1 << 30, checks: bool = True, *, config=None, cmdline: str | None = None,
         memory=None, symbols=None, **options) -> Kernel:
    """A simulated kernel. `era`: "base", "seed-v2", "seed-review", "6.18", "later" (or "6.12", "6.1");
    default "later", or the version the files name.

    Other options are KernelConfig's (vabits_actual, kfence_early_init, nov2025_fix, caps_finalized, ...).
    `checks` attaches the checkers (break-before-make, TLB, contiguous groups).

    A kernel's own files instead of the switches: `config` (.config text or path), `cmdline`,
    `memory` (/proc/iomem text or path, or `[(start, end), ...]` RAM banks), `symbols` (/proc/kallsyms or
    System.map text or path); the switches then come from them as that kernel reads them at boot.
    """
    if all(x is None for x in (config, cmdline, memory, symbols)):
        cfg = KernelConfig(era=era or "later", page_size=page_size, va_bits=va_bits, rodata=rodata, bbml2=bbml2,
                           kfence=kfence, kpti=kpti, bti=bti, debug_pagealloc=debug_pagealloc, realm=realm, ram=ram,
                           **options)
    else:
        banks = memory if isinstance(memory, (list, tuple)) else None
        files = BootFiles(config=_text(config), cmdline=cmdline, iomem=None if banks else _text(memory),
                          symbols=_text(symbols))
        cfg, _ = boot_config(files, era=era, cpu=options.pop("cpu", None))
        cfg = replace(cfg, **options, **({"ram_banks": tuple(banks)} if banks else {}))
    return _started(cfg, checks)


def boot_like(folder: "str | Path", era=None, cpu: str | None = None, checks: bool = True, **options) -> Kernel:
    """The kernel a folder laid out like ../shared/captures/NAME/ describes (kernel.config, cmdline.txt,
    iomem.txt, kallsyms.txt, vmcoreinfo.txt, cpuinfo.txt; each optional), booted by its version's rules."""
    cfg, _ = boot_config(BootFiles.from_dir(folder), era=era, cpu=cpu)
    return _started(replace(cfg, **options) if options else cfg, checks)


def _started(cfg: KernelConfig, checks: bool) -> Kernel:
    k = start_kernel(cfg)
    if checks:
        attach_checkers(k)
    return k


def _text(source) -> str | None:
    """A file's text: given as text (it has a newline or an '='), or as a path."""
    if source is None or isinstance(source, str) and ("\n" in source or "=" in source):
        return source
    return read_text(source)


def boot_from_dump(path: "str | Path | KernelDump", era: "Era | str | None" = None, vmallocinfo=None, *,
                   checks: bool = False, **config) -> Kernel:
    """A simulated kernel whose starting state is a real kernel's page tables.

    `path` is a dump file or an open KernelDump; `era` defaults to the one the
    dump's kernel runs; `vmallocinfo` (text or path) registers the real vm areas.
    """
    dump = path if isinstance(path, KernelDump) else KernelDump.open(path, search_config=False)
    k = start_from_dump(dump, era, vmallocinfo, **config)
    if checks:
        attach_checkers(k)
    return k
