"""A kernel's boot switches from the files a developer has: `.config`, the command line, /proc/cpuinfo,
VMCOREINFO (arm64-boot-mappings.md B2-B5 and section G).

- rodata (B2): 6.1/6.12 default from CONFIG_RODATA_FULL_DEFAULT_ENABLED, `full`/`on`/`off`; 7.2 default
  full, `on` = full, `noalias`, `off`, and `full` is invalid there (a warning, the default stays).
- KFENCE early init (B3): CONFIG_KFENCE and the sample interval, the command line's
  `kfence.sample_interval=N` over CONFIG_KFENCE_SAMPLE_INTERVAL.
- debug_pagealloc: CONFIG_DEBUG_PAGEALLOC and (`debug_pagealloc=on` or CONFIG_DEBUG_PAGEALLOC_ENABLE_DEFAULT).
- BBML2 (B4): the boot CPU's MIDR on the kernel's allow-list; KPTI/nG (B5): CONFIG_RANDOMIZE_BASE, a KASLR
  offset, and a boot CPU without E0PD (Arm cores before Armv8.5: their part numbers are listed below).

>>> cfg = config_from_inputs("CONFIG_ARM64_4K_PAGES=y\\nCONFIG_ARM64_VA_BITS=52\\nCONFIG_KFENCE=y\\n"
...                          "CONFIG_KFENCE_SAMPLE_INTERVAL=0\\nCONFIG_RANDOMIZE_BASE=y\\n",
...                          "console=ttyAMA0 rodata=on kfence.sample_interval=100", (6, 12, 117),
...                          cpuinfo="CPU implementer\\t: 0x41\\nCPU part\\t: 0xd08\\n", vabits_actual=48)
>>> cfg.rodata, cfg.rodata_full, cfg.kfence_early_init, cfg.kpti, cfg.linear_map_page_granular()
('on', False, True, True, False)
"""

import re
from dataclasses import dataclass

from ..errors import ArgumentError
from ..mm.era import Era
from .config import RODATA_FULL_DEFAULT_SINCE, KernelConfig

__all__ = ["config_from_inputs", "parse_kconfig", "parse_cmdline", "CpuInfo"]

#: Arm Ltd (implementer 0x41) cores without FEAT_E0PD (Armv8.0-v8.4): Cortex-A35/A53/A55/A57/A65/A72/A73/A75/
#: A76/A77/A78, Neoverse-N1/E1, Cortex-X1. A boot CPU among them needs KPTI when the kernel is randomized.
NO_E0PD_ARM_PARTS = {0xd04, 0xd03, 0xd05, 0xd07, 0xd06, 0xd08, 0xd09, 0xd0a, 0xd0b, 0xd0d, 0xd41, 0xd0c, 0xd4a,
                     0xd44}
#: cpu_supports_bbml2_noabort()'s MIDR allow-list (B4): (implementer, part) -> lowest (variant, revision).
BBML2_MIDRS = {(0x41, 0xd82): (0, 3), (0x41, 0xd84): (0, 2), (0x41, 0xd83): (0, 2)}


#: arch/arm64/Kconfig's ARM64_VA_BITS choices per PAGE_SHIFT.
VA_BITS_CHOICES = {12: (39, 48, 52), 14: (36, 47, 48, 52), 16: (42, 48, 52)}


def _number(source: str, name: str, text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ArgumentError(f"{source}: {name}={text} is not a number") from None


def parse_kconfig(text: str) -> dict[str, str]:
    """`CONFIG_X=value` lines (quotes dropped); `# CONFIG_X is not set` is absent."""
    return {m[1]: m[2].strip('"') for m in re.finditer(r"^CONFIG_(\w+)=(.*)$", text, re.M)}


def parse_cmdline(text: str) -> dict[str, str]:
    """Kernel parameters: `key=value` (the last one wins, as early_param parsing sees it) and bare flags ('')."""
    out = {}
    for word in text.split():
        key, _, value = word.partition("=")
        out[key] = value
    return out


@dataclass(frozen=True)
class CpuInfo:
    """The boot CPU's MIDR fields from /proc/cpuinfo."""
    implementer: int | None = None
    part: int | None = None
    variant: int = 0
    revision: int = 0

    @classmethod
    def parse(cls, text: str) -> "CpuInfo":
        fields = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() not in fields:         # the first processor is the boot CPU
                fields[key.strip()] = value.strip()
        number = lambda key: int(fields[key], 0) if key in fields else None  # noqa: E731
        try:
            return cls(number("CPU implementer"), number("CPU part"), number("CPU variant") or 0,
                       number("CPU revision") or 0)
        except ValueError as e:
            raise ArgumentError(f"cpuinfo: {e}") from None

    @property
    def has_e0pd(self) -> bool:
        return not (self.implementer == 0x41 and self.part in NO_E0PD_ARM_PARTS)

    @property
    def bbml2_noabort(self) -> bool:
        least = BBML2_MIDRS.get((self.implementer, self.part))
        return least is not None and (self.variant, self.revision) >= least


def _rodata(kconfig: dict, cmdline: dict, version: tuple[int, int, int]) -> str:
    """B2: the rodata mode as KernelConfig names it (its rodata_full reads it per version)."""
    given = cmdline.get("rodata")
    if version >= RODATA_FULL_DEFAULT_SINCE:
        return given if given in ("on", "noalias", "off") else "on"
    default = "full" if kconfig.get("RODATA_FULL_DEFAULT_ENABLED") == "y" else "on"
    return given if given in ("full", "on", "off") else default


def config_from_inputs(config_text: str, cmdline: str, version: tuple[int, int, int], *, cpuinfo: str = "",
                       vabits_actual: int | None = None, kaslr_offset: int = 1, era=None,
                       source: str = "kernel config", **machine) -> KernelConfig:
    """The KernelConfig a kernel of `version` built with `config_text` boots with on this command line and CPU.

    `era` overrides the one the version runs; `machine` are further KernelConfig fields (RAM, image, layout);
    `source` names the config in errors."""
    kc, cl, cpu = parse_kconfig(config_text), parse_cmdline(cmdline), CpuInfo.parse(cpuinfo)
    shift = int(kc.get("ARM64_PAGE_SHIFT", 0) or {"ARM64_16K_PAGES": 14, "ARM64_64K_PAGES": 16}.get(
        next((k for k in ("ARM64_16K_PAGES", "ARM64_64K_PAGES") if kc.get(k) == "y"), ""), 12))
    va_bits = _number(source, "CONFIG_ARM64_VA_BITS", kc.get("ARM64_VA_BITS", "48"))
    if va_bits not in VA_BITS_CHOICES[shift]:
        raise ArgumentError(f"{source}: CONFIG_ARM64_VA_BITS={va_bits} is not a choice with "
                            f"{(1 << shift) // 1024}K pages ({', '.join(map(str, VA_BITS_CHOICES[shift]))})")
    if "kfence.sample_interval" in cl:
        interval = _number("command line", "kfence.sample_interval", cl["kfence.sample_interval"])
    else:
        interval = _number(source, "CONFIG_KFENCE_SAMPLE_INTERVAL", kc.get("KFENCE_SAMPLE_INTERVAL", "0"))
    kfence = kc.get("KFENCE") == "y"
    debug_pagealloc = kc.get("DEBUG_PAGEALLOC") == "y" and (cl.get("debug_pagealloc") == "on" or
                                                             kc.get("DEBUG_PAGEALLOC_ENABLE_DEFAULT") == "y")
    kpti = kc.get("RANDOMIZE_BASE") == "y" and kaslr_offset != 0 and not cpu.has_e0pd
    return KernelConfig(era=era or Era.for_kernel(version), version=version, page_size=1 << shift,
                        va_bits=va_bits, vabits_actual=vabits_actual, rodata=_rodata(kc, cl, version), kfence=kfence,
                        kfence_early_init=kfence and interval != 0, debug_pagealloc=debug_pagealloc, kpti=kpti,
                        bbml2=cpu.bbml2_noabort, ptdump_debugfs=kc.get("PTDUMP_DEBUGFS") == "y", **machine)
