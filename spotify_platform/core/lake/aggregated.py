"""Reading the per-day aggregates an engine wrote to the lake (the Spark engine's parts).

Each part holds the rows of a set of keys no other part of the day holds, in key order; the
day's rows are its parts joined and put in key order, which is the order the aggregate's
builder gives a whole day.
"""

import datetime as dt
from collections.abc import Iterator

import pyarrow as pa

from spotify_platform.core.kpis.aggregates import HOURLY_KEYS
from spotify_platform.core.lake.chunks import StagedBatch
from spotify_platform.core.lake.layout import AGGREGATES_ROOT
from spotify_platform.core.lake.store import LakeStore

# Each lake aggregate's grouping keys: the order of its rows.
AGGREGATE_KEYS = {
    "agg_account_daily": ["dt", "account_id"],
    "agg_artist_daily": ["dt", "artist_id"],
    "agg_track_daily": ["dt", "track_id"],
    "agg_account_hourly": HOURLY_KEYS,
}


def aggregate_parts(lake: LakeStore, table: str, days: list[dt.date]) -> dict[dt.date, list[str]]:
    """The keys of each day's parts, for the days of `days` that have any."""
    found = lake.keys_by_day(f"{AGGREGATES_ROOT}{table}/", days)
    return {day: sorted(k for k in keys if k.endswith(".parquet")) for day, keys in found.items()}


def aggregate_day(
    lake: LakeStore, table: str, day: dt.date, keys: list[str] | None = None
) -> pa.Table | None:
    """A day's aggregate rows in key order; None for a day without parts."""
    if keys is None:
        keys = aggregate_parts(lake, table, [day]).get(day, [])
    if not keys:
        return None
    parts = [lake.read_arrow(key) for key in keys]
    joined = parts[0] if len(parts) == 1 else pa.concat_tables(parts, promote_options="default")
    return joined.sort_by([(key, "ascending") for key in AGGREGATE_KEYS[table]])


def aggregate_batches(
    lake: LakeStore, table: str, days: list[dt.date], batch_rows: int
) -> Iterator[StagedBatch]:
    """Every one of `days` in order, in batches of consecutive days of about `batch_rows`
    aggregate rows, as the warehouse loader takes staged rows (`chunks.staged_batches`)."""
    parts = aggregate_parts(lake, table, days)
    batch: list[dt.date] = []
    tables: list[pa.Table] = []
    weight = 0
    for day in days:
        batch.append(day)
        rows = aggregate_day(lake, table, day, parts.get(day, []))
        if rows is not None:
            tables.append(rows)
            weight += rows.num_rows
        if weight >= batch_rows:
            yield StagedBatch(batch, weight, lambda tables=tables: iter(tables))
            batch, tables, weight = [], [], 0
    if batch:
        yield StagedBatch(batch, weight, lambda tables=tables: iter(tables))
