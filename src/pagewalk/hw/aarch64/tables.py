"""Iterating a regime's tables as the MMU sees them: every reachable table page,
and every valid leaf as a mapped range (volatility3's `mapping()` in spirit).

Hardware view, no Linux knowledge: a table descriptor at a level that allows
one is followed, a block or page descriptor is a mapping, anything else is
nothing. A table met again on its own path is a loop (TableLoopError names
it); a table page outside memory raises PhysicalAddressError with its PA.

>>> from pagewalk.hw.aarch64.builder import TableBuilder
>>> from pagewalk.phys.ram import SimulatedRAM
>>> b = TableBuilder(SimulatedRAM(), Geometry(4096, 48))
>>> _ = b.map(0xffff000000200000, 0x40200000, level=2)
>>> _ = b.map(0xffff000000400000, 0x40001000)
>>> [(hex(m.va), m.size, hex(m.pa)) for m in mappings(b.memory, b.geometry, b.root)]
[('0xffff000000200000', 2097152, '0x40200000'), ('0xffff000000400000', 4096, '0x40001000')]
>>> [t.level for t in table_pages(b.memory, b.geometry, b.root)]   # both mappings share levels 0-2
[0, 1, 2, 3]
"""

from dataclasses import dataclass
from typing import Iterator

from ...errors import TableLoopError
from .bits import TYPE_MASK, Bit
from .geometry import Geometry

__all__ = ["Mapping", "TablePage", "mappings", "table_pages"]


@dataclass(frozen=True, slots=True)
class Mapping:
    """One block or page descriptor: `[va, va + size)` maps to `[pa, pa + size)`."""
    va: int
    size: int
    pa: int
    level: int
    descriptor: int
    #: PA of the descriptor itself.
    entry_pa: int


@dataclass(frozen=True, slots=True)
class TablePage:
    """A translation table: at `pa`, for `level`, covering VAs from `va`."""
    pa: int
    level: int
    va: int
    entries: int


def table_pages(memory, geometry: Geometry, root: int, start: int | None = None,
                end: int | None = None) -> Iterator[TablePage]:
    """Every table reachable from `root` whose VA span meets `[start, end)`, parents first (each once)."""
    return _walk(memory, geometry, root, start, end, leaves=False)


def mappings(memory, geometry: Geometry, root: int, start: int | None = None,
             end: int | None = None) -> Iterator[Mapping]:
    """Every valid leaf overlapping `[start, end)`, in VA order (sizes are whole leaves)."""
    return _walk(memory, geometry, root, start, end, leaves=True)


def _walk(memory, g: Geometry, root: int, start: int | None, end: int | None, leaves: bool):
    start = g.ttbr1_base if start is None else max(start, g.ttbr1_base)
    end = 1 << 64 if end is None else end
    path: list[int] = []
    seen: set[int] = set()

    def visit(table: int, level: int, base: int):
        entries = g.entries(level)
        if not leaves:
            yield TablePage(table, level, base, entries)
        values = memory.read_table(table, entries)
        shift = g.level_shift(level)
        first = max(0, (start - base) >> shift)
        last = min(entries, -(-(end - base) >> shift))
        path.append(table)
        for index in (values[first:last] & Bit.VALID).nonzero()[0].tolist():
            index += first
            value = int(values[index])
            va = base + (index << shift)
            if value & TYPE_MASK == TYPE_MASK and level < 3:
                child = g.output_address(value, g.page_shift)
                if child in path:
                    raise TableLoopError(va, level, child)
                if leaves or child not in seen:
                    seen.add(child)
                    yield from visit(child, level + 1, va)
            elif leaves and (level == 3) == bool(value & Bit.TABLE) and (level == 3 or g.block_allowed(level)):
                yield Mapping(va, 1 << shift, g.output_address(value, shift), level, value, table + 8 * index)
        path.pop()

    yield from visit(root, g.start_level, g.ttbr1_base)
