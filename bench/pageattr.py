"""pageattr speed: set_memory_ro + set_memory_rw over 1 GiB of page-mapped vmalloc in the simulator,
next to the host kernel's mprotect() over an equal populated anonymous mapping, in the same run;
and the cost of splitting one 2 MiB linear-map block (BBML2).

    python bench/pageattr.py
"""

import ctypes
import mmap
import time

from common import best_of

SIZE = 1 << 30
PAGE = 4096
NPTES = SIZE // PAGE
ERAS = ["6.12", "seed-v2", "later"]


def host_mprotect() -> float:
    """ns per PTE for mprotect(RO) + mprotect(RW) over a populated, PTE-mapped 1 GiB mapping."""
    buf = mmap.mmap(-1, SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    buf.madvise(mmap.MADV_NOHUGEPAGE)
    for off in range(0, SIZE, 64 << 20):
        buf[off:off + (64 << 20)] = b"\x01" * (64 << 20)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

    def both():
        assert libc.mprotect(addr, SIZE, mmap.PROT_READ) == 0
        assert libc.mprotect(addr, SIZE, mmap.PROT_READ | mmap.PROT_WRITE) == 0
    return best_of(both, 5) / NPTES


def simulated(era: str) -> float:
    from pagewalk import boot
    k = boot(era=era, ram=2 << 30, rodata="off", checks=False)
    v = k.vmalloc(SIZE)

    def both():
        assert k.set_memory_ro(v, NPTES) == 0
        assert k.set_memory_rw(v, NPTES) == 0
    return best_of(both, 3) / NPTES


def split_cost() -> float:
    from pagewalk import boot
    k = boot(era="later", ram=2 << 30, rodata="full", bbml2=True, checks=False)
    base = k.page_offset + (1 << 30)
    blocks = [base + i * (2 << 20) for i in range(64)]
    t = time.perf_counter()
    for b in blocks:
        assert k.split_kernel_leaf_mapping(b + PAGE, b + 2 * PAGE) == 0
    return (time.perf_counter() - t) / len(blocks)


def main():
    mprotect = host_mprotect()
    print(f"set_memory_ro + set_memory_rw over 1 GiB of vmalloc ({NPTES} PTEs), ns per PTE:")
    print(f"  host kernel mprotect(RO) + mprotect(RW)   {mprotect * 1e9:8.2f}")
    for era in ERAS:
        ns = simulated(era)
        print(f"  pagewalk, era {era:<8}                   {ns * 1e9:8.2f}   = {ns / mprotect:5.1f}x mprotect (target <= 10x)")
    print(f"split of one 2 MiB block into contiguous PTEs (LATER, BBML2): {split_cost() * 1e6:.0f} us")


if __name__ == "__main__":
    main()
