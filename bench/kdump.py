"""kdump-compressed dumps: open + ptdump of a kdump-zstd file vs the same on the ELF dump, pages
decompressed per walk, peak RSS; and drgn (libkdumpfile) opening the same kdump file and translating
the same addresses. Each measurement of open+ptdump runs in a fresh process; ratios are from one run.

    python bench/kdump.py
"""

import time

from common import CAPTURES, SHARED, open_and_ptdump, sample

N = 20000


def main() -> None:
    from pagewalk import KernelDump
    from pagewalk.phys.dumpfile import decompress_zst
    try:
        import drgn
        from _drgn import _linux_helper_follow_phys
    except ImportError:
        drgn = None
        print("drgn not installed (pip install drgn): its columns stay empty")
    print(f"{'capture':<32}{'file':<22}{'open ms':>9}{'open+ptdump ms':>16}{'vs ELF':>8}{'pages unpacked':>16}"
          f"{'peak RSS MiB':>14}{'ours ns/va':>12}{'drgn ns/va':>12}{'drgn/ours':>10}{'agree':>7}")
    for capture in sorted((SHARED / "kdump").glob("*")):
        if not capture.is_dir():
            continue
        name, config = capture.name, CAPTURES / capture.name / "kernel.config"
        elf = decompress_zst(CAPTURES / name / "dump.elf.zst")
        base = open_and_ptdump(elf, config)
        print(f"{name:<32}{'ELF (decompressed)':<22}{base[0] * 1e3:>9.1f}{base[1] * 1e3:>16.1f}{'1.00x':>8}"
              f"{'-':>16}{base[3]:>14.0f}")
        vas = sample(name, N)
        for path in sorted(capture.glob("dump.kdump-*")):
            run = open_and_ptdump(path, config)
            dump = KernelDump.open(path, config=config)
            f = dump.virt_to_phys
            t = time.perf_counter()
            ours = [f(va) for va in vas]
            ours_ns = (time.perf_counter() - t) / N * 1e9
            drgn_ns = agree = None
            if drgn:
                prog = drgn.Program()
                prog.set_core_dump(str(path))
                pgd = drgn.Object(prog, "void *", dump.vmcoreinfo.swapper_pg_dir)
                theirs = []
                t = time.perf_counter()
                for va in vas:
                    try:
                        theirs.append(_linux_helper_follow_phys(prog, pgd, va))
                    except drgn.FaultError:
                        theirs.append(None)
                drgn_ns = (time.perf_counter() - t) / N * 1e9
                agree = sum(a == b for a, b in zip(ours, theirs))
            print(f"{'':<32}{path.name:<22}{run[0] * 1e3:>9.1f}{run[1] * 1e3:>16.1f}{run[1] / base[1]:>7.2f}x"
                  f"{run[2]:>16.0f}{run[3]:>14.0f}{ours_ns:>12.0f}{drgn_ns or 0:>12.0f}"
                  f"{(drgn_ns / ours_ns if drgn_ns else 0):>9.1f}x{agree if agree is not None else '-':>7}")
    print(f"translations: {N} addresses sampled from each kernel's own ptdump (linear map and vmalloc);"
          " agree = same PA as drgn")


if __name__ == "__main__":
    main()
