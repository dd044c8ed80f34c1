"""AArch64 VMSAv8-64 descriptors (Arm ARM D8.3; spec: aarch64-vmsa.md §3, §5).

Bit names follow the Arm ARM, with Linux's names (arch/arm64/include/asm/
pgtable-hwdef.h, pgtable-prot.h) noted where they differ.
"""

from dataclasses import dataclass
from enum import Enum

from .bits import ATTRINDX_SHIFT, SH_NAMES, SH_SHIFT, Bit, bits
from .geometry import Geometry

__all__ = ["Bit", "Kind", "kind", "Descriptor", "table_descriptor", "leaf_descriptor"]


class Kind(Enum):
    """How the hardware reads a descriptor at a level."""
    INVALID = "invalid"
    TABLE = "table"
    BLOCK = "block"
    PAGE = "page"
    RESERVED = "reserved"     # bits[1:0] = 01 where no block is allowed (translation fault)


def kind(desc: int, level: int, geometry: Geometry) -> Kind:
    """How the hardware reads `desc` at `level`."""
    if not desc & Bit.VALID:
        return Kind.INVALID
    if level == 3:
        return Kind.PAGE if desc & Bit.TABLE else Kind.RESERVED
    if desc & Bit.TABLE:
        return Kind.TABLE
    return Kind.BLOCK if geometry.block_allowed(level) else Kind.RESERVED


@dataclass(frozen=True)
class Descriptor:
    """A descriptor value read at a level of a regime, decoded on demand.

    >>> d = Descriptor(0x00c0000040400481, 2, Geometry(4096, 52, ds=True))
    >>> d.kind.value, hex(d.output_address), d.read_only, d.pxn
    ('block', '0x40400000', True, False)
    """

    value: int
    level: int
    geometry: Geometry

    @property
    def kind(self) -> Kind:
        return kind(self.value, self.level, self.geometry)

    @property
    def is_leaf(self) -> bool:
        return self.kind in (Kind.BLOCK, Kind.PAGE)

    @property
    def shift(self) -> int:
        """Address-field shift: the granule for tables, the mapping size for leaves."""
        g = self.geometry
        return g.page_shift if self.kind == Kind.TABLE else g.level_shift(self.level)

    @property
    def output_address(self) -> int:
        return self.geometry.output_address(self.value, self.shift)

    def flag(self, bit: Bit) -> bool:
        return bool(self.value & bit)

    attrindx = property(lambda self: bits(self.value, 4, 2))
    ap = property(lambda self: bits(self.value, 7, 6))
    read_only = property(lambda self: self.flag(Bit.AP2))
    user = property(lambda self: self.flag(Bit.AP1))
    af = property(lambda self: self.flag(Bit.AF))
    ng = property(lambda self: self.flag(Bit.NG))
    contiguous = property(lambda self: self.flag(Bit.CONT))
    pxn = property(lambda self: self.flag(Bit.PXN))
    uxn = property(lambda self: self.flag(Bit.UXN))
    dbm = property(lambda self: self.flag(Bit.DBM))
    gp = property(lambda self: self.flag(Bit.GP))

    @property
    def shareability(self) -> int | None:
        """SH[1:0], or None under LPA2 (DS=1), where bits[9:8] are OA[51:50]."""
        return None if self.geometry.ds else bits(self.value, 9, 8)

    @property
    def software_bits(self) -> int:
        """Bits [58:55] (Linux PTE_DIRTY, PTE_SPECIAL, PTE_DEVMAP, bit 58)."""
        return bits(self.value, 58, 55)

    @property
    def table_attributes(self) -> int:
        """Bits [63:59] of a table descriptor (NSTable, APTable, UXNTable, PXNTable)."""
        return bits(self.value, 63, 59)

    def describe(self) -> str:
        """Decoded fields, crash-style (`TABLE PXNTABLE UXNTABLE` / `VALID RDONLY AF ...`)."""
        k = self.kind
        if k == Kind.INVALID:
            return "invalid" if self.value == 0 else f"invalid ({self.value & 0xfff:#05x} in low bits)"
        if k == Kind.RESERVED:
            return "reserved encoding (block not allowed at this level)"
        if k == Kind.TABLE:
            names = [n for n, b in (("NSTABLE", Bit.NS_TABLE), ("APTABLE_RDONLY", Bit.AP_TABLE_RDONLY),
                                     ("APTABLE_NOEL0", Bit.AP_TABLE_NO_EL0), ("UXNTABLE", Bit.UXN_TABLE),
                                     ("PXNTABLE", Bit.PXN_TABLE)) if self.value & b]
            return " ".join(["TABLE", f"next={self.output_address:#x}", *names])
        names = [k.value.upper(), f"oa={self.output_address:#x}", f"AttrIndx={self.attrindx}"]
        for name, bit in (("USER", Bit.AP1), ("RDONLY", Bit.AP2), ("AF", Bit.AF), ("NG", Bit.NG),
                          ("GP", Bit.GP), ("DBM", Bit.DBM), ("CONT", Bit.CONT), ("PXN", Bit.PXN),
                          ("UXN", Bit.UXN), ("SW_DIRTY", Bit.SW_DIRTY), ("SW_SPECIAL", Bit.SW_SPECIAL),
                          ("SW_DEVMAP", Bit.SW_DEVMAP), ("SW_58", Bit.SW_58)):
            if self.value & bit:
                names.append(name)
        sh = self.shareability
        if sh:
            names.append(f"SH={SH_NAMES[sh]}")
        return " ".join(names)


def table_descriptor(geometry: Geometry, next_table: int, *, pxn_table=False, uxn_table=False,
                     ap_table: int = 0, extra: int = 0) -> int:
    """Encode a table descriptor pointing at `next_table`."""
    value = geometry.encode_address(next_table, geometry.page_shift) | Bit.VALID | Bit.TABLE
    value |= (Bit.PXN_TABLE if pxn_table else 0) | (Bit.UXN_TABLE if uxn_table else 0) | (ap_table & 3) << 61
    return int(value | extra)


def leaf_descriptor(geometry: Geometry, level: int, pa: int, *, attrindx: int = 0, read_only=False,
                    user=False, af=True, ng=False, sh: int = 0b11, contiguous=False, pxn=True,
                    uxn=True, dbm=False, gp=False, software: int = 0, valid=True) -> int:
    """Encode a block (levels < 3) or page (level 3) descriptor mapping `pa`."""
    if level < 3 and not geometry.block_allowed(level):
        raise ValueError(f"no block descriptors at level {level} for {geometry}")
    value = geometry.encode_address(pa, geometry.level_shift(level))
    value |= (Bit.VALID if valid else 0) | (Bit.TABLE if level == 3 else 0)
    value |= (attrindx & 7) << ATTRINDX_SHIFT
    if not geometry.ds:
        value |= (sh & 3) << SH_SHIFT
    for flag, bit in ((read_only, Bit.AP2), (user, Bit.AP1), (af, Bit.AF), (ng, Bit.NG),
                      (contiguous, Bit.CONT), (pxn, Bit.PXN), (uxn, Bit.UXN), (dbm, Bit.DBM), (gp, Bit.GP)):
        if flag:
            value |= bit
    return int(value | (software & 0xF) << 55)
