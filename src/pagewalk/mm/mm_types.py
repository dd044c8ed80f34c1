"""`struct mm_struct` and `struct vm_area_struct`, with the parts the walker uses.

Models include/linux/mm_types.h, the VMA tree lookups of mm/mmap.c
(`find_vma`, `vma_lookup`) and the per-VMA lock state of
include/linux/mmap_lock.h (`vma_start_write`, `vma_assert_write_locked`).
"""

import bisect
from dataclasses import dataclass, field


from .locks import RWSemaphore, Spinlock

__all__ = ["mm_struct", "vm_area_struct", "VM_READ", "VM_WRITE", "VM_EXEC", "VM_SHARED", "VM_IO", "VM_PFNMAP",
           "VM_HUGETLB", "VM_HUGEPAGE"]

VM_READ, VM_WRITE, VM_EXEC, VM_SHARED = 0x1, 0x2, 0x4, 0x8
VM_IO, VM_PFNMAP = 0x4000, 0x400
VM_HUGETLB = 0x400000
VM_HUGEPAGE = 0x20000000


@dataclass(eq=False)
class vm_area_struct:  # noqa: N801 - kernel name
    """One VMA: `[vm_start, vm_end)` with flags and what backs it."""
    vm_start: int
    vm_end: int
    vm_flags: int = VM_READ | VM_WRITE
    vm_pgoff: int = 0
    #: 'anon', 'file:NAME' or 'special:NAME' (as in the kernel traces).
    backing: str = "anon"
    #: hugetlb page size in bytes (huge_page_size(hstate_vma(vma))), or 0.
    huge_page_size: int = 0
    vm_mm: "mm_struct | None" = None
    #: Per-VMA lock: 'write' once vma_start_write() ran, 'read' under vma_start_read().
    lock_state: str | None = None

    def __post_init__(self):
        if self.vm_start >= self.vm_end:
            raise ValueError(f"VMA [{self.vm_start:#x}, {self.vm_end:#x}) is empty")

    @property
    def is_hugetlb(self) -> bool:
        return bool(self.vm_flags & VM_HUGETLB) and self.huge_page_size > 0

    @property
    def is_anonymous(self) -> bool:
        return self.backing == "anon"

    def pages(self) -> int:
        page = self.vm_mm.page_size if self.vm_mm else 4096
        return (self.vm_end - self.vm_start) // page

    def __repr__(self) -> str:
        return f"vma[{self.vm_start:#x}-{self.vm_end:#x} flags={self.vm_flags:#x} {self.backing}]"


@dataclass(eq=False)
class mm_struct:  # noqa: N801 - kernel name
    """An address space: its top-level table, VMAs and locks."""
    machine: "object"
    pgd: int
    name: str = "mm"
    vmas: list[vm_area_struct] = field(default_factory=list)
    mmap_lock: RWSemaphore = None
    page_table_lock: Spinlock = None

    def __post_init__(self):
        ctx = self.machine.context
        self.mmap_lock = RWSemaphore(f"{self.name}->mmap_lock", ctx)
        self.page_table_lock = Spinlock(f"{self.name}->page_table_lock", ctx)
        for vma in self.vmas:
            vma.vm_mm = self
        self.vmas.sort(key=lambda v: v.vm_start)
        self._starts = [v.vm_start for v in self.vmas]

    @property
    def page_size(self) -> int:
        return self.machine.arch.page_size

    @property
    def is_init_mm(self) -> bool:
        return self is self.machine.init_mm

    def find_vma(self, addr: int) -> vm_area_struct | None:
        """The first VMA with `vm_end > addr` (it may start above `addr`)."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self.vmas[i].vm_end:
            return self.vmas[i]
        return self.vmas[i + 1] if i + 1 < len(self.vmas) else None

    def vma_lookup(self, addr: int) -> vm_area_struct | None:
        """The VMA containing `addr`, or None."""
        vma = self.find_vma(addr)
        return vma if vma and vma.vm_start <= addr else None

    def next_vma(self, vma: vm_area_struct) -> vm_area_struct | None:
        i = self.vmas.index(vma)
        return self.vmas[i + 1] if i + 1 < len(self.vmas) else None
