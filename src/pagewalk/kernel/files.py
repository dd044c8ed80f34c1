"""A kernel's boot configuration from the files a developer has (arm64-boot-mappings.md section G):
`.config`, the command line, /proc/iomem, /proc/kallsyms or System.map, VMCOREINFO and
/proc/cpuinfo. Every file is optional; what was defaulted is listed, so the CLI can say so.

>>> cfg, defaulted = boot_config(BootFiles(cmdline="rodata=on"), era="6.12")
>>> cfg.version, cfg.rodata, cfg.ram_banks == ((0x40000000, 0x80000000),)
((6, 12, 117), 'on', True)
>>> print("\\n".join(defaulted[:3]))
kernel version: era 6.12's
kernel config: none (a Debian arm64 build: 4K pages, VA_BITS 48, RANDOMIZE_BASE, UNMAP_KERNEL_AT_EL0, RELOCATABLE, KFENCE with sampling off)
cpuinfo: none (a CPU with E0PD and LPA2, like QEMU's max)
"""

import re
from dataclasses import dataclass
from pathlib import Path

from ..arch.arm64.mm.image import KernelImage, parse_symbol_file
from ..arch.arm64.mm.kconfig import BuildOptions
from ..arch.arm64.mm.layout import KernelLayout
from ..errors import ArgumentError, DumpError
from ..mm.era import Era
from ..phys.memory import MASK64
from ..phys.vmcoreinfo import VmcoreInfo
from .config import KernelConfig
from .inputs import config_from_inputs

__all__ = ["BootFiles", "boot_config", "parse_iomem", "read_text", "CPUS", "DEFAULT_KCONFIG"]

#: Where each input lives in a folder laid out like ../shared/captures/NAME/.
FILE_NAMES = dict(config="kernel.config", cmdline="cmdline.txt", iomem="iomem.txt", symbols="kallsyms.txt",
                  vmcoreinfo="vmcoreinfo.txt", cpuinfo="cpuinfo.txt")
#: `--cpu`: the boot CPU's /proc/cpuinfo MIDR lines and its VA size on a 52-bit build (B32).
CPUS = {"a72": ("CPU implementer\t: 0x41\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n", 48),
        "max": ("CPU implementer\t: 0x00\nCPU variant\t: 0x0\nCPU part\t: 0x051\nCPU revision\t: 0\n", 52)}
#: Without a .config: the options of the Debian arm64 builds the spec was checked on.
DEFAULT_KCONFIG = ("CONFIG_ARM64_4K_PAGES=y\nCONFIG_ARM64_VA_BITS=48\nCONFIG_RANDOMIZE_BASE=y\n"
                   "CONFIG_UNMAP_KERNEL_AT_EL0=y\nCONFIG_RELOCATABLE=y\nCONFIG_KFENCE=y\n"
                   "CONFIG_KFENCE_SAMPLE_INTERVAL=0\nCONFIG_RODATA_FULL_DEFAULT_ENABLED=y\nCONFIG_PTDUMP_DEBUGFS=y\n")


@dataclass(frozen=True)
class BootFiles:
    """The texts of a kernel's files (None: not given) and the names to cite in errors."""
    config: str | None = None
    cmdline: str | None = None
    iomem: str | None = None
    symbols: str | None = None
    vmcoreinfo: str | None = None
    cpuinfo: str | None = None
    names: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_dir(cls, folder: "str | Path", **overrides: "str | Path | None") -> "BootFiles":
        """The files of a folder laid out like ../shared/captures/NAME/, each replaceable by a path."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ArgumentError(f"{folder}: not a folder")
        paths = {key: folder / name for key, name in FILE_NAMES.items()}
        paths.update({k: Path(v) for k, v in overrides.items() if v is not None})
        return cls.from_paths(**{k: p for k, p in paths.items() if p.exists() or k in overrides})

    @classmethod
    def from_paths(cls, **paths: "Path | None") -> "BootFiles":
        given = {key: path for key, path in paths.items() if path is not None}
        return cls(**{key: read_text(path) for key, path in given.items()},
                   names=tuple((key, str(path)) for key, path in given.items()))

    def name(self, key: str) -> str:
        return dict(self.names).get(key, FILE_NAMES[key])


def read_text(path: "str | Path") -> str:
    """A text file's contents. :raises ArgumentError: it cannot be read."""
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ArgumentError(f"{path}: cannot read: {e.strerror if isinstance(e, OSError) else e}") from None


def parse_iomem(text: str, source: str = "iomem") -> tuple[list[tuple[int, int]], int | None]:
    """Top-level `System RAM` ranges (end exclusive) and the start of `Kernel code` (pa of `_text`).

    >>> parse_iomem("40000000-7fffffff : System RAM\\n  40200000-407effff : Kernel code\\n")
    ([(1073741824, 2147483648)], 1075838976)
    """
    banks, code = [], None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = re.match(r"^(\s*)([0-9a-fA-F]+)-([0-9a-fA-F]+) : (.*)$", line)
        if not m:
            raise ArgumentError(f"{source}, line {number}: {line.strip()!r} is not 'start-end : name'")
        start, end = int(m[2], 16), int(m[3], 16) + 1
        if end <= start:
            raise ArgumentError(f"{source}, line {number}: range {m[2]}-{m[3]} is empty")
        if not m[1] and m[4] == "System RAM":
            banks.append((start, end))
        elif m[4] == "Kernel code" and code is None:
            code = start
    return banks, code


def _version_of_config(text: str) -> tuple[int, int, int] | None:
    m = re.search(r"^# Linux/\S+ (\d+)\.(\d+)(?:\.(\d+))?", text, re.M)
    return (int(m[1]), int(m[2]), int(m[3] or 0)) if m else None


def boot_config(files: BootFiles, era: "Era | str | None" = None, cpu: str | None = None
                ) -> tuple[KernelConfig, list[str]]:
    """The KernelConfig these files describe, and a line per input that was defaulted.

    :raises ArgumentError: a malformed file (named, with the line), or inputs that contradict each other.
    """
    defaulted = []
    try:
        info = VmcoreInfo.parse(files.vmcoreinfo, files.name("vmcoreinfo")) if files.vmcoreinfo else None
        version = _version(files, info, era, defaulted)
        kconfig = files.config
        if kconfig is None:
            kconfig = DEFAULT_KCONFIG
            defaulted.append("kernel config: none (a Debian arm64 build: 4K pages, VA_BITS 48, RANDOMIZE_BASE, "
                             "UNMAP_KERNEL_AT_EL0, RELOCATABLE, KFENCE with sampling off)")
        build = BuildOptions.from_config(kconfig, files.name("config"))
        if files.cpuinfo is None and cpu is None:
            defaulted.append("cpuinfo: none (a CPU with E0PD and LPA2, like QEMU's max)")
        cpuinfo, cpu_vabits = CPUS.get(cpu or "max")
        cpuinfo = files.cpuinfo if files.cpuinfo is not None else cpuinfo
        if files.cmdline is None:
            defaulted.append("command line: empty")
        banks, code_pa = parse_iomem(files.iomem, files.name("iomem")) if files.iomem else ([], None)
        if not banks:
            banks = [(0x40000000, 0x80000000)]
            defaulted.append("iomem: " + ("no 'System RAM' line" if files.iomem else "none")
                             + " (QEMU virt: 1 GiB at 0x40000000)")
        source = files.name("config") if files.config is not None else "default kernel config"
        switches = config_from_inputs(kconfig, files.cmdline or "", version, cpuinfo=cpuinfo, source=source)
        va_bits = switches.va_bits
        vabits_actual = 64 - info.t1sz if info and info.has("NUMBER(TCR_EL1_T1SZ)") else \
            (min(va_bits, cpu_vabits) if va_bits == 52 else va_bits)
        if va_bits == 52 and not (info and info.has("NUMBER(TCR_EL1_T1SZ)")):
            defaulted.append(f"VA bits at run time: {vabits_actual} (from the CPU; VMCOREINFO has TCR_EL1_T1SZ)")
        kimage_vaddr = KernelLayout.for_build(version, switches.page_size, va_bits, vabits_actual,
                                              build).modules_end
        image, offset = _image(files, info, kimage_vaddr, code_pa, banks, defaulted)
        phys_offset = info.phys_offset if info and info.has("NUMBER(PHYS_OFFSET)") else None
        if phys_offset is None:
            defaulted.append("PHYS_OFFSET: the first RAM bank rounded down (no linear-map randomization)")
        cfg = config_from_inputs(kconfig, files.cmdline or "", version, cpuinfo=cpuinfo, vabits_actual=vabits_actual,
                                 kaslr_offset=offset, era=era, source=source, ram_banks=tuple(banks), build=build,
                                 kernel_offset=offset, phys_offset=phys_offset, image=image)
    except DumpError as e:
        raise ArgumentError(str(e)) from None
    return cfg, defaulted


def _version(files: BootFiles, info, era, defaulted: list[str]) -> tuple[int, int, int]:
    if info and info.has("OSRELEASE"):
        return info.kernel_version
    found = _version_of_config(files.config or "")
    if found:
        return found
    if era is None:
        raise ArgumentError("kernel version: give VMCOREINFO (OSRELEASE), a .config with its header line, or --era")
    defaulted.append(f"kernel version: era {Era.parse(era).value}'s")
    return Era.parse(era).version


def _image(files: BootFiles, info, kimage_vaddr: int, code_pa: int | None, banks, defaulted: list[str]
           ) -> tuple[KernelImage, int]:
    """The image's symbols and load address, and the KASLR offset."""
    symbols = parse_symbol_file(files.symbols, files.name("symbols")) if files.symbols else {}
    text_va = symbols.get("_text")
    if info and info.has("KERNELOFFSET"):
        offset = info.kernel_offset
    elif text_va is not None:
        offset = (text_va - kimage_vaddr) & MASK64
    else:
        offset = 0
        defaulted.append("KASLR offset: 0 (no KERNELOFFSET in VMCOREINFO, no _text symbol)")
    text_va = (kimage_vaddr + offset) & MASK64 if text_va is None else text_va
    if info and info.has("NUMBER(kimage_voffset)"):
        voffset = info.kimage_voffset
    elif code_pa is not None:
        voffset = (text_va - code_pa) & MASK64
    else:
        voffset = (text_va - banks[0][0] - (2 << 20)) & MASK64
        defaulted.append("image load address: 2 MiB into the first RAM bank (no kimage_voffset, no 'Kernel code')")
    if not symbols:
        defaulted.append("kernel symbols: none (a typical 6.12 image layout)")
        return KernelImage.typical(text_va, (text_va - voffset) & MASK64), offset
    return KernelImage.from_symbols(symbols, voffset), offset
