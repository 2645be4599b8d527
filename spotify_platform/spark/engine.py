"""The Spark engine's driver: a range of days staged, and their per-day aggregates built, by
Spark tasks over the lake, writing the files the pandas engine writes.

Shares of raw files are the unit of work (`tasks.stage_files`: a small file is one share, a
big one several, each every n-th block of its lines); Spark then keeps each day's first row of
every event id in arrival order (files in key order, then blocks, then rows), as the pandas
engine does, writes each day's rows in event id order as one Parquet file, and builds the
aggregates from those files over rows partitioned by the key each is split by. The quarantine
and the day's stats are written by the pandas engine's own `write_staged`.
"""

import datetime as dt
import os
import pickle
from collections.abc import Callable
from functools import partial

import pandas as pd
from pyspark import StorageLevel, TaskContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spotify_platform.core.lake.aggregated import clear_aggregates
from spotify_platform.core.lake.layout import RAW_ROOT, aggregate_done_key, staging_key
from spotify_platform.core.lake.store import Lake
from spotify_platform.core.staging import buckets
from spotify_platform.core.staging.lake_io import clear_staged, write_staged
from spotify_platform.core.staging.one_day import StagedDay, empty_candidates
from spotify_platform.core.staging.quarantine import day_quarantine
from spotify_platform.spark import tasks

# A raw file is staged by one task per SHARE_BYTES of gzip (about 180k of the simulator's
# plays), at most MAX_SHARES: each reads the whole file and stages every n-th block of
# BLOCK_BYTES of text, so a big file keeps every core busy.
SHARE_BYTES = int(os.environ.get("SPARK_SHARE_BYTES", 16 << 20))
MAX_SHARES = 64
BLOCK_BYTES = buckets.BLOCK_BYTES
# Rows per partition the aggregates are built in: one task's frame and builder memory.
AGGREGATE_PARTITION_ROWS = int(os.environ.get("SPARK_AGGREGATE_PARTITION_ROWS", 2_000_000))


def spark_session(master: str | None = None, app: str = "spotify-platform-staging") -> SparkSession:
    """The job's session; `master` only when not set by spark-submit (tests, tools)."""
    builder = SparkSession.builder.appName(app)
    if master:
        builder = builder.master(master)
    return builder.getOrCreate()


def stage_days_on_spark(
    spark: SparkSession,
    lake: dict,
    key: bytes,
    days: list[dt.date],
    log: Callable[[str], None] | None = None,
) -> dict[dt.date, dict]:
    """Stage every one of `days` that has raw files, and write its four aggregates; the stats
    of each (`lake_io.day_stats`), as `stage_lake_days` gives them. `lake` is the keyword
    arguments of the lake's `Lake`."""
    say = log or (lambda line: None)
    store = Lake(**lake)
    raw = store.keys_by_day(RAW_ROOT, days)
    present = [day for day in days if day in raw]
    absent = [day for day in days if day not in raw]
    clear_staged(store, absent)
    clear_aggregates(store, days)
    if not present:
        return {}
    files = [
        (day.isoformat(), rank, source_file, share, shares)
        for day in present
        for rank, source_file in enumerate(sorted(raw[day]))
        for shares in [_shares(raw[day][source_file])]
        for share in range(shares)
    ]
    work = spark.createDataFrame(
        files, "_day string, _rank int, key string, _share int, _shares int"
    ).repartition(len(files))
    stage = partial(tasks.stage_files, lake=lake, key=key, block_bytes=BLOCK_BYTES)
    staged = work.mapInArrow(stage, tasks.spark_ddl(tasks.CANDIDATES))
    # On disk, serialized as it comes: a big day's rows never need to fit the JVM's heap.
    staged = staged.persist(StorageLevel.DISK_ONLY)
    try:
        notes = _notes(staged)
        raw_files = sum(len(raw[day]) for day in present)
        say(f"staged {raw_files} raw files of {len(present)} days in {len(files)} tasks")
        written = _write_days(staged.where(F.col("_note").isNull()).drop("_note"), lake, notes)
    finally:
        staged.unpersist()
    say(f"wrote {sum(written.values()):,} staged rows")
    with_rows = [day for day in present if written.get(day)]
    _build_aggregates(spark, lake, with_rows, sum(written.values()))
    for table in tasks.AGGREGATES:
        for day in present:
            store.write_bytes(aggregate_done_key(table, day), b"")
    say("wrote the aggregates " + ", ".join(tasks.AGGREGATES))
    return {day: _finish_day(store, day, notes[day], written.get(day, 0)) for day in present}


def _shares(size: int) -> int:
    """How many tasks stage a raw file of `size` gzip bytes, each a share of its blocks."""
    return max(1, min(MAX_SHARES, -(-size // SHARE_BYTES)))


def _notes(staged: DataFrame) -> dict[dt.date, list[list[dict]]]:
    """Each day's files in key order, each as its shares' notes."""
    rows = staged.where(F.col("_note").isNotNull()).select("_day", "_rank", "_note").collect()
    notes: dict[dt.date, dict[int, list[dict]]] = {}
    for row in rows:
        day = dt.date.fromisoformat(row["_day"])
        notes.setdefault(day, {}).setdefault(row["_rank"], []).append(pickle.loads(row["_note"]))
    return {day: [files[rank] for rank in sorted(files)] for day, files in notes.items()}


def _write_days(
    rows: DataFrame, lake: dict, notes: dict[dt.date, list[list[dict]]]
) -> dict[dt.date, int]:
    """Each day's rows in event id order as its staged file, the first of each id in arrival
    order (file, then row) kept; rows written per day. One shuffle and sort does both: a
    day's rows meet in one task, sorted by id and then arrival. Days whose rows were all
    quarantined get an empty file, as in the pandas engine."""
    day_rows = {
        day.isoformat(): sum(share["candidates"] for shares in found for share in shares)
        for day, found in notes.items()
    }
    ordered = rows.repartition("_day").sortWithinPartitions("_day", "event_id", "_rank", "_seq")
    written = ordered.mapInArrow(
        partial(tasks.write_days, lake=lake, day_rows=day_rows), "day string, rows bigint"
    ).collect()
    counts = {dt.date.fromisoformat(row["day"]): row["rows"] for row in written}
    store = Lake(**lake)
    for day in notes:
        if day not in counts:
            store.write_parquet(staging_key(day), empty_candidates())
    return counts


def _build_aggregates(spark: SparkSession, lake: dict, days: list[dt.date], rows: int) -> None:
    """The aggregates of the staged files of `days`, read back as the warehouse asset reads
    them, each built over rows partitioned by the key its table is split by."""
    if not days:
        return
    # Staged instants are nanoseconds, which Spark's timestamps cannot hold: read as int64.
    spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    store = Lake(**lake)
    staged = spark.read.parquet(*(store.uri(staging_key(day)) for day in days))
    staged = staged.withColumn("_day", F.date_format("dt", "yyyy-MM-dd"))
    partitions = max(
        int(spark.conf.get("spark.sql.shuffle.partitions")), -(-rows // AGGREGATE_PARTITION_ROWS)
    )
    for table, (columns, _, split) in tasks.AGGREGATES.items():
        needed = ["_day", "event_id", *(c for c in columns if c != "dt")]
        spread = (
            staged.select(*dict.fromkeys(needed))
            .repartition(partitions, "_day", split)
            .sortWithinPartitions("_day", "event_id")
        )
        spread.mapInArrow(
            partial(_aggregate_parts, lake=lake, table=table),
            "day string, rows bigint",
        ).collect()


def _aggregate_parts(batches, lake: dict, table: str):
    part = TaskContext.get().partitionId()
    return tasks.build_aggregate_parts(batches, lake, table, part)


def _finish_day(store: Lake, day: dt.date, files: list[list[dict]], written: int) -> dict:
    """The day's quarantine and stats written as the pandas engine writes them; the stats."""
    staged = StagedDay(day=day, streams=pd.DataFrame(), quarantine=pd.DataFrame())
    rejected = [part for shares in files for share in shares for part in share["rejected"]]
    for shares in files:
        staged.raw_records += sum(share["raw_records"] for share in shares)
        tasks.note_file(shares, staged)
    staged.written_rows = written
    staged.duplicates = sum(share["candidates"] for shares in files for share in shares) - written
    staged.quarantine = day_quarantine(rejected, day)
    return write_staged(store, day, staged)
