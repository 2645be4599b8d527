"""Cross-asset checks: rules that relate one asset's data to another's.

Partitioned checks run for the days of their run (one day, or a single-run backfill's range)
and pass only if every day passes; the metadata names the days that did not.
"""

import datetime as dt
import json
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    SupersessionWarning,
    asset_check,
    build_time_partition_freshness_checks,
)

from spotify_platform.core.contracts.tables import TABLES
from spotify_platform.core.kpis.lifecycle import next_period
from spotify_platform.core.kpis.measures import query
from spotify_platform.core.lake.chunks import day_totals, key_counts
from spotify_platform.core.lake.layout import (
    RAW_ROOT,
    quarantine_key,
    staging_key,
    staging_stats_key,
)
from spotify_platform.core.lake.staged import staged_days
from spotify_platform.core.sources.raw import count_records
from spotify_platform.defs.engine import fact_streams_mode
from spotify_platform.defs.partitions import daily_partitions
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform.defs.resources.warehouse import WAREHOUSE_POOL, WarehouseResource

FRESHNESS_DEADLINE_HOUR = int(os.environ.get("FRESHNESS_DEADLINE_HOUR_UTC", "6"))
SHARE_TOLERANCE = 1e-9
RECOUNT_THREADS = 2
T = TypeVar("T")


def check_days(context: AssetCheckExecutionContext) -> list[dt.date]:
    window = context.partition_time_window
    first = window.start.date()
    return [first + dt.timedelta(days=i) for i in range((window.end.date() - first).days)]


def _key(*parts: str) -> AssetKey:
    return AssetKey(list(parts))


def _result(failures: dict[str, object], checked: list[dt.date], **metadata) -> AssetCheckResult:
    return AssetCheckResult(
        passed=not failures,
        metadata={
            "days_checked": len(checked),
            "failing_days": MetadataValue.json(failures),
            **metadata,
        },
    )


def _raw_lines(lake: LakeResource, keys: list[str]) -> int:
    return sum(count_records(lake.read_bytes(key)) for key in keys)


def _parquet_rows(lake: LakeResource, key: str) -> int:
    """A Parquet object's row count from its footer: no column of a big day is read."""
    with lake.parquet_file(key) as handle:
        return handle.metadata.num_rows


@asset_check(
    asset=_key("lake", "staging_streams"),
    partitions_def=daily_partitions,
    blocking=True,
    description="Raw records = staged rows + quarantined rows + duplicates removed, per day.",
)
def staging_reconciles_with_raw(
    context: AssetCheckExecutionContext, lake: LakeResource
) -> AssetCheckResult:
    days = check_days(context)
    raw_keys = lake.keys_by_day(RAW_ROOT, days)
    staged_on = staged_days(lake, days)
    failures: dict[str, object] = {
        day.isoformat(): {"raw_records": 0, "staged_without_raw_files": True}
        for day in sorted(staged_on - set(raw_keys))
    }
    recounted = [day for day in days if day in raw_keys]
    # Two days recounted at once: inflating and counting let go of the GIL.
    with ThreadPoolExecutor(RECOUNT_THREADS, thread_name_prefix="recount") as pool:
        raw_lines = list(pool.map(lambda day: _raw_lines(lake, raw_keys[day]), recounted))
    for day, raw in zip(recounted, raw_lines, strict=True):
        if day not in staged_on:
            failures[day.isoformat()] = {"raw_records": raw, "staged": "nothing staged"}
            continue
        staged = _parquet_rows(lake, staging_key(day))
        quarantined = _parquet_rows(lake, quarantine_key(day))
        duplicates = json.loads(lake.read_bytes(staging_stats_key(day)))["duplicates_removed"]
        if raw != staged + quarantined + duplicates:
            failures[day.isoformat()] = {
                "raw_records": raw,
                "staged": staged,
                "quarantined": quarantined,
                "duplicates": duplicates,
            }
    return _result(failures, days)


@asset_check(
    asset=_key("warehouse", "fact_streams"),
    partitions_def=daily_partitions,
    blocking=True,
    pool=WAREHOUSE_POOL,
    description="fact_streams holds exactly the staged rows of each day, with equal ms_played.",
)
def fact_streams_reconcile(
    context: AssetCheckExecutionContext, lake: LakeResource, warehouse: WarehouseResource
) -> AssetCheckResult:
    days = check_days(context)
    loaded = warehouse.read_frame(
        query(
            "SELECT dt, COUNT(*) AS n, SUM(ms_played) AS ms FROM fact_streams "
            "WHERE dt BETWEEN :first AND :last GROUP BY dt",
            first=days[0],
            last=days[-1],
        )
    )
    loaded.index = pd.to_datetime(loaded["dt"]).dt.date
    # With WAREHOUSE_FACT_STREAMS=skip the staged Parquet is the fact table: no day has rows.
    skipped = fact_streams_mode() == "skip"
    staged = {} if skipped else day_totals(lake, days, "ms_played", warehouse.chunk_rows)
    failures = {}
    for day in days:
        staged_rows, staged_ms = staged.get(day, (0, 0))
        rows = int(loaded.loc[day, "n"]) if day in loaded.index else 0
        ms = int(loaded.loc[day, "ms"]) if day in loaded.index else 0
        if rows != staged_rows or ms != staged_ms:
            failures[day.isoformat()] = {
                "staged_rows": staged_rows,
                "fact_rows": rows,
                "staged_ms_played": staged_ms,
                "fact_ms_played": ms,
            }
    return _result(failures, days)


DIMENSION_KEYS = {
    "tracks": ("dim_tracks", "track_id"),
    "artists": ("dim_artists", "artist_id"),
    "accounts": ("dim_accounts", "account_id"),
}


@asset_check(
    asset=_key("warehouse", "fact_streams"),
    partitions_def=daily_partitions,
    additional_deps=[
        _key("warehouse", "dim_tracks"),
        _key("warehouse", "dim_artists"),
        _key("warehouse", "dim_accounts"),
    ],
    pool=WAREHOUSE_POOL,
    description="Every fact's track, artist and account exists in its dimension.",
)
def fact_streams_referential_integrity(
    context: AssetCheckExecutionContext, lake: LakeResource, warehouse: WarehouseResource
) -> AssetCheckResult:
    """The days' distinct keys are read from the staged Parquet the fact load wrote, and each
    is looked up in its dimension by the dimension's primary key: tens of thousands of
    lookups rather than a scan of the days' facts that probes every row (2.8 s of a million-
    play day on MariaDB). That the facts are these rows is `fact_streams_reconcile`'s to
    prove; with WAREHOUSE_FACT_STREAMS=skip the staged Parquet is itself the fact table."""
    days = check_days(context)
    keys = key_counts(
        lake, days, [column for _, column in DIMENSION_KEYS.values()], warehouse.chunk_rows
    )

    def orphan_rows(table: str, column: str) -> int:
        counted = keys[column]
        missing = warehouse.absent(table, column, counted["value"].to_pylist())
        orphaned = pc.is_in(counted["value"], pa.array(sorted(missing), counted["value"].type))
        return int(pc.sum(pc.filter(counted["rows"], orphaned)).as_py() or 0)

    # One connection per dimension: the server looks the three up at once.
    with ThreadPoolExecutor(len(DIMENSION_KEYS), thread_name_prefix="dimension-keys") as pool:
        found = {name: pool.submit(orphan_rows, *where) for name, where in DIMENSION_KEYS.items()}
        orphans = {name: future.result() for name, future in found.items()}
    return AssetCheckResult(
        passed=not any(orphans.values()),
        metadata={f"orphan_{name}": n for name, n in orphans.items()},
    )


def _kpi_rows(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource, table: str
) -> tuple[list[dt.date], pd.DataFrame]:
    days = check_days(context)
    t = TABLES[table]
    frame = warehouse.read_frame(sa.select(t).where(t.c.dt.between(days[0], days[-1])))
    frame["dt"] = pd.to_datetime(frame["dt"]).dt.date.astype(str)
    return days, frame


@asset_check(
    asset=_key("warehouse", "kpi_active_users"),
    partitions_def=daily_partitions,
    description="DAU <= WAU <= MAU and stickiness in [0, 1].",
)
def active_users_ordered(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    days, frame = _kpi_rows(context, warehouse, "kpi_active_users")
    bad = frame[
        (frame["dau"] > frame["wau"])
        | (frame["wau"] > frame["mau"])
        | (frame["stickiness"].astype(float) > 1)
        | (frame["stickiness"].astype(float) < 0)
    ]
    return _result({r.dt: [int(r.dau), int(r.wau), int(r.mau)] for r in bad.itertuples()}, days)


RATE_COLUMNS = {
    "kpi_daily_streams": "skip_rate",
    "kpi_churn": "churn_rate",
}


def _rate_check(table: str, column: str) -> AssetChecksDefinition:
    @asset_check(
        asset=_key("warehouse", table),
        partitions_def=daily_partitions,
        name=f"{column}_in_unit_interval",
        description=f"{column} is NULL or within [0, 1].",
    )
    def _check(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
        days, frame = _kpi_rows(context, warehouse, table)
        values = pd.to_numeric(frame[column])
        bad = frame[(values < 0) | (values > 1)]
        return _result({r.dt: float(getattr(r, column)) for r in bad.itertuples()}, days)

    return _check


def _share_check(table: str) -> AssetChecksDefinition:
    @asset_check(
        asset=_key("warehouse", table),
        partitions_def=daily_partitions,
        name="shares_sum_to_one",
        description="Each day's shares are in [0, 1] and add up to 1.",
    )
    def _check(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
        days, frame = _kpi_rows(context, warehouse, table)
        sums = frame.groupby("dt")["share"].sum()
        out_of_range = set(frame.loc[(frame["share"] < 0) | (frame["share"] > 1), "dt"])
        failures = {
            day: float(total)
            for day, total in sums.items()
            if abs(total - 1) > SHARE_TOLERANCE or day in out_of_range
        }
        return _result(failures, days)

    return _check


def _top_list_check(table: str) -> AssetChecksDefinition:
    @asset_check(
        asset=_key("warehouse", table),
        partitions_def=daily_partitions,
        name="dense_ranks_at_most_50",
        description="At most 50 rows a day; ranks dense from 1 and falling with streams.",
    )
    def _check(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
        days, frame = _kpi_rows(context, warehouse, table)
        failures = {}
        for day, rows in frame.groupby("dt"):
            ordered = rows.sort_values(["rank", "streams"], ascending=[True, False])
            ranks = ordered["rank"].astype(int).tolist()
            dense = ranks[0] == 1 and all(
                b - a in (0, 1) for a, b in zip(ranks, ranks[1:], strict=False)
            )
            by_streams = ordered["streams"].astype(int).tolist()
            falling = all(a >= b for a, b in zip(by_streams, by_streams[1:], strict=False))
            if len(rows) > 50 or not dense or not falling:
                failures[day] = {"rows": len(rows), "ranks": ranks[:60]}
        return _result(failures, days)

    return _check


@asset_check(
    asset=_key("warehouse", "kpi_retention"),
    description="Week 0 retention is 1 for every cohort; rates within [0, 1].",
)
def retention_week_zero_is_one(warehouse: WarehouseResource) -> AssetCheckResult:
    frame = warehouse.read_table("kpi_retention")
    week0 = frame[frame["week_offset"] == 0]
    bad = week0[(week0["retention_rate"] - 1).abs() > SHARE_TOLERANCE]
    out_of_range = frame[(frame["retention_rate"] < 0) | (frame["retention_rate"] > 1)]
    return AssetCheckResult(
        passed=bad.empty and out_of_range.empty,
        metadata={
            "cohorts": len(week0),
            "cohorts_not_one_at_week_0": [str(c.date()) for c in bad["cohort_week"]],
            "rates_out_of_range": len(out_of_range),
        },
    )


@asset_check(
    asset=_key("warehouse", "kpi_growth_accounting"),
    partitions_def=daily_partitions,
    blocking=True,
    description=(
        "Each period: active = new + retained + resurrected, the previous period's active = "
        "retained + churned, and the quick ratio is (new + resurrected) / churned; periods "
        "follow each other without a gap."
    ),
)
def growth_accounting_identities(warehouse: WarehouseResource) -> AssetCheckResult:
    frame = warehouse.read_table("kpi_growth_accounting").sort_values(["period", "period_start"])
    failures: dict[str, object] = {}
    for kind, rows in frame.groupby("period"):
        previous_active, previous_start = 0, None
        for row in rows.itertuples():
            start = row.period_start.date()
            expected_start = next_period(kind, previous_start) if previous_start else None
            churned = int(row.churned)
            ratio = (row.new + row.resurrected) / churned if churned else None
            ratio_ok = (
                pd.isna(row.quick_ratio)
                if ratio is None
                else abs(float(row.quick_ratio) - ratio) <= SHARE_TOLERANCE * max(ratio, 1)
            )
            if (
                row.active != row.new + row.retained + row.resurrected
                or previous_active != row.retained + churned
                or (expected_start is not None and start != expected_start)
                or not ratio_ok
            ):
                failures[f"{kind} {start}"] = [
                    int(row.active),
                    int(row.new),
                    int(row.retained),
                    int(row.resurrected),
                    churned,
                    previous_active,
                ]
            previous_active, previous_start = int(row.active), start
    return AssetCheckResult(
        passed=not failures,
        metadata={
            "periods": len(frame),
            "failing_periods": MetadataValue.json(failures),
            "columns": "active, new, retained, resurrected, churned, previous active",
        },
    )


@asset_check(
    asset=_key("warehouse", "kpi_listeners_at_risk"),
    partitions_def=daily_partitions,
    description="0 <= at_risk <= active_28d and at_risk_share = at_risk / active_28d.",
)
def listeners_at_risk_within_active(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    days, frame = _kpi_rows(context, warehouse, "kpi_listeners_at_risk")
    share = frame["at_risk"] / frame["active_28d"]
    bad = frame[
        (frame["at_risk"] < 0)
        | (frame["at_risk"] > frame["active_28d"])
        | ((frame["at_risk_share"].astype(float) - share).abs() > SHARE_TOLERANCE)
    ]
    return _result(
        {
            f"{r.dt} {r.country} {r.platform}": [int(r.active_28d), int(r.at_risk)]
            for r in bad.itertuples()
        },
        days,
    )


@asset_check(
    asset=_key("warehouse", "kpi_sessions"),
    partitions_def=daily_partitions,
    description=(
        "listeners <= sessions, at least one play per session, averages NULL exactly on days "
        "without sessions and equal to minutes / sessions otherwise."
    ),
)
def sessions_consistent(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    days, frame = _kpi_rows(context, warehouse, "kpi_sessions")
    failures = {}
    for row in frame.itertuples():
        average = pd.to_numeric(row.avg_session_minutes)
        if row.sessions == 0:
            ok = row.listeners == 0 and pd.isna(average) and pd.isna(row.median_session_minutes)
        else:
            ok = (
                0 < row.listeners <= row.sessions
                and float(row.avg_plays_per_session) >= 1
                and abs(float(average) * row.sessions - float(row.minutes))
                <= SHARE_TOLERANCE * max(float(row.minutes), 1)
            )
        if not ok:
            failures[row.dt] = [int(row.sessions), int(row.listeners), float(row.minutes)]
    return _result(failures, days)


KPI_CHECKS = [
    *(_rate_check(table, column) for table, column in RATE_COLUMNS.items()),
    *(_share_check(t) for t in ("kpi_genre_share", "kpi_platform_mix")),
    *(_top_list_check(t) for t in ("kpi_top_artists", "kpi_top_tracks")),
]

FRESH_ASSETS = [
    _key("lake", "raw_listening_events"),
    _key("lake", "staging_streams"),
    _key("warehouse", "fact_streams"),
    _key("warehouse", "kpi_daily_streams"),
    _key("warehouse", "kpi_active_users"),
]


def quietly_superseded(factory: Callable[..., T], **kwargs: object) -> T:
    """Call one of Dagster's superseded freshness factories without its warning on every load.

    They are superseded by `FreshnessPolicy`, which judges an asset by its latest
    materialization of any partition, so backfilling an old day would make a stale asset look
    fresh; these factories look at the expected partition itself.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SupersessionWarning)
        return factory(**kwargs)


def freshness_checks(deadline_hour: int) -> list[AssetChecksDefinition]:
    """A `freshness_check` on each key asset: from `deadline_hour` UTC on, yesterday's UTC
    partition must be materialized (before it, the day before yesterday's). Materializing an
    old partition does not satisfy it."""
    return list(
        quietly_superseded(
            build_time_partition_freshness_checks,
            assets=FRESH_ASSETS,
            deadline_cron=f"0 {deadline_hour} * * *",
            timezone="UTC",
            severity=AssetCheckSeverity.ERROR,
        )
    )


FRESHNESS_CHECKS = freshness_checks(FRESHNESS_DEADLINE_HOUR)

ALL_CHECKS = [
    staging_reconciles_with_raw,
    fact_streams_reconcile,
    fact_streams_referential_integrity,
    active_users_ordered,
    retention_week_zero_is_one,
    growth_accounting_identities,
    listeners_at_risk_within_active,
    sessions_consistent,
    *KPI_CHECKS,
    *FRESHNESS_CHECKS,
]
