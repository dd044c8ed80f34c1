"""Generic mm (linux: mm/, include/linux): mm_struct and VMAs, locks, execution contexts, the
kernel log, eras, the page-table walker, apply_to_page_range, vmalloc areas, KFENCE, ptdump core."""
