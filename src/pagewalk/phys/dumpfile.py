"""Open any dump file as physical memory, whatever it is called: an ELF core
(QEMU `dump-guest-memory`, kdump's /proc/vmcore), a kdump-compressed file,
makedumpfile's flattened stream, or any of those compressed with zstd.

The format is found by its signature. A `.zst` file is decompressed once
into a sparse temporary file (cached per process, removed at exit or when
decompression is interrupted).

>>> from pathlib import Path
>>> import pagewalk
>>> mem = open_dump_memory(Path(pagewalk.__file__).parent / "data" / "default.elf.zst")
>>> mem.describe()["format"]
'ELF core'
"""

import atexit
import os
import stat
import tempfile
from pathlib import Path

import zstandard

from ..errors import DumpError
from .diskdump import KDUMP_SIGNATURE, KdumpMemory
from .elfcore import ELF_MAGIC, ElfCoreMemory
from .source import FLAT_SIGNATURE, FlatSource, FileSource

__all__ = ["open_dump_memory", "decompress_zst", "ZSTD_MAGIC"]

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_decompressed: dict[tuple[str, int, int], str] = {}


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def decompress_zst(path: Path, progress=None) -> str:
    """Stream a `.zst` dump into a sparse temporary file (cached per process); its path.

    `progress(done, total)` is called as the compressed input is consumed.
    """
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _decompressed and os.path.exists(_decompressed[key]):
        return _decompressed[key]
    out = tempfile.NamedTemporaryFile(prefix="pagewalk-", suffix=".elf", delete=False)
    atexit.register(_remove, out.name)          # registered before any work: an interrupted run leaves nothing
    chunk = 1 << 20
    zero = bytes(chunk)
    try:
        with open(path, "rb") as f, out:
            expected = zstandard.get_frame_parameters(f.read(18)).content_size
            f.seek(0)
            reader = zstandard.ZstdDecompressor(max_window_size=1 << 31).stream_reader(f)
            total = 0
            while data := reader.read(chunk):
                total += len(data)
                if data == zero[:len(data)]:
                    out.seek(len(data), os.SEEK_CUR)  # leave a hole: dumps are mostly zeros
                else:
                    out.write(data)
                if progress:
                    progress(f.tell(), st.st_size)
            out.truncate()
        if expected not in (zstandard.CONTENTSIZE_UNKNOWN, zstandard.CONTENTSIZE_ERROR) and total != expected:
            raise zstandard.ZstdError(f"the stream ends after {total} of {expected} bytes (truncated file)")
    except zstandard.ZstdError as e:
        _remove(out.name)
        raise DumpError(f"{path}: corrupt or truncated zstd data: {e}") from None
    except BaseException:
        _remove(out.name)
        raise
    _decompressed[key] = out.name
    return out.name


def open_dump_memory(path: str | os.PathLike, progress=None):
    """Physical memory of a dump file: ElfCoreMemory or KdumpMemory (read-only)."""
    path = Path(path)
    name = str(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):             # checked before opening: a FIFO's open blocks
            raise DumpError(f"{name}: not a regular file (a pipe or a device): a dump is read with seeks, "
                            "save it to a file first")
        with open(path, "rb") as f:
            magic = f.read(len(FLAT_SIGNATURE))
    except OSError as e:
        raise DumpError(f"{name}: cannot open: {e.strerror}") from None
    if magic.startswith(ZSTD_MAGIC):
        return _open_decompressed(decompress_zst(path, progress), name, progress)
    return _open_decompressed(str(path), name, progress, magic)


def _open_decompressed(path: str, name: str, progress, magic: bytes | None = None):
    if magic is None:
        with open(path, "rb") as f:
            magic = f.read(len(FLAT_SIGNATURE))
    if magic.startswith(KDUMP_SIGNATURE):
        return KdumpMemory(FileSource(path, name))
    if magic.startswith(FLAT_SIGNATURE):
        return KdumpMemory(FlatSource(path, name, progress))
    if magic.startswith(ELF_MAGIC) or not magic:
        return ElfCoreMemory(path, display_name=name)
    raise DumpError(f"{name}: not a dump: not an ELF core, a kdump-compressed or flattened makedumpfile "
                    f"file, or zstd data (it starts with {magic[:8].hex()})")
