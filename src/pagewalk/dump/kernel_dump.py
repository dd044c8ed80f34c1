"""The kernel inside a memory dump, found from the dump alone (like crash and drgn).

From VMCOREINFO: the granule (PAGESIZE), the run-time VA size
(64 - TCR_EL1_T1SZ), the compile-time VA_BITS, `swapper_pg_dir`'s PA
(SYMBOL(swapper_pg_dir) - kimage_voffset, plus the TTBR1 offset of a 52-bit
64K build on a 48-bit CPU), whether descriptors use the LPA2 or 52-bit-64K
address format, and the kernel's address-space regions. Spec:
aarch64-vmsa.md §2.2, §4, §6; arm64-ptdump.md §2.
"""

import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

from ..arch.arm64.asm.pgtable import Arm64PageTables
from ..arch.arm64.mm.kallsyms import read_kallsyms
from ..arch.arm64.mm.kconfig import BuildOptions, find_config_beside, read_config
from ..arch.arm64.mm.layout import KernelLayout
from ..arch.arm64.mm.ptdump import PgState, RowSink, ptdump_check_wx, render_ptdump
from ..errors import DumpError
from ..hw.aarch64.geometry import Geometry
from ..hw.aarch64.tables import Mapping, TablePage, mappings, table_pages
from ..hw.aarch64.translate import Translation, kernel_address, make_virt_to_phys, translate, translate_batch
from ..mm.era import Era
from ..mm.machine import Machine
from ..phys.dumpfile import open_dump_memory
from ..phys.memory import MASK64, PhysicalMemory
from ..phys.vmcoreinfo import VmcoreInfo

__all__ = ["KernelDump", "DEFAULT_DUMP", "OptionsSource", "warn"]

DEFAULT_DUMP = Path(__file__).parents[1] / "data" / "default.elf.zst"


@dataclass
class OptionsSource:
    options: BuildOptions
    note: str


class KernelDump:
    """A kernel memory dump opened for page-table work.

    >>> d = KernelDump.open()                       # the bundled default: a real 6.12 kernel's tables
    >>> d.release, d.geometry.levels, d.page_size
    ('6.12.117-ptdump', 4, 4096)
    >>> t = d.translate(d.vmcoreinfo.swapper_pg_dir)      # swapper_pg_dir lies in the read-only image
    >>> t.pa == d.swapper_pg_dir, t.writable, t.executable
    (True, False, False)

    :raises DumpError: the file is missing, not an arm64 ELF core, truncated,
        or has no usable VMCOREINFO.
    """

    def __init__(self, memory: PhysicalMemory, *, config: str | Path | None = None, nr_cpus: int | None = None,
                 search_config: bool = True, force: bool = False):
        self.memory = memory
        self.name = memory.name
        note = memory.note("VMCOREINFO")
        if note is None:
            raise DumpError(f"{self.name}: no VMCOREINFO note: not a kernel dump (or written without it)")
        self.vmcoreinfo = VmcoreInfo.parse(note.desc.decode("ascii", "replace"), f"{self.name}: VMCOREINFO")
        info = self.vmcoreinfo
        self.version = info.kernel_version
        self.page_size = info.page_size
        if self.page_size not in (4096, 16384, 65536):
            raise DumpError(f"{self.name}: PAGESIZE={self.page_size} is not an arm64 granule")
        self.va_bits = info.va_bits
        self.vabits_actual = 64 - info.t1sz
        pa52 = self.page_size == 65536 and info.max_physmem_bits == 52
        try:
            Geometry(self.page_size, self.va_bits, ds=self.va_bits == 52 and self.page_size != 65536)
            if self.vabits_actual > self.va_bits:
                raise ValueError(f"the CPU's {self.vabits_actual} VA bits (TCR_EL1_T1SZ) exceed VA_BITS={self.va_bits}")
            self.arch = Arm64PageTables(self.page_size, self.va_bits, self.vabits_actual, self.version, pa52)
            self.geometry: Geometry = self.arch.hw
        except ValueError as e:
            raise DumpError(f"{self.name}: VMCOREINFO describes an impossible geometry: {e}") from None
        self.swapper_pg_dir = (info.swapper_pg_dir - info.kimage_voffset) & MASK64
        self._config, self._nr_cpus, self._search_config = config, nr_cpus, search_config
        #: What walks of this dump's tables found wrong (a corrupt dump), one sentence each.
        self.problems: list[str] = []
        if not memory.is_backed(self.swapper_pg_dir, 8):
            raise DumpError(f"{self.name}: swapper_pg_dir at PA {self.swapper_pg_dir:#x} is not in the dump")
        contradictions = self.contradictions()
        if contradictions and not force:
            raise DumpError(f"{self.name}: " + "; ".join(contradictions) + " (--force goes on regardless)")

    def contradictions(self) -> list[str]:
        """What VMCOREINFO says that the dump itself disproves (checked at open; --force skips).

        The layout must be ordered; struct page a plausible size; swapper_pg_dir a whole page, and
        translated through its own tables (at its kernel-image address, else its linear alias) to itself.
        """
        info, found = self.vmcoreinfo, []
        layout = KernelLayout.from_vmcoreinfo(info, BuildOptions())
        order = [("PAGE_OFFSET", layout.page_offset), ("MODULES_VADDR", layout.modules_vaddr),
                 ("MODULES_END", layout.modules_end), ("VMALLOC_START", layout.vmalloc_start),
                 ("VMALLOC_END", layout.vmalloc_end)]
        for (a, x), (b, y) in zip(order, order[1:]):
            if x > y:
                found.append(f"VMCOREINFO puts {b} ({y:#x}) below {a} ({x:#x})")
        if not layout.vmemmap_start < layout.vmemmap_end:
            found.append(f"VMCOREINFO's VMEMMAP_START ({layout.vmemmap_start:#x}) is not below VMEMMAP_END")
        if not 32 <= layout.struct_page_size <= 256:
            found.append(f"VMCOREINFO's SIZE(page)={layout.struct_page_size} is not a struct page size")
        pgd = self.swapper_pg_dir
        if pgd % self.page_size:
            found.append(f"swapper_pg_dir at PA {pgd:#x} (SYMBOL - kimage_voffset) is not page aligned")
        else:
            tries = [translate(self.memory, self.geometry, self.ttbr1, va)
                     for va in (info.swapper_pg_dir, ((pgd - info.phys_offset) & MASK64) | layout.page_offset)]
            broken = next((t.fault for t in tries if t.corrupt), None)
            if broken:
                found.append(f"swapper_pg_dir (PA {pgd:#x}) cannot be translated through its own tables: {broken}")
            elif not any(t.pa == pgd for t in tries):
                found.append(f"swapper_pg_dir (PA {pgd:#x}) does not map itself through its own tables: PAGESIZE, "
                             "VA_BITS, kimage_voffset or the memory do not belong to this kernel")
        return found

    @classmethod
    def open(cls, path: str | Path | None = None, *, progress=None, **kwargs) -> "KernelDump":
        """Open a dump (ELF core, kdump-compressed, flattened; optionally `.zst`); no path means the
        bundled default. `progress(done, total)` follows long opening work (decompressing, indexing)."""
        return cls(open_dump_memory(path if path is not None else DEFAULT_DUMP, progress), **kwargs)

    @property
    def path(self) -> Path:
        return Path(self.name)

    @property
    def release(self) -> str:
        return self.vmcoreinfo.osrelease

    @cached_property
    def ttbr1(self) -> int:
        """What TTBR1_EL1.BADDR holds (swapper_pg_dir, plus the 64K 52-on-48 offset)."""
        return self.arch.ttbr1_base(self.swapper_pg_dir)

    # -- build options and layout --------------------------------------------
    @cached_property
    def options_source(self) -> OptionsSource:
        if self._config is not None:
            opts = read_config(Path(self._config))
            return OptionsSource(opts, f"build options from {self._config}")
        beside = find_config_beside(self.path, self.release) if self._search_config else None
        if beside is not None:
            return OptionsSource(read_config(beside), f"build options from {beside}")
        try:
            names = read_kallsyms(self.read_kernel, self.vmcoreinfo).names
        except DumpError as e:
            return OptionsSource(BuildOptions(source="defaults", guessed=("all",)),
                                 f"build options guessed (no config, {e}); the Fixmap start marker is a guess")
        opts = BuildOptions.from_symbols(names, self.vmcoreinfo.kernel_offset, "kallsyms", self._nr_cpus)
        note = f"build options inferred from the kernel's symbol table ({len(names)} symbols)"
        if opts.guessed:
            note += f"; guessed {', '.join(opts.guessed)} (NR_CPUS={opts.nr_cpus}): the Fixmap start marker is a guess"
        return OptionsSource(opts, note)

    @cached_property
    def layout(self) -> KernelLayout:
        return KernelLayout.from_vmcoreinfo(self.vmcoreinfo, self.options_source.options)

    def read_kernel(self, va: int, size: int) -> bytes:
        """Read kernel-image memory (PA = VA - kimage_voffset)."""
        return self.memory.read((va - self.vmcoreinfo.kimage_voffset) & MASK64, size)

    # -- translation -----------------------------------------------------------
    def translate(self, va: int) -> Translation:
        """The MMU's translation of a kernel (TTBR1) address.

        :raises AddressError: `va` is not a TTBR1 (kernel) address.
        """
        return translate(self.memory, self.geometry, self.ttbr1, kernel_address(va))

    @cached_property
    def virt_to_phys(self):
        """Fast `va -> pa` (None when not mapped): the walk without its trace."""
        return make_virt_to_phys(self.memory, self.geometry, self.ttbr1)

    def translate_batch(self, vas):
        """translate() for many addresses at once (numpy; see hw.aarch64.translate_batch)."""
        return translate_batch(self.memory, self.geometry, self.ttbr1, vas)

    def mappings(self, start: int | None = None, end: int | None = None) -> Iterator[Mapping]:
        """Every valid block and page mapping of the kernel tables in `[start, end)`, in VA order.

        >>> d = KernelDump.open()
        >>> first = next(d.mappings())
        >>> first.va >= d.layout.page_offset, first.size, first.pa == d.lm_to_phys(first.va)
        (True, 2097152, True)
        """
        return mappings(self.memory, self.geometry, self.ttbr1, start, end)

    def table_pages(self) -> Iterator[TablePage]:
        """Every translation table reachable from TTBR1, each once, parents first."""
        return table_pages(self.memory, self.geometry, self.ttbr1)

    def lm_to_phys(self, va: int) -> int:
        """`__lm_to_phys()`: linear-map VA to PA."""
        return (va - self.layout.page_offset + self.vmcoreinfo.phys_offset) & MASK64

    def phys_to_virt(self, pa: int) -> int:
        """`__phys_to_virt()`: PA to its linear-map VA."""
        return ((pa - self.vmcoreinfo.phys_offset) & MASK64) | self.layout.page_offset

    def kimage_to_phys(self, va: int) -> int:
        return (va - self.vmcoreinfo.kimage_voffset) & MASK64

    # -- the kernel's own walkers ------------------------------------------------
    def machine(self, era: Era | str | None = None) -> Machine:
        """A Machine whose init_mm walks this dump's kernel tables (era from the version by default)."""
        era = Era.for_kernel(self.version) if era is None else Era.parse(era)
        return Machine(self.memory, self.arch, era, self.swapper_pg_dir)

    def _walk(self, markers, sink=None, out=None, check_wx: bool = False):
        machine = self.machine()
        result = render_ptdump(machine, markers, self.layout.ptdump_start, out, sink, check_wx)
        self.problems += [r.message for r in machine.log.of_kind("bug")]
        return result

    def ptdump(self, out=None, sink=None) -> str | None:
        """Write the kernel's `/sys/kernel/debug/kernel_page_tables` text (returned if `out` is None).

        Tables the walk could not use (loops, fan-out, outside memory: a corrupt dump) are skipped and
        listed in `problems`.
        """
        return self._walk(self.layout.markers(), sink, out)

    def ptdump_rows(self) -> list[tuple[str, object]]:
        """Rows of the dump: ('marker', name) and ('range', Range) in order."""
        sink = RowSink()
        self.ptdump(sink=sink)
        return sink.rows

    def check_wx(self) -> PgState:
        """`ptdump_check_wx()`: the state after the walk holds the counts and the warnings.

        >>> KernelDump.open().check_wx().wx_summary()
        'Checked W+X mappings: passed, no W+X pages found'
        """
        machine = self.machine()
        state = ptdump_check_wx(machine, self.layout.ptdump_start)
        self.problems += [r.message for r in machine.log.of_kind("bug")]
        return state


def warn(message: str) -> None:
    print(f"pagewalk: {message}", file=sys.stderr)
