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


def days_result(
    failures: dict[str, object], checked: list[dt.date], **metadata
) -> AssetCheckResult:
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
    return days_result(failures, days)


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
    return days_result(failures, days)


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
    *FRESHNESS_CHECKS,
]
