"""arm64-boot-mappings.md: the simulated kernel boots as the real one.

The acceptance of the `pagewalk sim` issue: for each capture, reading only its kernel.config, cmdline.txt,
iomem.txt, kallsyms.txt, vmcoreinfo.txt and cpuinfo.txt, the predicted kernel_page_tables has the capture's
marker lines, Linear Mapping section and kernel-image lines byte for byte (inside the KFENCE pool the run-time
`F` flag is dropped and lines merged), and check-wx agrees with the kernel's dmesg. Then the statements the
spec gives numbers for, on the kernels the spec names, and property tests over random configurations.
"""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CAPTURE_NAMES, CAPTURES, needs_shared
from pagewalk import boot, boot_like
from pagewalk.arch.arm64.mm.image import KernelImage
from pagewalk.cli import main
from pagewalk.errors import ArgumentError
from pagewalk.kernel.files import BootFiles

LINE = re.compile(r"^0x([0-9a-f]{16})-0x([0-9a-f]{16})\s+\S+ (\S+)( F)?\s*(.*)$")
SZ_2M, SZ_1G = 2 << 20, 1 << 30


def sections(text: str, pool, image):
    """(marker lines, merged Linear Mapping ranges with F dropped inside the pool, lines over the image)."""
    markers, linear, image_lines, marker = [], [], [], None
    for line in text.splitlines():
        if line.startswith("---["):
            markers.append(line)
            marker = line
            continue
        m = LINE.match(line)
        start, end = int(m[1], 16), int(m[2], 16) or 1 << 64
        invalid = bool(m[4]) and not (pool and pool[0] <= start and end <= pool[1])
        if marker == "---[ Linear Mapping start ]---":
            item = [start, end, m[3], invalid, m[5]]
            if linear and linear[-1][1] == start and linear[-1][2:] == item[2:]:
                linear[-1][1] = end
            else:
                linear.append(item)
        if start < image[1] and image[0] < end:
            image_lines.append(line)
    return markers, linear, image_lines


def sim(capsys, *argv):
    code = main(["sim", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@needs_shared
@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_boot_acceptance_sim_ptdump_matches_the_kernels_own(capsys, name):
    code, out, err = sim(capsys, "--like", str(CAPTURES / name), "ptdump")
    assert code == 0 and err == ""                                    # every input was there: nothing defaulted
    k = boot_like(CAPTURES / name, checks=False)
    assert k.ptdump() == out
    image = (k.image.text, k.image.end)
    predicted = sections(out, k.kfence_pool, image)
    real = sections((CAPTURES / name / "ptdump.txt").read_text(), k.kfence_pool, image)
    assert predicted[0] == real[0]                                    # marker lines
    assert predicted[1] == real[1]                                    # the Linear Mapping section
    assert predicted[2] == real[2] and len(real[2]) >= 5              # the kernel image's lines


@needs_shared
@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_boot_b33_b35_vmemmap_and_fixmap_match_the_capture(name):
    """vmemmap (B33), the FDT and the entry trampoline in the fixmap (B34, B35): the whole sections match.
    PCI I/O (B36) is a driver's ioremap and is not modelled."""
    k = boot_like(CAPTURES / name, checks=False)
    real = (CAPTURES / name / "ptdump.txt").read_text()

    def section(text, marker):
        lines = text.splitlines()
        i = lines.index(f"---[ {marker} ]---")
        return lines[i + 1:next(j for j in range(i + 1, len(lines)) if lines[j].startswith("---["))]
    for marker in ("vmemmap start", "Fixmap start"):
        assert section(k.ptdump(), marker) == section(real, marker)


@needs_shared
@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_boot_check_wx_agrees_with_the_kernels_dmesg(capsys, name):
    code, out, _ = sim(capsys, "--like", str(CAPTURES / name), "check-wx")
    dmesg = [line for line in (CAPTURES / name / "dmesg.txt").read_text().splitlines() if "W+X" in line]
    assert out.splitlines() == dmesg and code == 0


def ranges(k, start, end):
    """[(start, end, level, attributes)] of the ptdump lines inside [start, end) (holes: attributes '')."""
    out = []
    for line in k.ptdump().splitlines():
        m = LINE.match(line)
        if m and start <= int(m[1], 16) and (int(m[2], 16) or 1 << 64) <= end:
            out.append((int(m[1], 16), int(m[2], 16), m[3], ("F " if m[4] else "") + m[5]))
    return out


def lm(k, pa):
    return ((pa - k.phys_offset) & (1 << 64) - 1) | k.page_offset


def image_at(text_va, pa_text, **offsets):
    """An image whose section symbols sit at the given offsets from _text."""
    fields = dict(stext=0x10000, start_rodata=0x400000, init_begin=0x520000, init_end=0x620000, end=0x760000)
    fields.update(offsets)
    return KernelImage(text=text_va, kimage_voffset=text_va - pa_text, **{f: text_va + o for f, o in fields.items()})


def test_boot_b12_61_alias_from_stext_with_blocks_even_when_page_granular():
    """B12 (6.1-4k-max-default): `2112K PTE RW TAGGED`, `1984K PTE ro`, `2M PMD ro`, `1152K PTE ro`."""
    k = boot(era="6.1", rodata="full", image=image_at(0xffff800008000000, 0x40200000), checks=False)
    got = ranges(k, lm(k, 0x40000000), lm(k, 0x40800000))
    assert [(e - s, level, "ro" if " ro " in f" {a} " else "RW", a.endswith("TAGGED")) for s, e, level, a in got[:4]] \
        == [(2112 << 10, "PTE", "RW", True), (1984 << 10, "PTE", "ro", False), (SZ_2M, "PMD", "ro", False),
            (1152 << 10, "PTE", "ro", False)]


def test_boot_b8_61_rodata_on_largest_leaves():
    """B8 (6.1-4k-max-rodata-on): `[0x40000000,+2M)` PMD, 64K CON, ..., `[0x40800000,0x42000000)` PMD,
    `[0x42000000,0x80000000)` CON PMD."""
    k = boot(era="6.1", rodata="on", image=image_at(0xffff800008000000, 0x40200000), checks=False)
    got = ranges(k, lm(k, 0x40000000), lm(k, 0x80000000))
    assert got[0][:3] == (lm(k, 0x40000000), lm(k, 0x40200000), "PMD")
    assert got[1][1] - got[1][0] == 64 << 10 and got[1][2] == "PTE" and " CON " in f" {got[1][3]} "
    tail = [(s, e, level, " CON " in f" {a} ") for s, e, level, a in got[-2:]]
    assert tail == [(lm(k, 0x40800000), lm(k, 0x42000000), "PMD", False),
                    (lm(k, 0x42000000), lm(k, 0x80000000), "PMD", True)]


def test_boot_b14_b17_b21_72_alias_first_data_alias_ro_and_pool_as_a_table():
    """B14/B17/B21 (7.2-4k-max-rodata-noalias-kfence): alias `4M PMD` + `1984K CON ro`; `[0x40a10000,0x40a19000)`
    36K ro non-CON then 28K RW non-CON; `[0x40c00000,0x42000000)` PMD without CON; `[0x7e000000,0x7fe00000)` a 30M
    PMD without CON; the data/bss alias `[0x40900000,0x40a19000)` ro NX MEM/NORMAL."""
    img = image_at(0xffff800080000000, 0x40200000, init_begin=0x5f0000, init_end=0x700000, bss_stop=0x819000,
                   end=0x830000)
    k = boot(era="later", va_bits=52, vabits_actual=52, rodata="noalias", kfence=True, image=img, checks=False)
    got = {(s, e): (level, a) for s, e, level, a in ranges(k, lm(k, 0x40000000), lm(k, 0x80000000))}
    assert got[(lm(k, 0x40200000), lm(k, 0x40600000))][0] == "PMD"
    level, attrs = got[(lm(k, 0x40600000), lm(k, 0x407f0000))]
    assert level == "PTE" and attrs.startswith("ro ") and " CON " in attrs
    for span in ((0x40900000, 0x40a10000), (0x40a10000, 0x40a19000)):          # CON, then the split group
        level, attrs = got[(lm(k, span[0]), lm(k, span[1]))]
        assert attrs.startswith("ro NX") and attrs.endswith("MEM/NORMAL") and (" CON " in attrs) == (span[0] <
                                                                                                    0x40a10000)
    level, attrs = got[(lm(k, 0x40a19000), lm(k, 0x40a20000))]
    assert attrs.startswith("RW") and " CON " not in attrs
    assert got[(lm(k, 0x40c00000), lm(k, 0x42000000))][0] == "PMD" and " CON " not in got[(lm(k, 0x40c00000),
                                                                                           lm(k, 0x42000000))][1]
    level, attrs = got[(lm(k, 0x7e000000), lm(k, 0x7fe00000))]
    assert level == "PMD" and " CON " not in attrs
    assert k.kfence_pool[0] == lm(k, 0x7fe00000)                        # B20: the top of RAM


def test_boot_b16_the_text_alias_is_read_only_whatever_rodata_says():
    for era in ("6.1", "6.12", "later"):
        k = boot(era=era, rodata="off", checks=False)
        start = k.image.stext if era == "6.1" else k.image.text
        assert not k.translate(lm(k, k.image.pa(start))).writable
        assert k.translate(lm(k, k.image.pa(k.image.init_begin))).writable       # B18: freed init is RAM


def test_boot_b23_kfence_sampling_off_at_boot_means_no_pool_and_page_granular():
    k = boot(era="6.12", rodata="on", kfence=True, kfence_early_init=False, checks=False)
    assert k.kfence_pool is None and k.config.linear_map_page_granular()
    assert all(level == "PTE" and " CON " not in a for s, e, level, a in
               ranges(k, lm(k, 0x40800000), lm(k, 0x80000000)) if a.startswith("RW"))


def test_boot_b28_init_is_a_hole_at_pte_level():
    k = boot(era="6.12", checks=False)
    hole = [r for r in ranges(k, k.image.init_begin, k.image.init_end)]
    assert hole == [(k.image.init_begin, k.image.init_end, "PTE", "")]


def test_boot_several_ram_banks_map_each_bank_and_nothing_between():
    k = boot(era="6.12", rodata="on", memory=[(0x40000000, 0x60000000), (0x100000000, 0x140000000)],
             config="CONFIG_ARM64_VA_BITS=48\n", checks=False)
    assert k.translate(lm(k, 0x5ffff000)).pa == 0x5ffff000 and k.translate(lm(k, 0x13ffff000)).pa == 0x13ffff000
    assert not k.translate(lm(k, 0x80000000)).mapped
    assert k.translate(lm(k, 0x100000000)).level == 1                    # a whole aligned GiB: a PUD block (B1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(era=st.sampled_from(["6.1", "6.12", "6.18", "later"]),
       geometry=st.sampled_from([(4096, 48, 48), (4096, 39, 39), (4096, 52, 48), (16384, 47, 47), (16384, 48, 48),
                                 (65536, 48, 48), (65536, 52, 52)]),
       rodata=st.sampled_from(["full", "on", "off"]), kfence=st.sampled_from(["off", "early", "late"]),
       kpti=st.booleans(), ram_mib=st.sampled_from([512, 1024, 1536, 3072]), data=st.data())
def test_boot_property_linear_map_permissions_and_well_formed_tables(era, geometry, rodata, kfence, kpti, ram_mib,
                                                                       data):
    """Every RAM page maps to itself at lm(pa) (B11); the alias of text+rodata is never writable (B16); the rest
    of RAM is RW and never executable; nothing is W+X; the checkers see no violation in later set_memory work."""
    page, va_bits, actual = geometry
    if era == "6.1" and (va_bits == 52 or page != 4096):
        return                                                         # 6.1 was checked with 4K/48 only (H)
    k = boot(era=era, page_size=page, va_bits=va_bits, vabits_actual=actual, rodata=rodata,
             kfence=kfence != "off", kfence_early_init=kfence == "early", kpti=kpti, ram=ram_mib << 20)
    img = k.image
    alias = (img.pa(img.stext if era == "6.1" else img.text), img.pa(img.init_begin))
    for _ in range(40):
        pa = data.draw(st.integers(0x40000000, 0x40000000 + (ram_mib << 20) - 8), label="pa") // page * page
        t = k.translate(lm(k, pa))
        if k.is_kfence_address(lm(k, pa)) and not t.mapped:
            continue                                                   # a guard page (B22)
        assert t.mapped and t.pa == pa and not t.executable
        assert t.writable == (not alias[0] <= pa < alias[1] and not (era == "later" and rodata != "off"
                                                                    and img.pa(img.init_end) <= pa
                                                                    < img.pa(img.bss_stop)))
    assert k.check_wx().wx_pages == 0 or rodata == "off"
    v = k.vmalloc(4 * page)
    assert k.set_memory_ro(v, 4) == 0 and k.set_memory_x(v, 1) == 0 and not k.violations


def test_boot_sim_says_which_inputs_were_defaulted(capsys):
    code, out, err = sim(capsys, "--era", "6.12", "--cpu", "a72", "info")
    assert code == 0 and "kernel:         6.12.117 (era 6.12)" in out
    assert "pagewalk: defaulted: kernel config: none" in err and "defaulted: iomem: none" in err
    assert "defaulted: cpuinfo" not in err                             # --cpu a72 was given


@pytest.mark.parametrize("name,text,message", [
    ("iomem", "40000000-7fffffff : System RAM\nnot a range\n", "line 2: 'not a range' is not 'start-end : name'"),
    ("symbols", "ffff800080000000 T _text\n", "kernel symbols: _stext missing"),
    ("symbols", "xyz T _text\n", "line 1: 'xyz' is not a hex address"),
    ("config", "CONFIG_ARM64_VA_BITS=47\n", "CONFIG_ARM64_VA_BITS=47 is not a choice with 4K pages (39, 48, 52)"),
    ("config", "CONFIG_NR_CPUS=lots\n", "line 1: CONFIG_NR_CPUS=lots is not a number"),
    ("iomem", "40000000-403fffff : System RAM\n", "the kernel image [0x40200000, 0x409a0000) is not inside RAM"),
])
def test_boot_sim_malformed_inputs_name_the_file(capsys, tmp_path, name, text, message):
    path = tmp_path / f"{name}.txt"
    path.write_text(text)
    code, out, err = sim(capsys, "--era", "6.12", f"--{name}", str(path), "ptdump")
    assert code == 2 and out == "" and message in err and err.count("pagewalk: error:") == 1, err


def test_boot_sim_missing_inputs_are_one_error(capsys, tmp_path):
    code, _, err = sim(capsys, "--like", str(tmp_path / "nowhere"), "ptdump")
    assert code == 2 and "not a folder" in err
    code, _, err = sim(capsys, "--config", str(tmp_path / "none.config"), "--era", "6.12", "ptdump")
    assert code == 2 and "none.config: cannot read" in err
    with pytest.raises(ArgumentError, match="kernel version"):
        from pagewalk.kernel.files import boot_config
        boot_config(BootFiles())


@pytest.mark.parametrize("era,level", [("6.12", 1), ("later", 2)])
def test_boot_b26_map_range_block_levels(era, level):
    """B26: 6.12's map_range() puts a block at any level below 3 where the chunk is aligned, 7.2's only at
    level 2; blocks never carry CONT."""
    from pagewalk.arch.arm64.mm.map_kernel import map_range
    from pagewalk.arch.arm64.mm.mapping import Prot
    k = boot(era=era, ram=2 * SZ_1G, checks=False)
    va = k.layout.vmalloc_start + 64 * SZ_1G                               # 1 GiB-aligned, unused
    map_range(k, va, va + SZ_1G, 0x80000000, Prot.kernel(k), k.machine.arch.hw.start_level, k.ttbr1, True)
    t = k.translate(va + 0x1234)
    assert t.level == level and t.pa == 0x80001234 and not t.descriptor & (1 << 52)


@pytest.mark.parametrize("era,pxn_table,af", [("6.12", False, False), ("later", True, True)])
def test_boot_b10_b21_table_descriptors_of_the_kfence_pool(era, pxn_table, af):
    """B10/B21: the pool's PTE table has UXNTable, PXNTable only with 7.2's NO_EXEC_MAPPINGS, AF only in 7.2;
    map_mem()'s own tables (NO_EXEC) always have PXNTable."""
    k = boot(era=era, rodata="on", kfence=True, checks=False)
    pool_table = k.translate(k.kfence_pool[0] + 2 * 4096).steps[-2].value
    ram_table = k.translate(lm(k, 0x40600000)).steps[-2].value             # the alias's PTE table
    assert pool_table & (1 << 60) and bool(pool_table & (1 << 59)) == pxn_table
    assert bool(pool_table & (1 << 10)) == af and ram_table & (1 << 59)
