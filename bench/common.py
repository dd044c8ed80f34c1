"""Shared helpers for the benchmarks: captures, sampling from the kernel's own ptdump, timing."""

import os
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))   # measure this checkout

SHARED = Path(os.environ.get("PAGEWALK_SHARED", Path(__file__).resolve().parents[2] / "shared"))
CAPTURES = SHARED / "captures"
LINE = re.compile(r"^0x([0-9a-f]{16})-0x([0-9a-f]{16})\s+\S+ \w+(.*)$")


def mapped_ranges(name: str, section: str):
    """(start, end) of valid mapped lines (not holes, not F) under a ptdump marker section."""
    out, marker = [], None
    for line in (CAPTURES / name / "ptdump.txt").read_text().splitlines():
        if line.startswith("---["):
            marker = line[5:-5]
            continue
        m = LINE.match(line)
        if m and m[3].strip() and m[3][1] != "F" and marker and marker.startswith(section):
            out.append((int(m[1], 16), int(m[2], 16) or 1 << 64))
    return out


def sample(name: str, count: int, seed: int = 42) -> list[int]:
    """`count` 8-byte-aligned VAs: half uniform over the linear map's mapped bytes, half over vmalloc's."""
    rng = random.Random(seed)
    out = []
    for section in ("Linear Mapping", "vmalloc"):
        ranges = mapped_ranges(name, section)
        weights = [e - s for s, e in ranges]
        for s, e in rng.choices(ranges, weights=weights, k=count // 2):
            out.append(s + rng.randrange(0, e - s, 8))
    rng.shuffle(out)
    return out


def best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_PROBE = r"""
import resource, sys, time
sys.path.insert(0, sys.argv[1])
from pagewalk import KernelDump
t = time.perf_counter()
d = KernelDump.open(sys.argv[2], config=sys.argv[3])
opened = time.perf_counter() - t
text = d.ptdump()
total = time.perf_counter() - t
pages = getattr(d.memory, "pages_decompressed", 0)
print(opened, total, pages, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, len(text))
"""


def open_and_ptdump(path, config, repeat: int = 3) -> list[float]:
    """[open s, open+ptdump s, pages decompressed, peak RSS MiB, text length]: the fastest of `repeat`
    fresh processes (nothing cached between runs but the OS page cache)."""
    src = str(Path(__file__).resolve().parents[1] / "src")
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", _PROBE, src, str(path), str(config)], capture_output=True,
                             text=True, check=True).stdout.split()
        runs.append([float(x) for x in out])
    return min(runs, key=lambda r: r[1])
