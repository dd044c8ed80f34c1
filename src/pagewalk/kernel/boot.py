"""`start_kernel()`: build a simulated arm64 kernel address space the way the kernel does.

Layout as asm/memory.h has it for the era's version (KernelLayout.for_build),
no KASLR. The linear map follows `map_mem()`: PTE-only when
`can_set_direct_map()` (6.1, 6.12, BASE, SEED) or `force_pte_mapping()`
(6.18, LATER) says so, else PUD / contiguous-PMD / PMD blocks and contiguous
PTEs; the KFENCE early pool is always PTE-mapped. No checkers: those are
attached by `pagewalk.boot()`.

>>> k = start_kernel(KernelConfig(era="6.12", ram=256 << 20))
>>> k.translate(k.page_address(0x40000)).pa == 0x40000 << 12, k.hooks
(True, [])
"""

from ..arch.arm64.mm.kconfig import BuildOptions
from ..arch.arm64.mm.layout import KernelLayout
from ..arch.arm64.mm.mapping import Prot
from ..mm.kfence import kfence_init_pool, pool_pages
from ..mm.machine import Machine
from ..mm.vmalloc import VM_MAP, VM_NO_GUARD
from ..phys.memory import MASK64
from .config import KernelConfig
from .kernel import Kernel

__all__ = ["start_kernel", "IMAGE_SEGMENTS"]

SZ_2M = 2 << 20
#: The simulated image: (name, size, protection) from KIMAGE_VADDR on.
IMAGE_SEGMENTS = (("text", 0x200000, dict(ro=True, x=True)), ("rodata", 0x100000, dict(ro=True)),
                  ("init", 0x100000, dict(ro=False, x=False)), ("data", 0x100000, dict()))


def start_kernel(cfg: KernelConfig) -> Kernel:
    """A kernel booted with `cfg`: linear map, kernel image, fixmap, KFENCE pool."""
    machine = Machine.simulated(cfg.era, page_size=cfg.page_size, va_bits=cfg.va_bits,
                                vabits_actual=cfg.vabits_actual, ram=cfg.ram, ram_base=cfg.ram_base,
                                version=cfg.version)
    actual = machine.arch.vabits_actual
    layout = KernelLayout.for_build(cfg.version, cfg.page_size, cfg.va_bits, actual, BuildOptions(kpti=cfg.kpti))
    # a 52-bit build on a CPU with fewer VA bits: memstart_addr moves down by 2^52 - 2^n so that RAM
    # appears at _PAGE_OFFSET(vabits_actual) (arch/arm64/mm/init.c, arm64_memblock_init())
    phys_offset = (cfg.ram_base - ((1 << cfg.va_bits) - (1 << actual))) & MASK64
    pool = _kfence_pool_pa(cfg)
    k = Kernel(machine, cfg, layout, phys_offset=phys_offset,
               data_start=cfg.ram_base + 8 * SZ_2M,              # data from the bottom, above the image
               vmalloc_start=layout.kimage_vaddr + 3 * SZ_2M,    # above the image
               kfence_pool=None if pool is None else _linear(layout, phys_offset, pool),
               linear_map_requires_bbml2=(machine.era.has_split_on_demand and not cfg.linear_map_page_granular()
                                          and cfg.can_set_direct_map()))
    _map_memory(k, pool)
    _map_kernel_image(k)
    _map_fixmap(k)
    if cfg.kfence:
        kfence_init_pool(k)
    machine.log.clear()
    k.tlb_flushes.clear()
    k.events.clear()
    return k


def _linear(layout, phys_offset: int, span: tuple[int, int]) -> tuple[int, int]:
    return tuple(((pa - phys_offset) & MASK64) | layout.page_offset for pa in span)


def _kfence_pool_pa(cfg: KernelConfig) -> tuple[int, int] | None:
    """Where this model puts the KFENCE pool: a 2 MiB-aligned run 128 MiB below the top of RAM."""
    if not cfg.kfence:
        return None
    start = (cfg.ram_base + cfg.ram - 64 * SZ_2M) & ~(SZ_2M - 1)
    return start, start + pool_pages() * cfg.page_size


def _map_memory(k: Kernel, pool: tuple[int, int] | None) -> None:
    """map_mem(): the linear map of all RAM, with the KFENCE early pool PTE-mapped."""
    cfg = k.config
    page, granular = cfg.page_size, cfg.linear_map_page_granular()
    ram_start, ram_end = cfg.ram_base, cfg.ram_base + cfg.ram
    prot = Prot.kernel(k)
    if pool is not None:
        k.machine.memory.reserve(*pool)
    pieces = [(ram_start, ram_end)] if pool is None else [(ram_start, pool[0]), (pool[1], ram_end)]
    for lo, hi in pieces:
        k.mapper.map_range(k.page_address(lo // page), lo, hi - lo, prot, blocks=not granular, cont=not granular,
                           pxn_tables=True)
    if pool is None:
        return
    early = cfg.kfence_early_init
    k.mapper.map_range(k.kfence_pool[0], pool[0], pool[1] - pool[0], prot, blocks=not (early or granular),
                       cont=not (early or granular), pxn_tables=True)
    if not early:
        k.splitter.range_split_to_ptes(*k.kfence_pool)


def _map_kernel_image(k: Kernel) -> None:
    """map_kernel(): the image segments at KIMAGE_VADDR, each a VM_MAP area."""
    va, pa = k.layout.kimage_vaddr, k.config.ram_base + SZ_2M
    k.machine.memory.reserve(pa, pa + 4 * SZ_2M)
    for name, size, flags in IMAGE_SEGMENTS:
        k.mapper.map_range(va, pa, size, Prot.kernel(k, **flags))
        k.register_area(va, size, VM_MAP | VM_NO_GUARD, caller=f"kernel {name}")
        va, pa = va + size, pa + size


def _map_fixmap(k: Kernel) -> None:
    """The fixmap's tables with its first slot (FIX_FDT-like) mapped read-only."""
    pa = k.alloc_data_pages(1)[0] * k.config.page_size
    k.mapper.map_range(k.layout.fixmap_start, pa, k.config.page_size, Prot.kernel(k, ro=True))
