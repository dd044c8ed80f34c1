"""`boot()`: build a simulated arm64 kernel address space the way the kernel does.

Layout as arch/arm64/include/asm/memory.h has it (v6.9+: linear map, modules,
vmalloc with the kernel image at its start, vmemmap, PCI I/O, fixmap), no
KASLR. The linear map follows `map_mem()`: PTE-only when
`can_set_direct_map()` (6.1, 6.12, BASE, SEED) or `force_pte_mapping()` (6.18,
LATER) says so, else PUD / contiguous-PMD / PMD blocks and contiguous PTEs;
the KFENCE early pool is always PTE-mapped.
"""

from .arch.arm64.layout import Marker
from .arch.arm64.mapping import Mapper, Prot
from .kernel import Kernel, KernelConfig
from .mm.era import Era
from .mm.kfence import kfence_init_pool, pool_pages
from .mm.machine import Machine
from .mm.vmalloc import VM_ALLOC, VM_ALLOW_HUGE_VMAP, VM_MAP, VM_NO_GUARD

MASK64 = (1 << 64) - 1
SZ_2M, SZ_8M, SZ_16M, SZ_1G = 2 << 20, 8 << 20, 16 << 20, 1 << 30
IMAGE_SEGMENTS = (("text", 0x200000, dict(ro=True, x=True)), ("rodata", 0x100000, dict(ro=True)),
                  ("init", 0x100000, dict(ro=False, x=False)), ("data", 0x100000, dict()))


class Layout:
    """Region addresses of a booted kernel (the subset ptdump markers need)."""

    def __init__(self, cfg: KernelConfig):
        va_bits, shift = cfg.va_bits, cfg.page_size.bit_length() - 1
        va_min = 47 if (cfg.page_size == 16384 and va_bits == 52) else min(va_bits, 48)
        self.page_offset = ((1 << 64) - (1 << va_bits)) & MASK64
        self.modules_vaddr = ((1 << 64) - (1 << (va_min - 1))) & MASK64
        self.modules_end = self.modules_vaddr + (2 << 30)
        self.vmalloc_start = self.kimage_vaddr = self.modules_end
        vmemmap_size = ((self.modules_vaddr - self.page_offset) >> shift) * 64
        self.vmemmap_end = (1 << 64) - SZ_1G
        self.vmemmap_start = self.vmemmap_end - vmemmap_size
        self.vmalloc_end = self.vmemmap_start - SZ_8M
        self.fixaddr_top = (1 << 64) - SZ_8M
        self.fixmap_start = self.fixaddr_top - 16 * cfg.page_size

    def markers(self) -> list[Marker]:
        pci = self.vmemmap_end + SZ_8M
        return [Marker(self.page_offset, "Linear Mapping start"), Marker(self.modules_vaddr, "Linear Mapping end"),
                Marker(self.modules_vaddr, "Modules start"), Marker(self.modules_end, "Modules end"),
                Marker(self.vmalloc_start, "vmalloc() area"), Marker(self.vmalloc_end, "vmalloc() end"),
                Marker(self.vmemmap_start, "vmemmap start"), Marker(self.vmemmap_end, "vmemmap end"),
                Marker(pci, "PCI I/O start"), Marker(pci + SZ_16M, "PCI I/O end"),
                Marker(self.fixmap_start, "Fixmap start"), Marker(self.fixaddr_top, "Fixmap end")]


def boot(era="later", page_size: int = 4096, va_bits: int = 48, rodata: str = "full", bbml2: bool = False,
         kfence: bool = False, kpti: bool = False, bti: bool = False, debug_pagealloc: bool = False,
         realm: bool = False, ram: int = 1 << 30, checks: bool = True, **options) -> Kernel:
    """A simulated kernel. `era`: "base", "seed-v2", "seed-review", "6.18", "later" (or "6.12", "6.1").

    >>> k = boot(era="later", rodata="full")
    >>> k.set_memory_ro(k.vmalloc(4 * 4096), 4)
    0
    """
    cfg = KernelConfig(era=era, page_size=page_size, va_bits=va_bits, rodata=rodata, bbml2=bbml2, kfence=kfence,
                       kpti=kpti, bti=bti, debug_pagealloc=debug_pagealloc, realm=realm, ram=ram, **options)
    machine = Machine.simulated(cfg.era, page_size=page_size, va_bits=va_bits, vabits_actual=cfg.vabits_actual,
                                ram=ram, ram_base=cfg.ram_base, version=cfg.version)
    k = Kernel(machine, cfg)
    k.layout = Layout(cfg)
    k.page_offset = k.layout.page_offset
    actual = machine.arch.vabits_actual
    if actual < va_bits:
        # a 52-bit build on a CPU with fewer VA bits: memstart_addr moves down by 2^52 - 2^n so
        # that RAM appears at _PAGE_OFFSET(vabits_actual) (arch/arm64/mm/init.c, arm64_memblock_init())
        k.phys_offset = (cfg.ram_base - ((1 << va_bits) - (1 << actual))) & MASK64
    k.mapper = Mapper(k)
    _map_memory(k)
    _map_kernel_image(k)
    _map_fixmap(k)
    if kfence:
        kfence_init_pool(k)
    machine.log.clear()
    k.tlb_flushes.clear()
    k.events.clear()
    if checks:
        from .check import install_checkers
        install_checkers(k)
    return k


def _map_memory(k: Kernel) -> None:
    """map_mem(): the linear map of all RAM, with the KFENCE early pool PTE-mapped."""
    cfg, era = k.config, k.machine.era
    page = cfg.page_size
    if era in (Era.UP_6_18, Era.LATER):
        page_granular = k.force_pte_mapping()
        k.linear_map_requires_bbml2 = not page_granular and k.can_set_direct_map()
    else:
        page_granular = k.can_set_direct_map()
    ram_start, ram_end = cfg.ram_base, cfg.ram_base + cfg.ram
    # data pages come from the bottom, above the image's 8 MiB, tables from the top
    k.data_cursor = ram_start + 8 * SZ_2M
    pool = None
    if cfg.kfence:
        size = pool_pages() * page
        pool_pa = (ram_end - 64 * SZ_2M) & ~(SZ_2M - 1)
        pool = (pool_pa, pool_pa + size)
        k.kfence_pool = (k.page_address(pool_pa // page), k.page_address(pool_pa // page) + size)
        k.machine.memory.reserve(*pool)
    prot = Prot.kernel(k)
    pieces = [(ram_start, ram_end)] if pool is None else [(ram_start, pool[0]), (pool[1], ram_end)]
    for lo, hi in pieces:
        k.mapper.map_range(k.page_address(lo // page), lo, hi - lo, prot, blocks=not page_granular,
                           cont=not page_granular, pxn_tables=True)
    if pool is not None and cfg.kfence_early_init:
        k.mapper.map_range(k.kfence_pool[0], pool[0], pool[1] - pool[0], prot, blocks=False, cont=False,
                           pxn_tables=True)
    elif pool is not None:
        k.mapper.map_range(k.kfence_pool[0], pool[0], pool[1] - pool[0], prot, blocks=not page_granular,
                           cont=not page_granular, pxn_tables=True)
        k.splitter.range_split_to_ptes(*k.kfence_pool)


def _map_kernel_image(k: Kernel) -> None:
    """map_kernel(): the image segments at KIMAGE_VADDR, each a VM_MAP area."""
    va, pa = k.layout.kimage_vaddr, k.config.ram_base + SZ_2M
    k.machine.memory.reserve(pa, pa + 4 * SZ_2M)
    for name, size, flags in IMAGE_SEGMENTS:
        k.mapper.map_range(va, pa, size, Prot.kernel(k, **flags))
        k.register_area(va, size, VM_MAP | VM_NO_GUARD, caller=f"kernel {name}")
        va, pa = va + size, pa + size
    k.kimage_end = va
    k.vmalloc_cursor = (va + SZ_2M) & ~(SZ_2M - 1)


def _map_fixmap(k: Kernel) -> None:
    """The fixmap's tables with its first slot (FIX_FDT-like) mapped read-only."""
    pa = k.alloc_data_pages(1)[0] * k.config.page_size
    k.mapper.map_range(k.layout.fixmap_start, pa, k.config.page_size, Prot.kernel(k, ro=True))


# -- vmalloc --------------------------------------------------------------------------------

def vmalloc(k: Kernel, size: int, *, huge: bool = False, flags: int = VM_ALLOC) -> int | None:
    """`vmalloc()` / `vmalloc_huge()`: pages, a VA range with a guard page, PTEs (or blocks).

    Returns the address, or None (NULL) when a page-table allocation failed; nothing stays mapped then.
    """
    page = k.config.page_size
    size = -(-size // page) * page
    pmd = 1 << k.machine.arch.shift[3]
    cont = page * k.machine.arch.hw.contiguous_entries(3)
    if huge:
        flags |= VM_ALLOW_HUGE_VMAP
    unit = pmd if huge and size >= pmd else (cont if huge and size >= cont and k.config.version >= (6, 13) else page)
    va = -(-k.vmalloc_cursor // unit) * unit
    pfns = k.alloc_data_pages(size // page, align=unit // page)
    end = va + size + page
    if end > k.layout.vmalloc_end:
        raise MemoryError("vmalloc space exhausted")
    k.vmalloc_cursor = end
    if unit == page:     # the pages are physically contiguous here: one run of plain PTEs
        err = k.mapper.map_range(va, pfns[0] * page, size, Prot.kernel(k), blocks=False, cont=False)
    else:
        err = k.mapper.map_range(va, pfns[0] * page, size, Prot.kernel(k), blocks=unit == pmd, cont=True)
    if err:
        k.mapper.unmap_range(va, va + size)
        return None
    k.register_area(va, size + page, flags, pfns, (unit // page).bit_length() - 1, caller="vmalloc")
    return va


def vmap(k: Kernel, pfns: list[int]) -> int:
    """`vmap(pages, n, VM_MAP, PAGE_KERNEL)`."""
    page = k.config.page_size
    va = -(-k.vmalloc_cursor // page) * page
    for i, pfn in enumerate(pfns):
        k.mapper.map_range(va + i * page, pfn * page, page, Prot.kernel(k), blocks=False, cont=False)
    k.vmalloc_cursor = va + (len(pfns) + 1) * page
    k.register_area(va, (len(pfns) + 1) * page, VM_MAP, list(pfns), caller="vmap")
    return va


def vfree(k: Kernel, addr: int) -> None:
    """`vfree()`: unmap, free emptied table pages, queue the lazy TLB flush, free the pages."""
    area = k.vmalloc_space.find_vm_area(addr)
    if area is None or area.addr != addr or not area.flags & (VM_ALLOC | VM_MAP):
        raise ValueError(f"vfree({addr:#x}): not the start of a vmalloc/vmap area")
    end = area.addr + area.usable_size(k.config.page_size)
    k.mapper.unmap_range(area.addr, end)
    k.vmalloc_space.lazy_aliases.append((area.addr, end))
    k.vmalloc_space.remove(area)            # data pages are not recycled: every PA stays unique
