"""The Spark section: one simulated day staged by the pandas engine and by the Spark engine on
`local[2]`, time and peak memory of each, and what that makes of a 100M and a 1B-play day on
EMR Serverless.

Each engine stages its own copy of the day's lake (the raw files hard-linked), in a worker of
its own. The Spark worker is the job's driver; its process tree is the JVM (driver and
executor in one, local mode) and the Python workers the JVM forks. Forked workers share
pages with their parent, so the tree's sum of high-water marks is an upper bound.
"""

import argparse
import datetime as dt
import importlib.util
import os
import shutil
import sys
import time
from pathlib import Path

from tools.bench.generate import landed
from tools.bench.measure import Poller, descendants, peak_rss
from tools.bench.protocol import run_worker
from tools.bench.server import Server
from tools.bench.settings import BENCH_DIR, DAY, HMAC_KEY, MIB

# EMR Serverless in us-east-1, x86 list prices (verify at aws.amazon.com/emr/pricing): per
# vCPU-hour and per GB-hour of memory; 20 GB of storage per worker is included.
VCPU_HOUR_USD = 0.052624
GB_HOUR_USD = 0.0057785
# The capacity the estimate is for: workers of 4 vCPU and 16 GB, as many as the day needs.
WORKER_VCPU, WORKER_GB = 4, 16
# Spark on a cluster reads S3 and shuffles over the network: the estimate counts each vCPU
# as doing this share of what a core does here, and a fixed start-up of the application.
CLUSTER_EFFICIENCY = 0.6
STARTUP_MINUTES = 2.0


def stage_worker(spec: dict) -> dict:
    """Stage the day with one engine; seconds, stats, and the peaks of the JVM and workers."""
    from spotify_platform.core.lake.store import Lake

    lake = Lake(url=f"file://{Path(spec['lake']).absolute()}")
    day = dt.date.fromisoformat(spec["day"])
    key = HMAC_KEY.encode()
    if spec["engine"] == "pandas":
        from spotify_platform.core.staging.lake_days import stage_lake_days

        started = time.time()
        stats = stage_lake_days(lake, key, [day])
        staged = time.time()
        built = _pandas_aggregates(lake, day)
        return {
            "seconds": time.time() - started,
            "staging_seconds": staged - started,
            "stats": _jsonable(stats),
            "aggregate_rows": built,
        }
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    import pyarrow.parquet as pq

    from spotify_platform.core.lake.aggregated import aggregate_parts
    from spotify_platform.spark.engine import stage_days_on_spark
    from spotify_platform.spark.tasks import AGGREGATES

    phases: list[tuple[float, str]] = []
    with _TreePeaks() as tree:
        started = time.time()
        spark = _session(spec)
        session_seconds = time.time() - started

        def log(line: str) -> None:
            phases.append((time.time() - started, line))

        stats = stage_days_on_spark(spark, {"url": lake.url}, key, [day], log=log)
        seconds = time.time() - started
        spark.stop()
    return {
        "seconds": seconds,
        "session_seconds": session_seconds,
        "phases": phases,
        "stats": _jsonable(stats),
        "jvm_peak_rss": tree.jvm,
        "python_workers_peak_rss": tree.workers,
        "aggregate_rows": {
            table: sum(
                pq.ParquetFile(lake.root / part).metadata.num_rows
                for part in aggregate_parts(lake, table, [day]).get(day, [])
            )
            for table in AGGREGATES
        },
    }


def _pandas_aggregates(lake, day: dt.date) -> dict[str, int]:
    """The four aggregates the Spark engine writes, built by the pandas engine as the
    warehouse assets build them (a big day a bucket of keys at a time), so both sides of
    the comparison do the same work; rows built per table."""
    from spotify_platform.core.kpis import buckets
    from spotify_platform.core.lake.chunks import CHUNK_ROWS, staged_batches
    from spotify_platform.spark.tasks import AGGREGATES

    built = {}
    for table, (columns, build, split) in AGGREGATES.items():
        built[table] = 0
        for batch in staged_batches(lake, [day], columns, 500_000, CHUNK_ROWS):
            if not batch.chunked:
                built[table] += sum(len(build(frame)) for frame in batch.frames())
                continue
            with buckets.spilled(batch.tables(), split, batch.buckets(CHUNK_ROWS)) as paths:
                built[table] += sum(len(frame) for frame in buckets.bucketed(build, paths))
    return built


def _session(spec: dict):
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(spec["master"])
        .appName("spotify-platform-bench")
        .config("spark.driver.memory", spec["driver_memory"])
        .config("spark.sql.shuffle.partitions", str(spec["shuffle_partitions"]))
        .config("spark.ui.enabled", "false")
        .config("spark.log.level", "WARN")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def _jsonable(stats: dict) -> dict:
    return {day.isoformat(): figures for day, figures in stats.items()}


class _TreePeaks(Poller):
    """The JVM's high-water mark, and the most the Python workers held at once."""

    def __init__(self, interval_s: float = 0.1) -> None:
        super().__init__(interval_s)
        self.jvm = self.workers = 0

    def poll(self) -> None:
        workers = 0
        for pid in descendants():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"java" in command.split(b"\0")[0]:
                self.jvm = max(self.jvm, peak_rss(pid))
            elif b"pyspark" in command or b"python" in command:
                workers += peak_rss(pid)
        self.workers = max(self.workers, workers)


def _linked_lake(source: Path, target: Path) -> Path:
    """A lake holding the source's raw files as hard links, and nothing staged yet."""
    if target.exists():
        shutil.rmtree(target)
    raw = source / "raw"
    for path in raw.rglob("*"):
        if path.is_file():
            copy = target / path.relative_to(source)
            copy.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, copy)
    return target


def estimate(parallel_rate: float, write_rate: float, plays: int) -> dict:
    """Minutes and list-price dollars for a day of `plays` on EMR Serverless, from the rates
    measured here: the staging and aggregates spread over WORKER_VCPU workers (as many as
    finish them in about 15 minutes), then the day's one staged file, whose sort and write
    is a single task, at the rate of this machine's."""
    vcpu_seconds = plays / (parallel_rate * CLUSTER_EFFICIENCY)
    workers = max(2, round(vcpu_seconds / (15 * 60) / WORKER_VCPU))
    parallel = vcpu_seconds / (workers * WORKER_VCPU) / 60
    serial = plays / write_rate / 60
    minutes = parallel + serial + STARTUP_MINUTES
    # While the one writer runs, dynamic allocation (on by default on EMR Serverless) has
    # released the idle workers: one is paid for.
    worker_minutes = workers * (parallel + STARTUP_MINUTES) + serial
    cost = worker_minutes / 60 * (WORKER_VCPU * VCPU_HOUR_USD + WORKER_GB * GB_HOUR_USD)
    return {
        "plays": plays,
        "workers": workers,
        "parallel_minutes": parallel,
        "write_minutes": serial,
        "minutes": minutes,
        "usd": cost,
    }


def rates(result: dict, events: int, cores: int) -> tuple[float, float]:
    """Events per core-second of the job but its one-writer phase, and rows per second of
    that phase (from the times the job logged each phase's end)."""
    staged = next(t for t, line in result["phases"] if line.startswith("staged "))
    written = next(t for t, line in result["phases"] if line.endswith(" staged rows"))
    write = written - staged
    parallel = result["seconds"] - result["session_seconds"] - write
    return events / (parallel * cores), events / write


def spark_section(args: argparse.Namespace, server: Server, report: dict) -> None:
    missing = [
        what
        for what, found in (
            ("java (Java 17)", shutil.which("java")),
            ("pyspark (pip install -e '.[spark]')", importlib.util.find_spec("pyspark")),
        )
        if not found
    ]
    if missing:
        print(f"\n== Spark engine: skipped, missing {', '.join(missing)} ==")
        report["spark"] = {"skipped": missing}
        return
    print(
        f"\n== Spark engine: one day staged and its four aggregates built, pandas engine vs "
        f"Spark on {args.spark_master} =="
    )
    print(
        f"  {'events':>11} {'engine':<7} {'seconds':>8} {'driver':>9} {'JVM':>9} "
        f"{'py workers':>10} {'tree':>9}  same stats and aggregate rows"
    )
    rows = []
    for events in args.spark_sizes:
        source = BENCH_DIR / "data" / f"day_{events}"
        gen = landed(source, DAY, 1, events)
        raw_events = gen["events_by_day"][DAY.isoformat()]
        spec = {
            "day": DAY.isoformat(),
            "master": args.spark_master,
            "driver_memory": args.spark_driver_memory,
            "shuffle_partitions": args.spark_shuffle_partitions,
        }
        results = {}
        for engine in ("pandas", "spark"):
            lake = _linked_lake(source, BENCH_DIR / "data" / f"spark_{events}" / engine)
            result = run_worker("stage", {**spec, "lake": str(lake), "engine": engine})
            results[engine] = result
            same = engine == "spark" and all(
                results["spark"][figures] == results["pandas"][figures]
                for figures in ("stats", "aggregate_rows")
            )
            verdict = str(same) if engine == "spark" else ""
            print(
                f"  {raw_events:>11,} {engine:<7} {result['seconds']:>8.1f} "
                f"{result['own_peak_rss'] / MIB:>5.0f} MiB "
                f"{result.get('jvm_peak_rss', 0) / MIB:>5.0f} MiB "
                f"{result.get('python_workers_peak_rss', 0) / MIB:>6.0f} MiB "
                f"{result['process_peak_rss'] / MIB:>5.0f} MiB  {verdict}",
                flush=True,
            )
        phases = results["spark"].get("phases", [])
        if phases:
            ended = "; ".join(f"{t:.0f} s {line}" for t, line in phases)
            print(f"    Spark phases ended at: {ended}")
        rows.append({"events": raw_events, "same_stats": same, **results})
    largest = max(rows, key=lambda row: row["events"])
    cores = int(args.spark_master.removeprefix("local[").removesuffix("]") or 1)
    # The session's start is the cluster's start-up, counted apart in the estimate.
    parallel_rate, write_rate = rates(largest["spark"], largest["events"], cores)
    print(
        f"  Spark here at {largest['events']:,}: {parallel_rate:,.0f} events per core-second "
        f"staging and aggregating, {write_rate:,.0f} rows/s through the day's one writer"
    )
    estimates = [
        estimate(parallel_rate, write_rate, plays) for plays in (100_000_000, 1_000_000_000)
    ]
    for row in estimates:
        print(
            f"  estimate, {row['plays']:>13,} plays on EMR Serverless: {row['workers']} workers "
            f"of {WORKER_VCPU} vCPU/{WORKER_GB} GB, {row['parallel_minutes']:.0f} min spread "
            f"+ {row['write_minutes']:.0f} min one writer + {STARTUP_MINUTES:.0f} min start, "
            f"${row['usd']:.2f} at list price"
        )
    report["spark"] = {
        "sizes": rows,
        "events_per_core_second": parallel_rate,
        "writer_rows_per_second": write_rate,
        "estimates": estimates,
    }


def add_arguments(parser: argparse.ArgumentParser, sizes) -> None:
    parser.add_argument("--spark-sizes", type=sizes, default=[1_000_000, 10_000_000])
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--spark-driver-memory", default="2g")
    parser.add_argument("--spark-shuffle-partitions", type=int, default=8)
