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
    """

    writable = True
    name = "simulated RAM"

    def __init__(self, base: int = 0x40000000, size: int = 1 << 30, page_size: int = 4096):
        if size <= 0 or base % page_size or size % page_size:
            raise ValueError(f"RAM [{base:#x}, +{size:#x}) is not a whole number of {page_size}-byte pages")
        self.base, self.size, self.page_size = base, size, page_size
        self._words = page_size // 8
        self._pages: dict[int, np.ndarray] = {}
        self._poisoned: set[int] = set()
        self._reserved: set[int] = set()
        self._next_fresh = base + size  # fresh frames are handed out from the top down
        self._recycled: deque[int] = deque()
        self._live: set[int] = set()
        self._fail_at: int | None = None
        self.allocations = 0

    # -- PhysicalMemory --------------------------------------------------
    def ranges(self) -> list[tuple[int, int]]:
        return [(self.base, self.base + self.size)]

    def is_backed(self, pa: int, size: int = 8) -> bool:
        return self.base <= pa and pa + size <= self.base + self.size

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
        """Make the `nth` next allocation (1 = the very next) return None; None disarms."""
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
            if self._next_fresh not in self._reserved and self._next_fresh not in self._pages:
                return self._next_fresh
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
