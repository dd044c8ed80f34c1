"""Trace replay speed: callbacks per second on the largest shared kernel trace.

    python bench/trace.py

Replays the trace with the most callbacks from shared/kernel-traces on its
dump (walker + rules + trace formatting), and in the same run measures the
host kernel's own walk cost per entry (a read of /proc/self/pagemap over a
populated 1 GiB mapping).
"""

import re

from common import SHARED, best_of
from walk import NPTES, host_kernel_walks


def main():
    from pagewalk import KernelDump
    from pagewalk.replay.trace import TraceHeader, replay
    root = SHARED / "kernel-traces" / "7.2-4k-a72"
    files = sorted((root / "traces").glob("*.txt"))
    calls = {f: int(re.search(r"# calls=(\d+)", f.read_text())[1]) for f in files}
    largest = max(files, key=calls.get)
    dump = KernelDump.open(root / "dump.elf.zst", search_config=False)
    header = TraceHeader.parse(largest.read_text().split("# ---- trace ----")[0])

    def run():
        return replay(dump.machine(), header)
    lines, _ = run()
    expected = largest.read_text().split("# ---- trace ----\n")[1].splitlines()
    seconds = best_of(run, 5)
    per_call = seconds / calls[largest]
    _, pagemap = host_kernel_walks()
    print(f"largest shared trace: {largest.stem} ({calls[largest]} callbacks), reproduced: {lines == expected}")
    print(f"  pagewalk replay           {calls[largest] / seconds:12,.0f} callbacks/s  ({per_call * 1e9:7.0f} ns each)")
    print(f"  host kernel pagemap walk  {1 / pagemap:12,.0f} entries/s    ({pagemap * 1e9:7.1f} ns each,"
          f" {NPTES} entries)")
    print(f"  ratio                     {per_call / pagemap:12.1f}x")


if __name__ == "__main__":
    main()
