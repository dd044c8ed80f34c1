"""arm64 kernel code on top of generic mm (arch/arm64/mm): pageattr, mappings and
splitting, the ptdump format, the kernel layout, build options and kallsyms."""
