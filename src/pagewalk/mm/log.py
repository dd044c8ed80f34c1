"""What the kernel prints when something is wrong: WARN_ON_ONCE, lock
assertions (lockdep / VM_BUG_ON), and might_sleep()'s "sleeping function
called from invalid context". Recorded, never raised, unless strict."""

from dataclasses import dataclass, field

__all__ = ["KernelLog", "Report", "LockAssertion"]


class LockAssertion(AssertionError):
    """Raised instead of recording when a KernelLog is strict."""


@dataclass(frozen=True)
class Report:
    #: 'warning' (WARN_ON_ONCE / VM_WARN_ON_ONCE), 'assertion' (a lock assertion),
    #: 'might_sleep' (sleeping in atomic context) or 'bug'.
    kind: str
    #: Where the kernel checks it, e.g. 'walk_kernel_page_table_range'.
    site: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.site}: {self.message}"


@dataclass
class KernelLog:
    """The model's dmesg for checks: one Report per kernel splat."""
    reports: list[Report] = field(default_factory=list)
    strict: bool = False
    _once: set[tuple] = field(default_factory=set)

    def _add(self, report: Report) -> None:
        if self.strict and report.kind in ("assertion", "might_sleep"):
            raise LockAssertion(str(report))
        self.reports.append(report)

    def warn_on_once(self, site: str, message: str) -> None:
        """WARN_ON_ONCE: recorded the first time a site fires."""
        if (site, message) not in self._once:
            self._once.add((site, message))
            self._add(Report("warning", site, message))

    def warn_on(self, site: str, message: str) -> None:
        """WARN_ON: recorded every time it fires."""
        self._add(Report("warning", site, message))

    def clear_warn_once(self) -> None:
        """What debugfs `clear_warn_once` does: every WARN_ON_ONCE may fire again."""
        self._once.clear()

    def assertion(self, site: str, message: str) -> None:
        """A failed lock assertion (mmap_assert_locked, vma_assert_write_locked, ...), once per site."""
        if self.strict:
            raise LockAssertion(f"assertion: {site}: {message}")
        if ("assertion", site, message) not in self._once:
            self._once.add(("assertion", site, message))
            self._add(Report("assertion", site, message))

    def might_sleep(self, site: str, message: str) -> None:
        self._add(Report("might_sleep", site, f"BUG: sleeping function called from invalid context: {message}"))

    def bug(self, site: str, message: str) -> None:
        """Something the kernel would hang or crash on; the model reports it and goes on."""
        self._add(Report("bug", site, message))

    def __len__(self) -> int:
        return len(self.reports)

    def __iter__(self):
        return iter(self.reports)

    def of_kind(self, kind: str) -> list[Report]:
        return [r for r in self.reports if r.kind == kind]

    def clear(self) -> None:
        self.reports.clear()
        self._once.clear()
