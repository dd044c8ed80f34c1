"""Sleeping and spinning locks that record who holds them, and static keys.

`RWSemaphore` models `mmap_lock` (include/linux/mmap_lock.h), `Mutex` a
sleeping mutex (e.g. arm64 `pgtable_split_lock`), `Spinlock` a page-table
lock, `PercpuRWSemaphore` `mem_hotplug_lock`, `StaticKey` a jump label. Taking
a sleeping lock calls might_sleep(); a spinlock disables preemption while held.

For several threads (an interleaving explorer), the rwsem and the percpu rwsem
also take requests by owner that either acquire or queue, as
kernel-pgtable-freeing.md F29-F33 state (sequentially consistent, no handoff):

>>> lock = RWSemaphore("init_mm->mmap_lock", ExecutionContext())
>>> lock.request_read("ptdump"), lock.request_write("vmap"), lock.try_read("walker")
(True, False, False)
>>> lock.release("ptdump")                    # the queued writer gets it
['vmap']
"""

from dataclasses import dataclass, field

from .context import ExecutionContext

__all__ = ["RWSemaphore", "PercpuRWSemaphore", "Mutex", "Spinlock", "StaticKey"]


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

    # -- owners that may block (F29-F32) ---------------------------------------------------
    #: Who holds it ('read' or 'write') and who waits, first come first served.
    holders: dict[str, str] = field(default_factory=dict)
    waiters: list[tuple[str, str]] = field(default_factory=list)

    def _grant(self, owner: str, mode: str) -> None:
        self.holders[owner] = mode
        if mode == "write":
            self.writer = True
        else:
            self.readers += 1

    def try_read(self, owner: str) -> bool:
        """`down_read_trylock()` (F30): fails without sleeping iff a writer holds it or anyone waits."""
        if self.writer or self.waiters:
            return False
        self._grant(owner, "read")
        return True

    def request_read(self, owner: str) -> bool:
        """`down_read()` (F29, F32): acquired, or queued (False) iff a writer holds it, or a waiter is queued
        while another reader holds it (a reader may otherwise steal past a queued writer)."""
        if self.writer or (self.waiters and self.readers):
            self.waiters.append((owner, "read"))
            return False
        self._grant(owner, "read")
        return True

    def request_write(self, owner: str) -> bool:
        """`down_write()` (F31, F32): acquired if free, else queued in FIFO order (False)."""
        if self.is_locked() or self.waiters:
            self.waiters.append((owner, "write"))
            return False
        self._grant(owner, "write")
        return True

    def release(self, owner: str) -> list[str]:
        """`up_read()`/`up_write()` by `owner`; returns the waiters it let in: the head writer once the lock is
        free, or the run of readers at the head of the queue."""
        mode = self.holders.pop(owner)
        if mode == "write":
            self.writer = False
        else:
            self.readers -= 1
        woken = []
        while self.waiters and not self.writer:
            waiter, wants = self.waiters[0]
            if wants == "write" and (self.readers or woken):
                break
            self.waiters.pop(0)
            self._grant(waiter, wants)
            woken.append(waiter)
            if wants == "write":
                break
        return woken


@dataclass
class PercpuRWSemaphore:
    """`mem_hotplug_lock` (F33): `get_online_mems()` reads, `mem_hotplug_begin()` writes; a pending writer
    blocks new readers and waits for the readers in to drain (writer preference)."""
    name: str
    readers: set[str] = field(default_factory=set)
    writer: str | None = None
    pending: list[str] = field(default_factory=list)

    def request_read(self, owner: str) -> bool:
        if self.writer is not None or self.pending:
            return False
        self.readers.add(owner)
        return True

    def request_write(self, owner: str) -> bool:
        """True once `owner` holds it; until then it is pending (new readers wait behind it)."""
        if owner not in self.pending:
            self.pending.append(owner)
        if self.writer is None and not self.readers and self.pending[0] == owner:
            self.pending.pop(0)
            self.writer = owner
            return True
        return False

    def release(self, owner: str) -> None:
        if self.writer == owner:
            self.writer = None
        else:
            self.readers.discard(owner)


@dataclass
class StaticKey:
    """A static key (kernel/jump_label.c, F34): inc/dec count users, enable/disable are boolean and warn on a
    mismatched count; `static_branch_unlikely()` reads count > 0.

    >>> key = StaticKey("arm64_ptdump_lock_key")
    >>> key.inc(); key.inc(); key.dec(); key.enabled()             # two users, one left: still on
    True
    >>> both = StaticKey("v3-v5 form")
    >>> both.enable(); both.enable(); both.disable(); both.enabled()   # two walkers, one done: off (S-d)
    False
    """
    name: str
    count: int = 0
    warnings: list[str] = field(default_factory=list)

    def enabled(self) -> bool:
        return self.count > 0

    def inc(self) -> None:
        self.count += 1

    def dec(self) -> None:
        if self.count <= 0:
            self.warnings.append(f"static_branch_dec: count {self.count} would go negative")
            return
        self.count -= 1

    def enable(self) -> None:
        if self.count > 0:
            if self.count != 1:
                self.warnings.append(f"static_branch_enable: count {self.count} != 1")
            return
        self.count = 1

    def disable(self) -> None:
        if self.count != 1:
            if self.count != 0:
                self.warnings.append(f"static_branch_disable: count {self.count} != 1")
            return
        self.count = 0


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
