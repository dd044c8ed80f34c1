"""Descriptor bits and the output-address codec: the one home of both.

Arm ARM D8.3 (VMSAv8-64 descriptors) and aarch64-vmsa.md §3, §3.5. Every
other module takes bit positions from `Bit` and address encodings from
`OutputAddress` (Linux's `PTE_*` names are defined on top, in
arch/arm64/asm/pgtable_hwdef.py).

>>> oa = OutputAddress.for_format(ds=True)
>>> hex(oa.encode(0x8_0000_4000_0000, 12)), hex(oa.decode(0x300 | 0x4000_0000, 12))
('0x40000200', '0xc000040000000')
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ...phys.memory import MASK64

__all__ = ["Bit", "OutputAddress", "bits", "field_mask", "ATTRINDX_SHIFT", "ATTRINDX_MASK", "SH_SHIFT", "SH_MASK",
           "SH_NAMES"]


class Bit:
    """Single-bit fields of block, page and table descriptors (plain ints: hot paths use them)."""
    VALID = 1 << 0          # PTE_VALID
    TABLE = 1 << 1          # PTE_TABLE_BIT / type: 1 = table or page, 0 = block
    NS = 1 << 5
    AP1 = 1 << 6            # PTE_USER: EL0 access
    AP2 = 1 << 7            # PTE_RDONLY
    AF = 1 << 10            # PTE_AF; in table descriptors the FEAT_HAFT table AF
    NG = 1 << 11            # PTE_NG; also PTE_PRESENT_INVALID when VALID is clear (6.10+)
    NT = 1 << 16            # block descriptors, FEAT_BBM
    GP = 1 << 50            # PTE_GP (BTI guarded page)
    DBM = 1 << 51           # PTE_DBM = Linux PTE_WRITE
    CONT = 1 << 52          # PTE_CONT
    PXN = 1 << 53           # PTE_PXN
    UXN = 1 << 54           # PTE_UXN
    SW_DIRTY = 1 << 55      # PTE_DIRTY
    SW_SPECIAL = 1 << 56    # PTE_SPECIAL
    SW_DEVMAP = 1 << 57     # PTE_DEVMAP (6.1, 6.12)
    SW_58 = 1 << 58         # PTE_UFFD_WP; 6.1 PTE_PROT_NONE
    PXN_TABLE = 1 << 59     # also PBHA[0]; 6.1 PMD_PRESENT_INVALID on leaves
    UXN_TABLE = 1 << 60
    AP_TABLE_NO_EL0 = 1 << 61
    AP_TABLE_RDONLY = 1 << 62
    NS_TABLE = 1 << 63


TYPE_MASK = Bit.VALID | Bit.TABLE      # bits[1:0]: 0b11 table (page at level 3), 0b01 block
ATTRINDX_SHIFT, ATTRINDX_MASK = 2, 0x7 << 2
SH_SHIFT, SH_MASK = 8, 0x3 << 8
SH_NAMES = {0b00: "non-shareable", 0b01: "reserved", 0b10: "outer", 0b11: "inner"}


def bits(value: int, high: int, low: int) -> int:
    """`value[high:low]`, the bit field as an integer.

    >>> bits(0b110100, 5, 4)
    3
    """
    return (value >> low) & ((1 << (high - low + 1)) - 1)


def field_mask(high: int, low: int) -> int:
    """The mask of bits `[high:low]`.

    >>> hex(field_mask(47, 12))
    '0xfffffffff000'
    """
    return ((1 << (high - low + 1)) - 1) << low


@dataclass(frozen=True)
class OutputAddress:
    """How a descriptor holds its output address (aarch64-vmsa.md §3.5).

    The low part `OA[low_top-1:shift]` sits in place; with 52-bit formats the
    top bits come from elsewhere: LPA2 (TCR.DS=1) keeps OA[51:50] in bits
    [9:8], the 64K 52-bit format keeps OA[51:48] in bits [15:12].
    """
    #: First bit above the in-place part (48, or 50 under LPA2).
    low_top: int = 48
    #: Where the high OA bits sit in the descriptor, how many, and where they go in the OA.
    high_at: int = 0
    high_bits: int = 0
    high_to: int = 0

    @classmethod
    def for_format(cls, ds: bool = False, pa52_64k: bool = False) -> "OutputAddress":
        if ds:
            return cls(50, 8, 2, 50)
        if pa52_64k:
            return cls(48, 12, 4, 48)
        return cls()

    @cached_property
    def oa_bits(self) -> int:
        return self.high_to + self.high_bits if self.high_bits else self.low_top

    @cached_property
    def high_mask(self) -> int:
        return (1 << self.high_bits) - 1

    def low_mask(self, shift: int) -> int:
        """The in-place address bits of a descriptor whose address starts at bit `shift`."""
        return field_mask(self.low_top - 1, shift)

    def mask(self, shift: int) -> int:
        """Every descriptor bit that holds part of the address (in place and high bits)."""
        return self.low_mask(shift) | (self.high_mask << self.high_at)

    def decode(self, desc: int, shift: int) -> int:
        """The OA base of a descriptor whose address field starts at bit `shift`."""
        return (desc & self.low_mask(shift)) | ((desc >> self.high_at) & self.high_mask) << self.high_to

    def encode(self, pa: int, shift: int) -> int:
        """The descriptor bits that hold `pa` (aligned to `1 << shift`)."""
        if pa & ((1 << shift) - 1):
            raise ValueError(f"address {pa:#x} is not aligned to {1 << shift:#x}")
        if pa >> self.oa_bits:
            raise ValueError(f"address {pa:#x} needs more than {self.oa_bits} output-address bits")
        return (pa & self.low_mask(shift)) | ((pa >> self.high_to) & self.high_mask) << self.high_at

    def decode_array(self, desc: np.ndarray, shift: int) -> np.ndarray:
        """decode() for a uint64 array."""
        out = desc & np.uint64(self.low_mask(shift))
        if self.high_bits:
            out |= ((desc >> np.uint64(self.high_at)) & np.uint64(self.high_mask)) << np.uint64(self.high_to)
        return out

    def encode_array(self, pas: np.ndarray, shift: int) -> np.ndarray:
        """encode() for a uint64 array of aligned addresses (not checked)."""
        out = pas & np.uint64(self.low_mask(shift) & MASK64)
        if self.high_bits:
            out |= ((pas >> np.uint64(self.high_to)) & np.uint64(self.high_mask)) << np.uint64(self.high_at)
        return out
