"""The interleaving explorer: a lockless walk is safe only over a range its caller owns,
and ptdump is safe against table freeing only when both sides take init_mm's lock."""

from pagewalk.check.race import run_scenarios


def test_race_scenarios():
    owned, not_owned, ptdump_locked, ptdump_unlocked = run_scenarios()
    assert owned.safe and owned.interleavings == owned.total > 100
    assert ptdump_locked.safe and ptdump_locked.interleavings == 2
    for racy in (not_owned, ptdump_unlocked):
        assert not racy.safe and racy.interleavings == racy.total
        assert "use-after-free of a page table" in racy.example[-1]
        freed = [line for line in racy.example if "frees the PTE table page" in line]
        assert freed and freed[0].split()[-1] in racy.example[-1]
