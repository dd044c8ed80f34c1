"""Property tests: tables built from the spec for every geometry translate back exactly."""

import numpy as np
from hypothesis import given, settings, strategies as st

from pagewalk.hw.aarch64.builder import TableBuilder
from pagewalk.hw.aarch64.descriptor import Descriptor, Kind
from pagewalk.hw.aarch64.geometry import Geometry
from pagewalk.hw.aarch64.translate import make_virt_to_phys, translate, translate_batch
from pagewalk.phys.ram import SimulatedRAM

GEOMETRIES = [Geometry(4096, n) for n in (39, 42, 47, 48)] + [Geometry(4096, 52, ds=True)] + \
    [Geometry(16384, n) for n in (36, 47, 48)] + [Geometry(16384, 52, ds=True)] + \
    [Geometry(65536, 42), Geometry(65536, 48), Geometry(65536, 52), Geometry(65536, 52, pa52_64k=True)]


@st.composite
def mappings(draw):
    g = draw(st.sampled_from(GEOMETRIES))
    levels = [lvl for lvl in range(g.start_level, 4) if lvl == 3 or g.block_allowed(lvl)]
    level = draw(st.sampled_from(levels))
    shift = g.level_shift(level)
    span = g.va_bits - shift
    va = g.ttbr1_base | draw(st.integers(0, (1 << span) - 1)) << shift
    pa = draw(st.integers(0, (1 << (g.oa_bits - shift)) - 1)) << shift
    offset = draw(st.integers(0, (1 << shift) - 1))
    attrs = dict(attrindx=draw(st.integers(0, 4)), read_only=draw(st.booleans()), pxn=draw(st.booleans()),
                 uxn=draw(st.booleans()), user=draw(st.booleans()), ng=draw(st.booleans()))
    return g, level, va, pa, offset, attrs


@settings(max_examples=300, deadline=None)
@given(mappings())
def test_encode_translate_round_trip(m):
    g, level, va, pa, offset, attrs = m
    ram = SimulatedRAM(base=0x40000000, size=64 << 20, page_size=g.page_size)
    b = TableBuilder(ram, g)
    entry = b.map(va, pa, level, **attrs)
    t = translate(ram, g, b.root, va + offset)
    assert t.pa == pa + offset and t.level == level and t.size == 1 << g.level_shift(level)
    assert t.writable == (not attrs["read_only"])
    assert t.executable == (not attrs["pxn"] and not (attrs["user"] and not attrs["read_only"]))
    assert t.user_readable == attrs["user"] and t.attrindx == attrs["attrindx"]
    assert t.steps[-1].entry_pa == entry
    d = Descriptor(ram.read_u64(entry), level, g)
    assert d.kind in (Kind.BLOCK, Kind.PAGE) and d.output_address == pa
    assert make_virt_to_phys(ram, g, b.root)(va + offset) == pa + offset
    batch = translate_batch(ram, g, b.root, np.array([va + offset], dtype=np.uint64))
    assert batch.mapped[0] and int(batch.pa[0]) == pa + offset


WIDE = [g for g in GEOMETRIES if g.oa_bits == 52]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(WIDE), st.integers(0, 1 << 40))
def test_tables_above_2_48(g, seed):
    """Table pages placed above 2^48 are followed by the 52-bit formats (every example is one)."""
    page = g.page_size
    high = (1 << 50) + (seed % 1024) * page * 8
    ram = SimulatedRAM(base=high, size=page * 64, page_size=page)
    b = TableBuilder(ram, g)
    assert b.root >= 1 << 48
    va = g.ttbr1_base + g.level_size(3) * 7
    b.map(va, (1 << 51) + page, 3)
    assert translate(ram, g, b.root, va + 5).pa == (1 << 51) + page + 5


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([g for g in GEOMETRIES if g.oa_bits == 48]), st.integers(48, 49))
def test_48_bit_formats_fault_on_address_bits_above_2_48(g, bit):
    """aarch64-vmsa.md §3.5: without a 52-bit format, a page's OA bits [49:48] are RES0 (50 is GP, 51 DBM):
    set, they are an address size fault."""
    ram = SimulatedRAM(base=0x40000000, size=64 << 20, page_size=g.page_size)
    b = TableBuilder(ram, g)
    va = g.ttbr1_base + g.level_size(3) * 7
    entry = b.map(va, 0x40000000 + g.page_size, 3)
    ram.write_u64(entry, ram.read_u64(entry) | 1 << bit)
    assert translate(ram, g, b.root, va).fault_kind == "address-size"
