"""Warehouse layer, facts: fact_streams and the daily aggregates loaded from staging, one
batch of days at a time, atomically."""

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from queue import SimpleQueue

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    multi_asset,
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
from spotify_platform.core.progress import Log, Progress, Stopwatch
from spotify_platform.core.warehouse.connection import WarehouseUnavailable
from spotify_platform.defs.engine import aggregates_from_lake, fact_streams_mode
from spotify_platform.defs.partitions import add_day_metadata, daily_partitions, days_of
from spotify_platform.defs.progress import step_log
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform.defs.resources.warehouse import WAREHOUSE_POOL, WarehouseResource

STAGING = AssetKey(["lake", "staging_streams"])
# How often a step waiting for its fact load passes the load's progress on.
RELAY_WAIT_S = 0.5
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
    check: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    log: Log | None = None,
) -> dict[str, int]:
    """Replace `table`'s rows for `days` by the batches' rows as they are (a big day's chunk
    by chunk), each frame through `check` first when given; rows loaded per day. Each batch
    is one transaction, logged as it is committed with its rate. Days without rows lose any
    rows they had. (Aggregates built from staged rows go through `_load_aggregates`.)
    """
    loader = _Loader(warehouse, table, days, log)
    for batch in batches:
        if check is None:
            loader.load(batch, batch.frames)
        else:
            loader.load(batch, lambda batch=batch: (check(f) for f in batch.frames()))
    return loader.per_day


class _Loader:
    """One table's batches loaded one transaction each: rows per day, progress, and a clear
    failure naming what stays loaded when the warehouse goes away."""

    def __init__(
        self, warehouse: WarehouseResource, table: str, days: list[dt.date], log: Log | None
    ) -> None:
        self.warehouse, self.table, self.days, self.log = warehouse, table, days, log
        self.per_day: dict[str, int] = {}
        self.watch, self.plays = Stopwatch(len(days)), 0

    def load(self, batch: StagedBatch, frames: Callable[[], Iterator[pd.DataFrame]]) -> None:
        self.plays += batch.rows
        counts: Counter[pd.Timestamp] = Counter()
        try:
            parts = partial(_counted, frames, counts)
            rows = self.warehouse.replace_days_in_parts(self.table, batch.days, parts)
        except WarehouseUnavailable as exc:
            done, total = sorted(self.per_day), len(self.days)
            raise _lost_warehouse(exc, self.table, batch.days, done, total) from None
        self.per_day.update({d.isoformat(): int(counts[pd.Timestamp(d)]) for d in batch.days})
        release_memory(max(rows, batch.rows))
        if self.log is not None:
            first, last = batch.days[0], batch.days[-1]
            span = f"{first}" if first == last else f"{first}..{last}"
            line = f"{self.table}: {span} loaded ({rows:,} rows)"
            self.log(self.watch.progress(line, len(self.per_day), self.plays))


def _counted(
    frames: Callable[[], Iterator[pd.DataFrame]], counts: Counter[pd.Timestamp]
) -> Iterator[pd.DataFrame]:
    """The frames as they come, their rows counted per day into `counts` (cleared first: a
    retried transaction counts again)."""
    counts.clear()
    for frame in frames():
        counts.update(pd.to_datetime(frame["dt"]).value_counts().to_dict())
        yield frame


FACT_STREAMS = AssetKey(["warehouse", "fact_streams"])


@dataclass(frozen=True)
class Aggregate:
    """A daily aggregate table: built from the staged columns it needs, checked by its model."""

    table: str
    description: str
    columns: list[str]
    build: Callable[[pd.DataFrame], pd.DataFrame]
    model: type

    @property
    def key(self) -> AssetKey:
        return AssetKey(["warehouse", self.table])


AGGREGATES = [
    Aggregate(
        "agg_account_daily",
        "One row per account and day: the base for DAU/WAU/MAU, churn and retention.",
        buckets.STAGED_COLUMNS["agg_account_daily"],
        aggregates.account_daily,
        AggAccountDaily,
    ),
    Aggregate(
        "agg_artist_daily",
        "Streams, listeners and minutes per day and artist: top artists, genre shares.",
        buckets.STAGED_COLUMNS["agg_artist_daily"],
        aggregates.artist_daily,
        AggArtistDaily,
    ),
    Aggregate(
        "agg_track_daily",
        "Streams, listeners and minutes per day and track: the top tracks' base.",
        buckets.STAGED_COLUMNS["agg_track_daily"],
        aggregates.track_daily,
        AggTrackDaily,
    ),
    Aggregate(
        "agg_account_hourly",
        "Plays and streams per account, hour, country and platform: engagement and platform mix.",
        buckets.STAGED_COLUMNS["agg_account_hourly"],
        aggregates.account_hourly,
        AggAccountHourly,
    ),
    Aggregate(
        "agg_account_segment_daily",
        "Streams per account, day, country and platform: the segments of listeners at risk.",
        buckets.STAGED_COLUMNS["agg_account_segment_daily"],
        lifecycle.account_segment_daily,
        AggAccountSegmentDaily,
    ),
    Aggregate(
        "agg_account_sessions",
        "Each account's plays of the day cut into sessions on their own: kpi_sessions' base.",
        buckets.STAGED_COLUMNS["agg_account_sessions"],
        sessions.account_sessions,
        AggAccountSessions,
    ),
]


def warehouse_spec(
    key: AssetKey, description: str, deps: tuple[AssetKey, ...] = (STAGING,)
) -> AssetSpec:
    """An asset of the warehouse group, read from `deps` (the staged days unless told)."""
    return AssetSpec(
        key,
        deps=list(deps),
        description=description,
        group_name=COMMON["group_name"],
        kinds=COMMON["kinds"],
    )


@multi_asset(
    name="warehouse_facts",
    specs=[
        warehouse_spec(
            FACT_STREAMS,
            "One row per stream event; a day is replaced atomically (delete + insert).",
        ),
        *(warehouse_spec(a.key, a.description) for a in AGGREGATES),
    ],
    can_subset=True,
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
)
def warehouse_facts(
    context: AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource
) -> Iterator[MaterializeResult]:
    """fact_streams and the daily aggregates, each from the staged days on its own.

    One step, because the fact load is the server's work at one core while the aggregates
    are this process's: on MySQL the load runs in a thread beside them, and the step takes
    about the longer of the two rather than their sum. SQLite has one writer at a time, so
    there they go one after another. The aggregates read the staged rows rather than the
    facts, so neither waits for the other; `fact_streams_reconcile` proves the facts equal
    to the same staged rows.
    """
    warehouse.check_connection()
    days = days_of(context)
    selected = context.selected_asset_keys
    beside = warehouse.writes_side_by_side
    relay = _Relay(step_log(context, "fact_streams"))
    with ThreadPoolExecutor(1, thread_name_prefix="fact-load") as pool:
        facts = None
        if FACT_STREAMS in selected:
            load = partial(_load_facts, lake, warehouse, days, relay.put if beside else relay.log)
            facts = pool.submit(load) if beside else _done(load())
        try:
            for group in _by_split_key([a for a in AGGREGATES if a.key in selected]):
                logs = {a.table: relay.beside(step_log(context, a.table)) for a in group}
                loaded = _load_aggregates(lake, warehouse, days, group, logs)
                for aggregate in group:
                    _partition_row_counts(context, loaded[aggregate.table], aggregate.key)
                    yield MaterializeResult(asset_key=aggregate.key)
        except Failure as failed:
            raise _both_failed(facts, failed) from None
        if facts is not None:
            per_day, seconds = relay.until_done(facts)
            _partition_row_counts(context, per_day, FACT_STREAMS)
            context.log.info(
                f"fact_streams: {sum(per_day.values())} rows over {len(per_day)} days, "
                f"loaded in {seconds:.2f} s"
            )
            yield MaterializeResult(
                asset_key=FACT_STREAMS,
                metadata={"table": warehouse.display_url + "#fact_streams"},
            )


class _Relay:
    """The fact load's progress, told from its thread and logged by the step's own: lines
    logged from another thread do not reach the run's log. They are passed on whenever the
    step logs anything else, and while it waits for the load."""

    def __init__(self, log: Log) -> None:
        self.log, self.queue = log, SimpleQueue()

    def put(self, item: Progress | str) -> None:
        self.queue.put(item)

    def drain(self) -> None:
        while not self.queue.empty():
            self.log(self.queue.get())

    def beside(self, log: Log) -> Log:
        def both(item: Progress | str) -> None:
            self.drain()
            log(item)

        return both

    def until_done(self, future: Future):
        while True:
            try:
                result = future.result(timeout=RELAY_WAIT_S)
            except FutureTimeout:
                self.drain()
                continue
            self.drain()
            return result


def _both_failed(facts: Future | None, failed: Failure) -> Failure:
    """An aggregate's failure, with the fact load's when it failed too (a lost warehouse
    fails both): what each kept is in its own message."""
    error = None if facts is None else facts.exception()
    if not isinstance(error, Failure):
        return failed
    return Failure(
        description=f"{error.description}\n{failed.description}",
        metadata={**failed.metadata, **{f"fact_streams_{k}": v for k, v in error.metadata.items()}},
    )


def _done(value: tuple[dict[str, int], float]) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def _load_facts(
    lake: LakeResource, warehouse: WarehouseResource, days: list[dt.date], log: Log
) -> tuple[dict[str, int], float]:
    """The rows loaded per day, and the seconds the load took on its own."""
    started = time.monotonic()
    batches = staged_batches(lake, days, None, warehouse.batch_rows, warehouse.chunk_rows)
    if fact_streams_mode() == "skip":
        # The staged Parquet in the lake is the fact table: the days are emptied here.
        batches = no_fact_rows(days)
    per_day = _load_batches(warehouse, "fact_streams", days, batches, log=log)
    return per_day, time.monotonic() - started


def _by_split_key(chosen: list[Aggregate]) -> list[list[Aggregate]]:
    """The aggregates in groups that split a big day by the same key (four by account)."""
    groups: dict[str, list[Aggregate]] = {}
    for aggregate in chosen:
        groups.setdefault(buckets.SPLIT_BY[aggregate.table], []).append(aggregate)
    return list(groups.values())


def _load_aggregates(
    lake: LakeResource,
    warehouse: WarehouseResource,
    days: list[dt.date],
    group: list[Aggregate],
    logs: dict[str, Log],
) -> dict[str, dict[str, int]]:
    """Each aggregate's rows for the days, computed from the staged days (the facts' own rows,
    as `fact_streams_reconcile` proves) rather than by scanning the facts; rows per table and
    day. A group that splits by one key reads the staged days once, and spills a big day
    into buckets of that key once, for all its tables; each table is still its own
    transaction per batch. With the Spark engine, the four aggregates it writes beside the
    staged days are loaded from the lake instead (`_load_written`)."""
    loaded: dict[str, dict[str, int]] = {}
    if aggregates_from_lake():
        for aggregate in [a for a in group if a.table in AGGREGATE_KEYS]:
            loaded[aggregate.table] = _load_written(
                lake, warehouse, days, aggregate, logs[aggregate.table]
            )
        group = [a for a in group if a.table not in loaded]
        if not group:
            return loaded
    columns = list(dict.fromkeys(c for aggregate in group for c in aggregate.columns))
    key, chunk_rows = buckets.SPLIT_BY[group[0].table], warehouse.chunk_rows
    loaders = {a.table: _Loader(warehouse, a.table, days, logs[a.table]) for a in group}
    for batch in staged_batches(lake, days, columns, warehouse.batch_rows, chunk_rows):
        with _staged_once(batch, key, chunk_rows) as frames:
            for aggregate in group:
                loaders[aggregate.table].load(batch, partial(_each_built, frames, aggregate))
    return loaded | {table: loader.per_day for table, loader in loaders.items()}


def _load_written(
    lake: LakeResource,
    warehouse: WarehouseResource,
    days: list[dt.date],
    aggregate: Aggregate,
    log: Log,
) -> dict[str, int]:
    """An aggregate the Spark engine wrote to the lake as it staged the days, loaded as it is
    (checked by its model)."""
    batches = aggregate_batches(lake, aggregate.table, days, warehouse.batch_rows)
    return _load_batches(warehouse, aggregate.table, days, batches, aggregate.model.validate, log)


@contextmanager
def _staged_once(
    batch: StagedBatch, key: str, chunk_rows: int
) -> Iterator[Callable[[], Iterator[pd.DataFrame]]]:
    """A batch's staged rows for several builds: small days read once and kept (a batch's
    worth at most); a big day spilled once into buckets of `key`, read bucket by bucket."""
    if not batch.chunked:
        frames = list(batch.frames())
        yield lambda: iter(frames)
    else:
        with buckets.spilled(batch.tables(), key, batch.buckets(chunk_rows)) as paths:
            yield lambda: buckets.bucket_frames(paths)


def _each_built(
    frames: Callable[[], Iterator[pd.DataFrame]], aggregate: Aggregate
) -> Iterator[pd.DataFrame]:
    for frame in frames():
        yield aggregate.model.validate(aggregate.build(frame[aggregate.columns]))


def _partition_row_counts(
    context: AssetExecutionContext, per_day: dict[str, int], key: AssetKey
) -> None:
    """Each day's own row count on its own materialization (`add_day_metadata`). Metadata
    returned for a range is copied onto every day of it: a range's total (or a table of all
    its days) would be shown as each day's, and years of days would store that table once per
    day."""
    counts = {day: {"dagster/partition_row_count": rows} for day, rows in per_day.items()}
    total = {"rows_in_run": sum(per_day.values())} if len(per_day) > 1 else {}
    add_day_metadata(context, counts, key, total)


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
