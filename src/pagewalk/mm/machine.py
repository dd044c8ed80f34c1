"""One modelled machine: physical memory, the arm64 page-table layout, the
kernel era, the execution context and its log, and `init_mm`."""

from dataclasses import dataclass, field

from ..arch.arm64.pgtable import Arm64PageTables
from .context import ExecutionContext
from .era import Era
from .log import KernelLog
from .mm_types import mm_struct


@dataclass(eq=False)
class Machine:
    memory: object
    arch: Arm64PageTables
    era: Era
    swapper_pg_dir: int
    context: ExecutionContext = field(default_factory=ExecutionContext)
    #: CONFIG_PER_VMA_LOCK (per-VMA lock steps of the walker).
    per_vma_lock: bool = True
    init_mm: mm_struct = None

    def __post_init__(self):
        self.init_mm = mm_struct(self, self.swapper_pg_dir, name="init_mm")

    @property
    def log(self) -> KernelLog:
        return self.context.log

    def new_mm(self, pgd: int, vmas=(), name: str = "mm") -> mm_struct:
        return mm_struct(self, pgd, name=name, vmas=list(vmas))
