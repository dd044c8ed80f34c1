"""`pagewalk extract`: a small ELF core with only what the tools need.

Like makedumpfile's filtering, but keeping by purpose instead of by page
type: every page-table page reachable from TTBR1 (and the whole
`swapper_pg_dir` page), the kallsyms tables (build-option inference), the
page holding `init_uts_ns` (the release string), and the notes.
"""

from pathlib import Path

from ..arch.arm64.mm.kallsyms import read_kallsyms
from ..errors import DumpError, PhysicalAddressError
from ..phys.elfcore import write_elf_core
from .kernel_dump import KernelDump

__all__ = ["extract", "table_pages", "kernel_pages"]


def table_pages(dump: KernelDump) -> set[int]:
    """PAs of every translation-table page reachable from the kernel's TTBR1 tables (and swapper_pg_dir's page)."""
    page = dump.page_size
    try:
        return {t.pa - t.pa % page for t in dump.table_pages()} | {dump.swapper_pg_dir - dump.swapper_pg_dir % page}
    except PhysicalAddressError as e:
        raise DumpError(f"{dump.name}: a page table is not in the dump ({e})") from None


def kernel_pages(dump: KernelDump) -> set[int]:
    """Kernel-image pages with the kallsyms tables and init_uts_ns."""
    page, info = dump.page_size, dump.vmcoreinfo
    spans = list(read_kallsyms(dump.read_kernel, info).spans)
    if info.has("SYMBOL(init_uts_ns)"):
        spans.append((info.symbol("init_uts_ns"), 512))
    pages = set()
    for va, size in spans:
        pa = dump.kimage_to_phys(va)
        for p in range(pa - pa % page, pa + size, page):
            pages.add(p)
    return pages


def extract(dump: KernelDump, out: str | Path, progress=None) -> tuple[int, int]:
    """Write the extract of `dump` (an ELF core) to `out`; returns (pages kept, bytes written)."""
    page = dump.page_size
    keep = sorted(table_pages(dump) | kernel_pages(dump))
    chunks: list[tuple[int, bytearray]] = []
    for i, p in enumerate(keep):
        if progress and i % 256 == 0:
            progress(i, len(keep))
        data = dump.memory.read(p, page)
        if chunks and chunks[-1][0] + len(chunks[-1][1]) == p:
            chunks[-1][1].extend(data)
        else:
            chunks.append((p, bytearray(data)))
    write_elf_core(out, dump.memory.notes, [(pa, bytes(data)) for pa, data in chunks])
    return len(keep), Path(out).stat().st_size
