"""Start a simulated kernel, checkers attached: `boot()` from a configuration,
`boot_from_dump()` from a real kernel's tables.

>>> k = boot(era="later", rodata="full")
>>> k.set_memory_ro(k.vmalloc(4 * 4096), 4), k.violations
(0, [])
"""

from pathlib import Path

from .check import attach_checkers
from .dump.kernel_dump import KernelDump
from .kernel.boot import start_kernel
from .kernel.config import KernelConfig
from .kernel.from_dump import start_from_dump
from .kernel.kernel import Kernel
from .mm.era import Era

__all__ = ["boot", "boot_from_dump"]


def boot(era="later", page_size: int = 4096, va_bits: int = 48, rodata: str = "full", bbml2: bool = False,
         kfence: bool = False, kpti: bool = False, bti: bool = False, debug_pagealloc: bool = False,
         realm: bool = False, ram: int = 1 << 30, checks: bool = True, **options) -> Kernel:
    """A simulated kernel. `era`: "base", "seed-v2", "seed-review", "6.18", "later" (or "6.12", "6.1").

    Other options are KernelConfig's (vabits_actual, kfence_early_init, nov2025_fix, caps_finalized, ...).
    `checks` attaches the checkers (break-before-make, TLB, contiguous groups).
    """
    cfg = KernelConfig(era=era, page_size=page_size, va_bits=va_bits, rodata=rodata, bbml2=bbml2, kfence=kfence,
                       kpti=kpti, bti=bti, debug_pagealloc=debug_pagealloc, realm=realm, ram=ram, **options)
    k = start_kernel(cfg)
    if checks:
        attach_checkers(k)
    return k


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
