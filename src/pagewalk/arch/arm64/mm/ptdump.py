"""arm64's page-table dump format and `note_page()` (linux: arch/arm64/mm/ptdump.c).

The output format is data, as in the kernel: `pte_bits[]` (mask, value, set
text, clear text), level names, and the address markers (layout.py). A
`PgState` is fed notes `(addr, level, val)` by the generic walker user
(mm/ptdump.py) and emits rows — markers and ranges — to a sink; renderers
turn rows into the kernel's text or JSON. The W^X check is the same state
machine with `check_wx` (`note_prot_wx()`, `note_prot_uxn()`).
Spec: arm64-ptdump.md §4-§7.
"""

from dataclasses import dataclass

import numpy as np

import io

from ....mm.ptdump import ptdump_walk_pgd
from ....phys.memory import MASK64
from ..asm.pgtable_hwdef import (
    LEVEL_NAMES, MT_DEVICE_nGnRE, MT_DEVICE_nGnRnE, MT_NORMAL, MT_NORMAL_NC, MT_NORMAL_TAGGED, PMD_TYPE_MASK,
    PMD_TYPE_SECT, PTE_AF, PTE_ATTRINDX_MASK, PTE_CONT, PTE_GP, PTE_NG, PTE_PXN, PTE_RDONLY, PTE_SHARED,
    PTE_TABLE_BIT, PTE_USER, PTE_UXN, PTE_VALID,
)
from .layout import Marker

__all__ = ["pte_bits", "level_names", "format_prot", "format_size", "Range", "PgState", "TextSink", "NullSink",
           "RowSink", "render_ptdump", "ptdump_check_wx", "arm64_ptdump_walk_pgd", "uses_ptdump_lock_key",
           "BLK_TYPE_MASK_SINCE", "RUNTIME_FOLD_SINCE"]
#: v6.13 (commit dc9b74a76320): BLK tests "bit 1 clear and bit 0 set", not just bit 1.
BLK_TYPE_MASK_SINCE = (6, 13)
#: v6.9 (LPA2): fixed level names and note_page()'s run-time fold remap.
RUNTIME_FOLD_SINCE = (6, 9)
UNITS = "KMGTPE"


@dataclass(frozen=True)
class ProtBits:
    """One attribute column: printed `set` when `prot & mask == val`, else `clear`."""
    mask: int
    val: int
    set: str
    clear: str | None


def pte_bits(version: tuple[int, int, int]) -> tuple[ProtBits, ...]:
    """`pte_bits[]` of the given kernel version."""
    if version >= BLK_TYPE_MASK_SINCE:
        blk = ProtBits(PMD_TYPE_MASK, PMD_TYPE_SECT, "BLK", "   ")
    else:
        blk = ProtBits(PTE_TABLE_BIT, PTE_TABLE_BIT, "   ", "BLK")
    mt = lambda index, name: ProtBits(PTE_ATTRINDX_MASK, index << 2, name, None)  # noqa: E731
    return (
        ProtBits(PTE_VALID, PTE_VALID, " ", "F"),
        ProtBits(PTE_USER, PTE_USER, "USR", "   "),
        ProtBits(PTE_RDONLY, PTE_RDONLY, "ro", "RW"),
        ProtBits(PTE_PXN, PTE_PXN, "NX", "x "),
        ProtBits(PTE_SHARED, PTE_SHARED, "SHD", "   "),
        ProtBits(PTE_AF, PTE_AF, "AF", "  "),
        ProtBits(PTE_NG, PTE_NG, "NG", "  "),
        ProtBits(PTE_CONT, PTE_CONT, "CON", "   "),
        blk,
        ProtBits(PTE_UXN, PTE_UXN, "UXN", "   "),
        ProtBits(PTE_GP, PTE_GP, "GP", "  "),
        mt(MT_DEVICE_nGnRnE, "DEVICE/nGnRnE"), mt(MT_DEVICE_nGnRE, "DEVICE/nGnRE"), mt(MT_NORMAL_NC, "MEM/NORMAL-NC"),
        mt(MT_NORMAL, "MEM/NORMAL"), mt(MT_NORMAL_TAGGED, "MEM/NORMAL-TAGGED"),
    )


def level_names(version: tuple[int, int, int], pgtable_levels: int) -> tuple[str, ...]:
    """`pg_level[].name`: fixed from v6.9; before, folded PUD/PMD slots read "PGD"."""
    names = [name.upper() for name in LEVEL_NAMES]
    if version < RUNTIME_FOLD_SINCE:
        names[2] = names[2] if pgtable_levels > 3 else "PGD"
        names[3] = names[3] if pgtable_levels > 2 else "PGD"
    return tuple(names)


def format_prot(bits: tuple[ProtBits, ...], prot: int) -> str:
    """`dump_prot()`: the attribute columns of a range line."""
    out = []
    for b in bits:
        text = b.set if prot & b.mask == b.val else b.clear
        if text is not None:
            out.append(" " + text)
    return "".join(out)


def format_size(start: int, end: int) -> str:
    delta = ((end - start) & MASK64) >> 10
    unit = 0
    while not delta & 1023 and unit < len(UNITS) - 1:
        delta >>= 10
        unit += 1
    return f"{delta:9d}{UNITS[unit]}"


@dataclass(frozen=True)
class Range:
    """One range line: `[start, end)` at `level` (0..4) with masked attributes `prot`."""
    start: int
    end: int
    level: int
    level_name: str
    prot: int
    attributes: str     # the attribute columns as the kernel prints them ('' for a hole)
    marker: str         # the region (last marker printed before this line)

    def text(self) -> str:
        return f"0x{self.start:016x}-0x{self.end:016x}   {format_size(self.start, self.end)} {self.level_name}{self.attributes}"


class TextSink:
    """Renders rows as the kernel's debugfs text, line by line, to a file object."""

    def __init__(self, out):
        self.out = out

    def marker(self, name: str) -> None:
        self.out.write(f"---[ {name} ]---\n")

    def range(self, row: Range) -> None:
        self.out.write(row.text() + "\n")


class NullSink:
    """Drops every row (check_wx only counts)."""

    def marker(self, name: str) -> None:
        pass

    def range(self, row: Range) -> None:
        pass


class RowSink:
    """Collects rows: `('marker', name)` and `('range', Range)` in order."""

    def __init__(self):
        self.rows: list[tuple[str, object]] = []

    def marker(self, name: str) -> None:
        self.rows.append(("marker", name))

    def range(self, row: Range) -> None:
        self.rows.append(("range", row))


class PgState:
    """`struct pg_state` and `note_page()`.

    `mm_p4d_folded` / `mm_pud_folded` give the run-time fold remap (v6.9+).
    """

    def __init__(self, markers: list[Marker], version: tuple[int, int, int], pgtable_levels: int,
                 page_size: int, sink=None, check_wx: bool = False,
                 p4d_folded: bool = False, pud_folded: bool = False):
        self.markers = markers + [Marker(MASK64, "")]
        self.bits = pte_bits(version)
        self.mask = 0
        for b in self.bits:
            self.mask |= b.mask
        self.names = level_names(version, pgtable_levels)
        self.remap = version >= RUNTIME_FOLD_SINCE
        self.p4d_folded, self.pud_folded = p4d_folded, pud_folded
        self.page_size = page_size
        self.sink = sink or NullSink()
        self.check_wx = check_wx
        self.marker_index = 0
        self.level = -1
        self.current_prot = 0
        self.start_address = 0
        self.wx_pages = self.uxn_pages = 0
        self.wx_warnings: list[str] = []

    @property
    def next_marker(self) -> int:
        return self.markers[self.marker_index + 1].address

    def _advance_marker(self) -> None:
        self.marker_index += 1
        self.sink.marker(self.markers[self.marker_index].name)

    def note_page(self, addr: int, level: int, val: int) -> None:
        if self.remap and ((level == 1 and self.p4d_folded) or (level == 2 and self.pud_folded)):
            level = 0
        prot = val & self.mask if level >= 0 else 0
        if self.level == -1:
            self.level, self.current_prot, self.start_address = level, prot, addr
            self.sink.marker(self.markers[self.marker_index].name)
        elif prot != self.current_prot or level != self.level or addr >= self.next_marker:
            if self.current_prot:
                self._note_prot_uxn(addr)
                self._note_prot_wx(addr)
            attrs = format_prot(self.bits, self.current_prot) if self.current_prot else ""
            self.sink.range(Range(self.start_address, addr, self.level, self.names[self.level],
                                  self.current_prot, attrs, self.markers[self.marker_index].name))
            if addr >= self.next_marker:
                self._advance_marker()
            self.start_address, self.current_prot, self.level = addr, prot, level
        if addr >= self.next_marker:
            self._advance_marker()

    def note_pages(self, addr: int, vals: np.ndarray, level: int) -> None:
        """note_page() for a run of consecutive entries at one level, vectorised.

        Only entries where the masked bits change, or where a marker is
        crossed, reach the scalar state machine; the output is identical.
        """
        n = len(vals)
        prot = vals & np.uint64(self.mask)
        changes = np.flatnonzero(prot[1:] != prot[:-1]) + 1
        size = self.page_size
        i = 0
        while i < n:
            self.note_page(addr + i * size, level, int(vals[i]))
            boundary = self.next_marker
            j = n if boundary >= addr + n * size else min(n, max(i + 1, -(-(boundary - addr) // size)))
            lo = np.searchsorted(changes, i + 1)
            hi = np.searchsorted(changes, j)
            for k in changes[lo:hi].tolist():
                self.note_page(addr + k * size, level, int(vals[k]))
            i = j

    def _note_prot_wx(self, addr: int) -> None:
        if not self.check_wx or self.current_prot & PTE_RDONLY or self.current_prot & PTE_PXN:
            return
        self.wx_warnings.append(f"arm64/mm: Found insecure W+X mapping at address {self.start_address:#018x}")
        self.wx_pages += ((addr - self.start_address) & MASK64) // self.page_size

    def _note_prot_uxn(self, addr: int) -> None:
        if not self.check_wx or self.current_prot & PTE_UXN:
            return
        self.wx_warnings.append(f"arm64/mm: Found non-UXN mapping at address {self.start_address:#018x}")
        self.uxn_pages += ((addr - self.start_address) & MASK64) // self.page_size

    def wx_summary(self) -> str:
        """The line ptdump_check_wx() prints."""
        if self.wx_pages or self.uxn_pages:
            return (f"Checked W+X mappings: FAILED, {self.wx_pages} W+X pages found, "
                    f"{self.uxn_pages} non-UXN pages found")
        return "Checked W+X mappings: passed, no W+X pages found"


def render_ptdump(machine, markers: list[Marker], start: int, out=None, sink=None, check_wx: bool = False):
    """Run mm/ptdump over a machine's kernel tables from `start` to the top; text unless a sink is given.

    The walk is arm64's `ptdump_walk()` (debugfs kernel_page_tables) or `ptdump_check_wx()`, with the
    locks and the 6.18 static key of the machine's era (kernel-pgtable-freeing.md F18, F22)."""
    arch = machine.arch
    buf = io.StringIO() if out is None and sink is None else None
    state = PgState(markers, arch.version, arch.pgtable_levels, arch.page_size,
                    sink or TextSink(out or buf), check_wx, p4d_folded=arch.mm_p4d_folded(),
                    pud_folded=arch.mm_pud_folded())
    arm64_ptdump_walk_pgd(machine, state, [(start, MASK64)], online_mems=_takes_online_mems(machine, check_wx))
    return state if check_wx else (buf.getvalue() if buf is not None else None)


def _takes_online_mems(machine, check_wx: bool) -> bool:
    """debugfs ptdump_show() always holds get_online_mems() (in arm64 code before 59305202c67f); check_wx only
    where ptdump_walk_pgd() takes it itself (F18)."""
    variants = machine.variants
    if "init-mm-lock-only" in variants or (check_wx and "check-wx-without-online-mems" in variants):
        return False
    return not check_wx or machine.era.ptdump_takes_online_mems(machine.arch.version)


def uses_ptdump_lock_key(machine) -> bool:
    """6.18's arm64_ptdump_lock_key protocol (F8, F22); 7.x removed it (kept only as the S-g variant)."""
    return machine.era.vmap_promotion_lock(machine.arch.version) == "arm64-key" or "arm64-key-kept" in \
        machine.variants


def arm64_ptdump_walk_pgd(machine, state, ranges, online_mems: bool) -> None:
    """6.18: static_branch_inc(&arm64_ptdump_lock_key) around ptdump_walk_pgd() (v6; v3-v5 used
    enable/disable, the "static-key-enable-disable" variant); other eras walk directly."""
    if not uses_ptdump_lock_key(machine):
        ptdump_walk_pgd(state, machine.init_mm, ranges, online_mems=online_mems)
        return
    key = machine.static_key("arm64_ptdump_lock_key")
    boolean = "static-key-enable-disable" in machine.variants
    key.enable() if boolean else key.inc()
    ptdump_walk_pgd(state, machine.init_mm, ranges, online_mems=online_mems)
    key.disable() if boolean else key.dec()


def ptdump_check_wx(machine, start: int) -> PgState:
    """`ptdump_check_wx()`: walk without output; the state holds the W+X and non-UXN counts and warnings."""
    return render_ptdump(machine, [Marker(0, "")], start, sink=NullSink(), check_wx=True)
