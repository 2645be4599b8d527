"""Each measured path starts on a settled machine, whatever ran before it.

On a virtual machine, memory a process touched and freed is handed back to the host for a
while after the process ends. The lean and seed-style paths each touch about 11 GiB; for
about half a minute after one of them, the host takes up to a third of the CPU from whatever
runs next (the kernel counts it as steal). Measured on the bench's 1M day (2026-12-05), the
platform path right after an 11 GiB process took 23.1-27.2 s with 1.5-2.1 s of steal, and
21.5-21.7 s with 0.05-0.07 s of steal when started 30 s later. In `make bench` the platform
ran right after the seed-style path, so its time carried the baselines' cost.

Before each worker, the bench therefore waits until nothing else runs and the host takes no
CPU from a short spin of every core. On a machine with nothing to give back, that is one
quiet window. BENCH_SETTLE_LIMIT (seconds, default 90) bounds the wait; 0 starts at once.
"""

import os
import time

# Five quiet probes of a second each in a row.
PROBES = 5
SPIN_SECONDS = 0.5
REST_SECONDS = 0.5
# A jiffy of steal or two in a probe is noise on a quiet host. Others may use a quarter of
# the machine while the bench rests (MariaDB flushing a path's tables, a desktop); more, and
# no figure of this machine is worth much.
MAX_STEAL_SHARE = 0.02
MAX_BUSY_SHARE = 0.25


def cpu_times() -> list[int]:
    with open("/proc/stat") as handle:
        return [int(field) for field in handle.readline().split()[1:]]


def shares(before: list[int], after: list[int]) -> tuple[float, float]:
    """The machine's busy share (all but idle, iowait and steal) and steal share between two
    readings of /proc/stat."""
    delta = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(delta) or 1
    idle, iowait, steal = delta[3], delta[4], delta[7]
    return (total - idle - iowait - steal) / total, steal / total


def _spin_every_core(seconds: float) -> None:
    children = []
    for _ in range(os.cpu_count() or 1):
        pid = os.fork()
        if pid == 0:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pass
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)


def probe() -> tuple[float, float]:
    """Others' busy share while the bench rests, then the steal share while it spins."""
    rest = cpu_times()
    time.sleep(REST_SECONDS)
    spin = cpu_times()
    busy, _ = shares(rest, spin)
    _spin_every_core(SPIN_SECONDS)
    _, steal = shares(spin, cpu_times())
    return busy, steal


def settle(limit: float | None = None) -> dict:
    """Wait for PROBES quiet probes in a row, or `limit` seconds. Without /proc/stat (not
    Linux) there is nothing to read, and the worker starts at once, unsettled."""
    if limit is None:
        limit = float(os.environ.get("BENCH_SETTLE_LIMIT", "90"))
    if not os.path.exists("/proc/stat"):
        limit = 0.0
    started = time.monotonic()
    quiet, worst = 0, 0.0
    while quiet < PROBES and time.monotonic() - started < limit:
        busy, steal = probe()
        worst = max(worst, steal)
        quiet = quiet + 1 if busy <= MAX_BUSY_SHARE and steal <= MAX_STEAL_SHARE else 0
    return {
        "seconds": time.monotonic() - started,
        "settled": quiet >= PROBES,
        "worst_steal_share": worst,
    }
