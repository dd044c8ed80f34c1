"""The kernel inside a memory dump (`KernelDump`), and the extract of its page tables."""
