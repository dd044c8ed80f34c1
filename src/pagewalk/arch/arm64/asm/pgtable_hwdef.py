"""Linux's names for descriptor bits (arch/arm64/include/asm/pgtable-hwdef.h,
pgtable-prot.h), defined on the hardware bits of hw/aarch64/bits.py.

>>> PTE_WRITE == Bit.DBM, hex(PTE_PRESENT_INVALID)
(True, '0x800')
"""

from ....hw.aarch64.bits import ATTRINDX_MASK, SH_MASK, TYPE_MASK, Bit

__all__ = ["PTE_VALID", "PTE_TABLE_BIT", "PTE_USER", "PTE_RDONLY", "PTE_SHARED", "PTE_AF", "PTE_NG", "PTE_GP",
           "PTE_WRITE", "PTE_CONT", "PTE_PXN", "PTE_UXN", "PTE_DIRTY", "PTE_ATTRINDX_MASK", "PTE_PRESENT_INVALID",
           "PTE_PROT_NONE_61", "PMD_PRESENT_INVALID_61", "PMD_TYPE_MASK", "PMD_TYPE_SECT", "PMD_TYPE_TABLE",
           "PXD_TABLE_PXN", "PXD_TABLE_UXN", "PXD_TABLE_AF", "MT_NORMAL", "MT_NORMAL_TAGGED", "MT_NORMAL_NC",
           "MT_DEVICE_nGnRnE", "MT_DEVICE_nGnRE", "LEVEL_NAMES", "Bit"]

PTE_VALID = Bit.VALID
PTE_TABLE_BIT = Bit.TABLE
PTE_USER = Bit.AP1
PTE_RDONLY = Bit.AP2
PTE_SHARED = SH_MASK               # inner shareable (not under LPA2, where bits[9:8] are OA)
PTE_AF = Bit.AF
PTE_NG = Bit.NG
PTE_GP = Bit.GP
PTE_WRITE = Bit.DBM
PTE_CONT = Bit.CONT
PTE_PXN = Bit.PXN
PTE_UXN = Bit.UXN
PTE_DIRTY = Bit.SW_DIRTY
PTE_ATTRINDX_MASK = ATTRINDX_MASK
#: v6.10+: a present but invalid entry (PROT_NONE, or a kernel page made invalid) keeps nG set.
PTE_PRESENT_INVALID = Bit.NG
#: 6.1's PTE_PROT_NONE and PMD_PRESENT_INVALID (software bits 58, 59).
PTE_PROT_NONE_61 = Bit.SW_58
PMD_PRESENT_INVALID_61 = Bit.PXN_TABLE
PMD_TYPE_MASK, PMD_TYPE_SECT, PMD_TYPE_TABLE = TYPE_MASK, Bit.VALID, TYPE_MASK
#: Table attributes pXd_populate() writes (PXNTable, UXNTable, the v6.13+ table AF).
PXD_TABLE_PXN, PXD_TABLE_UXN, PXD_TABLE_AF = Bit.PXN_TABLE, Bit.UXN_TABLE, Bit.AF
#: MAIR indices (arch/arm64/include/asm/memory.h).
MT_NORMAL, MT_NORMAL_TAGGED, MT_NORMAL_NC, MT_DEVICE_nGnRnE, MT_DEVICE_nGnRE = 0, 1, 2, 3, 4  # noqa: N816
#: The software levels, by depth (PGD = 0 .. PTE = 4).
LEVEL_NAMES = ("pgd", "p4d", "pud", "pmd", "pte")
