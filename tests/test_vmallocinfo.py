"""A simulated kernel started from each capture, with its real vm areas from /proc/vmallocinfo."""

import pytest

from conftest import CAPTURE_NAMES, CAPTURES, needs_shared
from pagewalk import boot_from_dump
from pagewalk.mm.vmalloc import VM_ALLOC, VM_IOREMAP
from pagewalk.kernel.vmallocinfo import parse

pytestmark = needs_shared


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_real_areas_are_placed_and_pageattr_works_on_them(name):
    info = (CAPTURES / name / "vmallocinfo.txt").read_text()
    k = boot_from_dump(CAPTURES / name / "dump.elf.zst", vmallocinfo=info)
    areas = k.vmalloc_space.areas
    assert len(areas) >= len(parse(info)) // 3
    page = k.config.page_size
    for area in areas:                                     # each placed area: mapped part + unmapped guard
        assert k.translate(area.addr).mapped and not k.translate(area.addr + area.size - page).mapped
        if area.flags & VM_IOREMAP:
            line = next(l for l in parse(info) if l.caller == area.caller and l.size == area.size and l.phys
                        and k.translate(area.addr).pa == l.phys)
            assert line
    vm = next(a for a in areas if a.flags & VM_ALLOC)
    assert k.set_memory_ro(vm.addr, vm.nr_pages) == 0
    assert not k.translate(vm.addr).writable and k.translate(vm.addr).pa == vm.pages[0] * page
    io = next(a for a in areas if a.flags & VM_IOREMAP)
    assert k.set_memory_ro(io.addr, 1) == -22
