"""How checkers watch a simulated kernel: an explicit list of hooks, and kernel
functions declared on the kernel so every call passes the hooks.

A hook sees each outermost kernel-function call before and after it runs
(with the TLB flushes it made) and every descriptor write. Checkers (in
pagewalk.check) are hooks; they report `Violation`s.
"""

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Violation", "KernelHook", "kernel_function"]


@dataclass(frozen=True)
class Violation:
    """A checker's report: the rule broken, in which kernel function, where, and the entry before/after."""
    rule: str
    function: str
    address: int | None
    entry_pa: int | None
    before: int | None
    after: int | None
    detail: str = ""

    def __str__(self) -> str:
        where = f" at {self.address:#x}" if self.address is not None else ""
        desc = f" entry {self.entry_pa:#x}: {self.before:#018x} -> {self.after:#018x}" \
            if self.entry_pa is not None and self.before is not None else ""
        return f"{self.rule}: {self.function}{where}{desc}{': ' + self.detail if self.detail else ''}"


class KernelHook(Protocol):
    """What a checker implements to watch a kernel."""

    def before_call(self, kernel, name: str, args: tuple) -> None:
        """An outermost kernel-function call is about to run."""

    def after_call(self, kernel, name: str, args: tuple, flushes: list) -> None:
        """It returned (or raised); `flushes` are the TLB flushes it made."""

    def on_write(self, kernel, ptr: int, old: int, new: int) -> None:
        """A descriptor write, before it lands."""


class kernel_function:  # noqa: N801 - used like a decorator
    """Declares `fn(k, *args)` as a method of the kernel: `k.name(*args)` runs it through `k.call()`.

    >>> class K:
    ...     def call(self, name, fn, *args):
    ...         return name, fn(self, *args)
    ...     twice = kernel_function(lambda k, x: 2 * x, "twice")
    >>> K().twice(21)
    ('twice', 42)
    """

    def __init__(self, fn, name: str | None = None):
        self.fn = fn
        self.name = name or fn.__name__
        self.__doc__ = fn.__doc__

    def __get__(self, kernel, owner=None):
        if kernel is None:
            return self
        fn, name = self.fn, self.name

        def call(*args):
            return kernel.call(name, fn, *args)
        call.__name__, call.__doc__ = name, fn.__doc__
        return call
