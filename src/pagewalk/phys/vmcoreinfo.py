"""The VMCOREINFO note (linux: kernel/vmcore_info.c, arch/arm64/kernel/vmcore_info.c).

Text lines `KEY=VALUE`. Values with a `0x` prefix are hex, `SYMBOL(x)` and
`KERNELOFFSET` are hex without prefix, everything else is decimal (and may be
negative, e.g. `NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)`).
"""

import re
from dataclasses import dataclass, field

from ..errors import DumpError
from .memory import MASK64

__all__ = ["VmcoreInfo"]

_HEX_WITHOUT_PREFIX = re.compile(r"^(SYMBOL\(.*\)|KERNELOFFSET)$")


def _parse_value(key: str, text: str) -> int | str:
    try:
        if text.startswith(("0x", "0X")):
            return int(text, 16)
        if _HEX_WITHOUT_PREFIX.match(key):
            return int(text, 16)
        return int(text, 10)
    except ValueError:
        return text


@dataclass(frozen=True)
class VmcoreInfo:
    """Parsed VMCOREINFO, with typed accessors for what page-table tools use.

    >>> info = VmcoreInfo.parse("PAGESIZE=4096\\nNUMBER(VA_BITS)=48\\nSYMBOL(swapper_pg_dir)=ffff800081234000\\n")
    >>> info.page_size, info.va_bits, hex(info.symbol("swapper_pg_dir"))
    (4096, 48, '0xffff800081234000')
    """

    raw: dict[str, int | str] = field(default_factory=dict)
    source: str = "VMCOREINFO"

    @classmethod
    def parse(cls, text: str, source: str = "VMCOREINFO") -> "VmcoreInfo":
        raw: dict[str, int | str] = {}
        for line in text.splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key:
                raw[key] = _parse_value(key, value.strip())
        return cls(raw, source)

    def get(self, key: str, default=None):
        return self.raw.get(key, default)

    def require(self, key: str) -> int:
        value = self.raw.get(key)
        if not isinstance(value, int):
            what = "missing" if value is None else f"not a number ({value!r})"
            raise DumpError(f"{self.source}: {key} is {what}")
        return value & MASK64 if value >= 0 else value

    def symbol(self, name: str) -> int:
        return self.require(f"SYMBOL({name})")

    def number(self, name: str) -> int:
        return self.require(f"NUMBER({name})")

    def has(self, key: str) -> bool:
        return isinstance(self.raw.get(key), int)

    @property
    def osrelease(self) -> str:
        value = self.raw.get("OSRELEASE")
        if value is None:
            raise DumpError(f"{self.source}: OSRELEASE is missing")
        return str(value)

    @property
    def kernel_version(self) -> tuple[int, int, int]:
        """`(major, minor, patch)` from OSRELEASE, e.g. (6, 12, 117)."""
        m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", self.osrelease)
        if not m:
            raise DumpError(f"{self.source}: cannot read a kernel version from OSRELEASE={self.osrelease!r}")
        return int(m[1]), int(m[2]), int(m[3] or 0)

    @property
    def page_size(self) -> int:
        return self.require("PAGESIZE")

    @property
    def va_bits(self) -> int:
        """Compile-time VA_BITS (PAGE_OFFSET = -2^VA_BITS)."""
        return self.number("VA_BITS")

    @property
    def t1sz(self) -> int:
        return self.number("TCR_EL1_T1SZ")

    @property
    def kimage_voffset(self) -> int:
        return self.number("kimage_voffset")

    @property
    def phys_offset(self) -> int:
        return self.number("PHYS_OFFSET")

    @property
    def kernel_offset(self) -> int:
        return self.require("KERNELOFFSET")

    @property
    def swapper_pg_dir(self) -> int:
        return self.symbol("swapper_pg_dir")

    @property
    def max_physmem_bits(self) -> int | None:
        return self.number("MAX_PHYSMEM_BITS") if self.has("NUMBER(MAX_PHYSMEM_BITS)") else None

    @property
    def struct_page_size(self) -> int:
        return self.require("SIZE(page)") if self.has("SIZE(page)") else 64
