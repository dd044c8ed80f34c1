"""Explorer speed: executions and scheduling steps per second, per catalogue row.

    python bench/explore.py

Each row of the issue's table with two threads, explored exhaustively (or to its first violation):
executions, executions cut by sleep sets, steps per execution, executions/s and steps/s (a step is one
shared access: a descriptor read or write, a table page freed, a lock, a static key, a TLB flush).
Then one three-thread row with seeded random schedules.
"""

import time

from pagewalk.check.explore import sequential
from pagewalk.check.scenarios import SCENARIOS, Options

ROWS = [("ptdump-vs-vmap-huge", Options(era="6.12")),
        ("ptdump-vs-vmap-huge", Options(era="6.12-early", config=(("PTDUMP_DEBUGFS", False),), walker="check-wx")),
        ("ptdump-vs-vmap-huge", Options(era="6.18")), ("ptdump-vs-vmap-huge", Options(era="later")),
        ("pud-free-order", Options(era="6.18", level="pud")),
        ("pud-free-order", Options(era="6.18", level="pud", variant="children-locked")),
        ("vmap-trylock-with-arm64-key", Options(era="later", variant="arm64-key-kept")),
        ("ptdump-vs-hot-remove", Options(era="later")),
        ("pageattr-stale-vs-vmap-huge", Options(era="later")),
        ("two-walkers-vs-vmap-huge", Options(era="6.18", random=50, seed=1))]


def main() -> None:
    print(f"{'scenario':30} {'era/variant':34} {'verdict':16} {'execs':>6} {'cut':>4} {'steps':>7} "
          f"{'execs/s':>8} {'steps/s':>9} {'time':>7}")
    for name, options in ROWS:
        scenario = SCENARIOS[name]
        setup, threads = scenario.prepare(options)
        steps = len(sequential(setup, threads).steps)
        start = time.perf_counter()
        result = scenario.run(options)
        elapsed = time.perf_counter() - start
        runs = result.explored + result.pruned
        label = options.era + (f" {options.variant}" if options.variant else "") + (
            f" random {options.random}" if options.random else "")
        print(f"{name:30} {label:34} {result.verdict:16} {result.explored:6} {result.pruned:4} {steps:7} "
              f"{runs / elapsed:8.1f} {runs * steps / elapsed:9.0f} {elapsed:6.1f}s")


if __name__ == "__main__":
    main()
