"""`start_kernel()`: build a simulated arm64 kernel's tables the way Linux does at boot
(arm64-boot-mappings.md; linux: arch/arm64/kernel/setup.c `setup_arch()`, mm/mmu.c
`paging_init()`, init/main.c `kernel_init()`).

Steps in the kernel's order, each from arch/arm64/mm/: the image (map_kernel),
the early KFENCE pool, the fixmap and the FDT, map_mem(), vmemmap, the entry
trampoline, mark_linear_text_alias_ro(), KFENCE's pool protection,
free_initmem() and mark_rodata_ro(). No checkers: `pagewalk.boot()` attaches them.

>>> k = start_kernel(KernelConfig(era="6.12", ram=256 << 20))
>>> k.translate(k.page_address(0x48000)).pa == 0x48000 << 12, k.hooks
(True, [])
>>> k.translate(k.image.stext).writable, k.translate(k.image.init_begin).mapped
(False, False)
"""

from ..arch.arm64.mm import paging_init as pi
from ..arch.arm64.mm.image import KernelImage
from ..arch.arm64.mm.layout import KernelLayout
from ..arch.arm64.mm.map_kernel import image_segments, map_kernel
from ..errors import ArgumentError
from ..mm.kfence import kfence_init_pool
from ..mm.machine import Machine
from ..mm.vmalloc import VM_MAP, VM_NO_GUARD
from ..phys.memory import MASK64
from .config import KernelConfig
from .kernel import Kernel

__all__ = ["start_kernel", "memstart_addr"]

SZ_2M = 2 << 20
#: Where QEMU's virt machine puts the FDT (1 MiB), relative to the start of RAM (every capture's iomem).
QEMU_FDT_OFFSET, QEMU_FDT_SIZE = 0x8200000, 1 << 20


def memstart_addr(cfg: KernelConfig, vabits_actual: int) -> int:
    """arm64_memblock_init(): the first bank rounded down to ARM64_MEMSTART_ALIGN, moved down by
    _PAGE_OFFSET(vabits_actual) - _PAGE_OFFSET(VA_BITS) on a 52-bit build with fewer VA bits (B32)."""
    align_shift = {4096: 30, 16384: 30, 65536: 29}[cfg.page_size]
    base = cfg.ram_banks[0][0] >> align_shift << align_shift
    return (base - ((1 << cfg.va_bits) - (1 << vabits_actual))) & MASK64


def start_kernel(cfg: KernelConfig) -> Kernel:
    """A kernel booted with `cfg`, its tables as they are once init has finished."""
    actual = cfg.vabits_actual or cfg.va_bits
    layout = KernelLayout.for_build(cfg.version, cfg.page_size, cfg.va_bits, actual, cfg.build, cfg.kernel_offset)
    first = cfg.ram_banks[0][0]
    image = cfg.image or KernelImage.typical(layout.kimage_vaddr, first + SZ_2M)
    # swapper_pg_dir is in the image (vmlinux.lds.S: the last page directory before __init_begin)
    machine = Machine.simulated(cfg.era, page_size=cfg.page_size, va_bits=cfg.va_bits, vabits_actual=actual,
                                banks=list(cfg.ram_banks + cfg.hotpluggable), version=cfg.version,
                                swapper_pg_dir=image.pa(image.swapper_pg_dir or image.init_begin - cfg.page_size))
    machine.variants = cfg.variants
    era, memory = machine.era, machine.memory
    for start, end in cfg.hotpluggable:          # not memblock's: nothing is allocated there at boot
        memory.reserve(start, end)
    phys_offset = memstart_addr(cfg, actual) if cfg.phys_offset is None else cfg.phys_offset
    _reserve(memory, "the kernel image", image.pa(image.text), image.pa(image.end))
    fdt = cfg.fdt or ((first + QEMU_FDT_OFFSET, QEMU_FDT_SIZE) if memory.is_backed(first + QEMU_FDT_OFFSET,
                                                                                    QEMU_FDT_SIZE) else None)
    if fdt:
        _reserve(memory, "the FDT", fdt[0], fdt[0] + fdt[1])
    if era.data_alias_read_only and image.bss_stop is None:
        raise ArgumentError(f"kernel {cfg.version[0]}.{cfg.version[1]}: __bss_stop is needed (mark_rodata_ro() "
                            "makes the data/bss alias read-only up to it)")
    k = Kernel(machine, cfg, layout, phys_offset=phys_offset, image=image, banks=cfg.ram_banks,
               data_start=-(-image.pa(image.end) // SZ_2M) * SZ_2M,
               vmalloc_start=-(-image.end // SZ_2M) * SZ_2M,
               linear_map_requires_bbml2=(era.has_split_on_demand and not cfg.linear_map_page_granular()
                                          and cfg.can_set_direct_map()))
    if not era.early_map_kernel:
        map_kernel(k)                  # 6.1: from paging_init(), its tables above the pool
    pool = pi.kfence_alloc_pool(k)
    if era.early_map_kernel:
        map_kernel(k)                  # v6.9+: before the MMU is on (its tables are in the image in Linux)
    pi.early_fixmap_init(k)
    if fdt:
        pi.fixmap_remap_fdt(k, *fdt)
    pi.map_mem(k, pool)
    pi.vmemmap_populate(k)
    pi.map_entry_trampoline(k)
    pi.mark_linear_text_alias_ro(k)
    for name, start, end, _, _ in image_segments(k):
        if name != "header":
            k.register_area(start, end - start, VM_MAP | VM_NO_GUARD, caller=f"kernel {name}")
    if pool:
        k.kfence_pool = (pi.lm(k, pool[0]), pi.lm(k, pool[0]) + pool[1] - pool[0])
        kfence_init_pool(k)
    pi.free_initmem(k)
    pi.mark_rodata_ro(k)
    machine.log.clear()
    k.tlb_flushes.clear()
    k.events.clear()
    return k


def _reserve(memory, what: str, start: int, end: int) -> None:
    if not memory.is_backed(start, end - start):
        raise ArgumentError(f"{what} [{start:#x}, {end:#x}) is not inside RAM {memory.ranges()}")
    memory.reserve(start, end)
