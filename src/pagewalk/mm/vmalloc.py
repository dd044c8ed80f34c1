"""vmalloc areas: `struct vm_struct` records and `find_vm_area()` (linux: mm/vmalloc.c).

An area's `size` includes its trailing guard page unless it has
`VM_NO_GUARD`, so `find_vm_area()` also finds an address inside the guard
page (the kernel's vmap_area spans it).
"""

import bisect
from dataclasses import dataclass, field

__all__ = ["vm_struct", "VmallocSpace", "VM_IOREMAP", "VM_ALLOC", "VM_MAP", "VM_USERMAP", "VM_DMA_COHERENT",
           "VM_NO_GUARD", "VM_ALLOW_HUGE_VMAP", "VM_FLAG_NAMES"]

VM_IOREMAP, VM_ALLOC, VM_MAP, VM_USERMAP = 0x1, 0x2, 0x4, 0x8
VM_DMA_COHERENT, VM_UNINITIALIZED, VM_NO_GUARD, VM_KASAN = 0x10, 0x20, 0x40, 0x80
VM_FLUSH_RESET_PERMS, VM_MAP_PUT_PAGES, VM_ALLOW_HUGE_VMAP = 0x100, 0x200, 0x400
VM_FLAG_NAMES = {VM_IOREMAP: "ioremap", VM_ALLOC: "vmalloc", VM_MAP: "vmap", VM_USERMAP: "user",
                 VM_DMA_COHERENT: "dma-coherent", VM_NO_GUARD: "noguard", VM_ALLOW_HUGE_VMAP: "huge"}


@dataclass(eq=False)
class vm_struct:  # noqa: N801 - kernel name
    """A vmalloc/vmap area: `[addr, addr + size)` incl. the guard page, its flags and backing pages."""
    addr: int
    size: int
    flags: int
    #: PFNs of the backing pages (`area->pages[i]`), in order.
    pages: list[int] = field(default_factory=list)
    caller: str = ""
    #: log2 of the pages per mapping unit (9: PMD blocks, 4: contiguous PTEs).
    page_order: int = 0

    @property
    def nr_pages(self) -> int:
        return len(self.pages)

    @property
    def end(self) -> int:
        return self.addr + self.size

    def usable_size(self, page_size: int) -> int:
        return self.size - (0 if self.flags & VM_NO_GUARD else page_size)

    def __repr__(self) -> str:
        names = ",".join(n for bit, n in VM_FLAG_NAMES.items() if self.flags & bit)
        return f"vm_struct[{self.addr:#x}-{self.end:#x} {names} pages={self.nr_pages}]"


class VmallocSpace:
    """The vmap_area tree, as far as pageattr needs it, and where the next area goes.

    New areas go first-fit into VA that was freed and purged (`purge()`, as
    `__purge_vmap_area_lazy()` makes it reusable, F11), else bottom-up from `cursor`.

    >>> space = VmallocSpace(0xffff800080000000, 0xffff800100000000)
    >>> hex(space.alloc_va(0x3000, 0x200000))
    '0xffff800080000000'
    >>> space.alloc_va(1 << 40, 0x1000) is None
    True
    >>> space.lazy_free.append((0xffff800080000000, 0xffff800080003000)); space.purge()
    >>> hex(space.alloc_va(0x2000, 0x1000))
    '0xffff800080000000'
    """

    def __init__(self, start: int, end: int):
        self.start, self.end = start, end
        self.cursor = start
        self.areas: list[vm_struct] = []
        self._starts: list[int] = []
        #: Lazily-freed alias ranges waiting for vm_unmap_aliases() (start, end).
        self.lazy_aliases: list[tuple[int, int]] = []
        #: VA of freed areas (guard page included), reusable once purged.
        self.lazy_free: list[tuple[int, int]] = []
        self.free: list[tuple[int, int]] = []

    def purge(self) -> None:
        """`__purge_vmap_area_lazy()`: the lazily freed VA becomes free (merged with the space above `cursor`
        when it reaches it)."""
        self.free = sorted(self.free + self.lazy_free)
        self.lazy_free.clear()
        while self.free and self.free[-1][1] == self.cursor:
            self.cursor = self.free.pop()[0]

    def alloc_va(self, size: int, align: int) -> int | None:
        """The start of a free `size`-byte range aligned to `align`, or None when the space is exhausted."""
        for i, (start, end) in enumerate(self.free):
            va = -(-start // align) * align
            if va + size <= end:
                self.free[i:i + 1] = [r for r in ((start, va), (va + size, end)) if r[0] < r[1]]
                return va
        va = -(-self.cursor // align) * align
        if va + size > self.end:
            return None
        self.cursor = va + size
        return va

    def skip_to(self, va: int) -> None:
        """Place later areas at or above `va`."""
        self.cursor = max(self.cursor, va)

    def add(self, area: vm_struct) -> vm_struct:
        i = bisect.bisect_left(self._starts, area.addr)
        for other in self.areas[max(0, i - 1):i + 1]:
            if other.addr < area.end and area.addr < other.end:
                raise ValueError(f"{area!r} overlaps {other!r}")
        self.areas.insert(i, area)
        self._starts.insert(i, area.addr)
        return area

    def remove(self, area: vm_struct) -> None:
        i = self.areas.index(area)
        del self.areas[i], self._starts[i]

    def find_vm_area(self, addr: int) -> vm_struct | None:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self.areas[i].end:
            return self.areas[i]
        return None
