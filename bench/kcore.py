"""/proc/kcore: open + ptdump of an assembled kcore image (apparent size ~2^52) vs the ELF dump of the
same kernel, and peak RSS; ratios from one run. The image is built on tmpfs by
shared/kcore/assemble.py and removed afterwards.

    python bench/kcore.py
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import CAPTURES, SHARED, open_and_ptdump


def main() -> None:
    from pagewalk.phys.dumpfile import decompress_zst
    print(f"{'kernel':<24}{'file':<26}{'apparent size':>16}{'open ms':>9}{'open+ptdump ms':>16}{'vs ELF':>8}"
          f"{'peak RSS MiB':>14}")
    for head in sorted((SHARED / "kcore").glob("*/kcore-head.bin")):
        name = head.parent.name
        config = CAPTURES / name / "kernel.config"
        elf = decompress_zst(CAPTURES / name / "dump.elf.zst")
        with tempfile.TemporaryDirectory() as work:
            (Path(work) / "kcore-head.bin").symlink_to(head)
            (Path(work) / "dump.elf").symlink_to(elf)
            image = f"/dev/shm/pagewalk-bench-kcore-{os.getpid()}"
            subprocess.run([sys.executable, str(SHARED / "kcore" / "assemble.py"), work, image], check=True,
                           capture_output=True)
            try:
                base, live = open_and_ptdump(elf, config), open_and_ptdump(image, config)
                size = os.stat(image).st_size
            finally:
                os.unlink(image)
        for label, run, apparent in (("ELF dump", base, os.stat(elf).st_size), ("/proc/kcore image", live, size)):
            print(f"{name:<24}{label:<26}{apparent:>16.3g}{run[0] * 1e3:>9.1f}{run[1] * 1e3:>16.1f}"
                  f"{run[1] / base[1]:>7.2f}x{run[3]:>14.0f}")


if __name__ == "__main__":
    main()
