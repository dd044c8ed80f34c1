"""Physical memory: the protocols, simulated RAM, copy-on-write overlays, dumps, VMCOREINFO."""

from .elfcore import ElfCoreMemory, open_dump_memory
from .memory import PhysicalMemory, WritableMemory
from .overlay import OverlayMemory
from .ram import SimulatedRAM
from .vmcoreinfo import VmcoreInfo

__all__ = ["PhysicalMemory", "WritableMemory", "SimulatedRAM", "OverlayMemory", "ElfCoreMemory",
           "open_dump_memory", "VmcoreInfo"]
