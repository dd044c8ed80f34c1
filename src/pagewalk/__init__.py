"""pagewalk: Linux's generic page-table walker and arm64 page tables, executable.

Kernel names are Python names: `walk_page_range`, `mm_walk_ops`,
`ACTION_SUBTREE`, `PGWALK_RDLOCK`, `set_memory_ro`, ... The same walker runs
over simulated RAM (`boot()`, `Machine.simulated()`) and over real kernel
dumps (`KernelDump`). The package's layers import one way, bottom to top:

    errors -> phys -> hw.aarch64 -> arch.arm64.asm -> mm -> arch.arm64.mm
           -> dump -> kernel -> check -> replay -> simulate, cli

>>> import pagewalk
>>> d = pagewalk.KernelDump.open()
>>> m = d.machine()
>>> pmds = []
>>> ops = pagewalk.mm_walk_ops(pmd_entry=lambda ptr, addr, next, walk: pmds.append(addr) or 0)
>>> start = d.layout.kimage_vaddr
>>> m.init_mm.mmap_lock.down_read()
>>> pagewalk.walk_kernel_page_table_range(start, start + (4 << 20), ops, init_mm=m.init_mm)
0
>>> [hex(a - start) for a in pmds]
['0x0', '0x200000']
"""

from . import dump, errors, hw, kernel, mm, phys, simulate
from .dump.kernel_dump import KernelDump
from .errors import *  # noqa: F401,F403
from .hw.aarch64 import *  # noqa: F401,F403
from .kernel.config import KernelConfig
from .kernel.hooks import Violation
from .kernel.kernel import Kernel
from .mm.era import Era
from .mm.machine import Machine
from .mm.mm_types import mm_struct, vm_area_struct
from .mm.pagewalk import *  # noqa: F401,F403
from .phys import *  # noqa: F401,F403
from .simulate import boot, boot_from_dump, boot_like

__all__ = (errors.__all__ + phys.__all__ + hw.aarch64.__all__ + mm.pagewalk.__all__
           + ["Era", "Machine", "mm_struct", "vm_area_struct", "KernelDump", "Kernel", "KernelConfig", "Violation"]
           + simulate.__all__)
