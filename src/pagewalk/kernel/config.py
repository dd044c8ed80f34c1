"""Boot configuration of a simulated kernel: build options, command line, CPU features.

>>> c = KernelConfig(era="6.12", rodata="on")
>>> c.version, c.rodata_full, KernelConfig(era="later", rodata="on").rodata_full
((6, 12, 117), False, True)
"""

from dataclasses import dataclass, field

from ..arch.arm64.mm.image import KernelImage
from ..arch.arm64.mm.kconfig import BuildOptions
from ..errors import ArgumentError
from ..hw.aarch64.geometry import Geometry
from ..mm.era import Era

__all__ = ["KernelConfig", "RODATA", "RODATA_FULL_DEFAULT_SINCE", "VARIANTS"]

RODATA = ("full", "on", "noalias", "off")
#: v6.17 made rodata_full the default and "rodata=on" mean full; "noalias" is the non-full mode.
RODATA_FULL_DEFAULT_SINCE = (6, 17)
#: Historical or hypothetical code the explorer can run instead of the era's (kernel-pgtable-freeing.md).
VARIANTS = {
    "static-key-enable-disable": "6.18's ptdump key toggled with static_branch_enable/disable (v3-v5, S-d)",
    "children-unlocked": "pud_free_pmd_page() frees the PTE tables first, without the lock round trip (S-e1)",
    "children-locked": "pud_free_pmd_page() in F7 order with a lock round trip per child and on the PUD (S-e2)",
    "arm64-key-kept": "7.x core trylock with 6.18's arm64 key protocol still in place (S-g)",
    "check-wx-without-online-mems": "ptdump_check_wx() without get_online_mems() (before 59305202c67f, S-h2)",
    "init-mm-lock-only": "ptdump protected by the init_mm write lock alone (S-h3)",
}


@dataclass
class KernelConfig:
    """Boot configuration: build options, command line and CPU features."""
    era: Era = Era.LATER
    page_size: int = 4096
    va_bits: int = 48
    vabits_actual: int | None = None
    rodata: str = "full"
    bbml2: bool = False
    kfence: bool = False
    kfence_early_init: bool = True
    kpti: bool = False
    bti: bool = False
    debug_pagealloc: bool = False
    realm: bool = False
    ram: int = 1 << 30
    ram_base: int = 0x40000000
    caps_finalized: bool = True
    page_allocator_up: bool = True
    online_cpus: int = 1
    #: UP-6.18 with the Nov-2025 atomic-context fix (False: as first merged).
    nov2025_fix: bool = True
    #: PROT_NS_SHARED: the realm's "shared" IPA bit (the top bit of a 48-bit IPA space).
    realm_shared_bit: int = 1 << 47
    #: CONFIG_PTDUMP_DEBUGFS (kernel_page_tables in debugfs; before 6.18 it turns huge vmap off).
    ptdump_debugfs: bool = False
    #: CONFIG_DEBUG_WX (ptdump_check_wx() after mark_rodata_ro(), and debugfs check_wx_pages).
    debug_wx: bool = False
    #: Kernel version whose predicates apply (default: the era's).
    version: tuple[int, int, int] | None = None
    #: RAM banks `(start, end)` (/proc/iomem "System RAM"); default one bank [ram_base, ram_base + ram).
    ram_banks: tuple[tuple[int, int], ...] = ()
    #: The build options the layout depends on (fixmap slots, KPTI trampoline, relocation).
    build: BuildOptions = field(default_factory=BuildOptions)
    #: KASLR: the image's offset from KIMAGE_VADDR (vmcoreinfo KERNELOFFSET).
    kernel_offset: int = 0
    #: memstart_addr (vmcoreinfo PHYS_OFFSET); default: the first bank rounded down to ARM64_MEMSTART_ALIGN.
    phys_offset: int | None = None
    #: The image's section symbols and load address; default: a typical image 2 MiB into the first bank.
    image: KernelImage | None = None
    #: The flattened device tree `(pa, size)`; default: QEMU virt's, 1 MiB at 130 MiB into the first bank.
    fdt: tuple[int, int] | None = None
    #: RAM the machine has but the kernel does not boot with, for add_memory() (a DIMM slot, virtio-mem).
    hotpluggable: tuple[tuple[int, int], ...] = ()
    #: Code variants of the kernel-pgtable-freeing.md history, by name (VARIANTS).
    variants: frozenset = frozenset()

    def __post_init__(self):
        self.era = Era.parse(self.era)
        if self.rodata not in RODATA:
            raise ArgumentError(f"rodata={self.rodata!r}: one of {', '.join(RODATA)}")
        try:
            for bits in (self.va_bits, self.vabits_actual or self.va_bits):
                Geometry(self.page_size, bits, ds=bits == 52 and self.page_size != 65536)
        except (ValueError, KeyError) as e:
            raise ArgumentError(f"page_size={self.page_size}, va_bits={self.va_bits}: {e}") from None
        if not isinstance(self.ram, int) or self.ram < 64 << 20 or self.ram % self.page_size:
            raise ArgumentError(f"ram={self.ram!r}: whole pages, at least 64 MiB (the model's image and data sit "
                                "in the first 16 MiB)")
        self.ram_banks = tuple(sorted(self.ram_banks)) or ((self.ram_base, self.ram_base + self.ram),)
        for start, end in self.ram_banks:
            if end <= start or start % self.page_size or end % self.page_size:
                raise ArgumentError(f"RAM bank [{start:#x}, {end:#x}): not whole {self.page_size}-byte pages")
        self.version = self.version or self.era.version
        self.variants = frozenset(self.variants)
        unknown = self.variants - VARIANTS.keys()
        if unknown:
            raise ArgumentError(f"variant {', '.join(sorted(unknown))}: one of {', '.join(VARIANTS)}")

    @property
    def rodata_full(self) -> bool:
        """`rodata_full` as this era parses `rodata=` (arm64-pageattr.md §1.5)."""
        if self.version >= RODATA_FULL_DEFAULT_SINCE:
            return self.rodata in ("full", "on")
        return self.rodata == "full"

    def kfence_late(self) -> bool:
        """`arm64_kfence_can_set_direct_map()`: KFENCE built in but not initialised early."""
        return self.kfence and not self.kfence_early_init

    def can_set_direct_map(self) -> bool:
        """`can_set_direct_map()`: the linear map may change page by page."""
        realm = self.realm and self.era.has_realm_pageattr
        return self.rodata_full or self.debug_pagealloc or self.kfence_late() or realm

    def force_pte_mapping(self) -> bool:
        """`force_pte_mapping()` (6.18+): the linear map must be PTE-only (no BBML2 to split it later).
        Before and after capabilities are finalized the model's boot CPU and system agree on BBML2."""
        return self.debug_pagealloc or (not self.bbml2 and (self.rodata_full or self.kfence_late() or self.realm))

    def linear_map_page_granular(self) -> bool:
        """map_mem()'s NO_BLOCK_MAPPINGS | NO_CONT_MAPPINGS: force_pte_mapping() (6.18+), else can_set_direct_map()."""
        return self.force_pte_mapping() if self.era.has_split_on_demand else self.can_set_direct_map()

    @property
    def bbml2_system_ready(self) -> bool:
        """`system_supports_bbml2_noabort()`: false until capabilities are finalized."""
        return self.bbml2 and self.caps_finalized
