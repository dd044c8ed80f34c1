"""MAIR_EL1 decoding (Arm ARM D8.5; aarch64-vmsa.md §1.3).

>>> decode_attr(attr_byte(LINUX_MAIR, 0)), decode_attr(attr_byte(LINUX_MAIR, 4))
('Normal WB-RWA', 'Device-nGnRE')
"""

__all__ = ["LINUX_MAIR", "LINUX_MT_NAMES", "LINUX_MT_LABELS", "decode_attr", "attr_byte"]

#: What Linux programs (arch/arm64/mm/proc.S MAIR_EL1_SET) before MTE is enabled.
LINUX_MAIR = 0x000000040044FFFF
#: Linux's MT_* index names and the ptdump labels for AttrIndx 0..4.
LINUX_MT_NAMES = {0: "MT_NORMAL", 1: "MT_NORMAL_TAGGED", 2: "MT_NORMAL_NC", 3: "MT_DEVICE_nGnRnE", 4: "MT_DEVICE_nGnRE"}
LINUX_MT_LABELS = {0: "MEM/NORMAL", 1: "MEM/NORMAL-TAGGED", 2: "MEM/NORMAL-NC", 3: "DEVICE/nGnRnE", 4: "DEVICE/nGnRE"}

_DEVICE = {0b00: "nGnRnE", 0b01: "nGnRE", 0b10: "nGRE", 0b11: "GRE"}


def _policy(nibble: int) -> str:
    if nibble == 0b0100:
        return "NC"
    kind = {0b11: "WB", 0b10: "WT", 0b01: "WB-transient", 0b00: "WT-transient"}[nibble >> 2]
    alloc = ("R" if nibble & 2 else "") + ("W" if nibble & 1 else "")
    return f"{kind}{'-' + alloc + 'A' if alloc else ''}"


def decode_attr(byte: int) -> str:
    """Human-readable memory type of one MAIR attribute byte, e.g. 'Normal WB-RWA'."""
    if byte >> 4 == 0:
        return f"Device-{_DEVICE[(byte >> 2) & 3]}"
    if byte == 0xF0:
        return "Normal Tagged WB-RWA"
    outer, inner = _policy(byte >> 4), _policy(byte & 0xF)
    return f"Normal {inner}" if inner == outer else f"Normal inner {inner} outer {outer}"


def attr_byte(mair: int, attrindx: int) -> int:
    return (mair >> (8 * attrindx)) & 0xFF

