"""Break-before-make (Arm ARM D8.16; linux: arch/arm64/mm/mmu.c, pgattr_change_is_safe()).

A live valid descriptor may be replaced by another valid one only if the
output address and memory type stay (Normal <-> Normal-Tagged allowed), nG
does not go 1 -> 0, and the mapping size does not change (block <-> table,
contiguous bit). With BBML2_NOABORT size changes are allowed.
"""

from ..arch.arm64.asm.pgtable_hwdef import (
    MT_NORMAL, MT_NORMAL_TAGGED, PTE_ATTRINDX_MASK, PTE_CONT, PTE_NG, PTE_TABLE_BIT, PTE_VALID,
)
from ..kernel.hooks import Violation

__all__ = ["BreakBeforeMake"]

NORMAL_TYPES = {MT_NORMAL << 2, MT_NORMAL_TAGGED << 2}


class BreakBeforeMake:
    """Called on every descriptor write: reports the changes of a live entry that need break-before-make."""

    def __call__(self, k, ptr: int, old: int, new: int) -> None:
        if not (old & PTE_VALID and new & PTE_VALID) or old == new:
            return
        hw = k.machine.arch.hw
        bbml2 = k.config.bbml2
        changed = old ^ new
        problems = []
        size_change = bool(changed & PTE_TABLE_BIT)
        if size_change and not bbml2:
            problems.append("block <-> table change of a live entry")
        if changed & PTE_CONT and not bbml2:
            problems.append("contiguous bit changed on a live entry")
        if not size_change and changed & hw.oa.mask(hw.page_shift):
            problems.append("output address changed on a live entry")
        if not size_change and changed & PTE_ATTRINDX_MASK and \
                {old & PTE_ATTRINDX_MASK, new & PTE_ATTRINDX_MASK} != NORMAL_TYPES:
            problems.append("memory type changed on a live entry")
        if old & PTE_NG and not new & PTE_NG:
            problems.append("nG cleared on a live entry")
        function = k.calls_in_progress[-1] if k.calls_in_progress else "?"
        for problem in problems:
            k.found_violations.append(Violation("break-before-make", function, None, ptr, old, new, problem))
