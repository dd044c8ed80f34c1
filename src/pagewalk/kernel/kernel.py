"""A simulated arm64 kernel: page tables in (simulated or dump-backed) RAM,
vmalloc areas, KFENCE, the TLB flush log, and pageattr in every era.

`Kernel` is a composition of declared components: the machine (memory,
software page-table levels, era, init_mm, context and log), the layout, the
vmalloc space, the mapper and the splitter, the pgtable split lock, and the
hooks (checkers). Its kernel functions (`k.set_memory_ro(addr, n)`,
`k.vmalloc(size)`, ...) are the functions of arch/arm64/mm/pageattr.py and
kernel/vmalloc.py declared as methods, so every call passes the hooks.
Build one with `pagewalk.boot()` or `pagewalk.boot_from_dump()`.
"""

from contextlib import contextmanager
from dataclasses import dataclass

from ..arch.arm64.mm import pageattr
from ..arch.arm64.mm.image import KernelImage
from ..arch.arm64.mm.layout import KernelLayout
from ..arch.arm64.mm.mapping import Mapper
from ..arch.arm64.mm.mmu import Splitter
from ..arch.arm64.mm.ptdump import ptdump_check_wx, render_ptdump
from ..errors import ArgumentError
from ..hw.aarch64.translate import Translation, kernel_address, translate
from ..mm import kfence as kfence_c
from ..mm.locks import Mutex
from ..mm.machine import Machine
from ..mm.vmalloc import VmallocSpace, vm_struct
from ..phys.memory import MASK64
from . import memory_hotplug
from . import vmalloc as vmalloc_c
from .config import KernelConfig
from .hooks import KernelHook, Violation, kernel_function

__all__ = ["Kernel", "Flush"]


@dataclass
class Flush:
    start: int
    end: int
    caller: str


class Kernel:
    """A simulated kernel: its state, and the kernel functions that change it.

    >>> from pagewalk import boot
    >>> k = boot(era="6.18", bbml2=True, rodata="full")
    >>> v = k.vmalloc(2 * 4096)
    >>> k.set_memory_ro(v, 2), k.translate(v).writable, k.violations
    (0, False, [])
    """

    def __init__(self, machine: Machine, config: KernelConfig, layout: KernelLayout, *, phys_offset: int,
                 data_start: int, vmalloc_start: int | None = None,
                 kfence_pool: tuple[int, int] | None = None, linear_map_requires_bbml2: bool = False,
                 image: KernelImage | None = None, banks: tuple[tuple[int, int], ...] = ()):
        self.machine, self.config, self.layout = machine, config, layout
        #: The image's section symbols (a booted kernel; None for one started from a dump).
        self.image = image
        #: RAM banks `(start, end)` the linear map covers (memblock.memory).
        self.banks = banks or tuple(machine.memory.ranges())
        #: PHYS_OFFSET (memstart_addr) and PAGE_OFFSET: the linear map's two ends.
        self.phys_offset = phys_offset
        self.page_offset = layout.page_offset
        #: What TTBR1_EL1 holds.
        self.ttbr1 = machine.arch.ttbr1_base(machine.swapper_pg_dir)
        self.vmalloc_space = VmallocSpace(layout.vmalloc_start if vmalloc_start is None else vmalloc_start,
                                          layout.vmalloc_end)
        self.mapper = Mapper(self)
        self.splitter = Splitter(self)
        self.pgtable_split_lock = Mutex("pgtable_split_lock", machine.context)
        #: [start, end) of the KFENCE pool in the linear map, when KFENCE is built in.
        self.kfence_pool = kfence_pool
        #: map_mem() left blocks that only BBML2 can split later (6.18+).
        self.linear_map_requires_bbml2 = linear_map_requires_bbml2
        #: Huge vmap promotions that fell back to the table because init_mm's lock was taken (F5).
        self.vmap_fallbacks = 0
        #: The walk_lock the seed's pageattr_ops use (a knob for the demo and tests).
        self.seed_walk_lock = pageattr.SEED_PAGEATTR_WALK_LOCK
        #: What the next RMM IPA-state call returns (realm failure injection).
        self.rmm_failure = 0
        #: Where the next data pages come from (tables come from the memory's frame allocator).
        self.data_cursor = data_start
        self.tlb_flushes: list[Flush] = []
        #: Observable events in order: ("flush", start, end), ("vm_unmap_aliases",), ("write", pa, old, new), ("rmm", ...).
        self.events: list[tuple] = []
        #: The checkers; see attach().
        self.hooks: list[KernelHook] = []
        #: What the checkers found.
        self.found_violations: list[Violation] = []
        #: Kernel functions running, outermost first.
        self.calls_in_progress: list[str] = []

    # -- hooks ------------------------------------------------------------------------------
    def attach(self, hook: KernelHook) -> None:
        """Add a checker: it sees every outermost kernel-function call and every descriptor write."""
        self.hooks.append(hook)

    def call(self, name: str, fn, *args):
        """Run kernel function `fn(self, *args)` (declared as `name`), with the hooks around the outermost call.

        Kernel functions take integers (addresses, page counts, flags): anything else is refused before
        the kernel function runs.
        """
        for i, arg in enumerate(args):
            if not isinstance(arg, (int, list, tuple)):
                raise ArgumentError(f"{name}(): argument {i + 1} is {arg!r}, not an integer")
        outer = not self.calls_in_progress
        self.calls_in_progress.append(name)
        flushes = len(self.tlb_flushes)
        if outer:
            for hook in self.hooks:
                hook.before_call(self, name, args)
        try:
            return fn(self, *args)
        finally:
            self.calls_in_progress.pop()
            if outer:
                for hook in self.hooks:
                    hook.after_call(self, name, args, self.tlb_flushes[flushes:])

    # -- state the kernel functions use ----------------------------------------------------------
    @property
    def warnings(self):
        """The kernel's WARN splats so far."""
        return self.machine.log.of_kind("warning")

    @property
    def violations(self) -> list[Violation]:
        """Checker reports, and the kernel's own lock reports: sleeping in atomic context, lock assertions."""
        found = list(self.found_violations)
        for r in self.machine.log:
            if r.kind in ("might_sleep", "assertion"):
                found.append(Violation("lock-context" if r.kind == "might_sleep" else "lock-assertion",
                                       r.site, None, None, None, None, r.message))
        return found

    @property
    def rodata_full(self) -> bool:
        return self.config.rodata_full

    def page_address(self, pfn: int) -> int:
        """`page_address()`: the linear-map VA of a page frame."""
        return ((pfn * self.machine.arch.page_size - self.phys_offset) & MASK64) | self.page_offset

    def is_linear_address(self, addr: int) -> bool:
        """`__is_lm_address()`: inside the linear map [PAGE_OFFSET, PAGE_END)."""
        return self.page_offset <= addr < self.layout.page_end

    def is_kfence_address(self, addr: int) -> bool:
        return self.kfence_pool is not None and self.kfence_pool[0] <= addr < self.kfence_pool[1]

    def write_entry(self, ptr: int, val: int) -> None:
        """WRITE_ONCE of a descriptor, seen by the hooks."""
        memory, val = self.machine.memory, val & MASK64
        if self.hooks:
            old = memory.read_u64(ptr)
            self.events.append(("write", ptr, old, val))
            for hook in self.hooks:
                hook.on_write(self, ptr, old, val)
        memory.write_u64(ptr, val)

    def flush_tlb_kernel_range(self, start: int, end: int, caller: str = "__change_memory_common") -> None:
        self.tlb_flushes.append(Flush(start, end, caller))
        self.events.append(("flush", start, end))

    def vm_unmap_aliases(self) -> None:
        """Purge lazily-unmapped vmap areas: their PTEs went at unmap time; flush what the TLB may hold."""
        self.events.append(("vm_unmap_aliases",))
        space = self.vmalloc_space
        for start, end in space.lazy_aliases:
            self.flush_tlb_kernel_range(start, end, "vm_unmap_aliases")
        space.lazy_aliases.clear()
        space.purge()

    def register_area(self, addr: int, size: int, flags: int, pages=(), page_order: int = 0,
                      caller: str = "") -> vm_struct:
        """Add a `struct vm_struct` (size including the guard page unless VM_NO_GUARD)."""
        return self.vmalloc_space.add(vm_struct(addr, size, flags, list(pages), caller, page_order))

    def alloc_data_pages(self, n: int, align: int = 1) -> list[int] | None:
        """PFNs of `n` physically contiguous data pages (reserved against table allocation), or None
        when RAM has no such run left (the model hands out data pages bottom-up, tables top-down)."""
        page, memory = self.machine.arch.page_size, self.machine.memory
        start = -(-self.data_cursor // (align * page)) * (align * page)
        if not memory.is_backed(start, n * page) or any(memory.is_live(start + i * page) for i in range(n)):
            return None
        self.data_cursor = start + n * page
        memory.reserve(start, start + n * page)
        return [start // page + i for i in range(n)]

    def rmm_set_ipa_state(self, addr: int, size: int, protected: bool) -> int:
        """The RMM call that changes an IPA range's state; `k.rmm_failure` makes it fail."""
        self.events.append(("rmm", addr, size, "protected" if protected else "shared"))
        return self.rmm_failure

    # -- kernel functions (mm/vmalloc.c, mm/kfence, arch/arm64/mm/pageattr.c and mmu.c) --------------
    vmalloc = kernel_function(vmalloc_c.vmalloc)
    vmalloc_huge = kernel_function(vmalloc_c.vmalloc_huge)
    vmap = kernel_function(vmalloc_c.vmap)
    ioremap = kernel_function(vmalloc_c.ioremap)
    vfree = kernel_function(vmalloc_c.vfree)
    add_memory = kernel_function(memory_hotplug.add_memory)
    remove_memory = kernel_function(memory_hotplug.remove_memory)
    pagemap_range = kernel_function(memory_hotplug.pagemap_range)
    kfence_protect_page = kernel_function(kfence_c.kfence_protect_page)
    kfence_init_late = kernel_function(kfence_c.kfence_init_late)
    set_memory_ro = kernel_function(pageattr.set_memory_ro)
    set_memory_rw = kernel_function(pageattr.set_memory_rw)
    set_memory_x = kernel_function(pageattr.set_memory_x)
    set_memory_nx = kernel_function(pageattr.set_memory_nx)
    set_memory_valid = kernel_function(pageattr.set_memory_valid)
    set_direct_map_invalid_noflush = kernel_function(pageattr.set_direct_map_invalid_noflush)
    set_direct_map_default_noflush = kernel_function(pageattr.set_direct_map_default_noflush)
    set_direct_map_valid_noflush = kernel_function(pageattr.set_direct_map_valid_noflush)
    kernel_page_present = kernel_function(pageattr.kernel_page_present)
    split_kernel_leaf_mapping = kernel_function(pageattr.split_kernel_leaf_mapping)
    set_memory_encrypted = kernel_function(pageattr.set_memory_encrypted)
    set_memory_decrypted = kernel_function(pageattr.set_memory_decrypted)
    change_memory_common = kernel_function(pageattr.change_memory_common)

    # -- looking at it ----------------------------------------------------------------------------
    def translate(self, va: int) -> Translation:
        """The MMU's view of a kernel VA (same result type as KernelDump.translate)."""
        return translate(self.machine.memory, self.machine.arch.hw, self.ttbr1, kernel_address(va))

    def ptdump(self) -> str:
        """The kernel_page_tables text of this kernel."""
        return render_ptdump(self.machine, self.layout.markers(), self.layout.ptdump_start)

    def check_wx(self):
        """`ptdump_check_wx()` on this kernel's tables (`.wx_summary()` is the line the kernel prints)."""
        return ptdump_check_wx(self.machine, self.layout.ptdump_start)

    def allocation_failure(self, nth: int | None) -> None:
        """Make the `nth` next table-page allocation fail (None: disarm)."""
        self.machine.memory.fail_nth_allocation(nth)

    @contextmanager
    def softirq(self):
        """Run the body as a softirq handler (atomic context)."""
        with self.machine.context.in_softirq():
            yield self


# The kernel's own names start with two underscores, which Python would mangle inside the class body.
Kernel.__change_memory_common = kernel_function(pageattr.__change_memory_common)
Kernel.__kernel_map_pages = kernel_function(pageattr.__kernel_map_pages)
