"""arm64-boot-mappings.md B2-B5 and section G: the boot switches of each real capture, derived only from its
kernel.config, cmdline.txt, cpuinfo.txt and vmcoreinfo.txt, against the spec's table G and against what the
kernel's own ptdump shows (page-granular or not, nG or not)."""

import pytest

from conftest import CAPTURE_NAMES, CAPTURES, needs_shared, ptdump_ranges
from pagewalk.kernel.inputs import config_from_inputs
from pagewalk.phys.vmcoreinfo import VmcoreInfo

pytestmark = needs_shared

#: Section G of the spec: (F, nG, KFENCE early init) per capture; the 7.2 kcore capture is 7.2-4k-a72-default.
TABLE_G = {"6.1-4k-a72-default": (True, True, False), "6.12-4k-a72-rodata-on-kfence": (False, True, True),
           "6.12-4k-max-default": (True, False, False), "6.12-64k-max-rodata-on-kfence": (False, False, True),
           "7.2-4k-a72-default": (True, True, False), "7.2-4k-a72-kcore": (True, True, False)}


def derived(name):
    d = CAPTURES / name
    info = VmcoreInfo.parse((d / "vmcoreinfo.txt").read_text())
    return config_from_inputs((d / "kernel.config").read_text(), (d / "cmdline.txt").read_text(),
                              info.kernel_version, cpuinfo=(d / "cpuinfo.txt").read_text(),
                              vabits_actual=64 - info.t1sz, kaslr_offset=info.kernel_offset)


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_boot_b2_to_b5_switches_match_table_g(name):
    cfg = derived(name)
    assert (cfg.linear_map_page_granular(), cfg.kpti, cfg.kfence_early_init) == TABLE_G[name]
    assert not cfg.bbml2 and not cfg.debug_pagealloc                     # section G: no capture has either


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_boot_switches_are_what_the_kernels_ptdump_shows(name):
    """F: RAM mapped by PTEs without CON (B4); nG on every kernel mapping with KPTI (B5)."""
    cfg = derived(name)
    ram = [(a, b, level, attrs) for a, b, level, attrs, marker in ptdump_ranges(CAPTURES / name / "ptdump.txt")
           if marker == "Linear Mapping start" and " RW " in attrs]
    assert ram
    blocks = any(level != "PTE" or " CON " in attrs for a, b, level, attrs in ram)
    assert blocks == (not cfg.linear_map_page_granular())
    assert all((" NG " in attrs) == cfg.kpti for a, b, level, attrs in ram)


@pytest.mark.parametrize("version,cmdline,full_default,expected", [
    ((6, 12, 117), "", "y", True), ((6, 12, 117), "", "n", False), ((6, 12, 117), "rodata=on", "y", False),
    ((6, 12, 117), "rodata=full", "n", True), ((6, 1, 192), "rodata=off", "y", False),
    ((7, 2, 13), "", "n", True), ((7, 2, 13), "rodata=on", "n", True), ((7, 2, 13), "rodata=noalias", "n", False),
    ((7, 2, 13), "rodata=full", "n", True),            # 7.2: `full` is invalid, the default (full) stays
])
def test_boot_b2_rodata_per_version(version, cmdline, full_default, expected):
    cfg = config_from_inputs(f"CONFIG_RODATA_FULL_DEFAULT_ENABLED={full_default}\n", cmdline, version)
    assert cfg.rodata_full == expected
