"""Break-before-make (Arm ARM D8.16; linux: arch/arm64/mm/mmu.c, pgattr_change_is_safe()).

A live valid descriptor may be replaced by another valid one only if the
output address and memory type stay (Normal <-> Normal-Tagged allowed), nG
does not go 1 -> 0, and the mapping size does not change (block <-> table,
contiguous bit). With BBML2_NOABORT size changes are allowed.
"""

from . import Violation

ADDRESS = ((1 << 50) - 1) & ~0xFFF
ATTRINDX, NG, CONT, TYPE = 7 << 2, 1 << 11, 1 << 52, 1 << 1


class BreakBeforeMake:
    def __init__(self, kernel):
        self.k = kernel

    def __call__(self, ptr: int, old: int, new: int) -> None:
        if not (old & 1 and new & 1) or old == new:
            return
        k = self.k
        bbml2 = k.config.bbml2
        problems = []
        size_change = bool((old ^ new) & TYPE)
        if size_change and not bbml2:
            problems.append("block <-> table change of a live entry")
        if (old ^ new) & CONT and not bbml2:
            problems.append("contiguous bit changed on a live entry")
        if not size_change and (old ^ new) & ADDRESS:
            problems.append("output address changed on a live entry")
        if not size_change and (old ^ new) & ATTRINDX and {old & ATTRINDX, new & ATTRINDX} != {0, 4}:
            problems.append("memory type changed on a live entry")
        if old & NG and not new & NG:
            problems.append("nG cleared on a live entry")
        for problem in problems:
            k.found_violations.append(Violation("break-before-make", k.calls_in_progress[-1] if
                                                k.calls_in_progress else "?", None, ptr, old, new, problem))
