"""The kernel image's section boundaries (linux: arch/arm64/kernel/vmlinux.lds.S,
asm/sections.h; arm64-boot-mappings.md B24).

`_stext` = `_text` + 64K, `_etext` = `__start_rodata`, `__init_begin` =
`__inittext_begin`, `__init_end` = `__initdata_end` = `_data` = `_sdata`;
`__pa_symbol(x)` = `x - kimage_voffset`. The symbols come from
/proc/kallsyms or System.map, or from a typical 6.12 4K build's layout.

>>> img = KernelImage.typical(0xffff800080000000, 0x40200000)
>>> hex(img.stext), hex(img.pa(img.init_begin))
('0xffff800080010000', '0x40760000')
>>> KernelImage.from_symbols({"_text": 0x1000}, 0).text
Traceback (most recent call last):
pagewalk.errors.ArgumentError: kernel symbols: _stext missing (needed: _text, _stext, __start_rodata, __init_begin, __init_end, _end)
"""

from dataclasses import dataclass

from ....errors import ArgumentError
from ....phys.memory import MASK64

__all__ = ["KernelImage", "SECTION_SYMBOLS", "parse_symbol_file"]

#: Field -> the symbols that give it, first found wins (`_etext` equals `__start_rodata`, `_sdata` `__init_end`).
SECTION_SYMBOLS = {
    "text": ("_text",), "stext": ("_stext",), "start_rodata": ("__start_rodata", "_etext"),
    "init_begin": ("__init_begin", "__inittext_begin"), "init_end": ("__init_end", "_sdata", "_data"),
    "end": ("_end",),
}
OPTIONAL_SYMBOLS = {"bss_stop": ("__bss_stop",), "entry_tramp_text_start": ("__entry_tramp_text_start",),
                    "swapper_pg_dir": ("swapper_pg_dir",)}
#: A typical image (Debian 6.12, 4K), as offsets from `_text`; all 64K-aligned so any granule can use it.
TYPICAL_OFFSETS = dict(stext=0x10000, start_rodata=0x420000, init_begin=0x560000, init_end=0x660000,
                       bss_stop=0x790000, end=0x7a0000, entry_tramp_text_start=0x530000, swapper_pg_dir=0x540000)


@dataclass(frozen=True)
class KernelImage:
    """Section boundaries of the running image (VAs) and its physical placement."""
    text: int
    stext: int
    start_rodata: int
    init_begin: int
    init_end: int
    end: int
    kimage_voffset: int
    bss_stop: int | None = None
    entry_tramp_text_start: int | None = None
    swapper_pg_dir: int | None = None

    @classmethod
    def from_symbols(cls, symbols: dict[str, int], kimage_voffset: int) -> "KernelImage":
        """From `name -> VA` (kallsyms). :raises ArgumentError: a needed symbol is missing or out of order."""
        def find(names):
            return next((symbols[n] for n in names if n in symbols), None)
        fields = {f: find(names) for f, names in {**SECTION_SYMBOLS, **OPTIONAL_SYMBOLS}.items()}
        for f, names in SECTION_SYMBOLS.items():
            if fields[f] is None:
                needed = ", ".join(n[0] for n in SECTION_SYMBOLS.values())
                raise ArgumentError(f"kernel symbols: {names[0]} missing (needed: {needed})")
        order = [fields[f] for f in SECTION_SYMBOLS]
        if order != sorted(order):
            raise ArgumentError("kernel symbols: " + ", ".join(f"{n[0]}={fields[f]:#x}" for f, n in
                                                              SECTION_SYMBOLS.items()) + " are not in link order")
        return cls(kimage_voffset=kimage_voffset & MASK64, **fields)

    @classmethod
    def typical(cls, text_va: int, text_pa: int) -> "KernelImage":
        """A typical image at `text_va`, loaded at `text_pa`."""
        return cls(text=text_va, kimage_voffset=(text_va - text_pa) & MASK64,
                   **{f: text_va + off for f, off in TYPICAL_OFFSETS.items()})

    def pa(self, va: int) -> int:
        """`__pa_symbol()`."""
        return (va - self.kimage_voffset) & MASK64


def parse_symbol_file(text: str, source: str) -> dict[str, int]:
    """`address type name` lines (/proc/kallsyms, System.map) -> name: address; modules' symbols skipped.

    >>> {n: hex(a) for n, a in parse_symbol_file("ffff800080000000 T _text\\nffff800080010000 t x [mod]", "x").items()}
    {'_text': '0xffff800080000000'}
    """
    out = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words:
            continue
        if len(words) < 3:
            raise ArgumentError(f"{source}, line {number}: {line.strip()!r} is not 'address type name'")
        if len(words) > 3:
            continue
        try:
            out.setdefault(words[2], int(words[0], 16))
        except ValueError:
            raise ArgumentError(f"{source}, line {number}: {words[0]!r} is not a hex address") from None
    return out
