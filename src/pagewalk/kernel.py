"""A simulated arm64 kernel: page tables in (simulated or dump-backed) RAM,
vmalloc areas, KFENCE, the TLB, and pageattr in every era.

`boot()` builds one the way the kernel builds its address space;
`boot_from_dump()` starts one from a real kernel's tables. The kernel-named
functions (`k.set_memory_ro(addr, n)`, `k.set_memory_valid(addr, n, enable)`,
`k.set_direct_map_invalid_noflush(addr)`, ...) return what the kernel
returns; `k.warnings` holds its splats, `k.violations` the checkers' reports.
"""

from contextlib import contextmanager
from dataclasses import dataclass

from .arch.arm64.mmu import Splitter
from .arch.arm64.pageattr import Pageattr, Unsupported
from .arch.arm64.translate import translate
from .errors import PagewalkError
from .mm.era import Era
from .mm.locks import Mutex
from .mm.machine import ERA_VERSIONS, Machine
from .mm.vmalloc import VmallocSpace, vm_struct

MASK64 = (1 << 64) - 1
RODATA = ("full", "on", "noalias", "off")
#: v6.17 made rodata_full the default and "rodata=on" mean full; "noalias" is the non-full mode.
RODATA_FULL_DEFAULT_SINCE = (6, 17)


@dataclass
class KernelConfig:
    """Boot configuration: build options, command line and CPU features."""
    era: Era = Era.LATER
    page_size: int = 4096
    va_bits: int = 48
    vabits_actual: int | None = None
    rodata: str = "full"
    bbml2: bool = False
    kfence: bool = False
    kfence_early_init: bool = True
    kpti: bool = False
    bti: bool = False
    debug_pagealloc: bool = False
    realm: bool = False
    ram: int = 1 << 30
    ram_base: int = 0x40000000
    caps_finalized: bool = True
    page_allocator_up: bool = True
    online_cpus: int = 1
    #: UP-6.18 with the Nov-2025 atomic-context fix (False: as first merged).
    nov2025_fix: bool = True
    #: PROT_NS_SHARED: the realm's "shared" IPA bit (the top bit of a 48-bit IPA space).
    realm_shared_bit: int = 1 << 47
    #: Kernel version whose predicates apply (default: the era's).
    version: tuple[int, int, int] | None = None

    def __post_init__(self):
        self.era = Era.parse(self.era)
        if self.rodata not in RODATA:
            raise ValueError(f"rodata={self.rodata!r}: one of {', '.join(RODATA)}")
        self.version = self.version or ERA_VERSIONS[self.era]

    @property
    def rodata_full(self) -> bool:
        """`rodata_full` as this era parses `rodata=` (arm64-pageattr.md §1.5)."""
        if self.version >= RODATA_FULL_DEFAULT_SINCE:
            return self.rodata in ("full", "on")
        return self.rodata == "full"

    @property
    def bbml2_system_ready(self) -> bool:
        """`system_supports_bbml2_noabort()`: false until capabilities are finalized."""
        return self.bbml2 and self.caps_finalized


@dataclass
class Flush:
    start: int
    end: int
    caller: str


class Kernel:
    """A simulated kernel. Build with `boot()` or `boot_from_dump()`."""

    def __init__(self, machine: Machine, config: KernelConfig):
        self.machine, self.config = machine, config
        self.vmalloc_space = VmallocSpace()
        self.pageattr = Pageattr(self)
        self.splitter = Splitter(self)
        self.pgtable_split_lock = Mutex("pgtable_split_lock", machine.context)
        self.tlb_flushes: list[Flush] = []
        #: Observable events in order: ("flush", start, end), ("vm_unmap_aliases",), ("write", pa, old, new).
        self.events: list[tuple] = []
        self.tables_created: list[int] = []
        self.lazy_mmu_depth = 0
        self.kfence_pool: tuple[int, int] | None = None
        self.linear_map_requires_bbml2 = False
        self.seed_walk_lock = 3            # PGWALK_NOLOCK, as the seed's pageattr_ops set it
        self.rmm_failure = 0               # what the next RMM IPA-state call returns
        #: Hooks called as (ptr, old, new) on every descriptor write (the checkers).
        self.write_hooks: list = []
        self.phys_offset = config.ram_base
        self.page_offset = (1 << 64) - (1 << config.va_bits)
        self.ttbr1 = machine.arch.ttbr1_base(machine.swapper_pg_dir)

    # -- kernel-named helpers ---------------------------------------------------
    @property
    def warnings(self):
        return self.machine.log.of_kind("warning")

    @property
    def log(self):
        return self.machine.log

    @property
    def violations(self) -> list:
        """Checker reports: break-before-make, stale TLB, contiguous groups, sleeping in atomic context."""
        from .check import Violation
        found = list(getattr(self, "found_violations", []))
        for r in self.machine.log:
            if r.kind in ("might_sleep", "assertion"):
                found.append(Violation("lock-context" if r.kind == "might_sleep" else "lock-assertion",
                                       r.site, None, None, None, None, r.message))
        return found

    @property
    def rodata_full(self) -> bool:
        return self.config.rodata_full

    @property
    def later(self) -> bool:
        """7.x semantics (present-invalid blocks, split gating)."""
        return self.machine.era is Era.LATER

    def page_address(self, pfn: int) -> int:
        """`page_address()`: the linear-map VA of a page frame."""
        return ((pfn * self.machine.arch.page_size - self.phys_offset) & MASK64) | self.page_offset

    def is_kfence_address(self, addr: int) -> bool:
        return self.kfence_pool is not None and self.kfence_pool[0] <= addr < self.kfence_pool[1]

    def kfence_late(self) -> bool:
        """`arm64_kfence_can_set_direct_map()`: KFENCE built in but not initialised early."""
        return self.config.kfence and not self.config.kfence_early_init

    def can_set_direct_map(self) -> bool:
        c = self.config
        realm = c.realm and self.machine.era not in (Era.V6_1, Era.V6_12)
        return self.rodata_full or c.debug_pagealloc or self.kfence_late() or realm

    def force_pte_mapping(self) -> bool:
        """UP-6.18: the linear map must be PTE-only (no BBML2 to split it later)."""
        c = self.config
        bbml2 = c.bbml2_system_ready if c.caps_finalized else c.bbml2
        return c.debug_pagealloc or (not bbml2 and (self.rodata_full or self.kfence_late() or c.realm))

    @contextmanager
    def lazy_mmu(self):
        self.lazy_mmu_depth += 1
        try:
            yield
        finally:
            self.lazy_mmu_depth -= 1

    def write_entry(self, ptr: int, val: int) -> None:
        """WRITE_ONCE of a descriptor, seen by the checkers."""
        memory = self.machine.memory
        if self.write_hooks:
            old = memory.read_u64(ptr)
            self.events.append(("write", ptr, old, val & MASK64))
            for hook in self.write_hooks:
                hook(ptr, old, val & MASK64)
        memory.write_u64(ptr, val & MASK64)

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

    def register_area(self, addr: int, size: int, flags: int, pages=(), page_order: int = 0,
                      caller: str = "") -> vm_struct:
        """Add a `struct vm_struct` (size including the guard page unless VM_NO_GUARD)."""
        return self.vmalloc_space.add(vm_struct(addr, size, flags, list(pages), caller, page_order))

    # -- memory for data pages (tables come from the RAM's frame allocator) -----------
    def alloc_data_pages(self, n: int, align: int = 1) -> list[int]:
        """PFNs of `n` physically contiguous data pages (reserved against table allocation)."""
        page = self.config.page_size
        start = -(-self.data_cursor // (align * page)) * (align * page)
        self.data_cursor = start + n * page
        self.machine.memory.reserve(start, start + n * page)
        return [start // page + i for i in range(n)]

    # -- vmalloc and KFENCE ----------------------------------------------------------
    def vmalloc(self, size: int) -> int:
        from .boot import vmalloc
        return vmalloc(self, size)

    def vmalloc_huge(self, size: int) -> int:
        from .boot import vmalloc
        return vmalloc(self, size, huge=True)

    def vmap(self, pfns: list[int]) -> int:
        from .boot import vmap
        return vmap(self, pfns)

    def vfree(self, addr: int) -> None:
        from .boot import vfree
        vfree(self, addr)

    def kfence_protect_page(self, addr: int, protect: bool) -> bool:
        from .mm.kfence import kfence_protect_page
        return kfence_protect_page(self, addr, protect)

    # -- pageattr, kernel names ---------------------------------------------------
    def set_memory_ro(self, addr: int, numpages: int) -> int:
        return self.pageattr.set_memory_ro(addr, numpages)

    def set_memory_rw(self, addr: int, numpages: int) -> int:
        return self.pageattr.set_memory_rw(addr, numpages)

    def set_memory_x(self, addr: int, numpages: int) -> int:
        return self.pageattr.set_memory_x(addr, numpages)

    def set_memory_nx(self, addr: int, numpages: int) -> int:
        return self.pageattr.set_memory_nx(addr, numpages)

    def set_memory_valid(self, addr: int, numpages: int, enable: int) -> int:
        return self.pageattr.set_memory_valid(addr, numpages, enable)

    def set_direct_map_invalid_noflush(self, addr: int) -> int:
        return self.pageattr.set_direct_map_invalid_noflush(addr)

    def set_direct_map_default_noflush(self, addr: int) -> int:
        return self.pageattr.set_direct_map_default_noflush(addr)

    def set_direct_map_valid_noflush(self, addr: int, nr: int, valid: bool) -> int:
        return self.pageattr.set_direct_map_valid_noflush(addr, nr, valid)

    def kernel_page_present(self, addr: int) -> bool:
        return self.pageattr.kernel_page_present(addr)

    def split_kernel_leaf_mapping(self, start: int, end: int) -> int:
        return self.pageattr.split_kernel_leaf_mapping(start, end)

    def set_memory_encrypted(self, addr: int, numpages: int) -> int:
        return self.pageattr.set_memory_encrypted(addr, numpages)

    def set_memory_decrypted(self, addr: int, numpages: int) -> int:
        return self.pageattr.set_memory_decrypted(addr, numpages)

    def is_linear_address(self, addr: int) -> bool:
        """`__is_lm_address()`: inside the linear map [PAGE_OFFSET, PAGE_END)."""
        end = getattr(self.layout, "modules_vaddr", (1 << 64) - (1 << (self.config.va_bits - 1)))
        return self.page_offset <= addr < end

    def rmm_set_ipa_state(self, addr: int, size: int, protected: bool) -> int:
        """The RMM call that changes an IPA range's state; `k.rmm_failure` makes it fail."""
        self.events.append(("rmm", addr, size, "protected" if protected else "shared"))
        return self.rmm_failure

    def change_memory_common(self, addr: int, numpages: int, set_mask: int, clear_mask: int) -> int:
        return self.pageattr.change_memory_common(addr, numpages, set_mask, clear_mask)

    def __getattr__(self, name: str):
        if name in ("__change_memory_common", "___change_memory_common", "__kernel_map_pages"):
            return getattr(self.pageattr, f"_Pageattr{name}")
        raise AttributeError(name)

    # -- looking at it -------------------------------------------------------------
    def translate(self, va: int):
        """The MMU's view of a kernel VA (same result type as KernelDump.translate)."""
        return translate(self.machine.memory, self.machine.arch.hw, self.ttbr1, va)

    def ptdump(self) -> str:
        """The kernel_page_tables text of this kernel."""
        from .arch.arm64.ptdump import render_ptdump
        return render_ptdump(self.machine, self.layout.markers(), self.layout.page_offset if
                             self.machine.era is Era.V6_1 else self.machine.arch.hw.ttbr1_base)

    def allocation_failure(self, nth: int | None) -> None:
        """Make the `nth` next table-page allocation fail (None: disarm)."""
        self.machine.memory.fail_nth_allocation(nth)

    @contextmanager
    def softirq(self):
        """Run the body as a softirq handler (atomic context)."""
        with self.machine.context.in_softirq():
            yield self


def boot_from_dump(path, era: "Era | str | None" = None, vmallocinfo=None, **config) -> Kernel:
    """A simulated kernel whose starting state is a real kernel's page tables.

    `path` may also be an open KernelDump. The dump stays read-only underneath; written pages are copied, and new
    tables are allocated outside its RAM. `era` defaults to the one the dump's
    kernel runs. `vmallocinfo` (a /proc/vmallocinfo text or path) registers
    the real vm areas.
    """
    from .dump import KernelDump
    from .phys.overlay import OverlayMemory
    dump = path if isinstance(path, KernelDump) else KernelDump.open(path, search_config=False)
    era = Era.for_kernel(dump.version) if era is None else Era.parse(era)
    cfg = KernelConfig(era=era, page_size=dump.page_size, va_bits=dump.va_bits, vabits_actual=dump.vabits_actual,
                       version=dump.version, **config)
    memory = OverlayMemory(dump.memory, page_size=dump.page_size)
    machine = Machine(memory, dump.arch, era, dump.swapper_pg_dir)
    k = Kernel(machine, cfg)
    k.phys_offset = dump.vmcoreinfo.phys_offset
    k.page_offset = dump.layout.page_offset
    k.dump = dump
    _prepare_allocations(k, dump)
    if vmallocinfo is not None:
        from .vmallocinfo import register_vmallocinfo
        register_vmallocinfo(k, vmallocinfo)
    return k


def _prepare_allocations(k: Kernel, dump) -> None:
    """Where this model puts new vmalloc areas and data pages in a real kernel's layout:
    a free 1 GiB-aligned window in the middle of the vmalloc space, pages from the top of RAM."""
    from .arch.arm64.mapping import Mapper
    layout = dump.layout
    k.layout = layout
    k.mapper = Mapper(k)
    middle = layout.vmalloc_start + (layout.vmalloc_end - layout.vmalloc_start) // 2
    k.vmalloc_cursor = middle & ~((1 << 30) - 1)
    ram_end = max(end for _, end in dump.memory.ranges())
    k.data_cursor = ram_end - (256 << 20)


__all__ = ["Kernel", "KernelConfig", "boot_from_dump", "Unsupported", "PagewalkError"]
