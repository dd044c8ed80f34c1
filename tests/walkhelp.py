"""Helpers for walker tests: a recording ops table and a simulated machine with a user mm."""

from pagewalk import Machine, mm_walk_ops, vm_area_struct
from pagewalk.hw.aarch64.builder import TableBuilder

ENTRY = ("pgd_entry", "p4d_entry", "pud_entry", "pmd_entry", "pte_entry")


class Rec:
    """mm_walk_ops whose callbacks record `(name, args...)` and answer from `rules`.

    A rule is `rules[name](n, walk, call) -> int` where n counts calls of that name from 1.
    """

    def __init__(self, *names, rules=None, install_value=0x40000f43, walk_lock=0):
        self.calls, self.rules, self.counts = [], rules or {}, {}
        self.install_value = install_value
        self.ops = mm_walk_ops(walk_lock=walk_lock, **{n: self._make(n) for n in names})

    def _make(self, name):
        def callback(*args):
            walk = args[-1]
            if name in ENTRY:
                call = (name, args[1], args[2])
            elif name == "pte_hole":
                call = (name, args[0], args[1], args[2])
            elif name == "hugetlb_entry":
                call = (name, args[1], args[2], args[3])
            elif name in ("test_walk", "pre_vma"):
                call = (name, args[0], args[1])
            elif name == "install_pte":
                call = (name, args[0], args[1])
                args[2][0] = self.install_value
            else:
                call = (name,)
            self.calls.append(call)
            self.counts[name] = n = self.counts.get(name, 0) + 1
            rule = self.rules.get(name)
            result = rule(n, walk, call) if rule else 0
            return None if name == "post_vma" else result
        return callback

    def named(self, name):
        return [c for c in self.calls if c[0] == name]


def act_on(call_number, action):
    """A Rec rule: set walk.action on the n-th call of a callback (every call when n is None)."""
    def rule(n, walk, call):
        if call_number is None or n == call_number:
            walk.action = action
        return 0
    return rule


def user_machine(era="6.18", vmas=((0x10000, 0x20000),), lock="read", **machine_args):
    """(machine, mm, builder): a simulated machine, a user mm with `vmas`, a table builder on it."""
    m = Machine.simulated(era, **machine_args)
    made = [v if isinstance(v, vm_area_struct) else vm_area_struct(*v) for v in vmas]
    mm = m.new_user_mm(made)
    if lock == "read":
        mm.mmap_lock.down_read()
    elif lock == "write":
        mm.mmap_lock.down_write()
    return m, mm, TableBuilder(m.memory, m.arch.hw, root=mm.pgd, kernel_tables=False)


def kernel_builder(m):
    return TableBuilder(m.memory, m.arch.hw, root=m.swapper_pg_dir)
