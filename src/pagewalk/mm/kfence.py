"""KFENCE's page-table side (linux: mm/kfence/core.c `kfence_init_pool()`,
arch/arm64/include/asm/kfence.h `kfence_protect_page()`).

The pool is `2 * (CONFIG_KFENCE_NUM_OBJECTS + 1)` pages in the linear map,
always PTE-mapped; the two leading pages and every object's guard page are
kept invalid. `kfence_protect_page()` is `set_memory_valid(addr, 1, !protect)`
and is called from allocation paths in any context, softirq included.
"""

__all__ = ["KFENCE_NUM_OBJECTS", "pool_pages", "kfence_protect_page", "kfence_init_pool"]

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
