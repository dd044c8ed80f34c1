"""Mapping the kernel image (linux: arch/arm64/kernel/pi/map_kernel.c `map_kernel()`,
pi/map_range.c `map_range()` for v6.9+; arch/arm64/mm/mmu.c `map_kernel()` for 6.1).
Spec: arm64-boot-mappings.md B24-B26.

From v6.9 the image is mapped before the MMU is on, by map_range(): a block
wherever the chunk is aligned (7.x: only at level 2), contiguous PTEs for
text and data, none for the header, rodata and init. 6.1 maps it from
paging_init() with __create_pgd_mapping() and leaves the 64K header unmapped.
Linux takes map_range()'s tables from the image's init_pg_dir; the model
takes them from memblock, which changes table addresses only.
"""

from ..asm.pgtable_hwdef import PMD_TYPE_MASK, PMD_TYPE_SECT, PMD_TYPE_TABLE, PTE_CONT, PXD_TABLE_UXN
from .create_mapping import NO_CONT_MAPPINGS, create_pgd_mapping
from .mapping import Prot

__all__ = ["map_kernel", "map_range", "image_segments"]


def image_segments(k) -> list[tuple[str, int, int, Prot, bool]]:
    """`(name, start, end, prot, may_use_cont)` in mapping order. Init text and init data are one segment
    (kallsyms has no `__inittext_end`); both are unmapped by free_initmem()."""
    img, cfg = k.image, k.config
    text_prot = Prot.kernel(k, ro=cfg.rodata != "off", x=True)
    rw = Prot.kernel(k)
    segments = [("header", img.text, img.stext, rw, False)] if k.machine.era.early_map_kernel else []
    return segments + [("text", img.stext, img.start_rodata, text_prot, True),
                       ("rodata", img.start_rodata, img.init_begin, rw, False),
                       ("init", img.init_begin, img.init_end, rw, False),
                       ("data", img.init_end, img.end, rw, True)]


def map_kernel(k) -> None:
    """Map every image segment: map_range() into the root table (v6.9+), or __create_pgd_mapping() (6.1,
    rodata with NO_CONT_MAPPINGS because mark_rodata_ro() remaps it)."""
    hw, img = k.machine.arch.hw, k.image
    for name, start, end, prot, cont in image_segments(k):
        if k.machine.era.early_map_kernel:
            map_range(k, start, end, img.pa(start), prot, hw.start_level, k.ttbr1, cont)
        else:
            create_pgd_mapping(k, img.pa(start), start, end - start, prot, 0 if cont else NO_CONT_MAPPINGS)


def map_range(k, start: int, end: int, pa: int, prot: Prot, level: int, table: int, may_use_cont: bool) -> None:
    """pi/map_range.c: map `[start, end)` at `level` of the table at PA `table` (B26)."""
    arch, memory = k.machine.arch, k.machine.memory
    hw, page = arch.hw, arch.page_size
    cmask = (hw.contiguous_entries(3) * page - 1) if level == 3 else (1 << 64) - 1
    lmask = hw.level_size(level) - 1
    start, pa = start & ~(page - 1), pa & ~(page - 1)
    aligned_end = -(-end // page) * page
    ptr = table + 8 * hw.index(start, level)
    protval = prot.value & ~PMD_TYPE_MASK | (PMD_TYPE_TABLE if level == 3 else PMD_TYPE_SECT)
    while start < end:
        nxt = min((start | lmask) + 1, aligned_end)
        if level < 3 and ((start | nxt | pa) & lmask or (k.machine.era.map_range_blocks_from_pmd_only and level < 2)):
            if memory.read_u64(ptr) == 0:
                k.write_entry(ptr, hw.encode_address(memory.alloc_page(), arch.page_shift) | PMD_TYPE_TABLE
                              | PXD_TABLE_UXN)
            map_range(k, start, nxt, pa, prot, level + 1, arch.table_address(memory.read_u64(ptr)), may_use_cont)
        else:
            if (start | pa) & cmask == 0 and may_use_cont:
                protval |= PTE_CONT
            if end & ~cmask <= start:
                protval &= ~PTE_CONT
            k.write_entry(ptr, hw.encode_address(pa, hw.level_shift(level)) | protval)
        pa += nxt - start
        start, ptr = nxt, ptr + 8
