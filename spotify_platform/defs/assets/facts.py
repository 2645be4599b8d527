"""Warehouse layer, facts: fact_streams and the daily aggregates loaded from staging, one
batch of days at a time, atomically."""

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    asset,
)

from spotify_platform.core.contracts.schemas import (
    AggAccountDaily,
    AggAccountHourly,
    AggAccountSegmentDaily,
    AggAccountSessions,
    AggArtistDaily,
    AggTrackDaily,
)
from spotify_platform.core.kpis import aggregates, buckets, lifecycle, sessions
from spotify_platform.core.lake.aggregated import AGGREGATE_KEYS, aggregate_batches
from spotify_platform.core.lake.chunks import StagedBatch, no_fact_rows, staged_batches
from spotify_platform.core.memory import release_memory
from spotify_platform.core.progress import Log, Stopwatch
from spotify_platform.core.warehouse.connection import WarehouseUnavailable
from spotify_platform.defs.engine import aggregates_from_lake, fact_streams_mode
from spotify_platform.defs.partitions import daily_partitions, days_of
from spotify_platform.defs.progress import step_log
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform.defs.resources.warehouse import WAREHOUSE_POOL, WarehouseResource

STAGING = AssetKey(["lake", "staging_streams"])
# Settings of every asset of the warehouse group, dimensions included.
COMMON = {
    "group_name": "warehouse",
    "kinds": {"mysql", "pandas"},
    "partitions_def": daily_partitions,
    "backfill_policy": BackfillPolicy.single_run(),
    "pool": WAREHOUSE_POOL,
}


def _load_batches(
    warehouse: WarehouseResource,
    table: str,
    days: list[dt.date],
    batches: Iterator[StagedBatch],
    build: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    key: str = "account_id",
    log: Log | None = None,
) -> dict[str, int]:
    """Replace `table`'s rows for `days` by `build` of their staged rows (the rows themselves
    without it), batch by batch; rows loaded per day. Each batch is one transaction, logged as
    it is committed with its rate.

    `build` sees a batch of small days at once (it groups by dt among its keys), so a month of
    small days is built in a few calls rather than thirty. A big day's rows go in as they are
    read, chunk by chunk; built, a bucket of its `key` values at a time (`buckets`), which
    makes the same rows. Days without staged rows lose any rows they had.
    """
    per_day: dict[str, int] = {}
    watch, plays = Stopwatch(len(days)), 0
    for batch in batches:
        plays += batch.rows
        counts: Counter[pd.Timestamp] = Counter()
        try:
            with _built(batch, build, key, warehouse.chunk_rows) as frames:
                parts = partial(_counted, frames, counts)
                rows = warehouse.replace_days_in_parts(table, batch.days, parts)
        except WarehouseUnavailable as exc:
            raise _lost_warehouse(exc, table, batch.days, sorted(per_day), len(days)) from None
        per_day.update({d.isoformat(): int(counts[pd.Timestamp(d)]) for d in batch.days})
        release_memory(max(rows, batch.rows))
        if log is not None:
            first, last = batch.days[0], batch.days[-1]
            span = f"{first}" if first == last else f"{first}..{last}"
            log(watch.progress(f"{table}: {span} loaded ({rows:,} rows)", len(per_day), plays))
    return per_day


def _counted(
    frames: Callable[[], Iterator[pd.DataFrame]], counts: Counter[pd.Timestamp]
) -> Iterator[pd.DataFrame]:
    """The frames as they come, their rows counted per day into `counts` (cleared first: a
    retried transaction counts again)."""
    counts.clear()
    for frame in frames():
        counts.update(pd.to_datetime(frame["dt"]).value_counts().to_dict())
        yield frame


@contextmanager
def _built(
    batch: StagedBatch,
    build: Callable[[pd.DataFrame], pd.DataFrame] | None,
    key: str,
    chunk_rows: int,
) -> Iterator[Callable[[], Iterator[pd.DataFrame]]]:
    """The frames to load for a batch, as a callable a retried transaction calls again: its
    staged rows, or `build` of them; for a big day, `build` of each bucket of its plays,
    spilled to a temporary folder once before the transaction starts."""
    if build is None:
        yield batch.frames
    elif not batch.chunked:
        yield lambda: (build(frame) for frame in batch.frames())
    else:
        with buckets.spilled(batch.tables(), key, batch.buckets(chunk_rows)) as paths:
            yield lambda: buckets.bucketed(build, paths)


@asset(
    key=["warehouse", "fact_streams"],
    deps=[STAGING],
    description="One row per stream event; a day is replaced atomically (delete + insert).",
    **COMMON,
)
def fact_streams(
    context: AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource
) -> MaterializeResult:
    warehouse.check_connection()

    days = days_of(context)
    batches = staged_batches(lake, days, None, warehouse.batch_rows, warehouse.chunk_rows)
    if fact_streams_mode() == "skip":
        batches = no_fact_rows(days)
    per_day = _load_batches(warehouse, "fact_streams", days, batches, log=step_log(context))
    _partition_row_counts(context, per_day)
    context.log.info(f"fact_streams: {sum(per_day.values())} rows over {len(per_day)} days")
    return MaterializeResult(metadata={"table": warehouse.display_url + "#fact_streams"})


def _partition_row_counts(context: AssetExecutionContext, per_day: dict[str, int]) -> None:
    """Each day's own row count on its own materialization. Metadata returned for a range is
    copied onto every day of it: a range's total (or a table of all its days) would be shown
    as each day's, and years of days would store that table once per day."""
    for day, rows in per_day.items():
        context.add_asset_metadata({"dagster/partition_row_count": rows}, partition_key=day)


def _aggregate_asset(
    table: str,
    description: str,
    columns: list[str],
    build: Callable[[pd.DataFrame], pd.DataFrame],
    model: type,
):
    """An aggregate table's asset: each day's rows computed from the staged day (the blocking
    reconciliation has proven it equal to fact_streams) rather than by scanning the facts."""

    @asset(
        key=["warehouse", table],
        deps=[STAGING, AssetKey(["warehouse", "fact_streams"])],
        description=description,
        **COMMON,
    )
    def _aggregate(
        context: AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource
    ) -> MaterializeResult:
        days = days_of(context)
        batches = staged_batches(lake, days, columns, warehouse.batch_rows, warehouse.chunk_rows)

        def built(staged: pd.DataFrame) -> pd.DataFrame:
            return model.validate(build(staged))

        if aggregates_from_lake() and table in AGGREGATE_KEYS:
            # Written to the lake by the Spark engine as it staged the days.
            batches = aggregate_batches(lake, table, days, warehouse.batch_rows)
            built = model.validate
        per_day = _load_batches(
            warehouse,
            table,
            days,
            batches,
            built,
            key=buckets.SPLIT_BY[table],
            log=step_log(context),
        )
        _partition_row_counts(context, per_day)
        return MaterializeResult()

    return _aggregate


agg_account_daily = _aggregate_asset(
    "agg_account_daily",
    "One row per account and day: the base for DAU/WAU/MAU, churn and retention.",
    ["dt", "account_id", "content_type", "skipped", "is_stream", "ms_played", "country"],
    aggregates.account_daily,
    AggAccountDaily,
)
agg_artist_daily = _aggregate_asset(
    "agg_artist_daily",
    "Streams, listeners and minutes per day and artist: top artists, genre shares.",
    ["dt", "account_id", "is_stream", "ms_played", "ended_at", "artist_id", "artist_name"],
    aggregates.artist_daily,
    AggArtistDaily,
)
agg_track_daily = _aggregate_asset(
    "agg_track_daily",
    "Streams, listeners and minutes per day and track: the top tracks' base.",
    ["dt", "account_id", "is_stream", "ms_played", "ended_at"]
    + ["track_id", "track_name", "artist_name"],
    aggregates.track_daily,
    AggTrackDaily,
)
agg_account_hourly = _aggregate_asset(
    "agg_account_hourly",
    "Plays and streams per account, hour, country and platform: engagement and platform mix.",
    [*aggregates.HOURLY_KEYS, "is_stream", "ms_played"],
    aggregates.account_hourly,
    AggAccountHourly,
)
agg_account_segment_daily = _aggregate_asset(
    "agg_account_segment_daily",
    "Streams per account, day, country and platform: the segments of listeners at risk.",
    ["dt", "account_id", "country", "platform", "is_stream"],
    lifecycle.account_segment_daily,
    AggAccountSegmentDaily,
)
agg_account_sessions = _aggregate_asset(
    "agg_account_sessions",
    "Each account's plays of the day cut into sessions on their own: kpi_sessions' base.",
    ["dt", "account_id", "started_at", "ended_at", "ms_played"],
    sessions.account_sessions,
    AggAccountSessions,
)


def _lost_warehouse(
    exc: WarehouseUnavailable, table: str, batch: list[dt.date], done: list[str], total: int
) -> Failure:
    """The warehouse went away in the middle of a range: say what stays and what to do.

    Each batch of days is its own transaction, so the days before the failure are loaded for
    good and the failing batch still holds its previous version; running the range again
    finishes it.
    """
    if len(batch) == 1:
        failed, kept = batch[0].isoformat(), "that day keeps its"
    else:
        failed, kept = f"{batch[0]}..{batch[-1]}", "those days keep their"
    return Failure(
        description=(
            f"{exc}. {table}: {len(done)} of {total} days were loaded before {failed} failed "
            f"and stay loaded; {kept} previous rows. Run the same range again to finish."
        ),
        metadata={"days_loaded": done, "failed_days": [d.isoformat() for d in batch]},
    )
