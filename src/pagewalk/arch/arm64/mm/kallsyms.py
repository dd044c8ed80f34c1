"""Decode the kernel's symbol names from memory (linux: kernel/kallsyms.c).

VMCOREINFO gives the addresses of `kallsyms_num_syms`, `kallsyms_names`,
`kallsyms_token_table` and `kallsyms_token_index`; names are compressed as
token indices. Each entry is a length (one byte, or two when the first has
bit 7 set) followed by that many token indices; the first expanded character
is the symbol type.
"""

import struct
from dataclasses import dataclass

from ....errors import DumpError, PhysicalAddressError

__all__ = ["Kallsyms", "read_kallsyms"]

CHUNK = 4096


@dataclass(frozen=True)
class Kallsyms:
    names: frozenset[str]
    #: `(va, size)` of every table read, so `extract` can keep them.
    spans: tuple[tuple[int, int], ...]


def read_kallsyms(read_virt, vmcoreinfo) -> Kallsyms:
    """All symbol names (without the type letter). `read_virt(va, size)` reads kernel memory.

    :raises DumpError: the tables are not in the dump or make no sense.
    """
    try:
        num_va = vmcoreinfo.symbol("kallsyms_num_syms")
        num = struct.unpack("<I", read_virt(num_va, 4))[0]
        if not 0 < num < 10_000_000:
            raise DumpError(f"kallsyms_num_syms = {num} is implausible")
        index_va = vmcoreinfo.symbol("kallsyms_token_index")
        token_index = struct.unpack("<256H", read_virt(index_va, 512))
        table_va = vmcoreinfo.symbol("kallsyms_token_table")
        table_size = max(token_index) + 64
        table = read_virt(table_va, table_size)
        tokens = [table[i:table.index(b"\0", i)].decode("ascii", "replace") for i in token_index]
        names_va = vmcoreinfo.symbol("kallsyms_names")
        blob = bytearray()

        def need(upto: int) -> None:   # read on, a page at a time, only as far as needed
            while len(blob) < upto:
                va = names_va + len(blob)
                blob.extend(read_virt(va, CHUNK - va % CHUNK))

        names, pos = set(), 0
        for _ in range(num):
            need(pos + 2)
            length = blob[pos]
            pos += 1
            if length & 0x80:
                length = (length & 0x7F) | (blob[pos] << 7)
                pos += 1
            need(pos + length)
            names.add("".join(tokens[b] for b in blob[pos:pos + length])[1:])
            pos += length
    except (PhysicalAddressError, ValueError, IndexError, struct.error) as e:
        raise DumpError(f"kallsyms tables are not readable in this dump: {e}") from None
    spans = ((num_va, 4), (index_va, 512), (table_va, table_size), (names_va, pos))
    return Kallsyms(frozenset(names), spans)
