"""KFENCE's page-table side (linux: mm/kfence/core.c `kfence_init_pool()`, `kfence_init_late()`,
arch/arm64/include/asm/kfence.h `kfence_protect_page()`, arch/arm64/mm/mmu.c `arch_kfence_init_pool()`).

The pool is `2 * (CONFIG_KFENCE_NUM_OBJECTS + 1)` pages in the linear map,
always PTE-mapped; the two leading pages and every object's guard page are
kept invalid. `kfence_protect_page()` is `set_memory_valid(addr, 1, !protect)`
and is called from allocation paths in any context, softirq included.
"""

from errno import ENOMEM

__all__ = ["KFENCE_NUM_OBJECTS", "pool_pages", "kfence_protect_page", "kfence_init_pool", "kfence_init_late"]

KFENCE_NUM_OBJECTS = 255


def pool_pages() -> int:
    return 2 * (KFENCE_NUM_OBJECTS + 1)


def kfence_protect_page(kernel, addr: int, protect: bool) -> bool:
    """arm64: always reports success, whatever set_memory_valid() returned."""
    kernel.set_memory_valid(addr, 1, 0 if protect else 1)
    return True


def kfence_init_pool(kernel) -> None:
    """Protect the two leading pages and each object's guard page (odd indices)."""
    start, end = kernel.kfence_pool
    page = kernel.machine.arch.page_size
    for i in range((end - start) // page):
        if i < 2 or i % 2:
            kfence_protect_page(kernel, start + i * page, True)


def kfence_init_late(kernel) -> int:
    """Sampling switched on after boot (arm64-boot-mappings.md B23): the pool comes from
    alloc_contig_pages(), then arch_kfence_init_pool() splits its linear map to PTEs unless
    force_pte_mapping() says it already is (6.18+; earlier kernels keep KFENCE late only when
    can_set_direct_map() made the whole linear map page-granular). 0 or -ENOMEM."""
    page = kernel.machine.arch.page_size
    pfns = kernel.alloc_data_pages(pool_pages())
    if pfns is None:
        return -ENOMEM
    start = kernel.page_address(pfns[0])
    kernel.kfence_pool = (start, start + len(pfns) * page)
    if kernel.machine.era.has_split_on_demand and not kernel.config.linear_map_page_granular():
        kernel.pgtable_split_lock.lock()
        err = kernel.splitter.range_split_to_ptes(*kernel.kfence_pool)
        kernel.pgtable_split_lock.unlock()
        if err:
            kernel.kfence_pool = None
            return err
    kfence_init_pool(kernel)
    return 0
