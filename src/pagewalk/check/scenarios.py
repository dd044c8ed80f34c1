"""The scenario catalogue of kernel-pgtable-freeing.md §4, written with the explorer's API: each is a
kernel set up by the real boot, then threads that are the kernel's own code paths.

>>> s = SCENARIOS["pageattr-owned-vs-vmap-huge"]
>>> result = s.run(Options(era="later"))
>>> result.verdict, result.complete
('safe', True)
"""

import copy
from dataclasses import dataclass, replace

from ..arch.arm64.mm.kconfig import BuildOptions
from ..arch.arm64.mm.ptdump import ptdump_check_wx
from ..errors import ArgumentError
from ..kernel.boot import start_kernel
from ..kernel.config import RODATA_FULL_DEFAULT_SINCE, VARIANTS, KernelConfig
from ..mm.era import Era
from .explore import Exploration, KernelThread, explore, replay

__all__ = ["Options", "Scenario", "SCENARIOS", "ERAS", "CONFIG_SYMBOLS"]

SZ_2M, SZ_1G = 2 << 20, 1 << 30
#: Era names the catalogue uses: "6.12-early" is 6.12 before its 2026 stable backports (F0.3).
ERAS = {"6.12": ("6.12", None), "6.12-early": ("6.12", (6, 12, 0)), "base": ("base", None),
        "seed-v2": ("seed-v2", None), "6.18": ("6.18", None), "later": ("later", None)}
#: `--config SYM=y|n`: the kernel config symbols that change behaviour here, as boot options.
CONFIG_SYMBOLS = {"PTDUMP_DEBUGFS": "ptdump_debugfs", "DEBUG_WX": "debug_wx"}


@dataclass(frozen=True)
class Options:
    era: str = "later"
    variant: str | None = None
    config: tuple[tuple[str, bool], ...] = ()
    page_size: int = 4096
    level: str = "pmd"
    walker: str = "ptdump"
    bound: int = 1000
    random: int = 0
    seed: int = 0

    def kernel_config(self, **extra) -> KernelConfig:
        if self.era not in ERAS:
            raise ArgumentError(f"era {self.era!r}: one of {', '.join(ERAS)}")
        era, version = ERAS[self.era]
        version = version or Era.parse(era).version
        if self.variant and self.variant not in VARIANTS and self.variant != "nov-2025-fix":
            raise ArgumentError(f"variant {self.variant!r}: one of {', '.join([*VARIANTS, 'nov-2025-fix'])}")
        # a small machine whose linear map uses blocks (rodata not "full"): shorter walks, same races
        options = dict(era=era, version=version, page_size=self.page_size, ram=128 << 20,
                       rodata="noalias" if version >= RODATA_FULL_DEFAULT_SINCE else "on",
                       ptdump_debugfs=True, debug_wx=True, variants=frozenset(
                           {self.variant} if self.variant in VARIANTS else ()))
        for symbol, value in self.config:
            if symbol not in CONFIG_SYMBOLS:
                raise ArgumentError(f"--config {symbol}: one of {', '.join(CONFIG_SYMBOLS)}")
            options[CONFIG_SYMBOLS[symbol]] = value
        options.update(extra)
        return KernelConfig(**options)


@dataclass
class Scenario:
    name: str
    spec: str
    threads: str
    expected: list[tuple[str, str]]
    build: object = None                         # (Options) -> (booted kernel, [KernelThread])
    levels: tuple[str, ...] = ("pmd",)
    walkers: tuple[str, ...] = ("ptdump",)

    def prepare(self, options: Options):
        if options.level not in self.levels:
            raise ArgumentError(f"{self.name}: --level {options.level}: this scenario has {', '.join(self.levels)}")
        if options.walker not in self.walkers:
            raise ArgumentError(f"{self.name}: --walker {options.walker}: one of {', '.join(self.walkers)}")
        template, threads = self.build(options)
        return (lambda: copy.deepcopy(template)), threads

    def run(self, options: Options, on_progress=None) -> Exploration:
        """Explore; `on_progress(executions, bound)` after each execution."""
        setup, threads = self.prepare(options)
        return explore(setup, threads, bound=options.bound, random=options.random, seed=options.seed,
                       fallbacks=lambda k: k.vmap_fallbacks, on_progress=on_progress)

    def replay(self, options: Options, schedule: str):
        setup, threads = self.prepare(options)
        return replay(setup, threads, schedule)


# -- building blocks: kernels and threads ------------------------------------------------------------

def _boot(options: Options, walker: bool = True, **extra):
    k = start_kernel(options.kernel_config(**extra))
    if not walker:
        return k
    if options.walker == "ptdump" and not k.config.ptdump_debugfs:
        raise ArgumentError("the ptdump walker is debugfs kernel_page_tables: it needs --config PTDUMP_DEBUGFS=y")
    if options.walker == "check-wx" and not (k.config.debug_wx or k.config.ptdump_debugfs):
        raise ArgumentError("the check-wx walker needs CONFIG_DEBUG_WX or CONFIG_PTDUMP_DEBUGFS")
    return k


def _purged_table(k, unit: int) -> int:
    """A `unit`-aligned VA whose tables are still linked with nothing mapped: a small vmalloc area there,
    vfree()d and purged (vunmap keeps tables, F11; the VA is free again)."""
    space = k.vmalloc_space
    space.skip_to(-(-space.cursor // unit) * unit)
    va = k.vmalloc(4 * k.config.page_size)
    k.vfree(va)
    k.vm_unmap_aliases()
    return va


def _walker(kind: str):
    """ptdump as debugfs kernel_page_tables runs it, or ptdump_check_wx(), over the whole kernel space."""
    def body(k):
        if kind == "check-wx":
            ptdump_check_wx(k.machine, k.layout.ptdump_start)
        else:
            k.ptdump()
    return KernelThread(kind, body)


def _vmap_huge(level: str):
    """A huge mapping of exactly one block over the purged range: vmalloc_huge (PMD) or ioremap (PUD)."""
    def body(k):
        if level == "pud":
            k.ioremap(64 * SZ_1G, SZ_1G)
        else:
            k.vmalloc_huge(SZ_2M)
    return KernelThread(f"vmap-huge-{level}", body)


def _ptdump_vs_vmap(options: Options, walkers=None):
    k = _boot(options)
    _purged_table(k, SZ_1G if options.level == "pud" else SZ_2M)
    walkers = walkers or [options.walker]
    return k, [_walker(w) for w in walkers] + [_vmap_huge(options.level)]


def _two_walkers(options: Options):
    return _ptdump_vs_vmap(replace(options, walker="ptdump"), ["ptdump", "check-wx"])


def _hot_remove(options: Options):
    k = _boot(options, hotpluggable=((0x80000000, 0x88000000),))
    assert k.add_memory(0x80000000, 128 << 20) == 0
    return k, [_walker(options.walker), KernelThread("hot-remove", lambda k: k.remove_memory(0x80000000, 128 << 20))]


def _pageattr_vs_vmap(stale: bool):
    def build(options: Options):
        k = _boot(options, walker=False)
        own = k.vmalloc(4 * k.config.page_size)
        target = _purged_table(k, SZ_2M)
        if stale:
            body = lambda k: k.set_memory_valid(target, 1, 0)          # noqa: E731 - a vfree'd address
            name = "set_memory_valid(stale)"
        else:
            body = lambda k: k.set_memory_ro(own, 4)                   # noqa: E731 - its own live area
            name = "set_memory_ro(own)"
        return k, [KernelThread(name, body), _vmap_huge("pmd")]
    return build


def _kfence_vs_split(options: Options):
    fix = options.variant == "nov-2025-fix" or options.era != "6.18"
    k = _boot(options, walker=False, rodata="on" if options.era == "seed-v2" else "noalias", bbml2=True,
              kfence=True, nov2025_fix=fix)
    page = k.config.page_size
    block = k.page_address(0x50000000 // page)               # inside a linear-map block (BBML2 keeps them)
    kfence_page = k.kfence_pool[0] + 4 * page
    return k, [KernelThread("set_direct_map_invalid", lambda k: k.set_direct_map_invalid_noflush(block)),
               KernelThread("kfence(softirq)", lambda k: k.kfence_protect_page(kfence_page, True), irq=True)]


#: CONFIG_KASAN_SHADOW_OFFSET of a generic-KASAN arm64 build with 48-bit VAs (arch/arm64/Kconfig).
KASAN_SHADOW_OFFSET_48 = 0xdfff800000000000


def _pagemap_failure(options: Options):
    """A generic-KASAN kernel (the boot-time shadow of RAM is not modelled: only the hot-plug shadow), a
    ZONE_DEVICE range whose arch_add_memory() fails in __add_pages(): no memory for its struct pages."""
    k = _boot(options, build=BuildOptions(kasan="generic", kasan_shadow_offset=KASAN_SHADOW_OFFSET_48),
              hotpluggable=((0x80000000, 0x88000000),))
    early_shadow_pte = k.machine.memory.alloc_page()           # kasan_early_shadow_pte[] in the image
    probe = copy.deepcopy(k)                                   # the vmemmap's backing is the last allocation
    before = probe.machine.memory.allocations
    assert probe.pagemap_range(0x80000000, 128 << 20, early_shadow_pte) == 0
    k.machine.memory.fail_nth_allocation(probe.machine.memory.allocations - before)
    return k, [_walker(options.walker), KernelThread(
        "pagemap_range(fails)", lambda k: k.pagemap_range(0x80000000, 128 << 20, early_shadow_pte))]


SCENARIOS = {s.name: s for s in [
    Scenario("ptdump-vs-vmap-huge", "S-a, S-b, S-c, S-f",
             "ptdump (or check-wx) || huge vmap promoting over a still-linked table (a purged, reused VA)",
             [("6.12", "safe: no promotion with PTDUMP_DEBUGFS (S-a)"),
              ("6.12-early --config PTDUMP_DEBUGFS=n --walker check-wx", "use-after-free (S-b)"),
              ("6.12 --config PTDUMP_DEBUGFS=n --walker check-wx", "safe: the trylock (S-b on 6.12.117)"),
              ("6.18", "safe (S-c)"), ("later", "safe: vmap falls back when the trylock fails (S-f)")],
             _ptdump_vs_vmap, levels=("pmd", "pud"), walkers=("ptdump", "check-wx")),
    Scenario("two-walkers-vs-vmap-huge", "S-c, S-d", "ptdump || check-wx || huge vmap",
             [("6.18", "safe"), ("6.18 --variant static-key-enable-disable", "use-after-free (S-d)")],
             _two_walkers, levels=("pmd", "pud")),
    Scenario("pud-free-order", "S-e", "ptdump || pud_free_pmd_page with the key on (ioremap of 1 GiB)",
             [("6.18", "safe (S-e3)"), ("6.18 --variant children-unlocked", "use-after-free (S-e1)"),
              ("6.18 --variant children-locked", "safe (S-e2)")],
             lambda o: _ptdump_vs_vmap(replace(o, level="pud")), levels=("pud",)),
    Scenario("vmap-trylock-with-arm64-key", "S-g", "huge vmap (7.2 core trylock, 6.18 arm64 key kept) || ptdump",
             [("later --variant arm64-key-kept", "deadlock (S-g)"), ("later", "safe (S-f)")],
             _ptdump_vs_vmap),
    Scenario("ptdump-vs-hot-remove", "S-h", "ptdump or check-wx || memory hot-remove",
             [("6.12, 6.18, later", "safe (S-h1)"),
              ("--walker check-wx --variant check-wx-without-online-mems", "use-after-free (S-h2)"),
              ("--variant init-mm-lock-only", "use-after-free (S-h3)")],
             _hot_remove, walkers=("ptdump", "check-wx")),
    Scenario("pageattr-owned-vs-vmap-huge", "S-i", "set_memory_ro on its own vmalloc area || huge vmap of another",
             [("every era", "safe")], _pageattr_vs_vmap(False)),
    Scenario("pageattr-stale-vs-vmap-huge", "S-i", "set_memory_valid on a vfree'd address || huge vmap reusing it",
             [("every era", "use-after-free")], _pageattr_vs_vmap(True)),
    Scenario("kfence-softirq-vs-split", "seed, F26",
             "set_direct_map_invalid splitting a linear-map block (BBML2) || KFENCE set_memory_valid in softirq",
             [("6.18", "sleep-in-atomic (as merged)"), ("6.18 --variant nov-2025-fix", "safe"), ("later", "safe"),
              ("seed-v2", "safe")], _kfence_vs_split),
    Scenario("pagemap-failure-vs-ptdump", "S-p (derived, not reported upstream)",
             "ptdump || pagemap_range() failing: KASAN shadow tables freed after mem_hotplug_done()",
             [("6.12, 6.18, later", "use-after-free (expected by the spec)")], _pagemap_failure,
             walkers=("ptdump", "check-wx")),
]}

