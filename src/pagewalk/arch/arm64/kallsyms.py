"""Decode the kernel's symbol names from memory (linux: kernel/kallsyms.c).

VMCOREINFO gives the addresses of `kallsyms_num_syms`, `kallsyms_names`,
`kallsyms_token_table` and `kallsyms_token_index`; names are compressed as
token indices. Each entry is a length (one byte, or two when the first has
bit 7 set) followed by that many token indices; the first expanded character
is the symbol type.
"""

import struct

from ...errors import DumpError, PhysicalAddressError


def kallsyms_names(read_virt, vmcoreinfo) -> set[str]:
    """All symbol names (without the type letter). `read_virt(va, size)` reads kernel memory."""
    try:
        num = struct.unpack("<I", read_virt(vmcoreinfo.symbol("kallsyms_num_syms"), 4))[0]
        token_index = struct.unpack("<256H", read_virt(vmcoreinfo.symbol("kallsyms_token_index"), 512))
        table_va = vmcoreinfo.symbol("kallsyms_token_table")
        table = read_virt(table_va, max(token_index) + 64)
        tokens = [table[i:table.index(b"\0", i)].decode("ascii", "replace") for i in token_index]
        if not 0 < num < 10_000_000:
            raise DumpError(f"kallsyms_num_syms = {num} is implausible")
        names_va = vmcoreinfo.symbol("kallsyms_names")
        blob = read_virt(names_va, min(num * 40, 64 << 20))
    except (PhysicalAddressError, ValueError) as e:
        raise DumpError(f"kallsyms tables are not readable in this dump: {e}") from None
    names, pos = set(), 0
    for _ in range(num):
        if pos >= len(blob):
            blob += read_virt(names_va + len(blob), 1 << 20)
        length = blob[pos]
        pos += 1
        if length & 0x80:
            length = (length & 0x7F) | (blob[pos] << 7)
            pos += 1
        if pos + length > len(blob):
            blob += read_virt(names_va + len(blob), max(1 << 20, length))
        name = "".join(tokens[b] for b in blob[pos:pos + length])
        names.add(name[1:])
        pos += length
    return names
