"""Hardware stage-1 translation through TTBR1 (Arm ARM D8.2-D8.4; aarch64-vmsa.md §4).

`translate()` follows one VA through the tables like the MMU does and returns
every step; `translate_batch()` does the same walk for many VAs at once with
numpy (one gather per level).
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...errors import AddressError, PhysicalAddressError
from ...phys.memory import MASK64
from .bits import bits
from .descriptor import Bit, Descriptor, Kind, kind
from .geometry import Geometry
from .mair import LINUX_MAIR, LINUX_MT_LABELS, attr_byte, decode_attr

__all__ = ["kernel_address", "translate", "translate_batch", "make_virt_to_phys", "untag", "Translation", "WalkStep",
           "BatchTranslation"]

TAG_MASK = 0xFF << 56


@dataclass(frozen=True, slots=True)
class WalkStep:
    """One descriptor read: which table, which slot, what was there."""
    level: int
    table_pa: int
    index: int
    value: int
    geometry: Geometry

    @property
    def entry_pa(self) -> int:
        return self.table_pa + 8 * self.index

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.value, self.level, self.geometry)


@dataclass(frozen=True, slots=True)
class Translation:
    """The result of translating one VA: a mapping or a fault, plus the walk."""
    va: int
    steps: tuple[WalkStep, ...]
    pa: int | None = None
    level: int | None = None
    size: int | None = None
    writable: bool = False
    executable: bool = False
    user_readable: bool = False
    user_writable: bool = False
    user_executable: bool = False
    attrindx: int | None = None
    memory_type: str | None = None
    fault: str | None = None
    #: 'translation', 'address-size', 'outside-range', 'external-abort' or 'table-loop'.
    fault_kind: str | None = None
    fault_level: int | None = None

    @property
    def mapped(self) -> bool:
        return self.pa is not None

    @property
    def descriptor(self) -> int | None:
        """The last descriptor read (the leaf, or the one that faulted)."""
        return self.steps[-1].value if self.steps else None

    @property
    def attr(self) -> str | None:
        """Linux's ptdump label for the memory type (keyed on AttrIndx, like ptdump)."""
        return None if self.attrindx is None else LINUX_MT_LABELS.get(self.attrindx)

    @property
    def corrupt(self) -> bool:
        """True when the walk itself went wrong (bad table pointer or loop), not a plain hole."""
        return self.fault_kind in ("external-abort", "table-loop", "address-size")


def untag(va: int, tbi: bool = True) -> int:
    """Linux's `__untagged_addr()` for TTBR1: with TBI, bits [63:56] copy bit 55."""
    va &= MASK64
    if tbi and va >> 55 & 1:
        return va | TAG_MASK
    return va


def kernel_address(va: int) -> int:
    """`va` if it is a 64-bit TTBR1 (kernel) address; AddressError otherwise.

    >>> hex(kernel_address(0xffff800080000000))
    '0xffff800080000000'
    >>> kernel_address(0x400000)
    Traceback (most recent call last):
    pagewalk.errors.AddressError: 0x0000000000400000 is not a kernel address (bit 55 is clear: a TTBR0/user address)
    """
    if not 0 <= va <= MASK64:
        raise AddressError(f"{va:#x} is not a 64-bit address")
    if not (va >> 55) & 1:
        raise AddressError(f"{va:#018x} is not a kernel address (bit 55 is clear: a TTBR0/user address)")
    return va


def translate(mem, geometry: Geometry, root: int, va: int, *, mair: int = LINUX_MAIR,
              tbi: bool = True, hpd: bool = False) -> Translation:
    """Translate a TTBR1 virtual address like the MMU does.

    `root` is the top table's PA (TTBR1.BADDR). Faults come back in the result
    (`fault`, `fault_kind`, `fault_level`), never as exceptions.

    >>> from pagewalk.hw.aarch64.builder import TableBuilder
    >>> from pagewalk.phys.ram import SimulatedRAM
    >>> b = TableBuilder(SimulatedRAM(), Geometry(4096, 48))
    >>> _ = b.map(0xffff000000212000, 0x40900000, read_only=True)
    >>> t = translate(b.memory, b.geometry, b.root, 0xffff0000002123c8)
    >>> hex(t.pa), t.level, t.size, t.writable, [s.level for s in t.steps]
    ('0x409003c8', 3, 4096, False, [0, 1, 2, 3])
    """
    g = geometry
    va = untag(va, tbi)
    start = g.start_level
    if va < g.ttbr1_base or (not tbi and va >> 55 & 1 == 0):
        return Translation(va, (), fault=f"{va:#018x} is outside the TTBR1 range [{g.ttbr1_base:#x}, 2^64)",
                           fault_kind="outside-range", fault_level=start)
    steps: list[WalkStep] = []
    table, seen = root, {root}
    pxn_table = uxn_table = no_el0_table = rdonly_table = False
    for level in range(start, 4):
        index = g.index(va, level)
        try:
            value = mem.read_u64(table + 8 * index)
        except PhysicalAddressError as e:
            return Translation(va, tuple(steps), fault=f"level {level} table at {table:#x} is not in memory ({e})",
                               fault_kind="external-abort", fault_level=level)
        step = WalkStep(level, table, index, value, g)
        steps.append(step)
        k = kind(value, level, g)
        if k in (Kind.INVALID, Kind.RESERVED):
            why = "invalid descriptor" if k == Kind.INVALID else "reserved descriptor encoding"
            return Translation(va, tuple(steps), fault=f"translation fault, level {level} ({why} {value:#018x})",
                               fault_kind="translation", fault_level=level)
        if _oa_res0_set(value, k, g):
            return Translation(va, tuple(steps), fault=f"address size fault, level {level} (descriptor {value:#018x} "
                               f"sets output-address bits beyond {g.oa_bits})", fault_kind="address-size", fault_level=level)
        if k == Kind.TABLE:
            if not hpd:
                pxn_table |= bool(value & Bit.PXN_TABLE)
                uxn_table |= bool(value & Bit.UXN_TABLE)
                no_el0_table |= bool(value & Bit.AP_TABLE_NO_EL0)
                rdonly_table |= bool(value & Bit.AP_TABLE_RDONLY)
            table = g.output_address(value, g.page_shift)
            if table in seen:
                return Translation(va, tuple(steps), fault=f"table loop: level {level} descriptor {value:#018x} at "
                                   f"{step.entry_pa:#x} points back to table {table:#x}",
                                   fault_kind="table-loop", fault_level=level)
            seen.add(table)
            continue
        shift = g.level_shift(level)
        read_only = bool(value & Bit.AP2)
        ro = read_only or rdonly_table
        user = bool(value & Bit.AP1)
        el0 = user and not no_el0_table
        attrindx = (value >> 2) & 7
        return Translation(
            va, tuple(steps), pa=g.output_address(value, shift) | (va & ((1 << shift) - 1)), level=level,
            size=1 << shift, writable=not ro,
            executable=not (value & Bit.PXN or pxn_table or (user and not read_only)),
            user_readable=el0, user_writable=el0 and not ro, user_executable=not (value & Bit.UXN or uxn_table),
            attrindx=attrindx, memory_type=_memory_type(mair, attrindx))
    raise AssertionError("level 3 always ends the walk")


@lru_cache(maxsize=64)
def _memory_type(mair: int, attrindx: int) -> str:
    return decode_attr(attr_byte(mair, attrindx))


def _oa_res0_set(value: int, k: Kind, g: Geometry) -> bool:
    """Whether a 48-bit-OA descriptor sets address bits that must be zero."""
    if g.ds or g.pa52_64k:
        return False
    if k == Kind.TABLE:
        return bits(value, 50, 48) != 0 or (g.page_shift == 16 and bits(value, 15, 12) != 0)
    return bits(value, 49, 48) != 0 or (g.page_shift == 16 and bits(value, 15, 12) != 0)


def make_virt_to_phys(mem, geometry: Geometry, root: int, *, tbi: bool = True):
    """A fast scalar `va -> pa or None` for one regime (no trace, no permissions).

    The same walk as translate(), specialised once per (memory, geometry,
    root). On read-only memory (a dump) it keeps a walk cache, as the MMU
    does: for each level-2 slot, the PTE table's words or the block's base.
    """
    g = geometry
    high_shift, high_mask, high_to = g.oa.high_at, g.oa.high_mask, g.oa.high_to
    address_mask = g.oa.low_mask

    def oa(d: int, mask: int) -> int:
        return d & mask | (d >> high_shift & high_mask) << high_to

    table_mask = address_mask(g.page_shift)
    upper = [(g.level_shift(lvl), g.entries(lvl) - 1, g.block_allowed(lvl), address_mask(g.level_shift(lvl)),
              g.entries(lvl)) for lvl in range(g.start_level, 3)]
    page_shift, page_mask, page_index = g.page_shift, address_mask(g.page_shift), g.entries(3) - 1
    page_offset, slot_shift, slot_offset = (1 << g.page_shift) - 1, g.level_shift(2), (1 << g.level_shift(2)) - 1
    low = g.ttbr1_base

    def walk_to_level_2(va: int):
        """The level-2 result for va's slot: PTE table words (list), a block base (int), or None."""
        table = root
        for shift, index_mask, block_ok, leaf_mask, entries in upper:
            d = int(mem.read_table(table, entries)[va >> shift & index_mask])
            if d & 3 == 3:
                table = oa(d, table_mask)
            elif d & 1 and block_ok:
                return oa(d, leaf_mask) | (va & ~slot_offset & ((1 << shift) - 1))
            else:
                return None
        return mem.read_table(table, page_index + 1).tolist()

    cache: dict[int, object] | None = None if mem.writable else {}

    def virt_to_phys(va: int) -> int | None:
        if tbi and va >> 55 & 1:
            va |= TAG_MASK
        if va < low:
            return None
        if cache is None:
            slot = walk_to_level_2(va)
        else:
            key = va >> slot_shift
            slot = cache.get(key, cache)
            if slot is cache:
                slot = cache[key] = walk_to_level_2(va)
        if type(slot) is list:
            d = slot[va >> page_shift & page_index]
            return oa(d, page_mask) | va & page_offset if d & 3 == 3 else None
        return None if slot is None else slot | va & slot_offset

    return virt_to_phys


# -- batch translation ------------------------------------------------------

@dataclass(frozen=True)
class BatchTranslation:
    """Per-VA results of translate_batch(): `pa` is valid where `mapped`."""
    pa: np.ndarray
    mapped: np.ndarray
    level: np.ndarray
    descriptor: np.ndarray


def _u(x: int) -> np.uint64:
    return np.uint64(x & MASK64)


def translate_batch(mem, geometry: Geometry, root: int, vas, *, tbi: bool = True) -> BatchTranslation:
    """Translate many TTBR1 VAs at once (vectorised: one gather per level).

    Unmapped VAs (any fault) have `mapped` False; a table outside memory
    counts as unmapped here (use translate() to see why).
    """
    g = geometry
    va = np.asarray(vas, dtype=np.uint64)
    if tbi:
        va = va | _u(TAG_MASK)        # a VA with bit 55 clear stays below the TTBR1 range either way
    n = len(va)
    pa = np.zeros(n, dtype=np.uint64)
    level_out = np.full(n, -9, dtype=np.int8)
    desc_out = np.zeros(n, dtype=np.uint64)
    mapped = np.zeros(n, dtype=bool)
    live = np.flatnonzero(va >= _u(g.ttbr1_base))
    live_va = va[live]
    table = np.full(len(live), root, dtype=np.uint64)
    for level in range(g.start_level, 4):
        if not len(live):
            break
        shift = g.level_shift(level)
        desc, ok = mem.gather_u64(table + ((live_va >> _u(shift)) & _u(g.entries(level) - 1)) * _u(8))
        if not ok.all():
            live, live_va, desc = live[ok], live_va[ok], desc[ok]
        kind = desc & _u(3)
        if level < 3:
            descend = kind == _u(3)
            if descend.all():                     # above the leaves, usually everyone goes on
                table = g.oa.decode_array(desc, g.page_shift)
                continue
        leaf_kind = _u(3 if level == 3 else 1)
        if level == 3 or g.block_allowed(level):
            leaf = kind == leaf_kind
            if leaf.all():                        # the common case at the leaves: no masked copies
                desc_out[live], level_out[live], mapped[live] = desc, level, True
                pa[live] = g.oa.decode_array(desc, shift) | (live_va & _u((1 << shift) - 1))
                break
            hit = live[leaf]
            pa[hit] = g.oa.decode_array(desc[leaf], shift) | (live_va[leaf] & _u((1 << shift) - 1))
            mapped[hit] = True
        if level == 3:
            descend = np.zeros(len(live), dtype=bool)
        stop = ~descend
        desc_out[live[stop]], level_out[live[stop]] = desc[stop], level
        if level < 3:
            live, live_va, table = live[descend], live_va[descend], g.oa.decode_array(desc[descend], g.page_shift)
    return BatchTranslation(pa, mapped, level_out, desc_out)
