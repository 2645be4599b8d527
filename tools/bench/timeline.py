"""`python -m tools.bench.timeline`: one platform run of the bench's day, with when each step
ran and how many cores the machine and MariaDB used meanwhile.

The bench's stage table says how long each step took; this says where the two cores were not
both at work, which is where a run can still get shorter without less work per play. It runs
in this process, so the run's CPU is this process's and its forks'; MariaDB's is read from
`/proc` when the server runs on this machine (`mariadbd` or `mysqld`).
"""

import argparse
import datetime as dt
import itertools
import os
import tempfile
import threading
import time
from dataclasses import dataclass

from tools.bench.generate import landed
from tools.bench.server import Server
from tools.bench.settings import BENCH_DIR, DAY, DEFAULT_MYSQL_URL
from tools.bench.settle import cpu_times, shares

SERVER_NAMES = ("mariadbd", "mysqld")
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Sample:
    """One reading: the time, /proc/stat's CPU line, the server's CPU jiffies."""

    at: float
    cpu: list[int]
    server: int | None


def server_pid() -> str | None:
    """The local MariaDB server's process id; None if it runs elsewhere."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as handle:
                if handle.read().strip() in SERVER_NAMES:
                    return pid
        except OSError:
            continue
    return None


def server_jiffies(pid: str | None) -> int | None:
    """User and system jiffies of the server process; None if there is none."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def sample(pid: str | None) -> Sample:
    return Sample(time.time(), cpu_times(), server_jiffies(pid))


def intervals(samples: list[Sample], start: float, cores: int) -> list[dict]:
    """Cores in use between consecutive samples: the machine's, steal, and the server's."""
    rows = []
    for before, after in itertools.pairwise(samples):
        seconds = after.at - before.at
        if seconds <= 0:
            continue
        busy, steal = shares(before.cpu, after.cpu)
        server = None
        if before.server is not None and after.server is not None:
            server = (after.server - before.server) / TICK / seconds
        rows.append(
            {
                "from": before.at - start,
                "busy_cores": busy * cores,
                "steal_cores": steal * cores,
                "server_cores": server,
            }
        )
    return rows


class Sampler(threading.Thread):
    def __init__(self, every: float) -> None:
        super().__init__(daemon=True)
        self.pid = server_pid()
        self.every, self.samples = every, [sample(self.pid)]
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.samples.append(sample(self.pid))

    def stop(self) -> list[Sample]:
        self.done.set()
        self.join()
        self.samples.append(sample(self.pid))
        return self.samples


def timeline(events: int, url: str, every: float) -> None:
    from dagster import DagsterInstance

    from spotify_platform.definitions import build_definitions
    from spotify_platform.defs.event_storage import ensure_instance_settings
    from spotify_platform.defs.runs import run_range
    from tools.bench.platform_path import bench_resources

    lake = BENCH_DIR / "data" / f"day_{events}"
    landed(lake, DAY, 1, events)
    server = Server(url, keep=False)
    try:
        resources = bench_resources({"lake": str(lake), "url": server.database("timeline")})
        resources["warehouse"].init_schema()
        defs = build_definitions(resources)
        with tempfile.TemporaryDirectory() as home:
            ensure_instance_settings(home)
            instance = DagsterInstance.from_config(home)
            sampler = Sampler(every)
            own = os.times()
            sampler.start()
            success = run_range(DAY, DAY, defs=defs, instance=instance).success
            samples = sampler.stop()
            used = os.times()
            run = instance.get_runs()[0]
            steps = sorted(instance.get_run_step_stats(run.run_id), key=lambda s: s.start_time)
            instance.dispose()
    finally:
        server.drop_all()
    start, end = samples[0].at, samples[-1].at
    print(f"one run of {DAY}, {'succeeded' if success else 'FAILED'}, {end - start:.2f} s")
    print(f"  {'from':>6} {'to':>6} {'seconds':>7}  step")
    for step in steps:
        began, ended = (step.start_time or start) - start, (step.end_time or end) - start
        print(f"  {began:6.2f} {ended:6.2f} {ended - began:7.2f}  {step.step_key}")
    worker = (used.user - own.user) + (used.system - own.system)
    forks = (used.children_user - own.children_user) + (used.children_system - own.children_system)
    server_cpu = (
        (samples[-1].server - samples[0].server) / TICK
        if samples[0].server is not None and samples[-1].server is not None
        else None
    )
    shown = "n/a" if server_cpu is None else f"{server_cpu:.2f}"
    print(
        f"  CPU seconds: this process {worker:.2f}, its forks {forks:.2f}, MariaDB {shown}; "
        f"{os.cpu_count()} cores offered {(os.cpu_count() or 1) * (end - start):.1f}"
    )
    print(f"  {'from':>6} {'busy cores':>10} {'MariaDB':>8} {'steal':>6}")
    for row in intervals(samples, start, os.cpu_count() or 1):
        server_cores = "n/a" if row["server_cores"] is None else f"{row['server_cores']:.2f}"
        print(
            f"  {row['from']:6.2f} {row['busy_cores']:10.2f} {server_cores:>8} "
            f"{row['steal_cores']:6.2f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.timeline", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="the day's size")
    parser.add_argument("--every", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("--mysql-url", default=os.environ.get("BENCH_MYSQL_URL", DEFAULT_MYSQL_URL))
    args = parser.parse_args(argv)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"timeline started {started}")
    timeline(args.events, args.mysql_url, args.every)


if __name__ == "__main__":
    main()
