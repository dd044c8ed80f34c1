"""Real kdump-compressed dumps (../shared/kdump, made by makedumpfile 1.7.8 from the captures):
the kernel's own ptdump byte for byte, the same translations and W^X verdict as the ELF dump,
what the file says about itself, excluded pages, and damaged files (clear error or the right answer)."""

import random
import shutil
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import CAPTURES, SHARED, needs_shared, ptdump_ranges
from pagewalk import KernelDump
from pagewalk.errors import PagewalkError
from pagewalk.phys.codecs import CodecError, snappy_decompress
from pagewalk.phys.diskdump import ExcludedPageError

KDUMP = SHARED / "kdump"
FILES = sorted(KDUMP.glob("*/dump.*")) if KDUMP.exists() else []
ID = lambda p: f"{p.parent.name}/{p.name}"  # noqa: E731


def open_kdump(path, capture: str | None = None, **kw) -> KernelDump:
    """A kdump file with its capture's kernel.config (the capture is the file's folder name by default)."""
    return KernelDump.open(path, config=CAPTURES / (capture or path.parent.name) / "kernel.config", **kw)


@needs_shared
@pytest.mark.parametrize("path", FILES, ids=ID)
def test_kdump_ptdump_is_the_kernels_own(path):
    assert open_kdump(path).ptdump() == (CAPTURES / path.parent.name / "ptdump.txt").read_text()


def _sample_addresses(name: str, n: int = 400) -> list[int]:
    rng = random.Random(name)
    ranges = [(a, b) for a, b, level, attrs, marker in ptdump_ranges(CAPTURES / name / "ptdump.txt") if attrs]
    return [rng.randrange(a, b) & ~7 for a, b in rng.sample(ranges, min(n, len(ranges)))]


@needs_shared
@pytest.mark.parametrize("path", FILES, ids=ID)
def test_kdump_vtop_and_check_wx_agree_with_the_elf_dump(open_capture, path):
    elf, kdump = open_capture(path.parent.name), open_kdump(path)
    for va in _sample_addresses(path.parent.name):
        a, b = elf.translate(va), kdump.translate(va)
        assert (a.pa, a.level, a.writable, a.executable, a.attr, a.steps) == \
               (b.pa, b.level, b.writable, b.executable, b.attr, b.steps), hex(va)
    assert kdump.check_wx().wx_summary() == elf.check_wx().wx_summary()


@needs_shared
@pytest.mark.parametrize("path", FILES, ids=ID)
def test_kdump_describes_its_format_as_makedumpfile_was_asked(path):
    """README of shared/kdump: -c zlib, -l lzo, -z zstd, -F flattened, -d dump level."""
    facts = open_kdump(path).memory.describe()
    form, codec, level = path.name.split(".", 1)[1].split("-")
    assert facts["compression"] == codec
    assert facts["dump level"].split()[0] == level.removeprefix("d")
    assert ("flattened" in facts["format"]) == path.name.startswith("dump.flat")
    assert facts["pages dumped"] + facts["pages excluded"] == facts["pages in bitmap"]


def _excluded_pa(dump) -> int:
    mem = dump.memory
    pfn = next(p for p in range(mem.max_mapnr) if mem._bit(mem._present, p) and not mem._bit(mem._dumped, p))
    return pfn << mem.page_shift


@needs_shared
def test_excluded_pages_read_as_zero_when_zero_pages_are_excluded():
    dump = open_kdump(KDUMP / "6.1-4k-a72-default" / "dump.kdump-zlib-d31")
    pa = _excluded_pa(dump)
    assert dump.memory.read_u64(pa) == 0
    assert "1 page(s) read were left out" in dump.memory.read_warnings()[0]


@needs_shared
def test_excluded_pages_are_an_error_when_zero_pages_were_kept(tmp_path):
    """Dump level 30 keeps zero pages: a missing page is not known to be zero."""
    copy = tmp_path / "dump.kdump-zlib-d30"
    data = bytearray((KDUMP / "6.1-4k-a72-default" / "dump.kdump-zlib-d31").read_bytes())
    struct.pack_into("<i", data, 4096 + 8, 30)                       # sub-header dump_level
    copy.write_bytes(bytes(data))
    dump = KernelDump.open(copy, search_config=False)
    with pytest.raises(ExcludedPageError, match="excluded by dump level 30"):
        dump.memory.read_u64(_excluded_pa(dump))


def test_snappy_raw_format_elements():
    """Snappy's format description: varint length, literals (short and 1-byte length), copies with
    1-, 2- and 4-byte offsets, overlapping copies."""
    lit = bytes(range(100))
    stream = bytes([200, 1]) + bytes([60 << 2, 99]) + lit                # 200 bytes; 100-byte literal
    stream += bytes([(64 - 1) << 2 | 2, 100, 0]) + bytes([(36 - 1) << 2 | 3, 50, 0, 0, 0])
    expect = lit + lit[:64] + (lit + lit[:64])[-50:][:36]
    assert snappy_decompress(stream, 200) == expect
    with pytest.raises(CodecError):
        snappy_decompress(bytes([8, 0x09, 2]), 8)                     # copy before any output


# -- damaged files: a clear error or the right answer -------------------------------------------

@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    src = KDUMP / "6.12-64k-max-rodata-on-kfence" / "dump.kdump-zlib-d31"
    if not src.exists():
        pytest.skip("ground truth not found")
    path = tmp_path_factory.mktemp("kdump") / "dump.kdump-zlib-d31"
    shutil.copy(src, path)
    expected = (CAPTURES / src.parent.name / "ptdump.txt").read_text()
    return path, path.read_bytes(), expected, src.parent.name


def _outcome(path, name):
    try:
        return KernelDump.open(path, config=CAPTURES / name / "kernel.config").ptdump()
    except PagewalkError as e:
        return e


@needs_shared
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_kdump_damage_gives_a_clear_error_or_the_right_answer(tmp_path, pristine, data):
    """Truncation anywhere; bit flips in the header, sub-header, bitmaps, descriptors and zlib page data
    (zlib's checksum covers page data; LZO and zstd pages as makedumpfile writes them have none)."""
    path, original, expected, name = pristine
    damaged = bytearray(original)
    how = data.draw(st.sampled_from(["truncate", "flip-metadata", "flip-data"]))
    if how == "truncate":
        damaged = damaged[:data.draw(st.integers(0, len(original) - 1))]
    else:
        lo, hi = (0, 0x50000) if how == "flip-metadata" else (0x50000, len(original))
        for offset in data.draw(st.lists(st.integers(lo, hi - 1), min_size=1, max_size=4)):
            damaged[offset] ^= 1 << data.draw(st.integers(0, 7))
    target = tmp_path / "damaged.kdump"
    target.write_bytes(bytes(damaged))
    result = _outcome(target, name)
    assert isinstance(result, PagewalkError) or result == expected, f"{how}: a silently different ptdump"
    assert str(result).strip(), "an empty error message"


@needs_shared
def test_flattened_stream_with_overlapping_records_is_reassembled(tmp_path):
    """A flattened stream may write the same offset twice (the later record wins): read through a
    reassembled file, with the same answer."""
    src = KDUMP / "6.1-4k-a72-default" / "dump.kdump-zlib-d31"
    data = src.read_bytes()
    records = [(0, data[:8192]), (4096, b"\xff" * 4096), (4096, data[4096:8192]), (8192, data[8192:])]
    stream = b"makedumpfile".ljust(16, b"\0") + struct.pack(">qq", 1, 1)
    stream = stream.ljust(4096, b"\0")
    for offset, blob in records:
        stream += struct.pack(">qq", offset, len(blob)) + blob
    stream += struct.pack(">qq", -1, -1)
    flat = tmp_path / "dump.flat"
    flat.write_bytes(stream)
    dump = open_kdump(flat, "6.1-4k-a72-default")
    assert "reassembled" in dump.memory.describe()["format"]
    assert dump.ptdump() == (CAPTURES / "6.1-4k-a72-default" / "ptdump.txt").read_text()

