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

`down_read()`/`down_write()` and the other kernel calls take the owner from the
context (`current`) and sleep in `context.wait()` until granted: alone that is a
KernelDeadlock; under an explorer the thread is blocked until the lock is released.
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
    #: Who holds it (owner, 'read' | 'write', ticket) and who waits, first come first served.
    holders: list[tuple[str, str, int]] = field(default_factory=list)
    waiters: list[tuple[str, str, int]] = field(default_factory=list)
    tickets: int = 0

    def down_read(self) -> None:
        self.context.might_sleep(f"down_read({self.name})", f"{self.name} taken for read")
        self.history.append(("read", self.context.in_atomic()))
        self._lock("read", self.request_read)

    def down_write(self) -> None:
        self.context.might_sleep(f"down_write({self.name})", f"{self.name} taken for write")
        self.history.append(("write", self.context.in_atomic()))
        self._lock("write", self.request_write)

    def down_read_trylock(self) -> bool:
        """`mmap_read_trylock()`: never sleeps."""
        self.context.point(("lock", self.name, "rw", "down_read_trylock"))
        return self.try_read(self.context.current())

    def _lock(self, mode: str, request) -> None:
        owner = self.context.current()
        self.context.point(("lock", self.name, "rw", f"down_{mode}"))
        if not request(owner):
            ticket = self.waiters[-1][2]
            self.context.wait(self.name, f"{self.name} for {mode}",
                              lambda: any(h[2] == ticket for h in self.holders))

    def up_read(self) -> None:
        self._unlock("read")

    def up_write(self) -> None:
        self._unlock("write")

    def _unlock(self, mode: str) -> None:
        owner = self.context.current()
        if not any(h[:2] == (owner, mode) for h in self.holders):
            raise RuntimeError(f"up_{mode}({self.name}) by {owner}, which does not hold it for {mode}")
        self.context.point(("lock", self.name, "rw", f"up_{mode}"))
        self.release(owner, mode)

    def is_locked(self) -> bool:
        return self.writer or self.readers > 0

    def is_write_locked(self) -> bool:
        return self.writer

    # -- owners that may block (F29-F32) ---------------------------------------------------
    def _ticket(self) -> int:
        self.tickets += 1
        return self.tickets

    def _grant(self, owner: str, mode: str, ticket: int | None = None) -> None:
        self.holders.append((owner, mode, ticket or self._ticket()))
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
            self.waiters.append((owner, "read", self._ticket()))
            return False
        self._grant(owner, "read")
        return True

    def request_write(self, owner: str) -> bool:
        """`down_write()` (F31, F32): acquired if free, else queued in FIFO order (False)."""
        if self.is_locked() or self.waiters:
            self.waiters.append((owner, "write", self._ticket()))
            return False
        self._grant(owner, "write")
        return True

    def release(self, owner: str, mode: str | None = None) -> list[str]:
        """`up_read()`/`up_write()` by `owner`; returns the waiters it let in: the head writer once the lock is
        free, or the run of readers at the head of the queue."""
        held = next(h for h in reversed(self.holders) if h[0] == owner and mode in (None, h[1]))
        self.holders.remove(held)
        if held[1] == "write":
            self.writer = False
        else:
            self.readers -= 1
        woken = []
        while self.waiters and not self.writer:
            waiter, wants, ticket = self.waiters[0]
            if wants == "write" and (self.readers or woken):
                break
            self.waiters.pop(0)
            self._grant(waiter, wants, ticket)
            woken.append(waiter)
            if wants == "write":
                break
        return woken


@dataclass
class PercpuRWSemaphore:
    """`mem_hotplug_lock` (F33): `get_online_mems()` reads, `mem_hotplug_begin()` writes; a pending writer
    blocks new readers and waits for the readers in to drain (writer preference)."""
    name: str
    context: ExecutionContext | None = None
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

    # -- the kernel's calls, for threads that sleep until they get it -------------------------------
    def percpu_down_read(self) -> None:
        """`get_online_mems()`."""
        self._take("read", self.request_read)

    def percpu_down_write(self) -> None:
        """`mem_hotplug_begin()`: pending at once (new readers wait), holder once the readers drained."""
        self._take("write", self.request_write)

    def _take(self, mode: str, request) -> None:
        ctx = self.context
        ctx.might_sleep(f"percpu_down_{mode}({self.name})", f"{self.name} taken for {mode}")
        owner = ctx.current()
        ctx.point(("lock", self.name, mode, f"percpu_down_{mode}"))
        if not request(owner):
            ctx.wait(self.name, f"{self.name} for {mode}", lambda: self.writer is None and (
                not self.pending if mode == "read" else not self.readers and self.pending[0] == owner),
                lambda: request(owner))

    def percpu_up(self) -> None:
        """`put_online_mems()` / `mem_hotplug_done()`."""
        mode = "write" if self.writer == self.context.current() else "read"
        self.context.point(("lock", self.name, mode, f"percpu_up_{mode}"))
        self.release(self.context.current())


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
    #: Where reads and changes are shared accesses (an explorer); None: not interleaved.
    context: ExecutionContext | None = None

    def _point(self, action: str, mode: str = "write") -> None:
        if self.context is not None:
            self.context.point(("key", self.name, mode, action))

    def enabled(self) -> bool:
        """`static_branch_unlikely()`."""
        self._point("static_branch_unlikely", "read")
        return self.count > 0

    def inc(self) -> None:
        self._point("static_branch_inc")
        self.count += 1

    def dec(self) -> None:
        self._point("static_branch_dec")
        if self.count <= 0:
            self.warnings.append(f"static_branch_dec: count {self.count} would go negative")
            return
        self.count -= 1

    def enable(self) -> None:
        self._point("static_branch_enable")
        if self.count > 0:
            if self.count != 1:
                self.warnings.append(f"static_branch_enable: count {self.count} != 1")
            return
        self.count = 1

    def disable(self) -> None:
        self._point("static_branch_disable")
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
        self.context.point(("lock", self.name, "rw", "mutex_lock"))
        if self.held:
            self.context.wait(self.name, f"mutex {self.name}", lambda: not self.held,
                              lambda: setattr(self, "held", True))
        self.held = True

    def unlock(self) -> None:
        self.context.point(("lock", self.name, "rw", "mutex_unlock"))
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
