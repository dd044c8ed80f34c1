"""The simulated kernel: its configuration, state (`Kernel`), boot, start from a dump, vmalloc."""
