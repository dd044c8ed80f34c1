"""Write translation tables for any geometry into simulated RAM (for tests and models).

In the spirit of google/aarch64-paging's `TargetAllocator`: tables are
allocated from the RAM's frame allocator (or placed at chosen PAs), and
`map()` writes a block or page descriptor, creating the tables above it.
"""

from .descriptor import Kind, kind, leaf_descriptor, table_descriptor
from .geometry import Geometry

__all__ = ["TableBuilder"]


class TableBuilder:
    """Build tables rooted at `root` (allocated when not given).

    >>> from pagewalk.phys.ram import SimulatedRAM
    >>> b = TableBuilder(SimulatedRAM(), Geometry(4096, 48))
    >>> entry = b.map(0xffff000000200000, 0x40200000, level=2)
    >>> from pagewalk.hw.aarch64.translate import translate
    >>> hex(translate(b.memory, b.geometry, b.root, 0xffff000000212345).pa)
    '0x40212345'
    """

    def __init__(self, memory, geometry: Geometry, root: int | None = None, *, table_pages: list[int] | None = None,
                 kernel_tables: bool = True):
        self.memory, self.geometry = memory, geometry
        self._placed = list(table_pages or [])
        self.kernel_tables = kernel_tables
        self.root = root if root is not None else self._new_table()
        self.tables = [self.root]

    def _new_table(self) -> int:
        if self._placed:
            return self._placed.pop(0)
        page = self.memory.alloc_page()
        if page is None:
            raise MemoryError("out of simulated RAM for page tables")
        return page

    def table_for(self, va: int, level: int) -> int:
        """The table at `level` covering `va`, creating missing tables on the way."""
        g = self.geometry
        table = self.root
        for lvl in range(g.start_level, level):
            entry = table + 8 * g.index(va, lvl)
            value = self.memory.read_u64(entry)
            if kind(value, lvl, g) is not Kind.TABLE:
                new = self._new_table()
                self.tables.append(new)
                value = table_descriptor(g, new, uxn_table=self.kernel_tables, pxn_table=not self.kernel_tables)
                self.memory.write_u64(entry, value)
            table = g.output_address(value, g.page_shift)
        return table

    def entry_address(self, va: int, level: int) -> int:
        return self.table_for(va, level) + 8 * self.geometry.index(va, level)

    def map(self, va: int, pa: int, level: int = 3, **attrs) -> int:
        """Map `va` to `pa` with one block (level < 3) or page descriptor; returns the entry's PA."""
        entry = self.entry_address(va, level)
        self.memory.write_u64(entry, leaf_descriptor(self.geometry, level, pa, **attrs))
        return entry

    def set_raw(self, va: int, level: int, value: int) -> int:
        """Store any value in the slot for `va` at `level` (invalid and reserved encodings too)."""
        entry = self.entry_address(va, level)
        self.memory.write_u64(entry, value)
        return entry
