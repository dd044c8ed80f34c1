"""Where a dump's bytes come from: a file read with positioned reads, or
makedumpfile's flattened stream (`-F`) read in place.

A flattened file is a 4 KiB header (`makedumpfile`, type 1, version 1,
big-endian) and then records `(offset, size)` + `size` bytes: "write these
bytes at this offset of the real file", ending with `(-1, -1)`. Reading it in
place needs an index of the records; where records overlap (a later write
over an earlier one) the stream is reassembled once into a temporary file.
"""

import bisect
import os
import struct
import tempfile

from ..errors import DumpError

__all__ = ["FileSource", "FlatSource", "FLAT_SIGNATURE", "open_source"]

FLAT_SIGNATURE = b"makedumpfile"
FLAT_HEADER_SIZE = 4096
_RECORD = struct.Struct(">qq")


class FileSource:
    """Positioned reads from a regular file (never mapped, never read whole: /proc/kcore is petabytes)."""

    how = "read in place"

    def __init__(self, path: str, name: str | None = None):
        self.name = name or str(path)
        try:
            self._fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            raise DumpError(f"{self.name}: cannot open: {e.strerror}") from None
        self.size = os.fstat(self._fd).st_size

    def pread(self, offset: int, size: int) -> bytes:
        """`size` bytes at `offset`; DumpError if the file ends first."""
        data = os.pread(self._fd, size, offset) if size else b""
        if len(data) != size:
            raise DumpError(f"{self.name}: truncated: {size} bytes at offset {offset:#x} run past the end "
                            f"of the file ({self.size:#x} bytes)")
        return data

    def close(self) -> None:
        os.close(self._fd)


class FlatSource:
    """The file a flattened stream describes, read through an index of its records."""

    def __init__(self, path: str, name: str | None = None, progress=None):
        self.name = name or str(path)
        self._file = FileSource(path, self.name)
        targets, sources, sizes = self._index(progress)
        order = sorted(range(len(targets)), key=targets.__getitem__)
        self._starts = [targets[i] for i in order]
        self._sources = [sources[i] for i in order]
        self._sizes = [sizes[i] for i in order]
        self.size = max((t + s for t, s in zip(self._starts, self._sizes)), default=0)
        overlap = any(a + n > b for a, n, b in zip(self._starts, self._sizes, self._starts[1:]))
        self.how = "flattened, read in place"
        if overlap:
            self._reassemble(targets, sources, sizes)

    def _index(self, progress) -> tuple[list[int], list[int], list[int]]:
        head = self._file.pread(0, min(FLAT_HEADER_SIZE, self._file.size))
        if len(head) < 32 or not head.startswith(FLAT_SIGNATURE):
            raise DumpError(f"{self.name}: not a flattened makedumpfile stream")
        kind, version = struct.unpack_from(">qq", head, 16)
        if kind != 1 or version != 1:
            raise DumpError(f"{self.name}: flattened stream of type {kind} version {version} (only 1/1 is known)")
        targets, sources, sizes = [], [], []
        pos = FLAT_HEADER_SIZE
        while True:
            offset, size = _RECORD.unpack(self._file.pread(pos, _RECORD.size))
            if offset == -1 and size == -1:
                break
            pos += _RECORD.size
            if offset < 0 or size < 0 or pos + size > self._file.size:
                raise DumpError(f"{self.name}: flattened record at {pos - _RECORD.size:#x} is damaged "
                                f"(offset {offset}, size {size})")
            targets.append(offset)
            sources.append(pos)
            sizes.append(size)
            pos += size
            if progress and len(targets) % 4096 == 0:
                progress(pos, self._file.size)
        return targets, sources, sizes

    def _reassemble(self, targets, sources, sizes) -> None:
        """Records overlap: write them in stream order (later wins) into a sparse temporary file."""
        out = tempfile.NamedTemporaryFile(prefix="pagewalk-flat-", suffix=".kdump", delete=False)
        try:
            with out:
                for target, source, size in zip(targets, sources, sizes):
                    out.seek(target)
                    out.write(self._file.pread(source, size))
            self._file.close()
            self._file = FileSource(out.name, self.name)
        finally:
            os.unlink(out.name)                  # the open descriptor keeps the data until closed
        self._starts, self._sources, self._sizes = [0], [0], [self._file.size]
        self.how = "flattened, reassembled into a temporary file (records overlap)"

    def pread(self, offset: int, size: int) -> bytes:
        out = bytearray()
        starts = self._starts
        while size > 0:
            i = bisect.bisect_right(starts, offset) - 1        # the only record that can hold offset
            if i >= 0 and offset < starts[i] + self._sizes[i]:
                skip = offset - starts[i]
                take = min(size, self._sizes[i] - skip)
                out += self._file.pread(self._sources[i] + skip, take)
            elif i + 1 < len(starts):
                take = min(size, starts[i + 1] - offset)        # never written: zeros, as lseek holes read
                out += bytes(take)
            else:
                raise DumpError(f"{self.name}: truncated: offset {offset:#x} is past the data the "
                                f"flattened stream holds")
            offset, size = offset + take, size - take
        return bytes(out)

    def close(self) -> None:
        self._file.close()


def open_source(path: str, name: str | None = None, progress=None):
    """A FlatSource for a flattened stream, else a FileSource."""
    source = FileSource(path, name)
    head = source.pread(0, min(len(FLAT_SIGNATURE), source.size))
    if head == FLAT_SIGNATURE:
        source.close()
        return FlatSource(path, name, progress)
    return source
