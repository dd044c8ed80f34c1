"""AArch64 stage-1 TTBR1/TTBR0 geometry (Arm ARM D8.2; spec: aarch64-vmsa.md §2).

Everything that depends on the granule and the VA size lives here as data:
levels, start level, per-level shift and entry count, where blocks are
allowed, and the output-address format.
"""

from dataclasses import dataclass
from functools import cached_property

from .bits import OutputAddress, bits

__all__ = ["Geometry", "GRANULES", "TG1_GRANULE"]

GRANULES = {4096: 12, 16384: 14, 65536: 16}
#: TCR_EL1.TG1 encodings (not TG0's!): 0b01 16K, 0b10 4K, 0b11 64K.
TG1_GRANULE = {0b01: 16384, 0b10: 4096, 0b11: 65536}
#: CONFIG_ARM64_CONT_PTE_SHIFT / CONT_PMD_SHIFT per granule (entries per contiguous group = 1 << shift).
CONT_PTE_SHIFT = {12: 4, 14: 7, 16: 5}
CONT_PMD_SHIFT = {12: 4, 14: 5, 16: 5}


@dataclass(frozen=True)
class Geometry:
    """One translation regime's shape: granule, VA size `n`, DS, 52-bit OA.

    >>> g = Geometry(page_size=4096, va_bits=48)
    >>> g.levels, g.start_level, g.top_entries, hex(g.level_size(2))
    (4, 0, 512, '0x200000')
    >>> Geometry(page_size=4096, va_bits=52, ds=True).start_level
    -1
    """

    page_size: int
    va_bits: int
    ds: bool = False
    #: 64K granule with FEAT_LPA: OA[51:48] in descriptor bits [15:12].
    pa52_64k: bool = False

    def __post_init__(self):
        if self.page_size not in GRANULES:
            raise ValueError(f"granule {self.page_size} is not 4K, 16K or 64K")
        if self.ds and self.page_size == 65536:
            raise ValueError("TCR.DS (LPA2) has no meaning for the 64K granule")
        if self.pa52_64k and self.page_size != 65536:
            raise ValueError("the 52-bit 64K OA format needs the 64K granule")
        top = 52 if (self.ds or self.page_size == 65536) else 48
        low = self.page_shift + (self.page_shift - 3) + 1  # at least two levels
        if not low <= self.va_bits <= top:
            raise ValueError(
                f"VA size {self.va_bits} bits is outside {low}..{top} for the {self.page_size // 1024}K granule"
                + ("" if self.ds or self.page_size == 65536 else " without LPA2"))

    @classmethod
    def from_tcr(cls, tcr: int, ttbr1: bool = True) -> "Geometry":
        """Geometry of the TTBR1 (or TTBR0) half from a TCR_EL1 value."""
        tg1 = bits(tcr, 31, 30)
        if ttbr1:
            if tg1 not in TG1_GRANULE:
                raise ValueError(f"TCR_EL1.TG1 = {tg1:#04b} is reserved")
            page_size, tsz = TG1_GRANULE[tg1], bits(tcr, 21, 16)
        else:
            page_size, tsz = {0b00: 4096, 0b01: 65536, 0b10: 16384}[bits(tcr, 15, 14)], bits(tcr, 5, 0)
        ds = bool(bits(tcr, 59, 59)) and page_size != 65536
        ips52 = bits(tcr, 34, 32) == 0b110
        return cls(page_size, 64 - tsz, ds=ds, pa52_64k=page_size == 65536 and ips52)

    @cached_property
    def page_shift(self) -> int:
        return GRANULES[self.page_size]

    @cached_property
    def bits_per_level(self) -> int:
        return self.page_shift - 3

    @cached_property
    def levels(self) -> int:
        """ARM64_HW_PGTABLE_LEVELS(n) = (n - 4) / (g - 3)."""
        return (self.va_bits - 4) // self.bits_per_level

    @cached_property
    def start_level(self) -> int:
        return 4 - self.levels

    def level_shift(self, level: int) -> int:
        return self.page_shift + self.bits_per_level * (3 - level)

    def level_size(self, level: int) -> int:
        return 1 << self.level_shift(level)

    def entries(self, level: int) -> int:
        """Descriptors in a table at `level` (the top table may be smaller than a granule)."""
        if level == self.start_level:
            return 1 << (self.va_bits - self.level_shift(level))
        return 1 << self.bits_per_level

    @cached_property
    def top_entries(self) -> int:
        return self.entries(self.start_level)

    def index(self, va: int, level: int) -> int:
        return (va >> self.level_shift(level)) & (self.entries(level) - 1)

    def block_allowed(self, level: int) -> bool:
        """Whether bits[1:0] = 01 is a block at `level` (Arm ARM; aarch64-vmsa.md §3.2)."""
        if level == 2:
            return True
        if self.page_shift == 12:
            return level == 1 or (level == 0 and self.ds)
        if self.page_shift == 14:
            return level == 1 and self.ds
        return level == 1 and self.pa52_64k

    @cached_property
    def ttbr1_base(self) -> int:
        """Lowest TTBR1 address: 2^64 - 2^n."""
        return (1 << 64) - (1 << self.va_bits)

    def contiguous_entries(self, level: int) -> int:
        """Entries in one contiguous-hint group at `level` (3 = pages, 2 = blocks)."""
        shift = CONT_PTE_SHIFT if level == 3 else CONT_PMD_SHIFT
        return 1 << shift[self.page_shift]

    # -- output addresses (aarch64-vmsa.md §3.5) --------------------------
    @cached_property
    def oa(self) -> OutputAddress:
        """This regime's output-address format."""
        return OutputAddress.for_format(self.ds, self.pa52_64k)

    @cached_property
    def oa_bits(self) -> int:
        return self.oa.oa_bits

    def output_address(self, desc: int, shift: int) -> int:
        """OA base of a block/page/table descriptor whose address field starts at `shift`."""
        return self.oa.decode(desc, shift)

    def encode_address(self, pa: int, shift: int) -> int:
        """The descriptor bits that hold `pa` (aligned to `1 << shift`)."""
        return self.oa.encode(pa, shift)

    def __str__(self) -> str:
        extra = " LPA2" if self.ds else (" 52-bit PA" if self.pa52_64k else "")
        return f"{self.page_size // 1024}K granule, {self.va_bits}-bit VA, {self.levels} levels from {self.start_level}{extra}"
