"""Reading the per-day aggregates an engine wrote to the lake (the Spark engine's parts).

Each part holds the rows of a set of keys no other part of the day holds, in key order; the
day's rows are its parts joined and put in key order, which is the order the aggregate's
builder gives a whole day.
"""

import datetime as dt
from collections.abc import Iterator

import pyarrow as pa

from spotify_platform.core.kpis.aggregates import HOURLY_KEYS
from spotify_platform.core.lake.chunks import StagedBatch, joined_batches
from spotify_platform.core.lake.layout import AGGREGATES_ROOT, aggregate_done_key
from spotify_platform.core.lake.staged import staged_days
from spotify_platform.core.lake.store import LakeStore

# Each lake aggregate's grouping keys: the order of its rows.
AGGREGATE_KEYS = {
    "agg_account_daily": ["dt", "account_id"],
    "agg_artist_daily": ["dt", "artist_id"],
    "agg_track_daily": ["dt", "track_id"],
    "agg_account_hourly": HOURLY_KEYS,
}


def aggregate_parts(lake: LakeStore, table: str, days: list[dt.date]) -> dict[dt.date, list[str]]:
    """The keys of each day's parts, for the days of `days` whose aggregate was written whole
    (its `_SUCCESS` marker is there; a day without plays for the table has no part)."""
    found = lake.keys_by_day(f"{AGGREGATES_ROOT}{table}/", days)
    return {
        day: sorted(k for k in keys if k.endswith(".parquet"))
        for day, keys in found.items()
        if aggregate_done_key(table, day) in keys
    }


def clear_aggregates(lake: LakeStore, days: list[dt.date]) -> None:
    """The days' aggregate parts go: staging a day again (with either engine) makes any parts
    an earlier Spark run wrote stale, and a part a new run does not write again (its keys fell
    to another task) must never be read as the day's."""
    for table in AGGREGATE_KEYS:
        for keys in lake.keys_by_day(f"{AGGREGATES_ROOT}{table}/", days).values():
            for key in keys:
                lake.delete(key)


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
    missing = sorted(staged_days(lake, days) - set(parts))
    if missing:
        raise LookupError(
            f"{table}: no aggregate parts in the lake for staged days {_span(missing)}; "
            "stage them with PROCESSING_ENGINE=spark (the Spark engine writes them)"
        )
    days_rows = ((day, aggregate_day(lake, table, day, parts.get(day, []))) for day in days)
    yield from joined_batches(days_rows, batch_rows)


def _span(days: list[dt.date]) -> str:
    return ", ".join(d.isoformat() for d in days[:5]) + (" ..." if len(days) > 5 else "")
