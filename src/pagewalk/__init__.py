"""pagewalk: Linux's generic page-table walker and arm64 page tables, executable.

Kernel names are Python names: `walk_page_range`, `mm_walk_ops`,
`ACTION_SUBTREE`, `PGWALK_RDLOCK`, ... The same walker runs over simulated
RAM and over real kernel dumps (`KernelDump`).
"""

from .boot import boot
from .dump import KernelDump
from .kernel import Kernel, KernelConfig, boot_from_dump
from .errors import DumpError, PagewalkError
from .mm.era import Era
from .mm.machine import Machine
from .mm.mm_types import mm_struct, vm_area_struct
from .mm.pagewalk import (
    ACTION_AGAIN, ACTION_CONTINUE, ACTION_SUBTREE, EINVAL, ENOMEM, OPS_MAY_AVOID_LOCK, OPS_MAY_INSTALL_PTE,
    PGWALK_NOLOCK, PGWALK_RDLOCK, PGWALK_VMA_RDLOCK_VERIFY, PGWALK_WRLOCK, PGWALK_WRLOCK_VERIFY, address_space,
    mm_walk, mm_walk_ops, use_machine, walk_kernel_page_table_range, walk_kernel_page_table_range_lockless,
    walk_page_mapping, walk_page_range, walk_page_range_debug, walk_page_range_mm, walk_page_range_novma,
    walk_page_range_vma, walk_page_vma,
)

__all__ = [
    "boot", "boot_from_dump", "Kernel", "KernelConfig", "KernelDump", "DumpError", "PagewalkError", "Era", "Machine", "mm_struct", "vm_area_struct",
    "ACTION_AGAIN", "ACTION_CONTINUE", "ACTION_SUBTREE", "EINVAL", "ENOMEM", "OPS_MAY_AVOID_LOCK",
    "OPS_MAY_INSTALL_PTE", "PGWALK_NOLOCK", "PGWALK_RDLOCK", "PGWALK_VMA_RDLOCK_VERIFY", "PGWALK_WRLOCK",
    "PGWALK_WRLOCK_VERIFY", "address_space", "mm_walk", "mm_walk_ops", "use_machine",
    "walk_kernel_page_table_range", "walk_kernel_page_table_range_lockless", "walk_page_mapping",
    "walk_page_range", "walk_page_range_debug", "walk_page_range_mm", "walk_page_range_novma",
    "walk_page_range_vma", "walk_page_vma",
]
