"""Reading the staged layer: which days have staged rows, and those rows.

A day without raw files has no staged files at all (staging writes nothing for it), so a
range of years costs a listing per year here, and a Parquet read per day that had plays.
Small days are read a few at a time in threads and joined as Arrow tables, so years of days
with a handful of plays become one frame without a pandas frame per day.
"""

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pyarrow as pa

from spotify_platform.core.lake.layout import STAGING_ROOT, staging_key
from spotify_platform.core.lake.store import LakeStore, arrow_frame, may_share_buffers

READ_THREADS = 2
# Staged files read ahead together: enough small days to keep both threads busy, and never
# more than one big day at a time.
READ_AHEAD_BYTES = 32 << 20

StagedTables = Iterator[tuple[dt.date, pa.Table | None]]


def staged_sizes(lake: LakeStore, days: list[dt.date]) -> dict[dt.date, int]:
    """The days among `days` whose staged rows exist, with the size of their Parquet file."""
    sizes = {}
    for day, keys in lake.keys_by_day(STAGING_ROOT, days).items():
        if staging_key(day) in keys:
            sizes[day] = keys[staging_key(day)]
    return sizes


def staged_days(lake: LakeStore, days: list[dt.date]) -> set[dt.date]:
    """The days among `days` whose staged rows exist."""
    return set(staged_sizes(lake, days))


def staged_tables(
    lake: LakeStore, days: list[dt.date], columns: list[str] | None = None
) -> StagedTables:
    """Each of `days` in order with its staged columns as an Arrow table, None for a day
    without staged rows."""
    sizes = staged_sizes(lake, days)

    def read(day: dt.date) -> pa.Table | None:
        return lake.read_arrow(staging_key(day), columns) if day in sizes else None

    with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="staged-read") as pool:
        ahead: list[dt.date] = []
        weight = 0
        for day in days:
            ahead.append(day)
            weight += sizes.get(day, 0)
            if weight >= READ_AHEAD_BYTES:
                yield from zip(ahead, pool.map(read, ahead), strict=True)
                ahead, weight = [], 0
        yield from zip(ahead, pool.map(read, ahead), strict=True)


def joined_frame(tables: list[pa.Table]) -> pd.DataFrame | None:
    """Tables of several days as one frame (text in Arrow); None when there are none.

    Days without rows are left out: their all-null columns have no type to join on."""
    tables = [t for t in tables if t.num_rows] or tables[:1]
    if not tables:
        return None
    owned = not any(may_share_buffers(t) for t in tables)
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
    return arrow_frame(table, arrow_strings=True, consume=owned)

