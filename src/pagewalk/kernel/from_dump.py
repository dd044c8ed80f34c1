"""A simulated kernel whose starting state is a real kernel's page tables.

The dump stays read-only underneath (OverlayMemory: written pages are
copied, new tables come from RAM placed above the dump's); the layout,
PHYS_OFFSET and swapper_pg_dir are the dump's. New vmalloc areas go to a free
1 GiB-aligned window in the middle of the vmalloc space, new data pages to
the top 256 MiB of RAM.
"""

from ..dump.kernel_dump import KernelDump
from ..mm.era import Era
from ..mm.machine import Machine
from ..phys.overlay import OverlayMemory
from .config import KernelConfig
from .kernel import Kernel
from .vmallocinfo import register_vmallocinfo

__all__ = ["start_from_dump"]


def start_from_dump(dump: KernelDump, era: "Era | str | None" = None, vmallocinfo=None, *,
                    kfence_pool: tuple[int, int] | None = None, linear_map_requires_bbml2: bool = False,
                    **config) -> Kernel:
    """A kernel started from `dump`'s tables; `era` defaults to the one the dump's kernel runs.

    `vmallocinfo` (a /proc/vmallocinfo text or path) registers the real vm areas.
    """
    era = Era.for_kernel(dump.version) if era is None else Era.parse(era)
    cfg = KernelConfig(era=era, page_size=dump.page_size, va_bits=dump.va_bits, vabits_actual=dump.vabits_actual,
                       version=dump.version, **config)
    memory = OverlayMemory(dump.memory, page_size=dump.page_size)
    layout = dump.layout
    middle = layout.vmalloc_start + (layout.vmalloc_end - layout.vmalloc_start) // 2
    ram_end = max(end for _, end in dump.memory.ranges())
    k = Kernel(Machine(memory, dump.arch, era, dump.swapper_pg_dir), cfg, layout,
               phys_offset=dump.vmcoreinfo.phys_offset, data_start=ram_end - (256 << 20),
               vmalloc_start=middle & ~((1 << 30) - 1), kfence_pool=kfence_pool,
               linear_map_requires_bbml2=linear_map_requires_bbml2)
    if vmallocinfo is not None:
        register_vmallocinfo(k, vmallocinfo)
    return k
