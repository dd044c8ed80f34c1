"""The physical-memory protocols every layer above reads page tables through.

Models the kernel's view of RAM as seen by a page-table walker: 64-bit
little-endian descriptors at physical addresses (`READ_ONCE(*ptep)`,
`WRITE_ONCE(*ptep, val)`), whole table pages, and whether a PA is backed.
`PhysicalMemory` is what every reader (RAM, dumps) provides; a memory whose
`writable` is True is also a `WritableMemory`, with a page-frame allocator
for page tables.
"""

from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import PhysicalAddressError

__all__ = ["MASK64", "PhysicalMemory", "WritableMemory", "DumpMemory", "gather_words"]

#: A 64-bit word (descriptors, virtual and physical addresses).
MASK64 = (1 << 64) - 1


@runtime_checkable
class PhysicalMemory(Protocol):
    """What a page-table walker needs from physical memory."""

    #: A name for messages (the dump's path, "simulated RAM").
    name: str
    #: False for dumps: write_u64 raises ReadOnlyMemoryError.
    writable: bool

    def read_u64(self, pa: int) -> int:
        """The 64-bit little-endian word at `pa` (raises PhysicalAddressError)."""

    def write_u64(self, pa: int, value: int) -> None:
        """Store a 64-bit word at `pa` (raises ReadOnlyMemoryError where not writable)."""

    def read_table(self, pa: int, entries: int) -> np.ndarray:
        """`entries` consecutive 64-bit words from `pa` as a uint64 array (do not modify it)."""

    def read(self, pa: int, size: int) -> bytes:
        """`size` raw bytes from `pa`."""

    def gather_u64(self, pas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Words at many 8-byte-aligned PAs: `(values, ok)`, `ok` False where not backed."""

    def is_backed(self, pa: int, size: int = 8) -> bool:
        """Whether every byte of `[pa, pa + size)` exists in this memory."""

    def ranges(self) -> list[tuple[int, int]]:
        """Backed physical ranges as sorted, merged `(start, end)` pairs."""


@runtime_checkable
class WritableMemory(PhysicalMemory, Protocol):
    """Memory a simulated kernel runs on: writes, and page-table pages from an allocator."""

    def write_table(self, pa: int, values) -> None:
        """Store consecutive 64-bit words from `pa` (within one page)."""

    def alloc_page(self) -> int | None:
        """A zeroed page's PA, or None when out of memory or a failure was injected."""

    def free_page(self, pa: int) -> None:
        """Return an allocated page; it reads as poisoned until reallocated."""

    def fail_nth_allocation(self, nth: int | None) -> None:
        """Make the `nth` next allocation fail (None disarms)."""

    def reserve(self, start: int, end: int) -> None:
        """Keep the allocator away from `[start, end)`."""

    def is_live(self, pa: int) -> bool:
        """Whether the page at `pa` was handed out by alloc_page() and not freed."""

    @property
    def live_pages(self) -> int:
        """Pages handed out and not yet freed."""


@runtime_checkable
class DumpMemory(PhysicalMemory, Protocol):
    """A dump file's memory: its ELF notes, what the format says about itself, what it left out."""

    notes: list

    def note(self, name: str):
        """The first ELF note called `name` (e.g. "VMCOREINFO"), or None."""

    def describe(self) -> dict:
        """Format facts for `pagewalk info` (format, compression, page counts ...)."""

    def read_warnings(self) -> list[str]:
        """What a command should say on stderr after reading: pages the dump left out (read as
        zeros), pages of a live kernel that changed while they were read."""


def gather_words(memory: PhysicalMemory, pas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`gather_u64()` for memories without a faster way: one read_u64 per address.

    >>> from pagewalk.phys.ram import SimulatedRAM
    >>> ram = SimulatedRAM(0x40000000, 1 << 20)
    >>> ram.write_u64(0x40000008, 7)
    >>> values, ok = gather_words(ram, np.array([0x40000008, 0x10], dtype=np.uint64))
    >>> values.tolist(), ok.tolist()
    ([7, 0], [True, False])
    """
    values = np.zeros(len(pas), dtype=np.uint64)
    ok = np.ones(len(pas), dtype=bool)
    for i, pa in enumerate(pas.tolist()):
        try:
            values[i] = memory.read_u64(pa)
        except PhysicalAddressError:
            ok[i] = False
    return values, ok
