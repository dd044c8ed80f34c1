"""The arm64 kernel virtual memory layout, computed from VMCOREINFO.

Models arch/arm64/include/asm/memory.h, pgtable.h (VMALLOC_*), fixmap.h and
the `address_markers[]` of arch/arm64/mm/ptdump.c (`ptdump_init()`), for the
two layouts Linux has had: before v6.9 (fixmap and PCI I/O below vmemmap,
6.1) and from v6.9 on (vmemmap, PCI I/O, fixmap at the top; 6.12, 7.x).
Spec: arm64-ptdump.md §2.2 and §3.
"""

from dataclasses import dataclass

from ....phys.memory import MASK64
from .kconfig import BuildOptions

__all__ = ["KernelLayout", "Marker", "NEW_LAYOUT", "FIX_VNCR_SINCE"]

SZ_2M, SZ_8M, SZ_16M, SZ_32M, SZ_128M, SZ_256M, SZ_1G = 2 << 20, 8 << 20, 16 << 20, 32 << 20, 128 << 20, 256 << 20, 1 << 30
STRUCT_PAGE_MAX_SHIFT = 6
MAX_FDT_SIZE = 2 << 20
FIXADDR_TOP_NEW = (1 << 64) - SZ_8M
#: From v6.9 (LPA2 and the layout rework) the top of the address space is
#: vmemmap, PCI I/O, fixmap, and ptdump walks from _PAGE_OFFSET(vabits_actual).
NEW_LAYOUT = (6, 9)
#: FIX_VNCR slots (one per CPU, with KVM) were added to the fixmap in v6.16.
FIX_VNCR_SINCE = (6, 16)


@dataclass(frozen=True)
class Marker:
    address: int
    name: str


@dataclass(frozen=True)
class KernelLayout:
    """Addresses of the kernel's regions (all 64-bit unsigned): read from a dump's VMCOREINFO,
    or computed for a build as asm/memory.h does.

    >>> lay = KernelLayout.for_build((7, 2, 13), 4096, 48, 48, BuildOptions())
    >>> hex(lay.modules_vaddr), hex(lay.vmalloc_end), hex(lay.fixaddr_top)
    ('0xffff800000000000', '0xfffffdffbf800000', '0xffffffffff800000')
    >>> hex(KernelLayout.for_build((6, 1, 192), 4096, 48, 48, BuildOptions()).vmalloc_end)
    '0xfffffbfff0000000'
    """
    version: tuple[int, int, int]
    page_shift: int
    va_bits: int            # compile-time VA_BITS
    vabits_actual: int      # 64 - TCR_EL1.T1SZ
    modules_vaddr: int
    modules_end: int
    vmalloc_start: int
    vmalloc_end: int
    vmemmap_start: int      # NUMBER(VMEMMAP_START): compile-time
    vmemmap_end: int
    struct_page_size: int
    kernel_offset: int
    options: BuildOptions

    @classmethod
    def from_vmcoreinfo(cls, info, options: BuildOptions) -> "KernelLayout":
        page_size = info.page_size
        return cls(info.kernel_version, page_size.bit_length() - 1, info.va_bits, 64 - info.t1sz,
                   info.number("MODULES_VADDR"), info.number("MODULES_END"), info.number("VMALLOC_START"),
                   info.number("VMALLOC_END"), info.number("VMEMMAP_START"), info.number("VMEMMAP_END"),
                   info.struct_page_size, info.kernel_offset, options)

    @classmethod
    def for_build(cls, version: tuple[int, int, int], page_size: int, va_bits: int, vabits_actual: int,
                  options: BuildOptions, kernel_offset: int = 0) -> "KernelLayout":
        """The layout asm/memory.h and asm/pgtable.h give a build (VA_BITS) on a CPU (vabits_actual)."""
        shift = page_size.bit_length() - 1
        va_bits_min = 47 if (page_size == 16384 and va_bits == 52) else min(va_bits, 48)
        page_offset = (1 << 64) - (1 << va_bits)
        modules_vaddr = (1 << 64) - (1 << (va_bits_min - 1))                    # _PAGE_END(VA_BITS_MIN)
        if version >= NEW_LAYOUT:
            modules_end = modules_vaddr + 2 * SZ_1G
            vmemmap_end = (1 << 64) - SZ_1G
            vmemmap_start = vmemmap_end - (((modules_vaddr - page_offset) >> shift) << STRUCT_PAGE_MAX_SHIFT)
            skipped = ((1 << 64) - (1 << vabits_actual) - page_offset) >> shift
            vmalloc_end = vmemmap_start + (skipped << STRUCT_PAGE_MAX_SHIFT) - SZ_8M
        else:
            modules_end = modules_vaddr + SZ_128M
            vmemmap_start = (1 << 64) - (1 << (va_bits - (shift - STRUCT_PAGE_MAX_SHIFT)))
            vmemmap_end = vmemmap_start + ((modules_vaddr - page_offset) >> (shift - STRUCT_PAGE_MAX_SHIFT))
            vmalloc_end = vmemmap_start - SZ_256M
        return cls(version, shift, va_bits, vabits_actual, modules_vaddr, modules_end, modules_end, vmalloc_end,
                   vmemmap_start, vmemmap_end, 1 << STRUCT_PAGE_MAX_SHIFT, kernel_offset, options)

    @property
    def new_layout(self) -> bool:
        return self.version >= NEW_LAYOUT

    @property
    def page_offset(self) -> int:
        """PAGE_OFFSET = -(1 << VA_BITS), compile-time."""
        return (1 << 64) - (1 << self.va_bits)

    @property
    def page_offset_actual(self) -> int:
        """_PAGE_OFFSET(vabits_actual): where the linear map really starts."""
        return (1 << 64) - (1 << self.vabits_actual)

    @property
    def ptdump_start(self) -> int:
        """Where ptdump's walk starts: _PAGE_OFFSET(vabits_actual) from v6.9, PAGE_OFFSET before."""
        return self.page_offset_actual if self.new_layout else self.page_offset

    @property
    def kasan_shadow(self) -> tuple[int, int] | None:
        """(KASAN_SHADOW_START, KASAN_SHADOW_END) for generic/SW-tag KASAN builds."""
        o = self.options
        if o.kasan is None or o.kasan_shadow_offset is None:
            return None
        scale = 3 if o.kasan == "generic" else 4
        end = ((1 << (64 - scale)) + o.kasan_shadow_offset) & MASK64
        return end - (1 << (self.vabits_actual - scale)), end

    @property
    def page_end(self) -> int:
        shadow = self.kasan_shadow
        return shadow[0] if shadow else self.modules_vaddr

    @property
    def kimage_vaddr(self) -> int:
        """Where `_text` is: KIMAGE_VADDR (= MODULES_END) plus the KASLR offset."""
        return (self.modules_end + self.kernel_offset) & MASK64

    @property
    def vmemmap_start_actual(self) -> int:
        """virt_to_page(_PAGE_OFFSET(vabits_actual)): the vmemmap of the real linear map."""
        skipped = (self.page_offset_actual - self.page_offset) >> self.page_shift
        return self.vmemmap_start + skipped * self.struct_page_size

    @property
    def fixaddr_top(self) -> int:
        return FIXADDR_TOP_NEW if self.new_layout else self.vmemmap_start - SZ_32M

    def permanent_fixmap_slots(self) -> int:
        """__end_of_permanent_fixed_addresses (enum fixed_addresses, asm/fixmap.h)."""
        page = 1 << self.page_shift
        o = self.options
        if self.new_layout:
            slots = 2 + -(-MAX_FDT_SIZE // page) + 1      # FIX_HOLE, FIX_FDT_END, FDT window
        else:
            slots = 1 + (MAX_FDT_SIZE + (2 << 20)) // page  # FIX_HOLE, FIX_FDT_END..FIX_FDT
        slots += 2                                           # FIX_EARLYCON_MEM_BASE, FIX_TEXT_POKE0
        if o.kvm and self.version >= FIX_VNCR_SINCE:
            slots += 1 + o.nr_cpus                           # FIX_VNCR_END, FIX_VNCR
        if o.ghes:
            slots += 2 + (2 if o.sdei else 0)
        if o.kpti:
            slots += 3 + (1 if o.relocatable else 0)
        return slots

    def total_fixmap_slots(self) -> int:
        """__end_of_fixed_addresses: permanent + boot-time ioremap + FIX_PTE..FIX_PGD."""
        page = 1 << self.page_shift
        return self.permanent_fixmap_slots() + 7 * ((256 << 10) // page + 1) + 5

    @property
    def fixmap_start(self) -> int:
        """The ptdump 'Fixmap start' marker: FIXADDR_TOT_START (≥ 6.9) or FIXADDR_START."""
        slots = self.total_fixmap_slots() if self.new_layout else self.permanent_fixmap_slots()
        return self.fixaddr_top - (slots << self.page_shift)

    def markers(self) -> list[Marker]:
        """`address_markers[]` in the order the running kernel's ptdump has them."""
        m = [Marker(self.page_offset, "Linear Mapping start"), Marker(self.page_end, "Linear Mapping end")]
        shadow = self.kasan_shadow
        if shadow:
            m += [Marker(shadow[0], "Kasan shadow start"), Marker(shadow[1], "Kasan shadow end")]
        m += [Marker(self.modules_vaddr, "Modules start"), Marker(self.modules_end, "Modules end"),
              Marker(self.vmalloc_start, "vmalloc() area"), Marker(self.vmalloc_end, "vmalloc() end")]
        if self.new_layout:
            pci_io = self.vmemmap_end + SZ_8M
            m += [Marker(self.vmemmap_start_actual, "vmemmap start"), Marker(self.vmemmap_end, "vmemmap end"),
                  Marker(pci_io, "PCI I/O start"), Marker(pci_io + SZ_16M, "PCI I/O end"),
                  Marker(self.fixmap_start, "Fixmap start"), Marker(self.fixaddr_top, "Fixmap end")]
        else:
            pci_io_end = self.vmemmap_start - SZ_8M
            m += [Marker(self.fixmap_start, "Fixmap start"), Marker(self.fixaddr_top, "Fixmap end"),
                  Marker(pci_io_end - SZ_16M, "PCI I/O start"), Marker(pci_io_end, "PCI I/O end"),
                  Marker(self.vmemmap_start, "vmemmap start"), Marker(self.vmemmap_end, "vmemmap end")]
        return m

    def regions(self) -> list[tuple[str, int, int]]:
        """Named `(name, start, end)` regions, from the markers that pair up."""
        ms = self.markers()
        out = []
        for a, b in zip(ms, ms[1:]):
            if a.name.endswith(("start", "area")) and (b.name.endswith("end") or b.name == "Linear Mapping end"):
                out.append((a.name.replace(" start", "").replace(" area", ""), a.address, b.address))
        return out

    def region_of(self, va: int) -> str | None:
        for name, start, end in self.regions():
            if start <= va < (end or 1 << 64):
                return name
        return None
