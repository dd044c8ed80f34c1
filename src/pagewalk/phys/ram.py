"""Simulated RAM with a page-frame allocator, for page tables built in tests.

Models the part of the kernel's page allocator that page-table code uses
(`__get_free_page(GFP_PGTABLE_KERNEL)` / `pagetable_alloc()` and
`free_page()`), with two debugging aids the kernel has in spirit: freed pages
are poisoned (a later read through a stale table pointer raises
PoisonedPageError, like KASAN's use-after-free report) and the N-th
allocation can be made to fail (like fault injection's `fail_page_alloc`).
"""

from collections import deque

import numpy as np

from ..errors import PhysicalAddressError, PoisonedPageError
from .memory import MASK64, gather_words

__all__ = ["SimulatedRAM"]


class SimulatedRAM:
    """Sparse, page-granular physical memory; unwritten pages read as zero.

    >>> ram = SimulatedRAM(base=0x40000000, size=1 << 30)
    >>> pa = ram.alloc_page()
    >>> ram.write_u64(pa, 0x40000003); hex(ram.read_u64(pa))
    '0x40000003'

    Several banks (`banks=[(start, end), ...]`) make a machine with holes; the
    allocators hand out frames from the highest bank down, like memblock.

    >>> two = SimulatedRAM(banks=[(0x40000000, 0x48000000), (0x80000000, 0x88000000)])
    >>> hex(two.alloc_page()), two.is_backed(0x50000000), hex(two.alloc_range(1 << 21, 1 << 21))
    ('0x87fff000', False, '0x87c00000')
    """

    writable = True
    name = "simulated RAM"

    def __init__(self, base: int = 0x40000000, size: int = 1 << 30, page_size: int = 4096, *,
                 banks: "list[tuple[int, int]] | None" = None):
        self.banks = sorted(banks) if banks else [(base, base + size)]
        for start, end in self.banks:
            if end <= start or start % page_size or end % page_size:
                raise ValueError(f"RAM [{start:#x}, {end:#x}) is not a whole number of {page_size}-byte pages")
        if any(a[1] > b[0] for a, b in zip(self.banks, self.banks[1:])):
            raise ValueError("RAM banks overlap")
        self.base, self.page_size = self.banks[0][0], page_size
        self.size = self.banks[-1][1] - self.base
        self._words = page_size // 8
        self._pages: dict[int, np.ndarray] = {}
        self._poisoned: set[int] = set()
        self._reserved: set[int] = set()
        self._next_fresh = self.banks[-1][1]  # fresh frames are handed out from the top down
        self._recycled: deque[int] = deque()
        self._live: set[int] = set()
        self._fail_at: int | None = None
        self.allocations = 0

    # -- PhysicalMemory --------------------------------------------------
    def ranges(self) -> list[tuple[int, int]]:
        return list(self.banks)

    def is_backed(self, pa: int, size: int = 8) -> bool:
        return any(start <= pa and pa + size <= end for start, end in self.banks)

    def _page(self, pa: int, size: int = 8) -> tuple[int, int]:
        if not self.is_backed(pa, size):
            raise PhysicalAddressError(pa, size, "simulated RAM")
        page = pa - pa % self.page_size
        if page in self._poisoned:
            raise PoisonedPageError(pa, page)
        return page, (pa - page) // 8

    def read_u64(self, pa: int) -> int:
        page = pa - pa % self.page_size
        words = self._pages.get(page)
        if words is not None:                  # fast path: a written, unpoisoned page inside RAM
            return int(words[(pa - page) >> 3])
        self._page(pa)                         # raises for unbacked or poisoned addresses
        return 0

    def write_u64(self, pa: int, value: int) -> None:
        page, index = self._page(pa)
        words = self._pages.get(page)
        if words is None:
            words = self._pages[page] = np.zeros(self._words, dtype=np.uint64)
        words[index] = value & MASK64

    def read_table(self, pa: int, entries: int) -> np.ndarray:
        page, index = self._page(pa, entries * 8)
        if index + entries > self._words:
            raise PhysicalAddressError(pa, entries * 8, "one simulated page")
        words = self._pages.get(page)
        if words is None:
            return np.zeros(entries, dtype=np.uint64)
        return words[index:index + entries].copy()

    def read(self, pa: int, size: int) -> bytes:
        out = bytearray()
        while size > 0:
            page, _ = self._page(pa, 1)
            chunk = min(size, page + self.page_size - pa)
            words = self._pages.get(page)
            raw = bytes(self.page_size) if words is None else words.tobytes()
            out += raw[pa - page:pa - page + chunk]
            pa, size = pa + chunk, size - chunk
        return bytes(out)

    def gather_u64(self, pas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return gather_words(self, pas)

    def write_table(self, pa: int, values) -> None:
        """Store consecutive 64-bit words from `pa` (within one page)."""
        values = np.asarray(values, dtype=np.uint64)
        page, index = self._page(pa, 8 * len(values))
        words = self._pages.get(page)
        if words is None:
            words = self._pages[page] = np.zeros(self._words, dtype=np.uint64)
        words[index:index + len(values)] = values

    # -- frame allocator -------------------------------------------------
    def reserve(self, start: int, end: int) -> None:
        """Keep the allocator away from `[start, end)` (kernel image, loaded tables)."""
        page = start - start % self.page_size
        while page < end:
            self._reserved.add(page)
            page += self.page_size

    def fail_nth_allocation(self, nth: int | None) -> None:
        """Make the `nth` next allocation (alloc_page or alloc_range; 1 = the very next) return None; None
        disarms."""
        self._fail_at = None if nth is None else self.allocations + nth

    def _fail_due(self) -> bool:
        """Whether the next allocation is the one set to fail."""
        return self._fail_at is not None and self.allocations + 1 == self._fail_at

    def alloc_page(self) -> int | None:
        """A zeroed page's PA, or None when out of memory or a failure was injected."""
        self.allocations += 1
        if self._fail_at is not None and self.allocations == self._fail_at:
            self._fail_at = None
            return None
        page = self._take_fresh()
        if page is None and self._recycled:
            page = self._recycled.popleft()
        if page is None:
            return None
        self._poisoned.discard(page)
        self._pages.pop(page, None)
        self._live.add(page)
        return page

    def _take_fresh(self) -> int | None:
        while self._next_fresh > self.base:
            self._next_fresh -= self.page_size
            if not self.is_backed(self._next_fresh):
                self._next_fresh = max(end for start, end in self.banks if end <= self._next_fresh)
                continue
            if self._next_fresh not in self._reserved and self._next_fresh not in self._pages:
                return self._next_fresh
        return None

    def _free(self, pa: int) -> bool:
        return pa not in self._reserved and pa not in self._live and pa not in self._pages

    def alloc_range(self, size: int, align: int) -> int | None:
        """`memblock_phys_alloc(size, align)` (or a contiguous page allocation at run time): the highest free
        aligned run in one bank, reserved; None if none or if this is the allocation set to fail."""
        self.allocations += 1
        if self._fail_at is not None and self.allocations == self._fail_at:
            self._fail_at = None
            return None
        page = self.page_size
        for start, end in reversed(self.banks):
            pa = (end - size) // align * align
            while pa >= start:
                busy = [p for p in range(pa, pa + size, page) if not self._free(p)]
                if not busy:
                    self.reserve(pa, pa + size)
                    return pa
                pa = (busy[0] - size) // align * align
        return None

    def free_page(self, pa: int) -> None:
        """Return an allocated page; its contents are poisoned until reallocated."""
        if pa not in self._live:
            raise ValueError(f"free_page({pa:#x}): not a page this allocator handed out")
        self._live.discard(pa)
        self._pages.pop(pa, None)              # poisoned pages never hold words: reads take the slow path
        self._poisoned.add(pa)
        self._recycled.append(pa)

    @property
    def live_pages(self) -> int:
        """Pages handed out by alloc_page() and not yet freed."""
        return len(self._live)

    def is_live(self, pa: int) -> bool:
        return pa - pa % self.page_size in self._live
