"""Physical memory: one protocol, simulated RAM and read-only dumps."""

from .memory import PhysicalMemory
from .ram import SimulatedRAM
from .elfcore import ElfCoreMemory, open_dump_memory
from .vmcoreinfo import VmcoreInfo

__all__ = ["PhysicalMemory", "SimulatedRAM", "ElfCoreMemory", "open_dump_memory", "VmcoreInfo"]
