"""Staging against the lake: a day's raw files read, its staged rows, quarantine and stats
written beside them.

The stats are what the Dagster layer reports per day; they are written to the lake too, so
later steps and reruns read them without staging again.
"""

import datetime as dt
import json
import os

import pandas as pd

from spotify_platform.core.lake.layout import (
    QUARANTINE_ROOT,
    STAGING_ROOT,
    quarantine_key,
    staging_key,
    staging_stats_key,
)
from spotify_platform.core.lake.store import LakeStore, parquet_bytes
from spotify_platform.core.memory import release_memory
from spotify_platform.core.sources.raw import RawBatch, parse_jsonl
from spotify_platform.core.staging.buckets import stage_day_in_buckets
from spotify_platform.core.staging.one_day import StagedDay, stage_day
from spotify_platform.core.staging.small_days import stage_days

# Raw gzip bytes from which a day is staged in buckets (`STAGING_STREAM_DAY_BYTES`): about
# 700k plays of the simulator's.
STREAM_DAY_BYTES = int(os.environ.get("STAGING_STREAM_DAY_BYTES", 64 << 20))
# Parquet files of empty quarantines by column types: most days of a history have nothing in
# quarantine, and encoding the same empty file for each of thousands cost more than its write.
_EMPTY_QUARANTINE: dict[tuple, bytes] = {}


def read_raw(lake: LakeStore, key: str) -> RawBatch:
    try:
        return parse_jsonl(lake.read_bytes(key))
    except (OSError, EOFError, ValueError) as exc:
        raise RuntimeError(f"raw file {lake.uri(key)} is unreadable as a whole: {exc}") from exc


def stage_stored_day(lake: LakeStore, key: bytes, day: dt.date, raw_keys: list[str]) -> dict:
    """Stage one day's raw files into the lake: its rows and its quarantine; the day's stats.

    A day of at least STREAM_DAY_BYTES of raw files is staged in buckets of event ids
    (`buckets`), in memory that does not grow with the day; a smaller one whole, which is
    faster for it and gives the same files."""
    if sum(lake.size(k) for k in raw_keys) >= STREAM_DAY_BYTES:
        stats = write_staged(lake, day, stage_day_in_buckets(lake, key, day, raw_keys))
        release_memory(stats["raw_records"])
        return stats
    batches = {k: read_raw(lake, k) for k in raw_keys}
    stats = write_staged(lake, day, stage_day(batches, key=key, day=day))
    del batches
    release_memory(stats["raw_records"])
    return stats


def stage_stored_days(
    lake: LakeStore, key: bytes, raw: dict[dt.date, list[str]]
) -> dict[dt.date, dict]:
    """Stage small days in one pass (`stage_days`), each written as `stage_stored_day` does."""
    batches = {day: {k: read_raw(lake, k) for k in keys} for day, keys in raw.items()}
    staged = stage_days(batches, key=key)
    del batches
    return {day: write_staged(lake, day, staged.pop(day)) for day in raw}


def write_staged(lake: LakeStore, day: dt.date, staged: StagedDay) -> dict:
    """A staged day's rows, quarantine and stats into the lake; the stats."""
    if staged.written_rows is None:
        rows = staged.streams if staged.table is None else staged.table
        lake.write_parquet(staging_key(day), rows)
    _write_quarantine(lake, day, staged.quarantine)
    stats = day_stats(staged)
    lake.write_bytes(staging_stats_key(day), json.dumps(stats).encode())
    return stats


def _write_quarantine(lake: LakeStore, day: dt.date, frame: pd.DataFrame) -> None:
    if len(frame):
        lake.write_parquet(quarantine_key(day), frame)
        return
    signature = tuple((name, str(dtype)) for name, dtype in frame.dtypes.items())
    if signature not in _EMPTY_QUARANTINE:
        _EMPTY_QUARANTINE[signature] = parquet_bytes(frame)
    lake.write_bytes(quarantine_key(day), _EMPTY_QUARANTINE[signature])


def day_stats(staged: StagedDay) -> dict:
    return {
        "raw_records": staged.raw_records,
        "staged_rows": staged.staged_rows,
        "quarantined_rows": staged.rejected,
        "duplicates_removed": staged.duplicates,
        "files": staged.files,
        "reasons": staged.reason_counts(),
        "unknown_fields": staged.unknown_fields,
        "missing_fields": staged.missing_fields,
    }


def no_raw_stats(day: dt.date) -> dict:
    """The stats of a day without raw files."""
    return day_stats(StagedDay(day, pd.DataFrame(), pd.DataFrame()))


def clear_staged(lake: LakeStore, days: list[dt.date]) -> None:
    """Days without raw files have no staged files: any left from an earlier run go, so a
    reader never takes them for the day's rows."""
    for root in (STAGING_ROOT, QUARANTINE_ROOT):
        for keys in lake.keys_by_day(root, days).values():
            for key in keys:
                lake.delete(key)
