"""A TLB model: translations are cached on use and dropped by flush_tlb_kernel_range().

Before a checked call the pages it targets are "used" (their valid
translations cached, as if the kernel had just touched them); after it, any
cached translation that no flush covered and that no longer matches the
tables is stale. Invalid entries are never cached, so a pure make-valid needs
no flush (arm64-pageattr.md §1.4, §9.6).
"""

from ..arch.arm64.asm.pgtable_hwdef import PTE_CONT
from ..kernel.hooks import Violation

__all__ = ["TlbModel", "check_contiguous_groups", "call_range"]

MAX_PAGES = 4096
SINGLE_PAGE = ("set_direct_map_invalid_noflush", "set_direct_map_default_noflush", "kfence_protect_page")


def call_range(kernel, name: str, args) -> tuple[int, int]:
    """(first page, number of pages) a checked call targets."""
    page = kernel.config.page_size
    start = args[0] & ~(page - 1)
    if name in SINGLE_PAGE:
        return start, 1
    if name == "vfree":
        area = kernel.vmalloc_space.find_vm_area(args[0])
        return start, area.usable_size(page) // page if area else 0
    if name == "__change_memory_common":
        return start, -(-args[1] // page)
    if name == "split_kernel_leaf_mapping":
        return start, (args[1] - args[0]) // page
    return start, max(0, int(args[1]))


class TlbModel:
    """The translations a checked call may have cached, and whether they went stale without a flush."""

    def __init__(self):
        self.entries: dict[int, tuple] = {}

    def _pages(self, k, name: str, args) -> list[int]:
        page = k.config.page_size
        start, n = call_range(k, name, args)
        pages = [start + i * page for i in range(min(n, MAX_PAGES))]
        area = k.vmalloc_space.find_vm_area(args[0])
        if area is not None and name in ("set_memory_ro", "set_memory_rw"):
            pages += [k.page_address(pfn) for pfn in area.pages[:MAX_PAGES]]
        return pages

    def fill_for(self, k, name: str, args) -> None:
        self.entries.clear()
        for va in self._pages(k, name, args):
            t = k.translate(va)
            if t.mapped:
                self.entries[va] = (t.pa, t.writable, t.executable)

    def check_after(self, k, name: str, flushes, deliberate: bool) -> None:
        page = k.config.page_size
        for va, cached in self.entries.items():
            if any(f.start & -page <= va < f.end for f in flushes):     # a flush covers whole pages
                continue
            t = k.translate(va)
            now = (t.pa, t.writable, t.executable) if t.mapped else None
            if now != cached and not deliberate:
                k.found_violations.append(Violation(
                    "stale-tlb", name, va, None, None, None,
                    f"cached {_fmt(cached)} but the tables now say {_fmt(now)} and no flush covered it"))
        self.entries.clear()


def _fmt(entry) -> str:
    if entry is None:
        return "not mapped"
    pa, w, x = entry
    return f"pa {pa:#x} {'RW' if w else 'ro'} {'x' if x else 'NX'}"


def check_contiguous_groups(k, name: str, args) -> None:
    """§9.7: every contiguous group the call touched has identical attributes (or no hint)."""
    if name == "vfree":
        return
    page = k.config.page_size
    hw = k.machine.arch.hw
    start, n = call_range(k, name, args)
    seen = set()
    for i in range(min(n, 64)):
        t = k.translate(start + i * page)
        if not t.steps or not t.steps[-1].value & PTE_CONT:
            continue
        step = t.steps[-1]
        group = hw.contiguous_entries(step.level)
        first = step.entry_pa & ~(8 * group - 1)
        if first in seen:
            continue
        seen.add(first)
        address = hw.oa.mask(hw.level_shift(step.level))
        attrs = {int(v) & ~address for v in k.machine.memory.read_table(first, group)}
        if len(attrs) > 1:
            k.found_violations.append(Violation(
                "contiguous-group", name, t.va, first, None, None,
                f"{group} entries under one contiguous hint carry {len(attrs)} different attribute sets"))
