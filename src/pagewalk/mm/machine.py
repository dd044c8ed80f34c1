"""One modelled machine: physical memory, the arm64 page-table layout, the
kernel era, the execution context and its log, and `init_mm`."""

from dataclasses import dataclass, field

from ..arch.arm64.asm.pgtable import Arm64PageTables
from ..phys.ram import SimulatedRAM
from .context import ExecutionContext
from .era import Era
from .locks import PercpuRWSemaphore, StaticKey
from .log import KernelLog
from .mm_types import mm_struct

__all__ = ["Machine"]


@dataclass(eq=False)
class Machine:
    """What the walker runs on: memory, the arm64 software levels, the era, `init_mm`.

    >>> m = Machine.simulated("6.18")
    >>> m.init_mm.name, m.arch.pgtable_levels, m.era.has_lockless_entry
    ('init_mm', 4, True)
    """
    memory: object
    arch: Arm64PageTables
    era: Era
    swapper_pg_dir: int
    context: ExecutionContext = field(default_factory=ExecutionContext)
    #: CONFIG_PER_VMA_LOCK (per-VMA lock steps of the walker).
    per_vma_lock: bool = True
    init_mm: mm_struct = None
    #: mem_hotplug_lock: get_online_mems() / mem_hotplug_begin() (F33).
    mem_hotplug_lock: PercpuRWSemaphore = None
    #: Static keys by name (e.g. 6.18's arm64_ptdump_lock_key, F22).
    static_keys: dict = field(default_factory=dict)
    #: Code variants the kernel runs instead of its era's (KernelConfig.variants).
    variants: frozenset = frozenset()

    def __post_init__(self):
        self.init_mm = mm_struct(self, self.swapper_pg_dir, name="init_mm")
        self.mem_hotplug_lock = PercpuRWSemaphore("mem_hotplug_lock", self.context)

    def static_key(self, name: str) -> StaticKey:
        """The static key `name` (created off on first use)."""
        if name not in self.static_keys:
            self.static_keys[name] = StaticKey(name, context=self.context)
        return self.static_keys[name]

    @property
    def log(self) -> KernelLog:
        return self.context.log

    @classmethod
    def simulated(cls, era: "Era | str" = "6.18", *, page_size: int = 4096, va_bits: int = 48,
                  vabits_actual: int | None = None, ram: int = 1 << 30, ram_base: int = 0x40000000,
                  version: tuple[int, int, int] | None = None, banks=None,
                  swapper_pg_dir: int | None = None) -> "Machine":
        """A machine on simulated RAM with an empty swapper_pg_dir.

        `va_bits` is the build's VA_BITS, `vabits_actual` the CPU's (default the same).
        The kernel version that selects arch predicates defaults to the era's.
        `banks` (`[(start, end), ...]`) replaces `ram_base`/`ram` with several RAM banks;
        `swapper_pg_dir` places the root table (default: the allocator's first page).
        """
        era = Era.parse(era)
        version = version or era.version
        arch = Arm64PageTables(page_size, va_bits, vabits_actual or va_bits, version)
        memory = SimulatedRAM(ram_base, ram, page_size, banks=banks)
        return cls(memory, arch, era, memory.alloc_page() if swapper_pg_dir is None else swapper_pg_dir)

    def new_user_mm(self, vmas=(), name: str = "mm") -> mm_struct:
        """A user mm with a freshly allocated, empty top-level table."""
        pgd = self.memory.alloc_page()
        if pgd is None:
            raise MemoryError("no page for a new pgd")
        return self.new_mm(pgd, vmas, name)

    def new_mm(self, pgd: int, vmas=(), name: str = "mm") -> mm_struct:
        return mm_struct(self, pgd, name=name, vmas=list(vmas))
