"""Writable physical memory on top of a read-only dump (copy-on-write).

A simulated kernel started from a real one: reads come from the dump until a
page is written, then from a private copy; new page-table pages come from a
frame allocator over a region outside the dump's RAM (so a table a model
allocates is never mistaken for one the real kernel had).
"""

import numpy as np

from ..errors import PhysicalAddressError
from .memory import MASK64, gather_words
from .ram import SimulatedRAM

__all__ = ["OverlayMemory"]


class OverlayMemory:
    """A writable view of `base` (read-only): copy-on-write pages, new tables outside its RAM.

    >>> from pagewalk.phys.ram import SimulatedRAM
    >>> mem = OverlayMemory(SimulatedRAM(0x40000000, 1 << 20))
    >>> mem.write_u64(0x40000000, 5); mem.read_u64(0x40000000), hex(mem.alloc_page())   # tables from above RAM
    (5, '0x8ffff000')
    """
    writable = True

    def __init__(self, base, alloc_base: int | None = None, alloc_size: int = 256 << 20, page_size: int = 4096):
        self.base, self.page_size = base, page_size
        self.name = f"{base.name} (copy-on-write)"
        top = max(end for _, end in base.ranges())
        alloc_base = alloc_base if alloc_base is not None else -(-top // (1 << 30)) * (1 << 30)
        self.ram = SimulatedRAM(alloc_base, alloc_size, page_size)
        self._copies: dict[int, np.ndarray] = {}
        self._placements: list[int] = []
        self._placed: set[int] = set()

    # -- PhysicalMemory --------------------------------------------------
    def ranges(self) -> list[tuple[int, int]]:
        return sorted(self.base.ranges() + self.ram.ranges())

    def is_backed(self, pa: int, size: int = 8) -> bool:
        return self.ram.is_backed(pa, size) or self.base.is_backed(pa, size)

    def _copy(self, pa: int) -> np.ndarray | None:
        return self._copies.get(pa - pa % self.page_size)

    def read_u64(self, pa: int) -> int:
        page = self._copy(pa)
        if page is not None:
            return int(page[(pa % self.page_size) >> 3])
        if self.ram.is_backed(pa):
            return self.ram.read_u64(pa)
        return self.base.read_u64(pa)

    def read_table(self, pa: int, entries: int) -> np.ndarray:
        page = self._copy(pa)
        if page is not None:
            index = (pa % self.page_size) >> 3
            return page[index:index + entries].copy()
        if self.ram.is_backed(pa, entries * 8):
            return self.ram.read_table(pa, entries)
        return np.array(self.base.read_table(pa, entries))

    def read(self, pa: int, size: int) -> bytes:
        if self.ram.is_backed(pa, size):
            return self.ram.read(pa, size)
        out = bytearray(self.base.read(pa, size))
        for page, words in self._copies.items():
            lo, hi = max(pa, page), min(pa + size, page + self.page_size)
            if lo < hi:
                out[lo - pa:hi - pa] = words.tobytes()[lo - page:hi - page]
        return bytes(out)

    def gather_u64(self, pas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return gather_words(self, pas)

    def write_u64(self, pa: int, value: int) -> None:
        if self.ram.is_backed(pa):
            self.ram.write_u64(pa, value)
            return
        page_pa = pa - pa % self.page_size
        page = self._copies.get(page_pa)
        if page is None:
            if not self.base.is_backed(page_pa, self.page_size):
                raise PhysicalAddressError(pa, 8, "the dump under this simulated kernel")
            page = self._copies[page_pa] = np.array(self.base.read_table(page_pa, self.page_size // 8))
        page[(pa % self.page_size) >> 3] = value & MASK64

    def write_table(self, pa: int, values) -> None:
        for i, value in enumerate(np.asarray(values, dtype=np.uint64).tolist()):
            self.write_u64(pa + 8 * i, value)

    # -- allocator (new tables live outside the dump's RAM) ------------------
    def place_next_allocations(self, pages: list[int]) -> None:
        """Hand out these dump pages (zeroed) for the next allocations: where a real
        kernel put the tables it allocated, when a trace says so."""
        self._placements = list(pages)

    def alloc_page(self) -> int | None:
        if self._placements and not self.ram._fail_due():
            page = self._placements.pop(0)
            self._copies[page] = np.zeros(self.page_size // 8, dtype=np.uint64)
            self._placed.add(page)
            return page
        return self.ram.alloc_page()

    def free_page(self, pa: int) -> None:
        if pa in self._placed:
            self._placed.discard(pa)
            self._copies.pop(pa, None)
            return
        self.ram.free_page(pa)

    def fail_nth_allocation(self, nth: int | None) -> None:
        self.ram.fail_nth_allocation(nth)

    def reserve(self, start: int, end: int) -> None:
        """Dump pages are never handed out by the allocator: nothing to reserve."""

    def is_live(self, pa: int) -> bool:
        return pa in self._placed or self.ram.is_live(pa)

    @property
    def live_pages(self) -> int:
        return self.ram.live_pages + len(self._placed)
