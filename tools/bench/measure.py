"""Peak memory and wall time of a worker process and of its stages.

A worker's peak is its own high-water mark (`VmHWM`), not `ru_maxrss`: Linux carries the
parent's peak across fork and exec, so a child's `ru_maxrss` is at least what the parent had
when it started the child. Processes a worker starts itself (staging's helpers) are watched
while they run, and the most their own high-water marks came to at once is added to the
worker's.
"""

import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")
_HWM = re.compile(rb"^VmHWM:\s+(\d+) kB", re.MULTILINE)


def peak_rss(pid: int | str = "self") -> int:
    """A process's own peak resident set size in bytes (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_bytes()
    except OSError:
        return 0
    found = _HWM.search(status)
    return int(found.group(1)) * 1024 if found else 0


def rss() -> int:
    """This process's resident set size now, in bytes."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


_PRIVATE = re.compile(rb"^Private_(?:Clean|Dirty):\s+(\d+) kB", re.MULTILINE)


def private_rss(pid: int) -> int:
    """The memory a process holds alone, in bytes: for a fork, what it added to its parent's
    pages it still shares (0 once it is gone)."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_bytes()
    except OSError:
        return 0
    return sum(int(kb) for kb in _PRIVATE.findall(rollup)) * 1024


def exec_done(pid: int) -> bool:
    """Whether a child runs a program of its own yet: between fork (or vfork) and exec it
    still shows this process's memory, and its mark would count this process twice."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return command not in (b"", Path("/proc/self/cmdline").read_bytes())


def descendants(pid: int | str = "self") -> list[int]:
    """Every living process below `pid`, from the kernel's per-thread children lists."""
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in children.read_text().split()]
        except OSError:
            continue
    return found + [grandchild for child in found for grandchild in descendants(child)]


class Poller:
    """A thread calling `poll` every `interval_s` while the block runs."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def poll(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while not self.stop.is_set():
            self.poll()
            self.stop.wait(self.interval_s)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


class RssSampler(Poller):
    """Samples this process's RSS every few milliseconds, to attribute peaks to stages."""

    def __init__(self, interval_s: float = 0.02) -> None:
        super().__init__(interval_s)
        self.samples: list[tuple[float, int]] = []

    def poll(self) -> None:
        self.samples.append((time.time(), rss()))

    def peak(self, start: float, end: float) -> int:
        inside = [value for t, value in self.samples if start <= t <= end]
        before = [value for t, value in self.samples if t < start][-1:]
        return max(inside + before, default=0)


class ChildPeaks(Poller):
    """The peak memory of the processes this one starts: polled while they run, the most the
    ones alive at once have held (the sum of their high-water marks), over the whole watch;
    and `tree_peak`, the most this process and they held at one poll.

    A process's mark only grows, so the last reading before it ends is its peak but for the
    final interval's growth; processes that come one after another are not added up.
    """

    def __init__(self, interval_s: float = 0.05) -> None:
        super().__init__(interval_s)
        self.peak = self.tree_peak = 0

    def poll(self) -> None:
        """Programs of their own count their high-water mark; forks (staging's workers) what
        they hold beyond the pages they share with this process, as sampled."""
        held = sum(
            peak_rss(pid) if exec_done(pid) else private_rss(pid) for pid in descendants()
        )
        self.peak = max(self.peak, held)
        self.tree_peak = max(self.tree_peak, rss() + held)


class Stages:
    """Wall time and peak RSS of named stages, in order."""

    def __init__(self, sampler: RssSampler) -> None:
        self.sampler = sampler
        self.rows: list[dict[str, Any]] = []

    @contextmanager
    def __call__(self, name: str, rows: int | None = None) -> Iterator[dict[str, Any]]:
        record: dict[str, Any] = {"stage": name, "rows": rows}
        start = time.time()
        yield record
        end = time.time()
        record.update(seconds=end - start, start=start, end=end)
        record["peak_rss"] = max(self.sampler.peak(start, end), rss())
        self.rows.append(record)
