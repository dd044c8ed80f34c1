"""Kernel eras whose walker semantics differ (labels of shared/spec/pagewalk.md).

BASE (v6.16-rc1), SEED_V2 (+ PGWALK_NOLOCK), SEED_REVIEW (+ the review's
capability scheme), UP_6_18 (walk_kernel_page_table_range_lockless), LATER
(7.x: renames, PUD refault retry, ptdump lock rule), and the two real trees
that differ from those: V6_12 (6.12.117 with backports) and V6_1 (6.1.192).
"""

from enum import Enum


class Era(Enum):
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
        key = aliases.get(key, key)
        for era in cls:
            if era.value == key:
                return era
        raise ValueError(f"unknown era {name!r}; one of: {', '.join(e.value for e in cls)}")

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
    def seed(self) -> bool:
        return self in (Era.SEED_V2, Era.SEED_REVIEW)

    @property
    def has_lockless_entry(self) -> bool:
        """walk_kernel_page_table_range_lockless() exists (merged for v6.18)."""
        return self in (Era.UP_6_18, Era.LATER)

    @property
    def has_install_pte(self) -> bool:
        """install_pte, the ops check and walk_page_range_mm (v6.13+)."""
        return self not in (Era.V6_1, Era.V6_12)

    @property
    def pud_refault_retry(self) -> bool:
        """The March-2026 split/refault fix: PUD snapshot check at the PMD level."""
        return self in (Era.V6_12, Era.LATER)

    @property
    def debug_walk_locks_both(self) -> bool:
        """July-2026 rule: walk_page_range_debug asserts mm and init_mm write locks first."""
        return self in (Era.V6_12, Era.LATER)
