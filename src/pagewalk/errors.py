"""Exceptions raised at pagewalk's user-facing API.

Kernel-shaped functions return negative errnos like the kernel does; these
exceptions are for misuse and bad input (corrupt dumps, bad addresses), and
each message names what is wrong and where.
"""

__all__ = ["PagewalkError", "KernelDeadlock", "DumpError", "PhysicalAddressError", "PoisonedPageError",
           "ReadOnlyMemoryError", "TableLoopError", "AddressError", "ArgumentError"]


class PagewalkError(Exception):
    """Base class of every error pagewalk raises on purpose."""


class DumpError(PagewalkError):
    """A memory dump cannot be used: missing, not an ELF core, truncated, not arm64."""


class PhysicalAddressError(PagewalkError):
    """A physical address is not backed by the memory being read."""

    def __init__(self, pa: int, size: int = 8, what: str = "physical memory"):
        self.pa = pa
        self.size = size
        super().__init__(f"physical address {pa:#x} (+{size}) is not backed by {what}")


class PoisonedPageError(PhysicalAddressError):
    """A read hit a freed (poisoned) table page: a stale table pointer was followed."""

    def __init__(self, pa: int, page: int):
        self.pa = pa
        self.size = 8
        self.page = page
        PagewalkError.__init__(
            self, f"read of freed page {page:#x} at {pa:#x}: a stale table pointer was followed")


class ReadOnlyMemoryError(PagewalkError):
    """A write was attempted on read-only memory (a dump)."""

    def __init__(self, pa: int, what: str = "a memory dump"):
        self.pa = pa
        super().__init__(f"cannot write {what} (physical address {pa:#x}): it is read-only")


class TableLoopError(PagewalkError):
    """A table descriptor points back at a table already on the current walk path."""

    def __init__(self, va: int, level: int, table_pa: int):
        self.va, self.level, self.table_pa = va, level, table_pa
        super().__init__(
            f"table loop translating {va:#018x}: level {level} points back to table {table_pa:#x}")


class KernelDeadlock(PagewalkError):
    """A simulated kernel thread waits for a lock that can never be released."""


class ArgumentError(PagewalkError, ValueError):
    """An argument or option with no valid meaning (an unknown era, a page size of 0, 1.5 pages)."""


class AddressError(PagewalkError):
    """A virtual address is not valid for the requested operation."""
