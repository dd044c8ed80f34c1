"""aarch64-vmsa.md §8: checkable statements, one test each (test_vmsa_<n>)."""

import pytest

from conftest import CAPTURES, needs_shared, read_kv
from pagewalk.hw.aarch64.descriptor import Kind, kind, leaf_descriptor
from pagewalk.hw.aarch64.geometry import Geometry
from pagewalk.hw.aarch64.builder import TableBuilder
from pagewalk.hw.aarch64.mair import LINUX_MAIR, attr_byte, decode_attr
from pagewalk.hw.aarch64.translate import translate
from pagewalk.phys.ram import SimulatedRAM

MAX = "6.12-4k-max-default"
K64 = "6.12-64k-max-rodata-on-kfence"


def test_vmsa_1_tg1_encodings():
    for tg1, size in ((0b10, 4096), (0b01, 16384), (0b11, 65536)):
        assert Geometry.from_tcr(tg1 << 30 | 16 << 16).page_size == size
    with pytest.raises(ValueError, match="reserved"):
        Geometry.from_tcr(0b00 << 30 | 16 << 16)


@needs_shared
@pytest.mark.parametrize("name", sorted(p.name for p in CAPTURES.glob("*-*")))
def test_vmsa_2_t1sz(name):
    tcr = int(read_kv(CAPTURES / name / "regs.txt")["TCR_EL1"], 16)
    info = read_kv(CAPTURES / name / "vmcoreinfo.txt")
    assert int(info["NUMBER(TCR_EL1_T1SZ)"], 16) == (tcr >> 16) & 0x3F
    assert Geometry.from_tcr(tcr).va_bits == 64 - int(info["NUMBER(TCR_EL1_T1SZ)"], 16)


@pytest.mark.parametrize("size,n,ds,levels,start,top", [
    (4096, 39, False, 3, 1, 512), (4096, 48, False, 4, 0, 512), (4096, 52, True, 5, -1, 16),
    (16384, 47, False, 3, 1, 2048), (16384, 52, True, 4, 0, 32), (65536, 48, False, 3, 1, 64),
    (65536, 52, False, 3, 1, 1024)])
def test_vmsa_3_and_4_levels_and_top_entries(size, n, ds, levels, start, top):
    g = Geometry(size, n, ds=ds)
    assert (g.levels, g.start_level, g.top_entries) == (levels, start, top)


def test_vmsa_5_ttbr_base_formats_from_register():
    # covered against every capture's TTBR1 in test_captures.py; here the 64K offset rule
    from pagewalk.arch.arm64.asm.pgtable import Arm64PageTables
    pt = Arm64PageTables(65536, 52, 48, (6, 12, 117), pa52=True)
    assert pt.pgtable_levels == pt.hw.levels == 3
    assert 8 * pt.index(0, 0xffff000000000000) == 0x1e00


@needs_shared
@pytest.mark.parametrize("name", sorted(p.name for p in CAPTURES.glob("*-*")))
def test_vmsa_6_and_7_registers(name):
    regs = read_kv(CAPTURES / name / "regs.txt")
    ttbr1 = int(regs["TTBR1_EL1"], 16)
    assert ttbr1 >> 48 == 2
    assert ttbr1 & 1 == (1 if "max" in name else 0)
    assert int(regs["MAIR_EL1"], 16) == LINUX_MAIR
    assert [decode_attr(attr_byte(LINUX_MAIR, i)) for i in range(5)] == [
        "Normal WB-RWA", "Normal WB-RWA", "Normal NC", "Device-nGnRnE", "Device-nGnRE"]


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_vmsa_8_invalid_and_reserved_never_translate(level):
    ram = SimulatedRAM()
    g = Geometry(4096, 48)
    b = TableBuilder(ram, g)
    va = 0xffff000040000000
    b.set_raw(va, level, 0x40000000 | 0x7fc)           # bit 0 clear, everything else set
    assert translate(ram, g, b.root, va).fault_kind == "translation"
    if level in (0, 3):
        b.set_raw(va, level, 0x40000000 | 0x401)       # 01: no block at level 0 (DS=0), reserved at 3
        t = translate(ram, g, b.root, va)
        assert t.fault_kind == "translation" and t.fault_level == level


@pytest.mark.parametrize("geometry,desc,shift,oa", [
    (Geometry(4096, 52, ds=True), 0x0003_0000_4000_0000 | 0x3 << 8 | 0x401, 21, 0xf_0000_4000_0000),
    (Geometry(65536, 52, pa52_64k=True), 0x0000_4000_0000_0000 | 0xa << 12 | 3, 16, 0xa_4000_0000_0000),
    (Geometry(4096, 48), 0x0000_8000_4000_0000 | 0x3 << 8 | 0x403, 12, 0x8000_4000_0000),
])
def test_vmsa_9_output_address_formats(geometry, desc, shift, oa):
    assert geometry.output_address(desc, shift) == oa


def test_vmsa_10_sh_bits_are_not_address_bits_without_ds():
    g48 = Geometry(4096, 48)
    d = leaf_descriptor(g48, 3, 0x40000000, sh=0b11)
    assert g48.output_address(d, 12) == 0x40000000
    assert Geometry(4096, 52, ds=True).output_address(d, 12) == 0x40000000 | 3 << 50


def test_vmsa_11_table_bits_11_2_ignored():
    g = Geometry(4096, 48)
    ram = SimulatedRAM()
    b = TableBuilder(ram, g)
    b.map(0xffff000000001000, 0x40001000)
    l0 = b.root + 8 * g.index(0xffff000000001000, 0)
    ram.write_u64(l0, ram.read_u64(l0) | 0xffc & ~0x300 | 1 << 10)
    assert translate(ram, g, b.root, 0xffff000000001234).pa == 0x40001234


def _all_descriptors(dump):
    """(level, value) for every entry of every table reachable from TTBR1."""
    for table in dump.table_pages():
        for v in dump.memory.read_table(table.pa, table.entries).tolist():
            yield table.level, v


@needs_shared
@pytest.mark.parametrize("name", [MAX, K64, "7.2-4k-a72-default"])
def test_vmsa_11_12_16_17_what_linux_writes(open_capture, name):
    dump = open_capture(name)
    tables = blocks = 0
    for level, v in _all_descriptors(dump):
        k = kind(v, level, dump.geometry)
        if k is Kind.TABLE:
            tables += 1
            assert v >> 60 & 1 or v >> 59 == 0, f"{v:#x}"            # 12: UXNTable except static fixmap links
            if not name.startswith("7."):
                assert not v & 1 << 10                                # 11: no table AF before 7.x
        elif k is Kind.BLOCK:
            blocks += 1
            assert level == 2                                         # 16
        elif k is Kind.INVALID and v:
            assert level == 3 and v & 2                               # 17
            if name.startswith("7."):
                assert v & 1 << 11
    assert tables > 10


@needs_shared
def test_vmsa_13_worked_translations(open_capture):
    d = open_capture(MAX)
    for va, pa in ((0xffff99c5433033c8, 0x409033c8), (0xffff99c542e12345, 0x40412345),
                   (0xfff000000075c000, 0x4075c000), (0xffff800090000000, 0x4010000000)):
        assert d.translate(va).pa == pa
    assert [s.value for s in d.translate(0xffff99c5433033c8).steps] == [
        0x100000004098e003, 0x100000004098f003, 0x1000000040990003, 0x1000000040993003, 0x00f8000040903403]
    k = open_capture(K64)
    assert k.translate(0xfff000003e000000).fault_kind == "translation"
    assert k.translate(0xfff000003e000000).descriptor == 0x00e800007e000706
    assert k.translate(0xfff000003e020000).pa == 0x7e020000


@needs_shared
def test_vmsa_14_image_and_linear_helpers(open_capture):
    d = open_capture(MAX)
    info = read_kv(CAPTURES / MAX / "vmcoreinfo.txt")
    for sym in ("init_uts_ns", "swapper_pg_dir", "_stext"):
        va = int(info[f"SYMBOL({sym})"], 16)
        assert d.translate(va).pa == va - int(info["NUMBER(kimage_voffset)"], 16)
    assert d.memory.read(d.translate(int(info["SYMBOL(init_uts_ns)"], 16)).pa, 6) == b"Linux\0"


@needs_shared
@pytest.mark.parametrize("name", [MAX, "6.12-4k-a72-rodata-on-kfence", K64])
def test_vmsa_15_contiguous_runs(open_capture, name):
    dump = open_capture(name)
    g = dump.geometry
    runs, run, run_level = [], 0, None
    for level, v in _all_descriptors(dump):
        contig = bool(v & 1 and v >> 52 & 1) and kind(v, level, g) in (Kind.PAGE, Kind.BLOCK)
        if contig and (not run or level == run_level):
            run, run_level = run + 1, level
            continue
        if run:
            runs.append((run_level, run))
        run, run_level = (1, level) if contig else (0, None)
    assert runs
    for level, n in runs:
        assert n % g.contiguous_entries(level) == 0, (level, n)


def test_vmsa_18_tbi_and_canonical_form():
    g = Geometry(4096, 48)
    ram = SimulatedRAM()
    b = TableBuilder(ram, g)
    b.map(0xffff000000001000, 0x40001000)
    assert translate(ram, g, b.root, 0x5aff000000001010).pa == 0x40001010     # tag ignored
    assert translate(ram, g, b.root, 0xfff7000000001010).fault_kind == "outside-range"
    assert translate(ram, g, b.root, 0xfff7000000001010, tbi=False).fault_kind == "outside-range"


HIERARCHY_GEOMETRIES = [Geometry(4096, 39), Geometry(4096, 48), Geometry(4096, 52, ds=True), Geometry(16384, 47),
                        Geometry(16384, 52, ds=True), Geometry(65536, 42), Geometry(65536, 52, pa52_64k=True)]


@pytest.mark.parametrize("g", HIERARCHY_GEOMETRIES, ids=str)
@pytest.mark.parametrize("ap_table,pxn_table,uxn_table", [(0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 0), (0, 1, 0),
                                                          (0, 0, 1), (2, 1, 1)])
@pytest.mark.parametrize("user", [False, True])
@pytest.mark.parametrize("hpd", [False, True])
def test_vmsa_3_6_table_attributes_restrict_every_leaf_below(g, ap_table, pxn_table, uxn_table, user, hpd):
    """§3.6, written out here: APTable bit 0 forbids EL0, bit 1 forbids writes, PXNTable/UXNTable make
    everything below execute-never; they restrict, never widen; with HPD they are ignored. Checked for a
    table descriptor at every level above a page and above each block size the geometry has."""
    va = g.ttbr1_base + 0x4000_0000 * 3 + 0x20_0000 * 5
    for leaf_level in [3] + [lv for lv in range(g.start_level, 3) if g.block_allowed(lv)]:
        for table_level in range(g.start_level, leaf_level):
            ram = SimulatedRAM(0x4000_0000, 1 << 30, g.page_size)
            b = TableBuilder(ram, g)
            pa = ((0x4000_0000 >> g.level_shift(leaf_level)) + 1) << g.level_shift(leaf_level)   # aligned
            b.map(va, pa, level=leaf_level, user=user, pxn=False, uxn=False, read_only=False)
            for level in range(g.start_level, leaf_level):         # the builder's UXNTable off everywhere ...
                entry = b.table_for(va, level) + 8 * g.index(va, level)
                ram.write_u64(entry, ram.read_u64(entry) & ~(0x1F << 59))
            entry = b.table_for(va, table_level) + 8 * g.index(va, table_level)   # ... and the case at one level
            ram.write_u64(entry, ram.read_u64(entry) | ap_table << 61 | pxn_table << 59 | uxn_table << 60)
            t = translate(ram, g, b.root, va, hpd=hpd)
            ap, pxn, uxn = (0, 0, 0) if hpd else (ap_table, pxn_table, uxn_table)
            where = f"leaf L{leaf_level}, table attributes at L{table_level}"
            assert t.mapped and t.pa == pa | va & ((1 << g.level_shift(leaf_level)) - 1), where
            assert t.writable == (not ap & 2), where
            assert t.user_readable == (user and not ap & 1), where
            assert t.user_writable == (user and not ap & 1 and not ap & 2), where
            assert t.user_executable == (not uxn), where
            if not user:                       # EL0-writable memory is never EL1-executable (a separate rule)
                assert t.executable == (not pxn), where


def test_vmsa_3_descriptor_encodings_of_the_builder():
    """§3.2-§3.4 written out: bits[1:0], AttrIndx[4:2], AP[7:6], SH[9:8] (not under LPA2: OA[51:50]), AF (10),
    nG (11), table attributes NSTable 63, APTable 62:61, UXNTable 60, PXNTable 59."""
    from pagewalk.hw.aarch64.descriptor import Descriptor, table_descriptor
    g, lpa2 = Geometry(4096, 48), Geometry(4096, 52, ds=True)
    t = table_descriptor(g, 0x4000_1000, pxn_table=True, uxn_table=True, ap_table=3)
    assert t == 0x4000_1000 | 0b11 | 1 << 59 | 1 << 60 | 3 << 61
    assert table_descriptor(g, 0x4000_1000, ap_table=1) == 0x4000_1000 | 0b11 | 1 << 61
    page = leaf_descriptor(g, 3, 0x4000_2000, attrindx=4, read_only=True, user=True, ng=True)
    assert page & 0b11 == 0b11 and page >> 2 & 7 == 4 and page >> 6 & 3 == 0b11 and page >> 8 & 3 == 0b11
    assert page & 1 << 10 and page & 1 << 11 and page & 1 << 53 and page & 1 << 54
    block = leaf_descriptor(g, 2, 0x4020_0000, valid=False)
    assert block & 0b11 == 0b00 and block & ~0xFFF & ((1 << 48) - 1) == 0x4020_0000
    assert leaf_descriptor(lpa2, 3, 0xC_0000_4000_0000) >> 8 & 3 == 0b11 and \
        Descriptor(leaf_descriptor(lpa2, 3, 0x4000_0000), 3, lpa2).shareability is None
    d = Descriptor(page, 3, g)
    assert (d.attrindx, d.ap, d.read_only, d.user, d.ng, d.shareability) == (4, 0b11, True, True, True, 0b11)


def test_vmsa_3_describe_names_every_field():
    """What vtop prints for a descriptor: the kind, the address, the fields set."""
    from pagewalk.hw.aarch64.descriptor import Descriptor, table_descriptor
    g = Geometry(4096, 48)
    assert Descriptor(0, 3, g).describe() == "invalid"
    assert Descriptor(0x4000_2702, 3, g).describe() == "invalid (0x702 in low bits)"
    assert Descriptor(table_descriptor(g, 0x4000_1000, pxn_table=True, uxn_table=True), 1, g).describe() == \
        "TABLE next=0x40001000 UXNTABLE PXNTABLE"
    text = Descriptor(leaf_descriptor(g, 3, 0x4000_2000, attrindx=4, read_only=True, contiguous=True), 3, g).describe()
    assert text == "PAGE oa=0x40002000 AttrIndx=4 RDONLY AF CONT PXN UXN SH=inner"
    soft = Descriptor(leaf_descriptor(g, 3, 0x4000_2000, software=0b1111, ng=True), 3, g).describe()
    assert soft.endswith("AF NG PXN UXN SW_DIRTY SW_SPECIAL SW_DEVMAP SW_58 SH=inner")   # bits 55..58
    for n, name in enumerate(("SW_DIRTY", "SW_SPECIAL", "SW_DEVMAP", "SW_58")):             # each bit alone
        one = Descriptor(leaf_descriptor(g, 3, 0x4000_2000, software=1 << n), 3, g).describe()
        assert [w for w in one.split() if w.startswith("SW_")] == [name]


@pytest.mark.parametrize("bit", [12, 13, 14, 15])
@pytest.mark.parametrize("level", [2, 3])
def test_vmsa_3_5_64k_48_bit_res0_address_bits(level, bit):
    """§3.5: with the 64K granule and 48-bit OAs, descriptor bits [15:12] (OA[51:48] in the 52-bit format)
    are RES0 in tables and leaves: set, they are an address size fault."""
    g = Geometry(65536, 48)
    ram = SimulatedRAM(0x4000_0000, 64 << 20, g.page_size)
    b = TableBuilder(ram, g)
    va = g.ttbr1_base + 0x2000_0000 * 3
    b.map(va, 0x4000_0000 + g.page_size, 3)
    entry = b.table_for(va, level) + 8 * g.index(va, level)
    ram.write_u64(entry, ram.read_u64(entry) | 1 << bit)
    assert translate(ram, g, b.root, va).fault_kind == "address-size"
