"""Walker speed: pagewalk's generic walker vs the host kernel walking the same number of PTEs.

    python bench/walk.py

(a) a Python pte_entry callback per PTE and (b) the batch path (one numpy
array per PTE table) over 1 GiB of 4K mappings in simulated RAM; next to the
host Linux kernel's own page-table walks over an equally large, populated,
PTE-mapped anonymous mapping: mincore(2) and a read of /proc/self/pagemap.
Then `pagewalk ptdump` on the 5-level page-mapped capture.
"""

import ctypes
import mmap
import os
import subprocess
import sys
import time

import numpy as np

from common import CAPTURES, best_of

SIZE = 1 << 30
PAGE = 4096
NPTES = SIZE // PAGE
VA = 0xffff800080000000


def host_kernel_walks() -> tuple[float, float]:
    """ns per PTE for mincore(2) and for reading /proc/self/pagemap over a populated 1 GiB mapping."""
    buf = mmap.mmap(-1, SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    buf.madvise(mmap.MADV_NOHUGEPAGE)                     # PTE-mapped, like the simulated side
    for off in range(0, SIZE, 64 << 20):
        buf[off:off + (64 << 20)] = b"\x01" * (64 << 20)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    vec = (ctypes.c_ubyte * NPTES)()
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]

    def run_mincore():
        if libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(SIZE), vec) != 0:
            raise OSError(ctypes.get_errno(), "mincore")
    mincore = best_of(run_mincore, 5) / NPTES
    assert all(vec[i] & 1 for i in range(0, NPTES, 4099))
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    pagemap = best_of(lambda: os.pread(fd, NPTES * 8, addr // PAGE * 8), 5) / NPTES
    os.close(fd)
    return mincore, pagemap


def simulated_gib():
    """A machine whose kernel tables map 1 GiB at VA with 4K pages."""
    from pagewalk import Machine
    from pagewalk.hw.aarch64.builder import TableBuilder
    from pagewalk.hw.aarch64.descriptor import leaf_descriptor
    m = Machine.simulated("6.18", ram=2 << 30, ram_base=0x40000000)
    b = TableBuilder(m.memory, m.arch.hw, root=m.swapper_pg_dir)
    template = leaf_descriptor(m.arch.hw, 3, 0)
    for i in range(SIZE // (2 << 20)):
        table = b.table_for(VA + i * (2 << 20), 3)
        pas = 0x40000000 + i * (2 << 20) + np.arange(512, dtype=np.uint64) * PAGE
        m.memory.write_table(table, pas | np.uint64(template))
    return m


def pagewalk_walks(m) -> tuple[float, float, int]:
    from pagewalk import mm_walk_ops, walk_kernel_page_table_range_lockless
    seen = [0]

    def pte_entry(ptr, addr, next, walk):
        seen[0] += 1
        return 0

    def pte_table(ptr, values, addr, end, walk):
        seen[0] += len(values)
        return 0
    per_pte = mm_walk_ops(pte_entry=pte_entry)
    batch = mm_walk_ops(pte_table=pte_table)
    a = best_of(lambda: walk_kernel_page_table_range_lockless(VA, VA + SIZE, per_pte, init_mm=m.init_mm), 2)
    b = best_of(lambda: walk_kernel_page_table_range_lockless(VA, VA + SIZE, batch, init_mm=m.init_mm), 5)
    return a / NPTES, b / NPTES, seen[0]


def ptdump_timing(name="6.12-4k-max-default"):
    from pagewalk import KernelDump
    from pagewalk.phys.dumpfile import decompress_zst
    elf = decompress_zst(CAPTURES / name / "dump.elf.zst")
    dump = KernelDump.open(elf, search_config=False)
    dump.layout                                            # build options from kallsyms, once
    walk = best_of(lambda: dump.ptdump(), 3)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "pagewalk.cli", "ptdump", elf], capture_output=True, text=True)
    whole = time.perf_counter() - t
    same = out.stdout == (CAPTURES / name / "ptdump.txt").read_text()
    return walk, whole, same


def main():
    mincore, pagemap = host_kernel_walks()
    m = simulated_gib()
    a, b, seen = pagewalk_walks(m)
    print(f"1 GiB of 4K PTEs ({NPTES} entries), ns per PTE:")
    print(f"  host kernel mincore(2)            {mincore * 1e9:8.2f}")
    print(f"  host kernel /proc/self/pagemap    {pagemap * 1e9:8.2f}")
    print(f"  (a) pagewalk, pte_entry per PTE   {a * 1e9:8.2f}   = {a / pagemap:5.1f}x pagemap (target <= 10x)")
    print(f"  (b) pagewalk, batch per table     {b * 1e9:8.2f}   = {b / mincore:5.1f}x mincore (target <= 10x)")
    walk, whole, same = ptdump_timing()
    print("pagewalk ptdump on 6.12-4k-max-default (5 levels, ~330,000 leaves):")
    print(f"  walk + text, dump open            {walk:8.3f} s (target <= 0.3 s)")
    print(f"  whole command, decompressed dump  {whole:8.3f} s (target <= 1 s); identical to the kernel's: {same}")


if __name__ == "__main__":
    main()
