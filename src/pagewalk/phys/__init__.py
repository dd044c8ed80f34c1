"""Physical memory: the protocols, simulated RAM, copy-on-write overlays, dumps (ELF cores,
kdump-compressed and flattened files, zstd-compressed any of them), VMCOREINFO."""

from .diskdump import ExcludedPageError, KdumpMemory
from .dumpfile import open_dump_memory
from .elfcore import ElfCoreMemory
from .memory import PhysicalMemory, WritableMemory
from .overlay import OverlayMemory
from .ram import SimulatedRAM
from .vmcoreinfo import VmcoreInfo

__all__ = ["PhysicalMemory", "WritableMemory", "SimulatedRAM", "OverlayMemory", "ElfCoreMemory", "KdumpMemory",
           "ExcludedPageError", "open_dump_memory", "VmcoreInfo"]
