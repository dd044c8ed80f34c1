"""Kernel build options: from a `.config`, or inferred from the dump's kallsyms.

Only the options that change what a dump-only tool computes are modelled
(the fixmap size: arm64-ptdump.md §3.4; KASAN markers: §3.3).
"""

import re
from dataclasses import dataclass
from pathlib import Path

from ....errors import DumpError

__all__ = ["BuildOptions", "find_config_beside", "read_config"]

#: Symbols whose presence in kallsyms implies a build option.
EVIDENCE = {
    "KVM": ("kvm_arm_init", "kvm_arch_init", "__kvm_hyp_init", "kvm_init"),
    "ACPI_APEI_GHES": ("ghes_probe", "ghes_init", "ghes_proc"),
    "ARM_SDE_INTERFACE": ("sdei_init", "sdei_event_register", "__sdei_asm_handler"),
    "UNMAP_KERNEL_AT_EL0": ("__entry_tramp_text_start", "tramp_pg_dir"),
    "RELOCATABLE": ("__rela_start", "__pi_rela_start", "__relocate_kernel"),
    "KASAN_GENERIC": ("__asan_load8", "kasan_early_shadow_page"),
    "KASAN_SW_TAGS": ("__hwasan_load8_noabort",),
}
DEFAULT_NR_CPUS = 512


@dataclass(frozen=True)
class BuildOptions:
    """The build options a dump-only tool needs, and where they came from."""
    kvm: bool = False
    ghes: bool = False
    sdei: bool = False
    kpti: bool = True
    relocatable: bool = True
    nr_cpus: int = DEFAULT_NR_CPUS
    kasan: str | None = None       # 'generic', 'sw_tags' or None
    kasan_shadow_offset: int | None = None
    source: str = "defaults"
    #: Options that were guessed rather than read (named in the stderr note).
    guessed: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, text: str, source: str) -> "BuildOptions":
        opts, lines = {}, {}
        for number, line in enumerate(text.splitlines(), 1):
            m = re.match(r"CONFIG_(\w+)=(.*)", line.strip())
            if m:
                opts[m[1]], lines[m[1]] = m[2].strip('"'), number

        def number(name: str, default: int | None) -> int | None:
            if name not in opts:
                return default
            try:
                return int(opts[name], 0)
            except ValueError:
                raise DumpError(f"{source}, line {lines[name]}: CONFIG_{name}={opts[name]} is not a number") from None
        on = lambda name: opts.get(name) in ("y", "m")  # noqa: E731
        kasan = "generic" if on("KASAN_GENERIC") else "sw_tags" if on("KASAN_SW_TAGS") else None
        return cls(kvm=opts.get("KVM") == "y", ghes=on("ACPI_APEI_GHES"), sdei=on("ARM_SDE_INTERFACE"),
                   kpti=on("UNMAP_KERNEL_AT_EL0"), relocatable=on("RELOCATABLE"),
                   nr_cpus=number("NR_CPUS", DEFAULT_NR_CPUS), kasan=kasan,
                   kasan_shadow_offset=number("KASAN_SHADOW_OFFSET", None), source=source)

    @classmethod
    def from_symbols(cls, names: set[str], kernel_offset: int, source: str,
                     nr_cpus: int | None = None) -> "BuildOptions":
        has = lambda option: any(s in names for s in EVIDENCE[option])  # noqa: E731
        kasan = "generic" if has("KASAN_GENERIC") else "sw_tags" if has("KASAN_SW_TAGS") else None
        kvm = has("KVM")
        guessed = ("NR_CPUS",) if kvm and nr_cpus is None else ()
        if kasan:
            guessed += ("KASAN_SHADOW_OFFSET",)
        return cls(kvm=kvm, ghes=has("ACPI_APEI_GHES"), sdei=has("ARM_SDE_INTERFACE"),
                   kpti=has("UNMAP_KERNEL_AT_EL0"), relocatable=has("RELOCATABLE") or kernel_offset != 0,
                   nr_cpus=nr_cpus or DEFAULT_NR_CPUS, kasan=kasan, source=source, guessed=guessed)


def find_config_beside(dump: Path, release: str) -> Path | None:
    """`kernel.config` or `config-<release>` next to the dump, if there is one."""
    for name in ("kernel.config", f"config-{release}"):
        candidate = dump.parent / name
        if candidate.is_file():
            return candidate
    return None


def read_config(path: Path) -> BuildOptions:
    try:
        return BuildOptions.from_config(path.read_text(errors="replace"), str(path))
    except OSError as e:
        raise DumpError(f"{path}: cannot read kernel config: {e.strerror}") from None
