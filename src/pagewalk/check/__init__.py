"""Checkers a simulated kernel runs on every call (on by default in tests).

- break-before-make (bbm.py): every live descriptor change the Arm ARM forbids
  without invalid -> TLBI -> new, except what BBML2_NOABORT allows;
- TLB (tlb.py): translations cached on use; any stale one visible after a
  function returns, except where the kernel deliberately skips the flush;
- contiguous groups (arm64-pageattr.md §9.7): mixed attributes under one hint;
- lock context: a sleeping lock or allocation in atomic context (the kernel's
  "sleeping function called from invalid context", from might_sleep()).

Each report is a `Violation` naming the function, the address, the
descriptor before/after and the rule.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    rule: str
    function: str
    address: int | None
    entry_pa: int | None
    before: int | None
    after: int | None
    detail: str = ""

    def __str__(self) -> str:
        where = f" at {self.address:#x}" if self.address is not None else ""
        desc = f" entry {self.entry_pa:#x}: {self.before:#018x} -> {self.after:#018x}" \
            if self.entry_pa is not None and self.before is not None else ""
        return f"{self.rule}: {self.function}{where}{desc}{': ' + self.detail if self.detail else ''}"


API = ("__change_memory_common", "set_memory_ro", "set_memory_rw", "set_memory_x", "set_memory_nx", "set_memory_valid",
       "set_direct_map_invalid_noflush", "set_direct_map_default_noflush", "set_direct_map_valid_noflush",
       "split_kernel_leaf_mapping", "change_memory_common", "vfree", "kfence_protect_page",
       "set_memory_encrypted", "set_memory_decrypted")
NOFLUSH = ("set_direct_map_invalid_noflush", "set_direct_map_default_noflush")
SINGLE_PAGE = NOFLUSH + ("kfence_protect_page",)
#: Calls that leave stale translations on purpose: the *_noflush APIs, and vfree(), whose
#: TLB flush is deferred until the lazy vmap purge (nothing may touch the freed range before).
DELIBERATE = NOFLUSH + ("vfree",)


def call_range(kernel, name: str, args) -> tuple[int, int]:
    """(first page, number of pages) a checked call targets."""
    page = kernel.config.page_size
    start = args[0] & ~(page - 1)
    if name in SINGLE_PAGE:
        return start, 1
    if name == "vfree":
        area = kernel.vmalloc_space.find_vm_area(args[0])
        return start, area.usable_size(page) // page if area else 0
    if name == "__change_memory_common":
        return start, -(-args[1] // page)
    if name == "split_kernel_leaf_mapping":
        return start, (args[1] - args[0]) // page
    return start, max(0, int(args[1]))


def install_checkers(kernel) -> None:
    """Wrap the kernel-named calls with the TLB and contiguous-group checks, hook BBM on writes."""
    from .bbm import BreakBeforeMake
    from .tlb import TlbModel, check_contiguous_groups
    kernel.found_violations = []
    kernel.calls_in_progress = []
    kernel.tlb = TlbModel(kernel)
    kernel.write_hooks.append(BreakBeforeMake(kernel))
    for name in API:
        original = getattr(kernel, name)

        def checked(*args, _name=name, _original=original):
            outer = not kernel.calls_in_progress
            kernel.calls_in_progress.append(_name)
            flushes = len(kernel.tlb_flushes)
            if outer:
                kernel.tlb.fill_for(_name, args)
            try:
                return _original(*args)
            finally:
                kernel.calls_in_progress.pop()
                if outer:
                    kernel.tlb.check_after(_name, kernel.tlb_flushes[flushes:], deliberate=_name in DELIBERATE)
                    check_contiguous_groups(kernel, _name, args)
        setattr(kernel, name, checked)
