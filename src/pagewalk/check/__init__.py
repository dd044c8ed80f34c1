"""Checkers a simulated kernel runs on every call (attached by `pagewalk.boot()` unless checks=False).

- break-before-make (bbm.py): every live descriptor change the Arm ARM forbids
  without invalid -> TLBI -> new, except what BBML2_NOABORT allows;
- TLB (tlb.py): translations cached on use; any stale one visible after a
  function returns, except where the kernel deliberately skips the flush;
- contiguous groups (arm64-pageattr.md §9.7): mixed attributes under one hint;
- lock context: a sleeping lock or allocation in atomic context (the kernel's
  "sleeping function called from invalid context", from might_sleep()) comes
  from the kernel's own log (`Kernel.violations`).

Each report is a `Violation` naming the function, the address, the
descriptor before/after and the rule. `race.py` is the interleaving explorer.
"""

from ..kernel.hooks import Violation
from .bbm import BreakBeforeMake
from .tlb import TlbModel, check_contiguous_groups

__all__ = ["Checkers", "Violation", "attach_checkers", "CHECKED"]

#: The kernel functions the TLB and contiguous-group checks watch.
CHECKED = ("__change_memory_common", "set_memory_ro", "set_memory_rw", "set_memory_x", "set_memory_nx",
           "set_memory_valid", "set_direct_map_invalid_noflush", "set_direct_map_default_noflush",
           "set_direct_map_valid_noflush", "split_kernel_leaf_mapping", "change_memory_common", "vfree",
           "kfence_protect_page", "set_memory_encrypted", "set_memory_decrypted")
NOFLUSH = ("set_direct_map_invalid_noflush", "set_direct_map_default_noflush")
#: Calls that leave stale translations on purpose: the *_noflush APIs, and vfree(), whose
#: TLB flush is deferred until the lazy vmap purge (nothing may touch the freed range before).
DELIBERATE = NOFLUSH + ("vfree",)


class Checkers:
    """The hook: break-before-make on every write, TLB and contiguous groups around every checked call."""

    def __init__(self):
        self.bbm = BreakBeforeMake()
        self.tlb = TlbModel()

    def before_call(self, kernel, name: str, args: tuple) -> None:
        if name in CHECKED:
            self.tlb.fill_for(kernel, name, args)

    def after_call(self, kernel, name: str, args: tuple, flushes: list) -> None:
        if name in CHECKED:
            self.tlb.check_after(kernel, name, flushes, deliberate=name in DELIBERATE)
            check_contiguous_groups(kernel, name, args)

    def on_write(self, kernel, ptr: int, old: int, new: int) -> None:
        self.bbm(kernel, ptr, old, new)


def attach_checkers(kernel) -> None:
    """Attach the checkers to a kernel."""
    kernel.attach(Checkers())
