"""The rest of the boot-time kernel tables (linux: arch/arm64/mm/mmu.c `map_mem()`,
`arm64_kfence_alloc_pool()` / `arm64_kfence_map_pool()`, `mark_linear_text_alias_ro()`,
`mark_rodata_ro()`, `map_entry_trampoline()`, `vmemmap_populate()`, `fixmap_remap_fdt()`;
mm/init.c `free_initmem()`). Spec: arm64-boot-mappings.md B11-B23, B27-B35.

Each function takes the kernel `k` being booted (its machine, config, image,
layout, phys_offset and banks) and returns nothing: at boot the kernel panics
on failure, so do these (MemoryError).
"""

from errno import ENOMEM

from ....mm.kfence import pool_pages
from ....phys.memory import MASK64
from ..asm.pgtable_hwdef import MT_NORMAL_TAGGED, PTE_DIRTY, PTE_NG
from .create_mapping import (
    NO_BLOCK_MAPPINGS, NO_CONT_MAPPINGS, NO_EXEC_MAPPINGS, create_pgd_mapping, populate_pte_tables, update_mapping_prot,
)
from .mapping import Prot

__all__ = ["kfence_alloc_pool", "map_mem", "mark_linear_text_alias_ro", "mark_rodata_ro", "free_initmem",
           "vmemmap_populate", "vmemmap_populate_section", "vmemmap_range", "sections", "early_fixmap_init", "fixmap_remap_fdt", "map_entry_trampoline", "lm"]

STRUCT_PAGE = 64
#: __entry_tramp_text_end - __entry_tramp_text_start is 8-12K in every capture (3 pages of 4K, 1 of 16K/64K).
ENTRY_TRAMP_TEXT_SIZE = 12 << 10


def lm(k, pa: int) -> int:
    """`__phys_to_virt()`: the linear-map address of a physical address."""
    return ((pa - k.phys_offset) & MASK64) | k.page_offset


def _create(k, pa: int, va: int, size: int, prot: Prot, flags: int) -> None:
    if create_pgd_mapping(k, pa, va, size, prot, flags):
        raise MemoryError(f"__create_pgd_mapping({pa:#x}, {va:#x}, {size:#x}): out of page-table memory")


def _tagged(k) -> Prot:
    """pgprot_tagged(PAGE_KERNEL): MT_NORMAL_TAGGED whatever the CPU (B7)."""
    return Prot.kernel(k, attrindx=MT_NORMAL_TAGGED)


def kfence_alloc_pool(k) -> tuple[int, int] | None:
    """arm64_kfence_alloc_pool(): the early pool's physical range, from memblock top-down (B19, B20)."""
    if not (k.config.kfence and k.config.kfence_early_init):
        return None
    size = pool_pages() * k.machine.arch.page_size
    pa = k.machine.memory.alloc_range(size, k.machine.arch.page_size)
    if pa is None:
        raise MemoryError(f"no {size:#x} bytes of RAM left for the KFENCE pool")
    return pa, pa + size


def _subtract(banks, holes):
    """for_each_mem_range() with NOMAP regions: the banks minus the holes, ascending."""
    pieces = []
    for start, end in banks:
        for lo, hi in sorted(holes):
            if lo < end and start < hi:
                if start < lo:
                    pieces.append((start, lo))
                start = max(start, hi)
        if start < end:
            pieces.append((start, end))
    return pieces


def map_mem(k, pool: tuple[int, int] | None) -> None:
    """The linear map of RAM with the image alias carved out (6.x) or mapped first (7.x) (B11-B14, B21)."""
    cfg, era, img = k.config, k.machine.era, k.image
    granular = cfg.linear_map_page_granular()
    flags = NO_EXEC_MAPPINGS | (NO_BLOCK_MAPPINGS | NO_CONT_MAPPINGS if granular else 0)
    pool_flags = NO_BLOCK_MAPPINGS | NO_CONT_MAPPINGS | (NO_EXEC_MAPPINGS if era.kfence_pool_no_exec else 0)
    if era.map_mem_image_first:
        if pool:
            _create(k, pool[0], lm(k, pool[0]), pool[1] - pool[0], _tagged(k), pool_flags)
        for start, end in ((img.text, img.init_begin), (img.init_end, img.bss_stop)):
            _create(k, img.pa(start), lm(k, img.pa(start)), end - start, _tagged(k), flags)
        for start, end in k.banks:
            _create(k, start, lm(k, start), end - start, _tagged(k), flags)
        return
    alias = img.pa(getattr(img, _ALIAS_FIELD[era.linear_alias_start])), img.pa(img.init_begin)
    for start, end in _subtract(k.banks, [alias] + ([pool] if pool else [])):
        _create(k, start, lm(k, start), end - start, _tagged(k), flags)
    _create(k, alias[0], lm(k, alias[0]), alias[1] - alias[0], Prot.kernel(k), NO_CONT_MAPPINGS)
    if pool:
        _create(k, pool[0], lm(k, pool[0]), pool[1] - pool[0], _tagged(k), pool_flags)


_ALIAS_FIELD = {"_text": "text", "_stext": "stext"}


def _update(k, pa: int, va: int, size: int, prot: Prot) -> None:
    flags = 0 if k.machine.era.boot_remap_keeps_granularity else NO_CONT_MAPPINGS
    if update_mapping_prot(k, pa, va, size, prot, flags):
        raise MemoryError(f"update_mapping_prot({va:#x}, {size:#x}): a table is missing")


def mark_linear_text_alias_ro(k) -> None:
    """smp_cpus_done(): the alias of text and rodata becomes read-only, whatever rodata= says (B16)."""
    img = k.image
    start = getattr(img, _ALIAS_FIELD[k.machine.era.linear_alias_start])
    _update(k, img.pa(start), lm(k, img.pa(start)), img.init_begin - start, Prot.kernel(k, ro=True))


def mark_rodata_ro(k) -> None:
    """mark_readonly() with rodata on: rodata (and from v6.9 the header) read-only; 7.x also the data/bss alias
    (B17, B27)."""
    img, era = k.image, k.machine.era
    if k.config.rodata == "off":
        return
    ro = Prot.kernel(k, ro=True)
    _update(k, img.pa(img.start_rodata), img.start_rodata, img.init_begin - img.start_rodata, ro)
    if era.early_map_kernel:
        _update(k, img.pa(img.text), img.text, img.stext - img.text, ro)
    if era.data_alias_read_only:
        _update(k, img.pa(img.init_end), lm(k, img.pa(img.init_end)), img.bss_stop - img.init_end, ro)


def free_initmem(k) -> None:
    """vunmap_range(__init_begin, __init_end): leaves cleared, tables kept (B28)."""
    k.mapper.unmap_range(k.image.init_begin, k.image.init_end)


def sections(k, start: int, end: int) -> range:
    """The memory sections (SECTION_SIZE_BITS: 27, 29 on 64K) that `[start, end)` touches."""
    size = 1 << (29 if k.machine.arch.page_size == 65536 else 27)
    return range(start // size * size, end, size)


def vmemmap_range(k, section_pa: int) -> tuple[int, int]:
    """The struct pages of the memory section at `section_pa`: `vmemmap + pfn * 64`, with
    `vmemmap = VMEMMAP_START - (s64)PHYS_OFFSET >> PAGE_SHIFT * 64` (B33)."""
    shift = k.machine.arch.page_shift
    signed = k.phys_offset - (1 << 64) if k.phys_offset >> 63 else k.phys_offset
    start = (k.layout.vmemmap_start - (signed >> shift) * STRUCT_PAGE + (section_pa >> shift) * STRUCT_PAGE) & MASK64
    section = sections(k, section_pa, section_pa + 1).step
    return start, start + (section >> shift) * STRUCT_PAGE


def vmemmap_populate_section(k, section_pa: int) -> int:
    """vmemmap_populate(): PMD blocks on 4K (PROT_SECT_NORMAL in 6.x), base pages otherwise (B33);
    0 or -ENOMEM."""
    arch, memory = k.machine.arch, k.machine.memory
    start, end = vmemmap_range(k, section_pa)
    blocks = arch.page_size == 4096
    prot = Prot.kernel(k)
    if blocks and not k.machine.era.vmemmap_blocks_dirty:
        prot = Prot(prot.value & ~PTE_DIRTY)                 # PROT_SECT_NORMAL
    backing = memory.alloc_range(end - start, end - start if blocks else arch.page_size)
    if backing is None:
        return -ENOMEM
    return create_pgd_mapping(k, backing, start, end - start, prot,
                              NO_CONT_MAPPINGS | (0 if blocks else NO_BLOCK_MAPPINGS))


def vmemmap_populate(k) -> None:
    """The struct pages of every memory section with RAM (at boot a failure is a panic)."""
    for s in sorted({s for start, end in k.banks for s in sections(k, start, end)}):
        if vmemmap_populate_section(k, s):
            raise MemoryError(f"vmemmap of section {s:#x}: out of memory")


def early_fixmap_init(k) -> None:
    """The fixmap's PTE tables: every PMD of the fixmap from v6.9, the first one in 6.1."""
    lay = k.layout
    end = lay.fixaddr_top if lay.new_layout else lay.fixmap_start + 1
    if populate_pte_tables(k, lay.fixmap_start, end):
        raise MemoryError("no page for the fixmap's tables")


def fix_to_virt(k, idx: int) -> int:
    return k.layout.fixaddr_top - idx * k.machine.arch.page_size


def fixmap_remap_fdt(k, dt: int, size: int) -> None:
    """setup_machine_fdt(): the FDT read-only at FIX_FDT (B34)."""
    page, mode = k.machine.arch.page_size, k.machine.era.fdt_fixmap_flags
    ro = Prot.kernel(k, ro=True)
    if mode == "blocks":                                       # 6.1: SWAPPER_BLOCK_SIZE units
        block = (2 << 20) if page == 4096 else page
        base = dt // block * block
        length = max(block, -(-(dt - base + size) // block) * block)
        _create(k, base, fix_to_virt(k, (4 << 20) // page), length, ro, NO_CONT_MAPPINGS)
        return
    fix_fdt = 2 + -(-(2 << 20) // page)
    base = dt // page * page
    _create(k, base, fix_to_virt(k, fix_fdt), dt + size - base, ro, NO_CONT_MAPPINGS if mode == "no-cont" else 0)


def map_entry_trampoline(k) -> None:
    """The KPTI entry trampoline's text (global) and, when relocatable, its data page in the fixmap (B35)."""
    era, img, opts = k.machine.era, k.image, k.layout.options
    wanted = k.config.kpti if era.trampoline_needs_kpti else opts.kpti
    if not wanted or img.entry_tramp_text_start is None:
        return
    page = k.machine.arch.page_size
    text1 = k.layout.permanent_fixmap_slots() - 1
    pa = img.pa(img.entry_tramp_text_start)
    text = Prot.kernel(k, ro=k.config.rodata != "off", x=True)
    pages = -(-ENTRY_TRAMP_TEXT_SIZE // page)
    _create(k, pa, fix_to_virt(k, text1), pages * page, Prot(text.value & ~PTE_NG),
            NO_BLOCK_MAPPINGS | NO_CONT_MAPPINGS)
    if opts.relocatable:
        _create(k, pa + pages * page, fix_to_virt(k, text1 - pages), page, Prot.kernel(k, ro=True),
                NO_BLOCK_MAPPINGS | NO_CONT_MAPPINGS)
