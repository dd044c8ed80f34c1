"""Read-only physical memory from an ELF core (QEMU `dump-guest-memory`, kdump).

Models what crash/drgn call the physical address space of a vmcore: every
PT_LOAD segment maps `[p_paddr, p_paddr + p_memsz)`, the file provides the
first `p_filesz` bytes and the rest reads as zero. The file is mmap'ed, never
read whole; a `.zst` dump is decompressed as a stream into a sparse
temporary file first.
"""

import bisect
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DumpError, PhysicalAddressError, ReadOnlyMemoryError
from .memory import gather_words

__all__ = ["ElfCoreMemory", "Note", "Segment", "parse_notes", "write_elf_core", "ELF_MAGIC"]

EM_AARCH64 = 183
ET_CORE = 4
PT_LOAD = 1
PT_NOTE = 4
NT_TASKSTRUCT = 4
ELF_MAGIC = b"\x7fELF"
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_NHDR = struct.Struct("<III")
_U64 = struct.Struct("<Q")


@dataclass(frozen=True)
class Segment:
    """One PT_LOAD: physical `[start, end)`, file bytes for `[start, file_end)`."""
    start: int
    end: int
    file_end: int
    offset: int


@dataclass(frozen=True)
class Note:
    name: str
    type: int
    desc: bytes


def _align4(n: int) -> int:
    return (n + 3) & ~3


def parse_notes(data: bytes, where: str) -> list[Note]:
    """The ELF notes in one PT_NOTE segment's bytes."""
    notes, pos = [], 0
    while pos + _NHDR.size <= len(data):
        namesz, descsz, ntype = _NHDR.unpack_from(data, pos)
        name_at = pos + _NHDR.size
        desc_at = name_at + _align4(namesz)
        end = desc_at + _align4(descsz)
        if desc_at + descsz > len(data):
            raise DumpError(f"{where}: note at offset {pos:#x} runs past the end of its PT_NOTE segment")
        name = data[name_at:name_at + namesz].rstrip(b"\0").decode("ascii", "replace")
        notes.append(Note(name, ntype, bytes(data[desc_at:desc_at + descsz])))
        pos = end
    return notes


def _drop_contained(segments: list[Segment], pread, name: str, sample: bool = False) -> list[Segment]:
    """Sorted segments without those wholly inside another with the same bytes (kdump and kcore repeat
    the kernel text as its own PT_LOAD inside the RAM segment); any other overlap is an error.
    `sample` compares one 4 KiB chunk per MiB (kcore: both segments are the same RAM, read with syscalls)."""
    kept: list[Segment] = []
    for seg in sorted(segments, key=lambda s: (s.start, -s.end)):
        if kept and seg.start < kept[-1].end:
            outer = kept[-1]
            step = 1 << 20
            same = seg.end <= outer.end and seg.file_end <= outer.file_end and all(
                pread(seg.offset + at, n) == pread(outer.offset + seg.start - outer.start + at, n)
                for at, n in ((at, min(4096 if sample else step, seg.file_end - seg.start - at))
                              for at in range(0, seg.file_end - seg.start, step)))
            if not same:
                raise DumpError(f"{name}: PT_LOADs for physical {outer.start:#x}-{outer.end:#x} and "
                                f"{seg.start:#x}-{seg.end:#x} overlap with different contents")
            continue
        kept.append(seg)
    return kept


class _Mapped:
    """A core file mapped whole: reads are slices, tables are numpy views."""

    def __init__(self, fd: int, size: int):
        self.mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)

    def read(self, offset: int, size: int) -> bytes:
        return self.mm[offset:offset + size]

    def u64(self, offset: int) -> int:
        return _U64.unpack_from(self.mm, offset)[0]

    def words(self, offset: int, count: int) -> np.ndarray:
        return np.frombuffer(self.mm, dtype="<u8", count=count, offset=offset)

    def changed(self) -> list[int]:
        return []

    def close(self) -> None:
        self.mm.close()


class _Snapshots:
    """A core read with positioned reads, each 4 KiB chunk read once and kept (a snapshot per
    chunk): /proc/kcore cannot be mapped and is petabytes long; a live kernel changes under us."""

    CHUNK = 4096

    def __init__(self, fd: int, size: int):
        self.fd, self.chunks = fd, {}

    def _chunk(self, base: int) -> bytes:
        data = self.chunks.get(base)
        if data is None:
            data = self.chunks[base] = os.pread(self.fd, self.CHUNK, base)
        return data

    def read(self, offset: int, size: int) -> bytes:
        out = bytearray()
        while size > 0:
            base = offset - offset % self.CHUNK
            data = self._chunk(base)
            take = min(size, base + self.CHUNK - offset)
            out += data[offset - base:offset - base + take]
            offset, size = offset + take, size - take
        return bytes(out)

    def u64(self, offset: int) -> int:
        return int.from_bytes(self.read(offset, 8), "little")

    def words(self, offset: int, count: int) -> np.ndarray:
        return np.frombuffer(self.read(offset, 8 * count), dtype="<u8")

    def changed(self) -> list[int]:
        """File offsets of chunks that read differently now than when first read."""
        return [base for base, data in self.chunks.items() if os.pread(self.fd, len(data), base) != data]

    def close(self) -> None:
        pass


#: Files larger than this are read with positioned reads, never mapped (/proc/kcore: ~2^52 bytes).
MAP_LIMIT = 1 << 44
NO_PADDR = (1 << 64) - 1


class ElfCoreMemory:
    """Physical memory backed by an ELF core file (read-only): QEMU and kdump cores, and /proc/kcore.

    PT_LOADs with a physical address (`p_paddr`) are memory; those without one
    (kcore's vmalloc, vmemmap and module ranges, `p_paddr = -1`) are listed in
    `virtual_segments` and never read.

    >>> from pathlib import Path
    >>> import pagewalk
    >>> from pagewalk.phys.dumpfile import open_dump_memory
    >>> mem = open_dump_memory(Path(pagewalk.__file__).parent / "data" / "default.elf.zst")
    >>> mem.writable, len(mem.segments) > 1, mem.note("VMCOREINFO").desc.startswith(b"OSRELEASE=6.12")
    (False, True, True)
    """

    writable = False

    def __init__(self, path: str | os.PathLike, display_name: str | None = None):
        self.path = Path(path)
        self.name = display_name or str(path)
        try:
            self._fd = os.open(self.path, os.O_RDONLY)
        except PermissionError:
            hint = " (reading /proc/kcore needs root)" if str(self.path) == "/proc/kcore" else ""
            raise DumpError(f"{self.name}: cannot open: permission denied{hint}") from None
        except OSError as e:
            raise DumpError(f"{self.name}: cannot open: {e.strerror}") from None
        size = os.fstat(self._fd).st_size
        if size < _EHDR.size:
            raise DumpError(f"{self.name}: not an ELF core (only {size} bytes)")
        self.file_size = size
        self.virtual_segments: list[tuple[int, int]] = []
        segments, self.notes = self._parse()
        self.segments = _drop_contained(segments, self._pread, self.name, sample=self.is_kcore)
        self._backing = _Snapshots(self._fd, size)
        if size <= MAP_LIMIT and not self.is_kcore:
            try:
                self._backing = _Mapped(self._fd, size)
            except OSError:
                pass                             # not mappable (procfs, pipes): positioned reads
        self._starts = [s.start for s in self.segments]
        self._last = self.segments[0]
        self._words: dict[Segment, np.ndarray] = {}

    def _pread(self, offset: int, size: int) -> bytes:
        return os.pread(self._fd, size, offset)

    def _parse(self) -> tuple[list[Segment], list[Note]]:
        name = self.name
        (ident, etype, machine, _, _, phoff, _, _, _, phentsize, phnum, _, _, _) = \
            _EHDR.unpack(self._pread(0, _EHDR.size))
        if ident[:4] != b"\x7fELF":
            raise DumpError(f"{name}: not an ELF file (magic {ident[:4].hex()})")
        if ident[4] != 2 or ident[5] != 1:
            raise DumpError(f"{name}: not a 64-bit little-endian ELF (class {ident[4]}, data {ident[5]})")
        if etype != ET_CORE:
            raise DumpError(f"{name}: ELF type {etype} is not a core dump (ET_CORE = 4)")
        if machine != EM_AARCH64:
            host = {62: "x86_64", 3: "i386", 243: "riscv", 21: "ppc64", 22: "s390"}.get(machine, f"machine {machine}")
            raise DumpError(f"{name}: the core of an {host} kernel, not arm64 (EM_AARCH64 = 183): "
                            "pagewalk reads arm64 kernels")
        if phentsize < _PHDR.size or phoff + phnum * phentsize > self.file_size:
            raise DumpError(f"{name}: program headers at {phoff:#x} ({phnum} x {phentsize}) lie outside the file")
        table = self._pread(phoff, phnum * phentsize)
        segments, notes = [], []
        for i in range(phnum):
            ptype, _, off, vaddr, paddr, filesz, memsz, _ = _PHDR.unpack_from(table, i * phentsize)
            if off + filesz > self.file_size:
                raise DumpError(
                    f"{name}: truncated: segment {i} (physical {paddr:#x}, {filesz:#x} bytes at file offset "
                    f"{off:#x}) ends past the end of the file ({self.file_size:#x} bytes)")
            if ptype == PT_NOTE:
                if filesz > 1 << 24:
                    raise DumpError(f"{name}: note segment {i} claims {filesz:#x} bytes")
                notes += parse_notes(self._pread(off, filesz), f"{name} segment {i}")
            elif ptype == PT_LOAD and memsz and paddr == NO_PADDR:
                self.virtual_segments.append((vaddr, vaddr + memsz))
            elif ptype == PT_LOAD and memsz:
                if paddr + memsz > 1 << 64 or filesz > memsz:
                    raise DumpError(f"{name}: segment {i} has bad sizes (paddr {paddr:#x}, filesz {filesz:#x}, memsz {memsz:#x})")
                segments.append(Segment(paddr, paddr + memsz, paddr + filesz, off))
        if not segments:
            raise DumpError(f"{name}: no PT_LOAD segments with physical addresses: no physical memory in this core")
        return segments, notes

    @property
    def is_kcore(self) -> bool:
        """A live kernel's /proc/kcore: virtual-only segments, a task-struct note."""
        return bool(self.virtual_segments) or any(n.type == NT_TASKSTRUCT for n in self.notes)

    def close(self) -> None:
        self._backing.close()
        os.close(self._fd)

    def describe(self) -> dict:
        """Format facts for `pagewalk info`."""
        if not self.is_kcore:
            return {"format": "ELF core", "segments": len(self.segments)}
        physical = ", ".join(f"{s.start:#x}-{s.end:#x}" for s in self.segments)
        virtual = ", ".join(f"{a:#x}-{b:#x}" for a, b in self.virtual_segments)
        return {"format": "/proc/kcore of a live kernel (positioned reads, one snapshot per 4 KiB read)",
                "segments": f"{len(self.segments)} with physical addresses ({physical}); "
                            f"{len(self.virtual_segments)} virtual only ({virtual or '-'})"}

    def read_warnings(self) -> list[str]:
        """What a command should say after reading: table memory that changed while it was read."""
        changed = self._backing.changed()
        if not changed:
            return []
        pas = sorted(seg.start + off - seg.offset for off in changed for seg in self.segments
                     if seg.offset <= off < seg.offset + seg.file_end - seg.start)
        shown = ", ".join(f"{pa:#x}" for pa in pas[:8]) + (" ..." if len(pas) > 8 else "")
        return [f"{len(pas)} page(s) changed while they were read (a live kernel): {shown}; "
                "the output mixes the states before and after"]

    def note(self, name: str) -> Note | None:
        return next((n for n in self.notes if n.name == name), None)

    # -- PhysicalMemory --------------------------------------------------
    def _segment(self, pa: int, size: int) -> Segment:
        seg = self._last
        if seg.start <= pa and pa + size <= seg.end:
            return seg
        i = bisect.bisect_right(self._starts, pa) - 1
        if i >= 0:
            seg = self.segments[i]
            if pa + size <= seg.end:
                self._last = seg
                return seg
        raise PhysicalAddressError(pa, size, f"the dump {self.name}")

    def read_u64(self, pa: int) -> int:
        seg = self._last
        if not (seg.start <= pa and pa + 8 <= seg.file_end):
            seg = self._segment(pa, 8)
            if pa + 8 > seg.file_end:
                return int.from_bytes(self.read(pa, 8), "little")
        return self._backing.u64(seg.offset + pa - seg.start)

    def read_table(self, pa: int, entries: int) -> np.ndarray:
        size = entries * 8
        seg = self._segment(pa, size)
        if pa + size <= seg.file_end:
            return self._backing.words(seg.offset + pa - seg.start, entries)
        return np.frombuffer(self.read(pa, size), dtype="<u8")

    def read(self, pa: int, size: int) -> bytes:
        out = bytearray()
        while size > 0:
            seg = self._segment(pa, 1)
            chunk = min(size, seg.end - pa)
            in_file = max(0, min(chunk, seg.file_end - pa))
            out += self._backing.read(seg.offset + pa - seg.start, in_file)
            out += bytes(chunk - in_file)
            pa, size = pa + chunk, size - chunk
        return bytes(out)

    def write_u64(self, pa: int, value: int) -> None:
        raise ReadOnlyMemoryError(pa, f"the dump {self.name}")

    def is_backed(self, pa: int, size: int = 8) -> bool:
        try:
            self._segment(pa, size)
            return True
        except PhysicalAddressError:
            return False

    def ranges(self) -> list[tuple[int, int]]:
        merged: list[list[int]] = []
        for s in self.segments:
            if merged and s.start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], s.end)
            else:
                merged.append([s.start, s.end])
        return [(a, b) for a, b in merged]

    def gather_u64(self, pas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Words at many 8-byte-aligned PAs at once: `(values, ok)`; zero-filled tails read as 0."""
        if not isinstance(self._backing, _Mapped):
            return gather_words(self, pas)
        values = ok = None
        for seg in self.segments:
            words = self._words.get(seg)
            if words is None:
                count = (seg.file_end - seg.start) // 8
                words = self._words[seg] = np.ndarray((count,), dtype="<u8", buffer=self._backing.mm,
                                                      offset=seg.offset)
            index = (pas - np.uint64(seg.start)) >> np.uint64(3)       # below start wraps to huge
            in_file = index < np.uint64(len(words))
            if len(self.segments) == 1 and in_file.all():
                return words[index.astype(np.intp)], in_file
            if values is None:
                values, ok = np.zeros(len(pas), dtype=np.uint64), np.zeros(len(pas), dtype=bool)
            inside = index < np.uint64((seg.end - seg.start) // 8)
            values[in_file] = words[index[in_file].astype(np.intp)]
            ok |= inside
        return values, ok


def write_elf_core(path: str | os.PathLike, notes: list[Note], chunks: list[tuple[int, bytes]]) -> None:
    """Write an ELF core with the given notes and one PT_LOAD per `(paddr, data)` chunk."""
    note_blob = bytearray()
    for n in notes:
        name = n.name.encode() + b"\0"
        note_blob += _NHDR.pack(len(name), len(n.desc), n.type)
        note_blob += name.ljust(_align4(len(name)), b"\0") + n.desc.ljust(_align4(len(n.desc)), b"\0")
    phnum = 1 + len(chunks)
    phoff = _EHDR.size
    data_at = phoff + phnum * _PHDR.size
    headers = [_PHDR.pack(PT_NOTE, 0, data_at, 0, 0, len(note_blob), len(note_blob), 0)]
    offset = data_at + len(note_blob)
    offset += -offset % 8
    body_start = offset
    for paddr, data in chunks:
        headers.append(_PHDR.pack(PT_LOAD, 0x6, offset, paddr, paddr, len(data), len(data), 0))
        offset += len(data)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    ehdr = _EHDR.pack(ident, ET_CORE, EM_AARCH64, 1, 0, phoff, 0, 0, _EHDR.size, _PHDR.size, phnum, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(ehdr + b"".join(headers) + note_blob)
        f.write(bytes(body_start - f.tell()))
        for _, data in chunks:
            f.write(data)
