"""Read-only physical memory from a kdump-compressed ("diskdump") file, as
makedumpfile 1.6-1.7 and QEMU `dump-guest-memory -z/-l/-s` write it.

Layout (makedumpfile diskdump_mod.h): block 0 the header (`KDUMP   `,
version, utsname, status, block size = page size, sizes of what follows);
then `sub_hdr_size` blocks of sub-header (phys_base, dump level, VMCOREINFO
and ELF-note offsets, 64-bit max_mapnr from version 6); then two bitmaps of
`bitmap_blocks / 2` blocks each (1st: pages that exist, 2nd: pages dumped);
then one 24-byte page descriptor per dumped page, in PFN order (offset, size,
compression flags, page flags); then the page data, each page compressed on
its own. Opening reads the headers and bitmaps; a page is read and
decompressed only when asked for (and kept in a small cache).

A page that exists but was left out by the dump level reads as zeros when
the dump level excludes zero pages (bit 1, as crash's `zero_excluded`), and
otherwise raises ExcludedPageError; `excluded_reads` counts the pages read
that way so a command can say so.
"""

import struct
from collections import OrderedDict

import numpy as np

from ..errors import DumpError, PhysicalAddressError, ReadOnlyMemoryError
from .codecs import CODECS, CodecError, decompress
from .elfcore import Note, parse_notes
from .memory import gather_words

__all__ = ["KdumpMemory", "ExcludedPageError", "KDUMP_SIGNATURE", "DUMP_LEVEL_BITS"]

KDUMP_SIGNATURE = b"KDUMP   "
_HEADER = struct.Struct("<8si")
_HEADER_TAIL = struct.Struct("<IiiIIIIIIi")           # status .. nr_cpus, after utsname and timestamp
_HEADER_TAIL_AT = 8 + 4 + 6 * 65 + 6 + 16            # signature, version, utsname, padding, timeval
_SUB = struct.Struct("<QiiQQqQqQqQQQQ")
_DESC = struct.Struct("<qIIQ")
DUMP_DH_INCOMPLETE, DUMP_DH_EXCLUDED = 0x8, 0x10
#: What each bit of makedumpfile's dump level (-d) leaves out.
DUMP_LEVEL_BITS = {1: "zero", 2: "cache", 4: "cache private", 8: "user", 16: "free"}
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
_CACHE_BYTES = 32 << 20
_DESC_CHUNK = 1024


class ExcludedPageError(PhysicalAddressError):
    """A page of RAM that the dump level left out of the dump."""

    def __init__(self, pa: int, dump_level: int, name: str):
        self.pa, self.size = pa, 8
        kinds = ", ".join(v for b, v in DUMP_LEVEL_BITS.items() if dump_level & b)
        Exception.__init__(self, f"{name}: physical address {pa:#x} is in a page the dump left out "
                                 f"(excluded by dump level {dump_level}: {kinds or 'nothing'} pages)")


class KdumpMemory:
    """Physical memory of a kdump-compressed dump (read-only).

    Found by its `KDUMP   ` signature; anything else is refused:

    >>> from pathlib import Path
    >>> import pagewalk
    >>> from pagewalk.phys.source import FileSource
    >>> KdumpMemory(FileSource(Path(pagewalk.__file__).parent / "data" / "default.elf.zst", "default.elf.zst"))
    Traceback (most recent call last):
    pagewalk.errors.DumpError: default.elf.zst: not a kdump-compressed file (no 'KDUMP   ' header)
    """

    writable = False

    def __init__(self, source):
        self.source, self.name = source, source.name
        head = source.pread(0, min(4096, source.size))
        if len(head) < _HEADER_TAIL_AT + _HEADER_TAIL.size or head[:8] != KDUMP_SIGNATURE:
            raise DumpError(f"{self.name}: not a kdump-compressed file (no 'KDUMP   ' header)")
        _, self.header_version = _HEADER.unpack_from(head)
        (self.status, block_size, sub_blocks, bitmap_blocks, max_mapnr32, _, _, _, _,
         self.nr_cpus) = _HEADER_TAIL.unpack_from(head, _HEADER_TAIL_AT)
        if block_size not in (4096, 16384, 65536):
            raise DumpError(f"{self.name}: header block size {block_size} is not an arm64 page size")
        if not 0 < sub_blocks < 1 << 16 or not 0 < bitmap_blocks or bitmap_blocks % 2:
            raise DumpError(f"{self.name}: header says {sub_blocks} sub-header and {bitmap_blocks} bitmap blocks")
        self.page_size = self.block_size = block_size
        self.page_shift = block_size.bit_length() - 1
        sub = source.pread(block_size, min(sub_blocks * block_size, _SUB.size))
        if len(sub) < _SUB.size:
            raise DumpError(f"{self.name}: sub-header of {len(sub)} bytes is too short")
        (self.phys_base, self.dump_level, _, _, _, vmcoreinfo_at, vmcoreinfo_size, note_at, note_size, _, _, _, _,
         max_mapnr64) = _SUB.unpack(sub)
        self.max_mapnr = max_mapnr64 if self.header_version >= 6 and max_mapnr64 else max_mapnr32
        bitmap_bytes = bitmap_blocks // 2 * block_size
        if self.max_mapnr > bitmap_bytes * 8:
            raise DumpError(f"{self.name}: max_mapnr {self.max_mapnr} does not fit the {bitmap_bytes}-byte bitmaps")
        bitmaps_at = (1 + sub_blocks) * block_size
        self._present = np.frombuffer(source.pread(bitmaps_at, bitmap_bytes), dtype=np.uint8)
        self._dumped = np.frombuffer(source.pread(bitmaps_at + bitmap_bytes, bitmap_bytes), dtype=np.uint8)
        if (self._dumped & ~self._present).any():
            raise DumpError(f"{self.name}: the bitmap of dumped pages names pages the bitmap of RAM does not")
        self._descs_at = bitmaps_at + 2 * bitmap_bytes
        # rank: dumped pages before each byte of the 2nd bitmap (page descriptor index)
        self._rank = np.concatenate(([0], np.cumsum(_POPCOUNT[self._dumped], dtype=np.int64)))
        self.pages_present = int(_POPCOUNT[self._present].sum(dtype=np.int64))
        self.pages_dumped = int(self._rank[-1])
        self.notes = self._read_notes(note_at, note_size, vmcoreinfo_at, vmcoreinfo_size)
        self._pages: OrderedDict[int, bytes] = OrderedDict()
        self._descs: dict[int, bytes] = {}
        self._check_descriptor_count()
        self.excluded_reads: set[int] = set()
        self.pages_decompressed = 0

    def _check_descriptor_count(self) -> None:
        """Page data starts right after the descriptors (or after one shared zero page, as makedumpfile
        -d 1 and QEMU write it): a damaged bitmap of dumped pages shows as a different count."""
        if not self.pages_dumped:
            return
        data_start = self._descs_at + self.pages_dumped * _DESC.size
        first, _, _, _ = _DESC.unpack(self.source.pread(self._descs_at, _DESC.size))
        if first not in (data_start, data_start + self.page_size):
            raise DumpError(f"{self.name}: the bitmap of dumped pages counts {self.pages_dumped} pages, but the "
                            f"first page's data is at {first:#x}, not {data_start:#x}: bitmap or descriptors damaged")

    def _read_notes(self, note_at: int, note_size: int, info_at: int, info_size: int) -> list[Note]:
        notes = []
        if note_size and self.header_version >= 4:
            notes = parse_notes(self._meta(note_at, note_size, "ELF notes"), f"{self.name} notes")
        if info_size and self.header_version >= 3 and not any(n.name == "VMCOREINFO" for n in notes):
            notes.append(Note("VMCOREINFO", 0, self._meta(info_at, info_size, "VMCOREINFO")))
        return notes

    def _meta(self, offset: int, size: int, what: str) -> bytes:
        if not 0 < offset or not 0 < size < 1 << 24 or offset + size > self.source.size:
            raise DumpError(f"{self.name}: {what} at offset {offset:#x} (+{size:#x}) lies outside the file")
        return self.source.pread(offset, size)

    # -- what the file says about itself ---------------------------------------------------
    @property
    def compression(self) -> str:
        names = [name for flag, (name, _) in CODECS.items() if self.status & flag]
        return "+".join(names) or "none"

    def describe(self) -> dict:
        """Format facts for `pagewalk info`."""
        kinds = ", ".join(v for b, v in DUMP_LEVEL_BITS.items() if self.dump_level & b)
        return {"format": f"kdump-compressed v{self.header_version} ({self.source.how})",
                "compression": self.compression,
                "dump level": f"{self.dump_level}" + (f" ({kinds} pages excluded)" if kinds else ""),
                "pages in bitmap": self.pages_present, "pages dumped": self.pages_dumped,
                "pages excluded": self.pages_present - self.pages_dumped,
                **({"status": "INCOMPLETE (the dump ran out of space)"} if self.status & DUMP_DH_INCOMPLETE else {})}

    def read_warnings(self) -> list[str]:
        if not self.excluded_reads:
            return []
        kinds = ", ".join(v for b, v in DUMP_LEVEL_BITS.items() if self.dump_level & b)
        return [f"{len(self.excluded_reads)} page(s) read were left out of the dump (dump level {self.dump_level} "
                f"excludes {kinds} pages) and read as zeros"]

    def note(self, name: str) -> Note | None:
        return next((n for n in self.notes if n.name == name), None)

    # -- pages -------------------------------------------------------------------------------
    def _bit(self, bitmap: np.ndarray, pfn: int) -> bool:
        return pfn < self.max_mapnr and bool(bitmap[pfn >> 3] >> (pfn & 7) & 1)

    def _descriptor(self, pfn: int) -> tuple[int, int, int]:
        index = int(self._rank[pfn >> 3]) + int(_POPCOUNT[self._dumped[pfn >> 3] & ((1 << (pfn & 7)) - 1)])
        chunk = self._descs.get(index // _DESC_CHUNK)
        if chunk is None:
            first = index - index % _DESC_CHUNK
            count = min(_DESC_CHUNK, self.pages_dumped - first)
            chunk = self._descs[index // _DESC_CHUNK] = self.source.pread(self._descs_at + first * _DESC.size,
                                                                           count * _DESC.size)
        offset, size, flags, _ = _DESC.unpack_from(chunk, index % _DESC_CHUNK * _DESC.size)
        return offset, size, flags

    def page(self, pfn: int) -> bytes | None:
        """The page's bytes; None when the page exists but was not dumped. PhysicalAddressError when not RAM."""
        data = self._pages.get(pfn)
        if data is not None:
            self._pages.move_to_end(pfn)
            return data
        if not self._bit(self._present, pfn):
            raise PhysicalAddressError(pfn << self.page_shift, 1, f"the dump {self.name} (no RAM there)")
        if not self._bit(self._dumped, pfn):
            return None
        offset, size, flags = self._descriptor(pfn)
        where = f"{self.name}: page {pfn:#x} (PA {pfn << self.page_shift:#x})"
        if flags & DUMP_DH_EXCLUDED:
            return None
        if offset <= 0 or size <= 0 or offset + size > self.source.size:
            raise DumpError(f"{where}: its descriptor points outside the file (offset {offset:#x}, size {size:#x})")
        raw = self.source.pread(offset, size)
        codec = flags & ~(DUMP_DH_INCOMPLETE | DUMP_DH_EXCLUDED)
        if codec == 0:
            if size != self.page_size:
                raise DumpError(f"{where}: uncompressed page of {size} bytes")
            data = raw
        elif codec in CODECS:
            try:
                data = decompress(codec, raw, self.page_size)
            except CodecError as e:
                raise DumpError(f"{where}: corrupt {CODECS[codec][0]} data: {e}") from None
            self.pages_decompressed += 1
        else:
            raise DumpError(f"{where}: unknown compression flags {flags:#x}")
        self._pages[pfn] = data
        if len(self._pages) * self.page_size > _CACHE_BYTES:
            self._pages.popitem(last=False)
        return data

    def _page_or_zero(self, pa: int) -> bytes:
        pfn = pa >> self.page_shift
        data = self.page(pfn)
        if data is None:
            if not self.dump_level & 1:
                raise ExcludedPageError(pa, self.dump_level, self.name)
            self.excluded_reads.add(pfn)
            data = bytes(self.page_size)
        return data

    # -- PhysicalMemory ------------------------------------------------------------------------
    def read(self, pa: int, size: int) -> bytes:
        out = bytearray()
        while size > 0:
            data = self._page_or_zero(pa)
            at = pa & (self.page_size - 1)
            chunk = min(size, self.page_size - at)
            out += data[at:at + chunk]
            pa, size = pa + chunk, size - chunk
        return bytes(out)

    def read_u64(self, pa: int) -> int:
        at = pa & (self.page_size - 1)
        if at > self.page_size - 8:
            return int.from_bytes(self.read(pa, 8), "little")
        return int.from_bytes(self._page_or_zero(pa)[at:at + 8], "little")

    def read_table(self, pa: int, entries: int) -> np.ndarray:
        at = pa & (self.page_size - 1)
        if at + 8 * entries <= self.page_size:
            return np.frombuffer(self._page_or_zero(pa), dtype="<u8", count=entries, offset=at)
        return np.frombuffer(self.read(pa, 8 * entries), dtype="<u8")

    def gather_u64(self, pas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return gather_words(self, pas)

    def write_u64(self, pa: int, value: int) -> None:
        raise ReadOnlyMemoryError(pa, f"the dump {self.name}")

    def is_backed(self, pa: int, size: int = 8) -> bool:
        first, last = pa >> self.page_shift, (pa + max(size, 1) - 1) >> self.page_shift
        return all(self._bit(self._present, pfn) for pfn in range(first, last + 1))

    def ranges(self) -> list[tuple[int, int]]:
        bits = np.unpackbits(self._present, bitorder="little")[:self.max_mapnr].astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], bits, [0]))))
        return [(int(a) << self.page_shift, int(b) << self.page_shift) for a, b in zip(edges[::2], edges[1::2])]

    def close(self) -> None:
        self.source.close()
