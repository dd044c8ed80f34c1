"""The physical-memory protocol every layer above reads page tables through.

Models the kernel's view of RAM as seen by a page-table walker: 64-bit
little-endian descriptors at physical addresses (`READ_ONCE(*ptep)`,
`WRITE_ONCE(*ptep, val)`), whole table pages, and whether a PA is backed.
"""

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class PhysicalMemory(Protocol):
    """What a page-table walker needs from physical memory."""

    #: False for dumps: writing raises ReadOnlyMemoryError.
    writable: bool

    def read_u64(self, pa: int) -> int:
        """The 64-bit little-endian word at `pa` (raises PhysicalAddressError)."""

    def write_u64(self, pa: int, value: int) -> None:
        """Store a 64-bit word at `pa`."""

    def read_table(self, pa: int, entries: int) -> np.ndarray:
        """`entries` consecutive 64-bit words from `pa` as a uint64 array (do not modify it)."""

    def read(self, pa: int, size: int) -> bytes:
        """`size` raw bytes from `pa`."""

    def is_backed(self, pa: int, size: int = 8) -> bool:
        """Whether every byte of `[pa, pa + size)` exists in this memory."""

    def ranges(self) -> list[tuple[int, int]]:
        """Backed physical ranges as sorted, merged `(start, end)` pairs."""
