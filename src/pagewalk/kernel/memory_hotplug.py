"""Memory hot-add and hot-remove as kernel functions (linux: mm/memory_hotplug.c `add_memory()`,
`try_remove_memory()`, `mem_hotplug_begin()` / `mem_hotplug_done()`). Spec: kernel-pgtable-freeing.md F14.

Both run under mem_hotplug_lock taken for write (a percpu rwsem: ptdump's get_online_mems() excludes
them) and take no init_mm lock. The memory must be RAM the machine has but the kernel did not boot
with (`KernelConfig.hotpluggable`).

>>> from pagewalk import boot
>>> k = boot(era="later", rodata="on", ram=256 << 20, hotpluggable=((0x80000000, 0x88000000),), checks=False)
>>> k.add_memory(0x80000000, 128 << 20), k.translate(k.page_address(0x80000)).mapped
(0, True)
>>> tables = k.machine.memory.live_pages
>>> k.remove_memory(0x80000000, 128 << 20), k.translate(k.page_address(0x80000)).mapped
(0, False)
>>> k.machine.memory.live_pages < tables          # emptied tables were freed (F13)
True
"""

from errno import EINVAL

from ..arch.arm64.mm.hotplug import arch_add_memory, arch_remove_memory
from ..arch.arm64.mm.paging_init import lm
from ..mm.kasan import kasan_add_zero_shadow, kasan_remove_zero_shadow

__all__ = ["add_memory", "remove_memory", "pagemap_range"]


def _hotpluggable(k, start: int, size: int) -> bool:
    return any(lo <= start and start + size <= hi for lo, hi in k.config.hotpluggable)


def add_memory(k, start: int, size: int) -> int:
    """Online a hot-pluggable range: mem_hotplug_begin(), arch_add_memory(), mem_hotplug_done(); 0 or -errno."""
    if not _hotpluggable(k, start, size) or any(lo < start + size and start < hi for lo, hi in k.banks):
        return -EINVAL
    lock = k.machine.mem_hotplug_lock
    lock.percpu_down_write()
    err = arch_add_memory(k, start, size)
    if not err:
        k.banks = tuple(sorted(k.banks + ((start, start + size),)))
    lock.percpu_up()
    return err


def remove_memory(k, start: int, size: int) -> int:
    """Remove a hot-added range: mem_hotplug_begin(), arch_remove_memory(), mem_hotplug_done(); 0 or -EINVAL
    for memory the kernel booted with (arm64 refuses to remove boot memory)."""
    if (start, start + size) not in k.banks or not _hotpluggable(k, start, size):
        return -EINVAL
    lock = k.machine.mem_hotplug_lock
    lock.percpu_down_write()
    arch_remove_memory(k, start, size)
    k.banks = tuple(b for b in k.banks if b != (start, start + size))
    lock.percpu_up()
    return 0


def pagemap_range(k, start: int, size: int, early_shadow_pte: int) -> int:
    """mm/memremap.c `pagemap_range()` for ZONE_DEVICE memory on a KASAN kernel: under mem_hotplug_begin()
    kasan_add_zero_shadow(), then arch_add_memory(); when that fails (it removes its own linear map) the
    error path runs kasan_remove_zero_shadow() *after* mem_hotplug_done() (F15, S-p). 0 or -errno."""
    offset = k.config.build.kasan_shadow_offset
    if offset is None:
        return -EINVAL
    lock = k.machine.mem_hotplug_lock
    lock.percpu_down_write()
    err = kasan_add_zero_shadow(k, lm(k, start), size, offset, early_shadow_pte)
    if not err:
        err = arch_add_memory(k, start, size)
    lock.percpu_up()
    if err:
        kasan_remove_zero_shadow(k, lm(k, start), size, offset)
    return err
