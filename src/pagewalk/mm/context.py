"""Execution contexts: process, softirq, hardirq, irqs-off, preemption.

Models the bits of `preempt_count()` and `irqs_disabled()` that decide
whether a function may sleep (linux: include/linux/preempt.h, kernel/sched/
core.c `__might_sleep()`), so that taking a sleeping lock from KFENCE's
softirq path is reported as the kernel reports it.
"""

from contextlib import contextmanager
from dataclasses import dataclass, field

from ..errors import KernelDeadlock
from .log import KernelLog

__all__ = ["ExecutionContext"]


@dataclass
class ExecutionContext:
    """Where the current code runs, like `current` plus `preempt_count()`."""
    log: KernelLog = field(default_factory=KernelLog)
    preempt_count: int = 0
    softirq: int = 0
    hardirq: int = 0
    irqs_off: int = 0
    #: An interleaving explorer's scheduler (check/explore.py); None: one thread runs alone.
    scheduler: object = None

    # -- threads: who runs, where they may be interleaved, waiting for a lock ------------------------
    def current(self) -> str:
        """The running thread's name (`current`): a lock's owner."""
        return self.scheduler.current() if self.scheduler else "main"

    def point(self, op: tuple) -> None:
        """About to do a shared access `op` (kind, object, ...): where another thread may run first."""
        if self.scheduler:
            self.scheduler.point(op)

    def wait(self, lock: str, what: str, ready, acquire=lambda: None) -> None:
        """Sleep on `lock` until `ready()`, then `acquire()`. Alone, a wait that can never end is a deadlock."""
        if self.scheduler:
            self.scheduler.wait(lock, what, ready, acquire)
        elif ready():
            acquire()
        else:
            raise KernelDeadlock(f"{self.current()} waits for {what}, which nothing will release")

    def in_atomic(self) -> bool:
        return bool(self.preempt_count or self.softirq or self.hardirq or self.irqs_off)

    def describe(self) -> str:
        return (f"in_atomic(): {int(self.in_atomic())}, irqs_disabled(): {int(bool(self.irqs_off or self.hardirq))}, "
                f"in_softirq: {int(bool(self.softirq))}, in_hardirq: {int(bool(self.hardirq))}, "
                f"preempt_count: {self.preempt_count}")

    def might_sleep(self, site: str, what: str) -> None:
        """`might_sleep()`: report when called where sleeping is not allowed."""
        if self.in_atomic():
            self.log.might_sleep(site, f"{what} ({self.describe()})")

    @contextmanager
    def _raised(self, counter: str):
        setattr(self, counter, getattr(self, counter) + 1)
        try:
            yield self
        finally:
            setattr(self, counter, getattr(self, counter) - 1)

    def in_softirq(self):
        """Run the body as a softirq handler (e.g. a KFENCE timer)."""
        return self._raised("softirq")

    def in_hardirq(self):
        """Run the body as a hard interrupt handler."""
        return self._raised("hardirq")

    def irqs_disabled(self):
        """Run the body with interrupts disabled (local_irq_save())."""
        return self._raised("irqs_off")
