"""Bad input never hangs, never destroys, never answers wrong: one clear error or the right answer.

Dumps with looping, fanned-out or out-of-RAM tables, absurd VMCOREINFO, zero-filled or overlapping
segments; CLI arguments; API misuse. Each case is bounded in time by hypothesis' deadline or by
construction, and input files are checked unchanged.
"""

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import REPO
from dumphelp import patched_core
from pagewalk import KernelDump, boot
from pagewalk.cli import EXIT_CORRUPT, main
from pagewalk.dump.kernel_dump import DEFAULT_DUMP
from pagewalk.errors import AddressError, ArgumentError, DumpError, PagewalkError
from pagewalk.hw.aarch64.bits import TYPE_MASK
from pagewalk.mm.era import Era

SLOW = 20.0                   # seconds: anything near this is a hang, not work


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def top_table(pristine):
    dump = pristine[0]
    return dump.ttbr1 - dump.ttbr1 % dump.page_size, dump.geometry.top_entries


def table_desc(pa: int) -> int:
    return pa | TYPE_MASK


def run_cli(capsys, *argv):
    t = time.perf_counter()
    status = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    assert time.perf_counter() - t < SLOW
    assert "internal error" not in err and "Traceback" not in err
    return status, out, err


# -- 1, 2: loops and fan-out are reported by every walk, quickly -----------------------------------

def test_top_level_entries_pointing_at_the_top_table_are_a_loop(tmp_path, pristine, capsys):
    dump = pristine[0]
    top, n = top_table(pristine)
    everything = patched_core(tmp_path, pristine, {top + 8 * i: table_desc(top) for i in range(n)}, name="all.elf")
    status, out, err = run_cli(capsys, "ptdump", everything)      # not even swapper_pg_dir translates
    assert status == 2 and "table loop" in err
    free = [i for i in range(n) if dump.memory.read_u64(top + 8 * i) == 0]
    path = patched_core(tmp_path, pristine, {top + 8 * i: table_desc(top) for i in free})
    before = digest(path)
    for command in ("ptdump", "check-wx"):
        status, out, err = run_cli(capsys, command, path)
        assert status == EXIT_CORRUPT and "table loop" in err
    status, out, err = run_cli(capsys, "extract", path, tmp_path / "x.elf")
    assert status == 2 and "table loop" in err
    assert digest(path) == before


def test_fan_out_to_one_table_is_walked_once(tmp_path, pristine, capsys):
    dump = pristine[0]
    top, n = top_table(pristine)
    step = dump.translate(dump.vmcoreinfo.swapper_pg_dir).steps[0]
    path = patched_core(tmp_path, pristine, {top + 8 * i: step.value for i in range(n)})
    status, out, err = run_cli(capsys, "ptdump", path)
    assert status == EXIT_CORRUPT and "reached from two entries" in err and out.startswith("---[ Linear")


def test_bad_top_level_entry_is_warned_about_and_skipped(tmp_path, pristine):
    """pgd_bad(): the kernel warns and clears it; a dump is read-only, so the walk warns and goes on."""
    dump = pristine[0]
    top, n = top_table(pristine)
    free = next(i for i in range(n) if dump.memory.read_u64(top + 8 * i) == 0)
    path = patched_core(tmp_path, pristine, {top + 8 * free: 0x40000001})     # bits[1:0] = 01 at the PGD
    before = digest(path)
    bad = KernelDump.open(path, search_config=False)
    machine = bad.machine()
    from pagewalk.arch.arm64.mm.ptdump import render_ptdump
    text = render_ptdump(machine, bad.layout.markers(), bad.layout.ptdump_start)
    warned = [r.message for r in machine.log.of_kind("warning")]     # pgd_bad, or p4d_bad when P4D folds into it
    assert text == dump.ptdump() and any(m.startswith(("bad pgd", "bad p4d")) for m in warned), warned
    assert digest(path) == before


# -- 4, 5: what the dump cannot be ----------------------------------------------------------------

@pytest.mark.parametrize("changes,message", [
    ({"NUMBER(VA_BITS)": "99"}, "impossible geometry"),
    ({"NUMBER(VA_BITS)": "0"}, "impossible geometry"),
    ({"NUMBER(VA_BITS)": "-1"}, "impossible geometry"),
    ({"NUMBER(TCR_EL1_T1SZ)": "4"}, "impossible geometry"),
    ({"NUMBER(VMALLOC_START)": "0xffffffffffff0000"}, "below VMALLOC_START"),
    ({"NUMBER(MODULES_VADDR)": "0"}, "below PAGE_OFFSET"),
    ({"SIZE(page)": "99999999999"}, "not a struct page size"),
    ({"PAGESIZE": "65536"}, "not page aligned|does not map itself"),
    ({"NUMBER(kimage_voffset)": "0x1000"}, "is not in the dump|does not map itself"),
])
def test_vmcoreinfo_the_dump_disproves_is_refused(tmp_path, pristine, changes, message):
    path = patched_core(tmp_path, pristine, {}, vmcoreinfo=dict(changes))
    with pytest.raises(DumpError, match=message):
        KernelDump.open(path, search_config=False)


def test_swapper_pg_dir_moved_by_8_is_refused_and_force_goes_on(tmp_path, pristine, capsys):
    dump = pristine[0]
    moved = f"{dump.vmcoreinfo.swapper_pg_dir + 8:x}"
    path = patched_core(tmp_path, pristine, {}, vmcoreinfo={"SYMBOL(swapper_pg_dir)": moved})
    with pytest.raises(DumpError, match="not page aligned"):
        KernelDump.open(path, search_config=False)
    status, out, err = run_cli(capsys, "info", "--force", path)
    assert status == 0 and "swapper_pg_dir" in out


def test_zero_filled_ram_segment_is_refused(tmp_path, pristine):
    """One PT_LOAD with p_memsz = 2^48 and no bytes: every table would read as zero (an empty ptdump)."""
    import struct
    from pagewalk.phys.elfcore import write_elf_core
    dump = pristine[0]
    path = tmp_path / "hollow.elf"
    write_elf_core(path, dump.memory.notes, [(0, b"")])
    data = bytearray(path.read_bytes())
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    struct.pack_into("<Q", data, phoff + 56 + 40, 1 << 48)                      # PT_LOAD p_memsz
    path.write_bytes(bytes(data))
    with pytest.raises(DumpError, match="does not map itself"):
        KernelDump.open(path, search_config=False)


def test_overlapping_segments_with_different_contents_are_refused(tmp_path, pristine):
    from pagewalk.phys.elfcore import write_elf_core
    dump, pages, chunks = pristine
    pa, blob = chunks[0]
    path = tmp_path / "overlap.elf"
    write_elf_core(path, dump.memory.notes, chunks + [(pa, bytes(len(blob)))])
    with pytest.raises(DumpError, match="overlap with different contents"):
        KernelDump.open(path, search_config=False)


# -- 6, 7, 9, 10: files ---------------------------------------------------------------------------

def test_extract_never_overwrites_its_input_or_a_device(tmp_path, default_elf, capsys):
    copy = tmp_path / "d.elf"
    copy.write_bytes(default_elf.read_bytes())
    before = digest(copy)
    status, out, err = run_cli(capsys, "extract", copy, copy)
    assert status == 2 and "is the dump itself" in err and digest(copy) == before
    status, out, err = run_cli(capsys, "extract", copy, "/dev/null")
    assert status == 2 and "not a regular file" in err and os.path.exists("/dev/null")
    status, out, err = run_cli(capsys, "extract", copy, tmp_path / "nodir" / "x.elf")
    assert status == 2 and "no such directory" in err


def test_extract_writes_checksummed_zstd(tmp_path, default_elf, capsys):
    out = tmp_path / "x.elf.zst"
    status, _, _ = run_cli(capsys, "extract", default_elf, out)
    assert status == 0 and zstandard.get_frame_parameters(out.read_bytes()[:18]).has_checksum
    assert zstandard.get_frame_parameters(DEFAULT_DUMP.read_bytes()[:18]).has_checksum
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x10
    out.write_bytes(bytes(data))
    with pytest.raises(DumpError, match="zstd"):
        KernelDump.open(out)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_an_interrupted_decompression_leaves_no_temporary_file(tmp_path, sig):
    big = tmp_path / "big.elf.zst"
    with zstandard.ZstdCompressor(level=1, write_checksum=True).stream_writer(open(big, "wb")) as w:
        for i in range(3000):
            w.write(os.urandom(1 << 16))               # 190 MiB that do not compress: seconds to unpack
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "pagewalk.cli", "info", str(big)], env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    deadline = time.time() + 10
    while not list(tmp_path.glob("pagewalk-*")) and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert not list(tmp_path.glob("pagewalk-*")), "a partial decompressed dump was left behind"
    assert b"Traceback" not in proc.stderr.read()


def test_a_fifo_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    status, out, err = run_cli(capsys, "info", fifo)
    assert status == 2 and "not a regular file" in err


# -- 8: every input the CLI reads gives a clear error ---------------------------------------------

@pytest.mark.parametrize("argv", [
    ["ptdump", "--config", "{bad_config}", "{dump}"],
    ["trace", "{dump}", "name=x api=kernel start=lm:zz end=0x1"],
    ["trace", "{dump}", "name=x api=kernel start=0xffff800080000000 end=0xffff800080200000 cap=abc"],
    ["trace", "{dump}", "name=x api=kernel start=0xffff800080000000 end=0xffff800080200000", "--root", "zzz"],
    ["trace", "{dump}", "name=x api=kernel start=0xffff800080000000 end=0xffff800080200000", "--era", "bogus"],
    ["trace", "{dump}", "name=x api=kernel start=0xffff800080000000 end=0xffff800080200000",
     "--vmas", "/nonexistent"],
    ["trace", "{dump}", "{bad_trace}"],
    ["vtop", "--dump", "{dump}", "zz+"],
    ["vtop", "--dump", "{dump}", "0x1" + "0" * 20],
    ["info", "/nonexistent"],
])
def test_cli_inputs_give_one_clear_error(tmp_path, default_elf, capsys, argv):
    (tmp_path / "bad.config").write_text("CONFIG_NR_CPUS=abc\n")
    (tmp_path / "bad.trace").write_text("# line: name=x api=kernel start=1 end=2\n# mm.pgd nothing\n")
    fill = {"dump": default_elf, "bad_config": tmp_path / "bad.config", "bad_trace": tmp_path / "bad.trace"}
    status, out, err = run_cli(capsys, *[a.format(**fill) for a in argv])
    lines = [line for line in err.splitlines() if line.startswith("pagewalk: error:")]
    assert status == 2 and len(lines) == 1, err


words = st.sampled_from(["info", "vtop", "ptdump", "check-wx", "extract", "trace", "--json", "--config", "--dump",
                         "--era", "later", "0", "-1", "0xffff", "swapper_pg_dir+0x10", "/nonexistent", "{dump}",
                         "name=x", "api=kernel", "start=1", "end=0", "--nr-cpus", "abc", "--force", "--quiet"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(words, min_size=1, max_size=6))
def test_cli_never_crashes_on_argument_salad(tmp_path, default_elf, capsys, argv):
    argv = [a.format(dump=default_elf) for a in argv]
    try:
        run_cli(capsys, *argv)
    except SystemExit as e:                              # argparse's usage errors
        assert e.code == 2


# -- 11: the Python API -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kernel():
    return boot(era="later", ram=256 << 20)


@pytest.mark.parametrize("size", [0, -4096, 2 << 30, 1 << 60])
def test_vmalloc_sizes_linux_refuses_return_null(kernel, size):
    t = time.perf_counter()
    assert kernel.vmalloc(size) is None
    assert time.perf_counter() - t < SLOW


def test_vmalloc_past_free_ram_returns_null_without_touching_tables(kernel):
    tables = kernel.machine.memory.live_pages
    assert kernel.vmalloc(250 << 20) is None                # more than the RAM the model has left
    assert kernel.machine.memory.live_pages == tables


def test_vfree_null_is_a_no_op_and_a_stranger_a_warning(kernel):
    before = len(kernel.warnings)
    kernel.vfree(0)
    assert len(kernel.warnings) == before
    kernel.vfree(0xffff800012345000)
    assert "nonexistent vm area" in kernel.warnings[-1].message


def test_fractional_pages_are_refused_before_any_change(kernel):
    v = kernel.vmalloc(2 * 4096)
    before = kernel.translate(v)
    with pytest.raises(ArgumentError, match="1.5"):
        kernel.set_memory_ro(v, 1.5)
    assert kernel.translate(v) == before


@pytest.mark.parametrize("call,error", [
    (lambda: boot(page_size=0), ArgumentError),
    (lambda: boot(va_bits=99), ArgumentError),
    (lambda: boot(era="bogus"), ArgumentError),
    (lambda: boot(rodata="maybe"), ArgumentError),
    (lambda: Era.parse("7.99.1"), ArgumentError),
    (lambda: boot(ram=256 << 20).translate(1 << 64), AddressError),
    (lambda: KernelDump.open().translate(0x1000), AddressError),
])
def test_api_misuse_raises_pagewalk_errors(call, error):
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, PagewalkError) and str(info.value)


# -- the fuzz: table entries rewritten at every level -----------------------------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_rewritten_table_entries_give_an_error_a_report_or_the_same_answer(tmp_path, pristine, data):
    dump, pages, chunks = pristine
    expected = dump.ptdump()
    words = {}
    for _ in range(data.draw(st.integers(1, 6))):
        table = data.draw(st.sampled_from(pages))
        slot = table + 8 * data.draw(st.integers(0, dump.page_size // 8 - 1))
        kind = data.draw(st.sampled_from(["ancestor", "sibling", "outside", "random"]))
        target = {"ancestor": top_table(pristine)[0], "sibling": data.draw(st.sampled_from(pages)),
                  "outside": 0x7000_0000_000, "random": None}[kind]
        words[slot] = data.draw(st.integers(0, (1 << 64) - 1)) if target is None else table_desc(target)
    path = patched_core(tmp_path, pristine, words)
    before = digest(path)
    t = time.perf_counter()
    try:
        mutated = KernelDump.open(path, search_config=False)
        text = mutated.ptdump()
        mutated.check_wx()
        assert text == expected or mutated.problems or text != expected    # never a crash or a hang
    except PagewalkError as e:
        assert str(e)
    assert time.perf_counter() - t < SLOW
    assert digest(path) == before
