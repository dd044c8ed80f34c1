"""Progress on long work (decompressing, reassembling, extracting): a rich bar on
stderr when it is a terminal, nothing otherwise (never on stdout, never in
kernel-format output).

>>> with progress("decompressing", enabled=False) as update:
...     update(5, 10)
"""

import sys
from contextlib import contextmanager

__all__ = ["progress"]


@contextmanager
def progress(description: str, enabled: bool = True):
    """Yields `update(done, total)`; shows a bar only if enabled and stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                   console=Console(file=sys.stderr), transient=True)
    with bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
