"""Translation speed: pagewalk (scalar and numpy batch) vs drgn's C walker, same addresses, same run.

    python bench/vtop.py

For a 4-level and a 5-level capture: decompress the .zst once (stream, timed),
translate 100,000 random mapped addresses (50k linear map + 50k vmalloc,
sampled from the kernel's own ptdump), and compare with drgn's aarch64
page-table walker (`_linux_helper_follow_phys`, from VMCOREINFO only). Also
the RSS that opening a decompressed dump and translating adds.
"""

import subprocess
import sys
import time

import numpy as np

from common import CAPTURES, best_of, sample

CAPTURES_USED = ["6.12-4k-a72-rodata-on-kfence", "6.12-4k-max-default"]
N = 100_000

RSS_PROBE = """
import re, sys
rss = lambda: int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1]) / 1024
start = rss()
from pagewalk import KernelDump
imported = rss()
d = KernelDump.open(sys.argv[1], search_config=False)
for va in map(int, sys.argv[2:]):
    d.virt_to_phys(va); d.translate(va)
print(rss() - start, rss() - imported)
"""


def main() -> None:
    from pagewalk import KernelDump
    from pagewalk.phys.dumpfile import decompress_zst

    try:
        import drgn
        from _drgn import _linux_helper_follow_phys
    except ImportError:
        drgn = None
        print("drgn not installed (pip install drgn): its column stays empty")
    rows = []
    for name in CAPTURES_USED:
        zst = CAPTURES / name / "dump.elf.zst"
        t0 = time.perf_counter()
        elf = decompress_zst(zst)
        unzst = time.perf_counter() - t0
        dump = KernelDump.open(elf, search_config=False)
        vas = sample(name, N)
        arr = np.array(vas, dtype=np.uint64)
        f = dump.virt_to_phys
        scalar = best_of(lambda: [f(va) for va in vas]) / N
        traced = best_of(lambda: [dump.translate(va) for va in vas[:5000]], 1) / 5000
        batch = best_of(lambda: dump.translate_batch(arr), 5) / N
        ours = [f(va) for va in vas]
        assert all(p is not None for p in ours), "sampled addresses must be mapped"
        assert np.array_equal(dump.translate_batch(arr).pa, np.array(ours, dtype=np.uint64))
        d_ns = agree = None
        if drgn:
            prog = drgn.Program()
            prog.set_core_dump(elf)
            pgd = drgn.Object(prog, "void *", dump.vmcoreinfo.swapper_pg_dir)
            theirs = []
            d_ns = best_of(lambda: theirs.__setitem__(slice(None), [_linux_helper_follow_phys(prog, pgd, va)
                                                                   for va in vas[:20000]]), 2) / 20000
            agree = sum(a == b for a, b in zip(ours, theirs))
        rss = subprocess.run([sys.executable, "-c", RSS_PROBE, elf, *map(str, vas[:1000])],
                             capture_output=True, text=True, check=True).stdout.split()
        rss = f"{float(rss[0]):.0f}/{float(rss[1]):.0f}"
        rows.append((name, dump.geometry.levels, scalar, traced, batch, d_ns, agree, rss, unzst))
    print(f"{'capture':<32}{'lv':>3}{'scalar ns':>11}{'traced ns':>11}{'batch ns':>10}{'batch M/s':>10}"
          f"{'drgn ns':>9}{'batch/drgn':>11}{'scalar/drgn':>12}{'agree':>8}{'+RSS MiB':>9}{'unzst s':>8}")
    for name, lv, scalar, traced, batch, d_ns, agree, rss, unzst in rows:
        ratio_b = f"{d_ns / batch:.0f}x" if d_ns else "-"
        ratio_s = f"{d_ns / scalar:.1f}x" if d_ns else "-"
        print(f"{name:<32}{lv:>3}{scalar * 1e9:>11.0f}{traced * 1e9:>11.0f}{batch * 1e9:>10.0f}"
              f"{1 / batch / 1e6:>10.1f}{(d_ns or 0) * 1e9:>9.0f}{ratio_b:>11}{ratio_s:>12}"
              f"{agree if agree is not None else '-':>8}{rss:>9}{unzst:>8.2f}")
    print("+RSS: MiB added by imports+open+1000 translations / by open+translations alone")
    print("targets: batch >= 5 M addr/s and >= 20x drgn; scalar <= 1500 ns; +RSS < 64 MiB (decompressed dump)")


if __name__ == "__main__":
    main()
