"""Register a real kernel's vm areas from its `/proc/vmallocinfo`.

`/proc/vmallocinfo` hashes its addresses (`%p`), so areas are placed by
matching: the lines come in address order, and each area's mapped part
(its size less the guard page) must be one run of mapped pages in the
dump's vmalloc space, starting at the run's start; an `ioremap` line's
`phys=` must also be the run's first PA. Lines that match no run (nothing
mapped, or ambiguous) are left out and counted.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from ..hw.aarch64.tables import mappings
from ..mm.vmalloc import VM_ALLOC, VM_DMA_COHERENT, VM_IOREMAP, VM_MAP, VM_USERMAP

__all__ = ["register_vmallocinfo", "parse", "mapped_runs"]

FLAGS = {"vmalloc": VM_ALLOC, "ioremap": VM_IOREMAP, "vmap": VM_MAP, "user": VM_USERMAP,
         "dma-coherent": VM_DMA_COHERENT}
LINE = re.compile(r"^\S+-\S+\s+(\d+)\s+(\S+)?(.*)$")


@dataclass
class Line:
    size: int
    caller: str
    flags: int
    phys: int | None


def parse(text: str) -> list[Line]:
    out = []
    for raw in text.splitlines():
        m = LINE.match(raw.strip())
        if not m:
            continue
        rest = m[3].split()
        flags = 0
        for word in rest:
            flags |= FLAGS.get(word, 0)
        phys = next((int(w.split("=")[1], 16) for w in rest if w.startswith("phys=")), None)
        out.append(Line(int(m[1]), m[2] or "", flags, phys))
    return out


def mapped_runs(kernel) -> list[tuple[int, list[int]]]:
    """(start VA, [PA of each page]) for every run of consecutive page-mapped pages in vmalloc space."""
    layout, hw = kernel.layout, kernel.machine.arch.hw
    page = hw.page_size
    runs: list[tuple[int, list[int]]] = []
    for m in mappings(kernel.machine.memory, hw, kernel.ttbr1, layout.vmalloc_start, layout.vmalloc_end):
        if m.level != 3:
            continue
        if runs and runs[-1][0] + len(runs[-1][1]) * page == m.va:
            runs[-1][1].append(m.pa)
        else:
            runs.append((m.va, [m.pa]))
    return runs


def register_vmallocinfo(kernel, source) -> tuple[int, int]:
    """Register the areas of a vmallocinfo text (or file); returns (registered, left out)."""
    text = Path(source).read_text() if not str(source).count("\n") and Path(str(source)).exists() else str(source)
    page = kernel.machine.arch.page_size
    runs = mapped_runs(kernel)
    registered = skipped = 0
    i = 0
    for line in parse(text):
        want = line.size // page - 1
        j = i
        while j < len(runs) and not (len(runs[j][1]) == want and (line.phys is None or runs[j][1][0] == line.phys)):
            j += 1
        if want <= 0 or j == len(runs):
            skipped += 1
            continue
        start, pas = runs[j]
        pfns = [pa // page for pa in pas] if line.flags & (VM_ALLOC | VM_MAP) else []
        kernel.register_area(start, line.size, line.flags, pfns, caller=line.caller)
        registered += 1
        i = j + 1
    return registered, skipped
