"""Making damaged copies of a dump for the bad-input tests."""

from pagewalk.phys.elfcore import Note, write_elf_core


def patched_core(tmp_path, pristine, words: dict[int, int], *, vmcoreinfo: dict[str, str] | None = None,
                 name: str = "patched.elf"):
    """Write the pristine dump with 64-bit words replaced (`{PA: value}`) and VMCOREINFO keys changed."""
    dump, pages, chunks = pristine
    data = {pa: bytearray(blob) for pa, blob in chunks}
    for pa, value in words.items():
        for base, blob in data.items():
            if base <= pa < base + len(blob):
                blob[pa - base:pa - base + 8] = (value & ((1 << 64) - 1)).to_bytes(8, "little")
    notes = list(dump.memory.notes)
    if vmcoreinfo:
        lines = []
        for line in dump.memory.note("VMCOREINFO").desc.decode().splitlines():
            key = line.partition("=")[0]
            lines.append(f"{key}={vmcoreinfo.pop(key)}" if key in vmcoreinfo else line)
        lines += [f"{k}={v}" for k, v in vmcoreinfo.items()]
        notes = [Note("VMCOREINFO", 0, ("\n".join(lines) + "\n").encode()) if n.name == "VMCOREINFO" else n
                 for n in notes]
    path = tmp_path / name
    write_elf_core(path, notes, [(pa, bytes(b)) for pa, b in data.items()])
    return path
