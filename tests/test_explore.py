"""kernel-pgtable-freeing.md: page tables freed where Linux frees them, and the interleaving explorer.

The scenario table of the explorer issue (each row's verdict, from the CLI for some), every violation
replayed from its schedule, tests named after the F statements the model implements, and hypothesis
over random mixes of threads that the spec calls safe together.
"""

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pagewalk import boot
from pagewalk.check.explore import KernelThread, explore, format_schedule, parse_schedule, sequential
from pagewalk.check.scenarios import SCENARIOS, Options
from pagewalk.cli import main
from pagewalk.errors import ArgumentError

SZ_2M, SZ_1G = 2 << 20, 1 << 30
NO_DEBUGFS = (("PTDUMP_DEBUGFS", False),)

#: (scenario, options, verdict): the rows of the issue's table, two threads each.
ROWS = [
    ("ptdump-vs-vmap-huge", Options(era="6.12"), "safe"),                                          # S-a
    ("ptdump-vs-vmap-huge", Options(era="6.12-early", config=NO_DEBUGFS, walker="check-wx"), "use-after-free"),
    ("ptdump-vs-vmap-huge", Options(era="6.12", config=NO_DEBUGFS, walker="check-wx"), "safe"),     # S-b .117
    ("ptdump-vs-vmap-huge", Options(era="6.18"), "safe"),                                          # S-c
    ("ptdump-vs-vmap-huge", Options(era="later"), "safe"),                                         # S-f
    ("pud-free-order", Options(era="6.18", level="pud"), "safe"),                                  # S-e3
    ("pud-free-order", Options(era="6.18", level="pud", variant="children-unlocked"), "use-after-free"),
    ("pud-free-order", Options(era="6.18", level="pud", variant="children-locked"), "safe"),       # S-e2
    ("vmap-trylock-with-arm64-key", Options(era="later", variant="arm64-key-kept"), "deadlock"),   # S-g
    ("ptdump-vs-hot-remove", Options(era="6.12"), "safe"),                                         # S-h1
    ("ptdump-vs-hot-remove", Options(era="6.18"), "safe"),
    ("ptdump-vs-hot-remove", Options(era="later", walker="check-wx"), "safe"),
    ("ptdump-vs-hot-remove", Options(era="later", walker="check-wx", variant="check-wx-without-online-mems"),
     "use-after-free"),                                                                           # S-h2
    ("ptdump-vs-hot-remove", Options(era="later", variant="init-mm-lock-only"), "use-after-free"),  # S-h3
    ("pageattr-owned-vs-vmap-huge", Options(era="6.12"), "safe"),                                  # S-i
    ("pageattr-owned-vs-vmap-huge", Options(era="6.18"), "safe"),
    ("pageattr-owned-vs-vmap-huge", Options(era="later"), "safe"),
    ("pageattr-stale-vs-vmap-huge", Options(era="6.12", config=NO_DEBUGFS), "use-after-free"),
    ("pageattr-stale-vs-vmap-huge", Options(era="later"), "use-after-free"),
    ("kfence-softirq-vs-split", Options(era="6.18"), "sleep-in-atomic"),
    ("kfence-softirq-vs-split", Options(era="6.18", variant="nov-2025-fix"), "safe"),
    ("kfence-softirq-vs-split", Options(era="later"), "safe"),
    ("kfence-softirq-vs-split", Options(era="seed-v2"), "safe"),
    ("pagemap-failure-vs-ptdump", Options(era="6.12"), "use-after-free"),                          # S-p
    ("pagemap-failure-vs-ptdump", Options(era="later"), "use-after-free"),
]


@pytest.mark.parametrize("name,options,verdict", ROWS, ids=[f"{r[0]}-{r[1].era}-{r[1].variant or r[1].walker}"
                                                            for r in ROWS])
def test_explore_scenario_rows_give_the_specs_verdict_and_violations_replay(name, options, verdict):
    result = SCENARIOS[name].run(options)
    assert result.verdict == verdict
    if verdict == "safe":
        assert result.complete and result.witness is None and result.explored >= 1   # exhaustive
        return
    again = SCENARIOS[name].replay(options, result.witness.schedule)
    assert again.verdict == verdict and again.schedule == result.witness.schedule
    assert again.trace()[-1].startswith(f"=> {verdict}")


def test_explore_s_d_enable_disable_is_a_use_after_free_and_inc_dec_is_not(capsys):
    """S-d: with the v3-v5 enable/disable key two walkers leave it off under the second one. With inc/dec (the
    merged v6) the same schedule cannot go on: the key is still on, so the vmap sleeps on init_mm's lock
    (thread 2 cannot run) until the walker is done."""
    assert main(["explore", "two-walkers-vs-vmap-huge", "--era", "6.18", "--variant",
                 "static-key-enable-disable", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "use-after-free" and report["trace"][-1].startswith("=> use-after-free")
    assert any("static_branch_disable" in line for line in report["trace"])
    with pytest.raises(ArgumentError, match="runs thread 2, which cannot run"):
        SCENARIOS["two-walkers-vs-vmap-huge"].replay(Options(era="6.18"), report["schedule"])
    sample = SCENARIOS["two-walkers-vs-vmap-huge"].run(Options(era="6.18", random=20, seed=1))
    assert sample.verdict == "safe" and sample.explored == 20


def test_explore_cli_json_keys_and_replay(capsys):
    args = ["explore", "ptdump-vs-vmap-huge", "--era", "6.12-early", "--config", "PTDUMP_DEBUGFS=n",
            "--walker", "check-wx", "--json"]
    assert main(args) == 1
    report = json.loads(capsys.readouterr().out)
    assert {"scenario", "era", "variant", "verdict", "explored", "pruned", "schedule", "trace",
            "fallbacks"} <= report.keys() and "sequentially consistent" in report["note"]
    assert main(args + ["--replay", report["schedule"]]) == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "use-after-free"
    assert main(["race", "ptdump-vs-vmap-huge", "--era", "later"]) == 0          # race is explore
    out = capsys.readouterr().out
    assert "verdict: safe" in out and "fell back" in out and "sequentially consistent" in out


def test_explore_list_names_every_scenario_with_its_spec_statement(capsys):
    assert main(["explore", "--list"]) == 0
    out = capsys.readouterr().out
    for s in SCENARIOS.values():
        assert f"{s.name}  ({s.spec})" in out


@pytest.mark.parametrize("argv,message", [
    (["explore", "nope"], "no scenario 'nope'"),
    (["explore", "ptdump-vs-vmap-huge", "--variant", "bogus"], "variant 'bogus'"),
    (["explore", "ptdump-vs-vmap-huge", "--config", "PTDUMP_DEBUGFS"], "SYMBOL=y or SYMBOL=n"),
    (["explore", "ptdump-vs-vmap-huge", "--replay", "0:x"], "is not THREAD:STEPS"),
    (["explore", "ptdump-vs-vmap-huge", "--replay", "1:1"], "ends after 1 steps"),
    (["explore", "ptdump-vs-vmap-huge", "--replay", "2:1"], "runs thread 2, which cannot run"),
    (["explore", "pud-free-order", "--level", "pmd"], "--level pmd"),
    (["explore", "ptdump-vs-vmap-huge", "--config", "PTDUMP_DEBUGFS=n"], "needs --config PTDUMP_DEBUGFS=y"),
])
def test_explore_bad_arguments_are_one_error(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("pagewalk: error:") == 1, err


def test_explore_schedule_strings_round_trip():
    assert parse_schedule("0:2,1:1,0:1") == [0, 0, 1, 0] and format_schedule([0, 0, 1, 0]) == "0:2,1:1,0:1"
    with pytest.raises(ArgumentError):
        parse_schedule("a:1")


# -- the F statements, one code path alone (a one-thread exploration records its accesses in order) ----------

def steps_of(k, body):
    """The shared accesses `body(k)` makes on a copy of `k`, in order, as (kind, detail) pairs."""
    ex = sequential(lambda: copy.deepcopy(k), [KernelThread("t", body)])
    return [(s.op[0], s.op[3] if s.op[0] in ("lock", "key") else s.op[1]) for s in ex.steps[1:]]


def purged(k, unit=SZ_2M):
    k.vmalloc_space.skip_to(-(-k.vmalloc_space.cursor // unit) * unit)
    va = k.vmalloc(4 * k.config.page_size)
    k.vfree(va)
    k.vm_unmap_aliases()
    return va


def pmd_entry(k, va):
    arch, mem = k.machine.arch, k.machine.memory
    return arch.entry_for(mem.read_u64, k.machine.swapper_pg_dir, va, 3)


def test_freeing_f4_f6_promotion_unlinks_flushes_then_frees_the_table():
    k = boot(era="later", ram=128 << 20, checks=False)
    va = purged(k)
    pmd = pmd_entry(k, va)
    table = k.machine.arch.table_address(k.machine.memory.read_u64(pmd))
    ops = steps_of(k, lambda k: k.vmalloc_huge(SZ_2M))
    trylock = ops.index(("lock", "down_read_trylock"))
    clear, free = ops.index(("write", pmd)), ops.index(("free", table))
    flush = ops.index(("flush", "tlb"), clear)
    assert trylock < clear < flush < free < ops.index(("lock", "up_read"))         # F4 under the trylock, F6


def test_freeing_f4_612_before_the_backport_takes_no_lock():
    k = boot(era="6.12", version=(6, 12, 0), ptdump_debugfs=False, ram=128 << 20, checks=False)
    purged(k)
    ops = steps_of(k, lambda k: k.vmalloc_huge(SZ_2M))
    assert any(kind == "free" for kind, _ in ops) and not any(kind == "lock" for kind, _ in ops)


def test_freeing_f5_later_falls_back_to_the_table_when_the_trylock_fails():
    """The promotion's trylock fails while a writer holds init_mm's lock: nothing is freed, the 2 MiB are
    mapped with PTEs in the table that was there."""
    k = boot(era="later", ram=128 << 20, checks=False)
    va = purged(k)
    pages = k.machine.memory.live_pages
    k.machine.init_mm.mmap_lock.down_write()
    v = k.vmalloc_huge(SZ_2M)
    k.machine.init_mm.mmap_lock.up_write()
    assert v == va and k.vmap_fallbacks == 1 and k.machine.memory.live_pages == pages
    assert k.translate(v).level == 3 and k.translate(v + SZ_2M - 4096).mapped
    w = purged(k)                                                      # uncontended: promoted, table freed
    pages = k.machine.memory.live_pages
    assert k.vmalloc_huge(SZ_2M) == w and k.translate(w).level == 2 and k.machine.memory.live_pages == pages - 1


@pytest.mark.parametrize("era,pud_first", [("6.18", True), ("later", False)])
def test_freeing_f7_f8_pud_free_order(era, pud_first):
    """F7: the PTE tables are freed while the PMD table is still linked, then the PUD entry cleared; F8
    (6.18): the PUD entry is cleared and flushed first, then the children."""
    k = boot(era=era, ram=128 << 20, checks=False)
    va = purged(k, SZ_1G)
    arch, mem = k.machine.arch, k.machine.memory
    pud = arch.entry_for(mem.read_u64, k.machine.swapper_pg_dir, va, 2)
    pte_table = arch.table_address(mem.read_u64(pmd_entry(k, va)))
    ops = steps_of(k, lambda k: k.ioremap(64 * SZ_1G, SZ_1G))
    assert (ops.index(("write", pud)) < ops.index(("free", pte_table))) == pud_first
    assert k.translate(va).mapped is False                           # the scenario ran on a copy


def test_freeing_f13_f14_hot_remove_frees_empty_tables_children_first_under_mem_hotplug_lock():
    k = boot(era="later", ram=128 << 20, hotpluggable=((0x80000000, 0x88000000),), checks=False)
    assert k.add_memory(0x80000000, 128 << 20) == 0
    ops = steps_of(k, lambda k: k.remove_memory(0x80000000, 128 << 20))
    locks = [d for kind, d in ops if kind == "lock"]
    assert locks[0] == "percpu_down_write" and locks[-1] == "percpu_up_write" and len(locks) == 2   # F14
    frees = [i for i, (kind, _) in enumerate(ops) if kind == "free"]
    assert frees
    for i in frees:                                                   # F13: unlink, flush, free
        assert ops[i - 1] == ("flush", "tlb") and ops[i - 2][0] == "write"


@pytest.mark.parametrize("era,version,check_wx,online_mems", [
    ("6.12", None, True, True), ("6.12", (6, 12, 0), True, False), ("6.12", (6, 12, 0), False, True),
    ("6.18", None, True, True), ("later", None, False, True)])
def test_freeing_f18_ptdump_locks_in_order(era, version, check_wx, online_mems):
    """F18: get_online_mems() -> mmap_write_lock(init_mm) ... unlock -> put_online_mems(); before 59305202c67f
    only debugfs ptdump_show() took get_online_mems(), not ptdump_check_wx()."""
    k = boot(era=era, ram=128 << 20, checks=False, **({"version": version} if version else {}))
    body = (lambda k: k.check_wx()) if check_wx else (lambda k: k.ptdump())
    locks = [d for kind, d in steps_of(k, body) if kind == "lock"]
    expected = ["down_write", "up_write"]
    if online_mems:
        expected = ["percpu_down_read"] + expected + ["percpu_up_read"]
    assert locks == expected


def test_freeing_f22_f34_618_ptdump_counts_the_key_up_and_down():
    k = boot(era="6.18", ram=128 << 20, checks=False)
    keys = [d for kind, d in steps_of(k, lambda k: k.ptdump()) if kind == "key"]
    assert keys == ["static_branch_inc", "static_branch_dec"]
    assert k.machine.static_key("arm64_ptdump_lock_key").count == 0


# -- hypothesis: threads the spec calls safe together stay safe under any schedule -------------------

def _mix_threads(k, names):
    own = k.vmalloc(4 * k.config.page_size)
    purged(k)
    bodies = {"ptdump": lambda k: k.ptdump(), "check-wx": lambda k: k.check_wx(),
              "vmap-huge": lambda k: k.vmalloc_huge(SZ_2M), "pageattr-own": lambda k: k.set_memory_ro(own, 4),
              "hot-remove": lambda k: k.remove_memory(0x80000000, 128 << 20)}
    return [KernelThread(n, bodies[n]) for n in names]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(era=st.sampled_from(["6.12", "6.18", "later"]),
       names=st.lists(st.sampled_from(["ptdump", "check-wx", "vmap-huge", "pageattr-own", "hot-remove"]),
                      min_size=2, max_size=3, unique=True),
       seed=st.integers(0, 1000))
def test_explore_property_random_mixes_of_safe_paths_are_safe(era, names, seed):
    """S-c, S-f, S-h1, S-i: no false positive on any mix the spec calls safe (random schedules)."""
    k = boot(era=era, ram=128 << 20, rodata="on" if era == "6.12" else "noalias", ptdump_debugfs=True,
             hotpluggable=((0x80000000, 0x88000000),), checks=False)
    assert k.add_memory(0x80000000, 128 << 20) == 0
    threads = _mix_threads(k, names)
    result = explore(lambda: copy.deepcopy(k), threads, random=4, seed=seed)
    assert result.verdict == "safe", result.witness and result.witness.trace()


def test_freeing_f14_s_p_add_failing_in_add_pages_removes_its_linear_map_and_frees_shadow_outside_the_lock():
    """F14/F15: arch_add_memory() failing in __add_pages() (no memory for the struct pages) removes the linear
    map it made; pagemap_range() then frees the KASAN shadow table after mem_hotplug_done()."""
    from pagewalk.check.scenarios import _pagemap_failure
    k, _ = _pagemap_failure(Options(era="later"))
    ops = steps_of(k, lambda k: k.pagemap_range(0x80000000, 128 << 20, 0))
    locks = [i for i, (kind, _) in enumerate(ops) if kind == "lock"]
    frees = [i for i, (kind, _) in enumerate(ops) if kind == "free"]
    assert frees and frees[-1] > locks[-1]                        # the shadow's PMD table: after the unlock
    assert ops[frees[-1] + 1][0] == "write"                       # freed, then unlinked (pud_clear)
