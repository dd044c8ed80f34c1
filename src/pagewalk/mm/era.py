"""Kernel eras whose walker and pageattr semantics differ (labels of shared/spec/pagewalk.md).

BASE (v6.16-rc1), SEED_V2 (+ PGWALK_NOLOCK), SEED_REVIEW (+ the review's
capability scheme), UP_6_18 (walk_kernel_page_table_range_lockless), LATER
(7.x: renames, PUD refault retry, ptdump lock rule), and the two real trees
that differ from those: V6_12 (6.12.117 with backports) and V6_1 (6.1.192).

Every behaviour that differs between eras is a property here, beside the
version table; code elsewhere asks the property, never compares eras.

>>> Era.parse("7.x"), Era.for_kernel((6, 12, 117)).version
(<Era.LATER: 'later'>, (6, 12, 117))
>>> Era.LATER.pageattr_engine, Era.V6_1.ptdump_walk
('update_range_prot', 'walk_page_range_novma')
"""

from enum import Enum

from ..errors import ArgumentError

__all__ = ["Era"]


class Era(Enum):
    """A kernel era: a real tree (6.1, 6.12) or a stage of the 2025 series (base .. later)."""

    V6_1 = "6.1"
    V6_12 = "6.12"
    BASE = "base"
    SEED_V2 = "seed-v2"
    SEED_REVIEW = "seed-review"
    UP_6_18 = "6.18"
    LATER = "later"

    @classmethod
    def parse(cls, name: "str | Era") -> "Era":
        if isinstance(name, Era):
            return name
        key = str(name).strip().lower().replace("_", "-")
        aliases = {"up-6.18": "6.18", "up6.18": "6.18", "seed": "seed-v2", "7.x": "later", "7": "later"}
        aliases.update({"7.2": "later", "7.2.13": "later"})          # the tree LATER's rules were read from
        key = aliases.get(key, key)
        for era in cls:
            if era.value == key:
                return era
        raise ArgumentError(f"unknown era {name!r}; one of: {', '.join(e.value for e in cls)}")

    @classmethod
    def for_kernel(cls, version: tuple[int, int, int]) -> "Era":
        """The era whose walker a real kernel of this version runs."""
        if version < (6, 12):
            return cls.V6_1
        if version < (6, 16):
            return cls.V6_12
        if version < (6, 18):
            return cls.BASE
        if version < (6, 19):
            return cls.UP_6_18
        return cls.LATER

    @property
    def version(self) -> tuple[int, int, int]:
        """The kernel version whose arm64 rules (predicates, ptdump, layout) this era uses."""
        return _VERSIONS[self]

    # -- the walker (mm/pagewalk.c) ------------------------------------------------------
    @property
    def seed(self) -> bool:
        """The seed series is applied (PGWALK_NOLOCK exists)."""
        return self in (Era.SEED_V2, Era.SEED_REVIEW)

    @property
    def ops_capabilities(self) -> bool:
        """SEED-review: check_ops_valid() takes OPS_MAY_INSTALL_PTE / OPS_MAY_AVOID_LOCK."""
        return self is Era.SEED_REVIEW

    @property
    def pgwalk_value_3(self) -> str | None:
        """What `enum page_walk_lock` value 3 means: PGWALK_NOLOCK (seeds), PGWALK_VMA_RDLOCK_VERIFY (v6.17+)."""
        if self.seed:
            return "PGWALK_NOLOCK"
        return "PGWALK_VMA_RDLOCK_VERIFY" if self.has_lockless_entry else None

    @property
    def has_walk_lock(self) -> bool:
        """`mm_walk_ops.walk_lock` and per-VMA lock steps exist (not in 6.1)."""
        return self is not Era.V6_1

    @property
    def has_lockless_entry(self) -> bool:
        """walk_kernel_page_table_range_lockless() exists (merged for v6.18)."""
        return self in (Era.UP_6_18, Era.LATER)

    @property
    def has_install_pte(self) -> bool:
        """install_pte, the ops check and walk_page_range_mm (v6.13+)."""
        return self not in (Era.V6_1, Era.V6_12)

    @property
    def novma_walk(self) -> bool:
        """Kernel tables are walked with walk_page_range_novma() (6.1), not the v6.16 entry points."""
        return self is Era.V6_1

    @property
    def ptdump_walk(self) -> str:
        """The entry point mm/ptdump.c walks with."""
        return "walk_page_range_novma" if self.novma_walk else "walk_page_range_debug"

    @property
    def walk_page_vma_tests(self) -> bool:
        """walk_page_vma() still applies walk_page_test() (6.1)."""
        return self is Era.V6_1

    @property
    def pmd_retry_after_pte(self) -> bool:
        """walk_pmd_range() redoes a slot when walk_pte_range() could not map the table (not 6.1)."""
        return self is not Era.V6_1

    @property
    def pud_refault_retry(self) -> bool:
        """The March-2026 split/refault fix: PUD snapshot check at the PMD level."""
        return self in (Era.V6_12, Era.LATER)

    @property
    def splits_nonpresent_pmd(self) -> bool:
        """split_huge_pmd() also splits non-present (migration) THP entries (7.x)."""
        return self is Era.LATER

    @property
    def debug_walk_locks_both(self) -> bool:
        """July-2026 rule: walk_page_range_debug asserts mm and init_mm write locks first."""
        return self in (Era.V6_12, Era.LATER)

    # -- arm64 pageattr (arch/arm64/mm/pageattr.c) -----------------------------------------
    @property
    def pageattr_engine(self) -> str:
        """The range engine of __change_memory_common()."""
        if self in (Era.V6_1, Era.V6_12, Era.BASE):
            return "apply_to_page_range"
        return "walk_kernel_page_table_range" if self.seed else "update_range_prot"

    @property
    def pageattr_tests_present_leaf(self) -> bool:
        """pageattr's walker callbacks test pXd_leaf() (seeds, 7.x) rather than pXd_sect()."""
        return self.seed or self is Era.LATER

    @property
    def present_invalid_blocks(self) -> bool:
        """Invalid kernel entries keep PTE_PRESENT_INVALID; splits keep invalid blocks invalid (7.x)."""
        return self is Era.LATER

    @property
    def has_split_on_demand(self) -> bool:
        """split_kernel_leaf_mapping() and force_pte_mapping() (BBML2, v6.18+)."""
        return self in (Era.UP_6_18, Era.LATER)

    @property
    def split_gated_on_boot_state(self) -> bool:
        """7.x refuses splits only while capabilities are not finalized (realm fix)."""
        return self is Era.LATER

    @property
    def alias_change_in_range_only(self) -> bool:
        """rodata_full changes the linear alias of only the pages in range, checking each result (7.x)."""
        return self is Era.LATER

    @property
    def flushes_every_change(self) -> bool:
        """Every __change_memory_common() flushes, make-valid included (6.1, 6.12)."""
        return self in (Era.V6_1, Era.V6_12)

    @property
    def pageattr_accepts_huge_vmalloc(self) -> bool:
        """change_memory_common() accepts VM_ALLOW_HUGE_VMAP areas (6.1, 6.12)."""
        return self in (Era.V6_1, Era.V6_12)

    @property
    def has_set_direct_map_valid_noflush(self) -> bool:
        return self not in (Era.V6_1, Era.V6_12)

    @property
    def has_realm_pageattr(self) -> bool:
        """Realm set_memory_encrypted/decrypted, and the realm term of can_set_direct_map()."""
        return self not in (Era.V6_1, Era.V6_12)

    @property
    def huge_vmap_off_with_ptdump_debugfs(self) -> bool:
        """arch_vmap_pmd/pud_supported() are false under CONFIG_PTDUMP_DEBUGFS ("SW table walks can't handle
        removal of intermediate entries", v5.13 .. v6.17); 6.18 protects ptdump instead (F3)."""
        return not self.has_split_on_demand

    @property
    def vmap_cont_ptes(self) -> bool:
        """Huge vmalloc maps with contiguous PTEs below PMD size (arch_vmap_pte_range_map_size, v6.13)."""
        return self.version >= (6, 13)

    # -- boot-time mappings (arm64-boot-mappings.md: rules read from 6.1, 6.12 and 7.2; the 6.16 and 6.18
    # eras take 6.12's, the closest verified tree) ----------------------------------------------------
    @property
    def early_map_kernel(self) -> bool:
        """The image is mapped early by pi/map_kernel.c's map_range(), header page included (v6.9+, B26);
        6.1 maps it in paging_init() with __create_pgd_mapping() and leaves the header unmapped (B25)."""
        return self is not Era.V6_1

    @property
    def linear_alias_start(self) -> str:
        """Where map_mem()'s carve-out of the image's linear alias starts (B12, B13)."""
        return "_stext" if self is Era.V6_1 else "_text"

    @property
    def boot_remap_keeps_granularity(self) -> bool:
        """__create_pgd_mapping() keeps tables and sets CONT only on groups with no valid non-CONT entry;
        prot updates pass flags 0 instead of NO_CONT_MAPPINGS (7.x, B9, B16, B27)."""
        return self is Era.LATER

    @property
    def map_mem_image_first(self) -> bool:
        """map_mem() maps the KFENCE pool and the image's alias ranges first, then all RAM over them,
        with no NOMAP carve-out (7.x, B14)."""
        return self is Era.LATER

    @property
    def data_alias_read_only(self) -> bool:
        """mark_rodata_ro() also makes the data/bss linear alias read-only (7.x, B17)."""
        return self is Era.LATER

    @property
    def map_range_blocks_from_pmd_only(self) -> bool:
        """pi map_range() puts blocks only at level 2 (7.x); 6.12 at any level below 3 (B26)."""
        return self is Era.LATER

    @property
    def vmemmap_blocks_dirty(self) -> bool:
        """4K vmemmap PMD blocks are PAGE_KERNEL (DIRTY) in 7.x, PROT_SECT_NORMAL in 6.x (B33)."""
        return self is Era.LATER

    @property
    def fdt_fixmap_flags(self) -> str:
        """How fixmap_remap_fdt() maps the FDT (B34): 6.1 in swapper-block units, 6.12 PTEs without CONT,
        7.x PTEs with the engine's own CONT rule."""
        return {Era.V6_1: "blocks", Era.LATER: "cont"}.get(self, "no-cont")

    @property
    def trampoline_needs_kpti(self) -> bool:
        """map_entry_trampoline() maps only under KPTI (v6.9+); 6.1 whenever UNMAP_KERNEL_AT_EL0 (B35)."""
        return self is not Era.V6_1

    @property
    def kfence_pool_no_exec(self) -> bool:
        """The early KFENCE pool is mapped with NO_EXEC_MAPPINGS (7.x, B21)."""
        return self is Era.LATER

    # -- kernel page-table freeing (kernel-pgtable-freeing.md) ---------------------------------------
    def vmap_promotion_lock(self, version: tuple[int, int, int]) -> str:
        """How vmap_try_huge_pmd/pud() guard freeing the table they replace (F4, F8): "trylock"
        (mmap_read_trylock(&init_mm), 6.12.117 by backport and 7.x), "arm64-key" (6.18: pmd_free_pte_page()
        takes an empty init_mm read lock while arm64_ptdump_lock_key is on), "none" (6.12 before the
        backport, 6.16, 6.17). The first 6.12.y with the backport is not established (F0.2): the model
        takes 6.12.117."""
        if self is Era.LATER or (self is Era.V6_12 and version >= (6, 12, 117)):
            return "trylock"
        return "arm64-key" if self is Era.UP_6_18 else "none"

    def ptdump_takes_online_mems(self, version: tuple[int, int, int]) -> bool:
        """ptdump_walk_pgd() itself takes get_online_mems(), for check_wx too (59305202c67f; F18): in 6.12.117,
        6.18 and 7.x; before it only arm64's debugfs ptdump_show() took it."""
        return self in (Era.UP_6_18, Era.LATER) or (self is Era.V6_12 and version >= (6, 12, 117))


#: The kernel version each era's arm64 rules come from.
_VERSIONS = {Era.V6_1: (6, 1, 192), Era.V6_12: (6, 12, 117), Era.BASE: (6, 16, 0), Era.SEED_V2: (6, 16, 0),
             Era.SEED_REVIEW: (6, 16, 0), Era.UP_6_18: (6, 18, 0), Era.LATER: (7, 2, 13)}
