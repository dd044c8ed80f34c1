"""Sleeping and spinning locks that record who holds them.

`RWSemaphore` models `mmap_lock` (include/linux/mmap_lock.h), `Mutex` a
sleeping mutex (e.g. arm64 `pgtable_split_lock`), `Spinlock` a page-table
lock. Taking a sleeping lock calls might_sleep(); a spinlock disables
preemption while held.
"""

from dataclasses import dataclass, field

from .context import ExecutionContext

__all__ = ["RWSemaphore", "Mutex", "Spinlock"]


@dataclass
class RWSemaphore:
    name: str
    context: ExecutionContext
    readers: int = 0
    writer: bool = False
    #: Every acquisition, in order: ('read' | 'write', in_atomic) for tests.
    history: list[tuple[str, bool]] = field(default_factory=list)

    def down_read(self) -> None:
        self.context.might_sleep(f"down_read({self.name})", f"{self.name} taken for read")
        self.history.append(("read", self.context.in_atomic()))
        self.readers += 1

    def up_read(self) -> None:
        if self.readers <= 0:
            raise RuntimeError(f"up_read({self.name}) without down_read")
        self.readers -= 1

    def down_write(self) -> None:
        self.context.might_sleep(f"down_write({self.name})", f"{self.name} taken for write")
        self.history.append(("write", self.context.in_atomic()))
        self.writer = True

    def up_write(self) -> None:
        if not self.writer:
            raise RuntimeError(f"up_write({self.name}) without down_write")
        self.writer = False

    def is_locked(self) -> bool:
        return self.writer or self.readers > 0

    def is_write_locked(self) -> bool:
        return self.writer


@dataclass
class Mutex:
    name: str
    context: ExecutionContext
    held: bool = False

    def lock(self) -> None:
        self.context.might_sleep(f"mutex_lock({self.name})", f"mutex {self.name}")
        self.held = True

    def unlock(self) -> None:
        self.held = False


@dataclass
class Spinlock:
    name: str
    context: ExecutionContext
    held: bool = False

    def lock(self) -> None:
        self.context.preempt_count += 1
        self.held = True

    def unlock(self) -> None:
        self.held = False
        self.context.preempt_count -= 1
