"""What generic mm includes from arm64 (arch/arm64/include/asm): the software
page-table levels, their folding and predicates, and Linux's PTE_* names."""
