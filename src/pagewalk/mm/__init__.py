"""The generic mm side: mm_struct, VMAs, locks, contexts, the walker, ptdump."""
