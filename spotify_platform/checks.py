"""Cross-asset checks: rules that relate one asset's partition to another's."""

import pandas as pd
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetKey, asset_check

from spotify_platform.kpis import query
from spotify_platform.layout import staging_key
from spotify_platform.partitions import daily_partitions
from spotify_platform.resources.lake import LakeResource
from spotify_platform.resources.warehouse import WarehouseResource


@asset_check(
    asset=AssetKey(["warehouse", "fact_streams"]),
    partitions_def=daily_partitions,
    blocking=True,
    description="fact_streams holds exactly the staged rows of the day, with equal ms_played.",
)
def fact_streams_reconcile(
    context: AssetCheckExecutionContext, lake: LakeResource, warehouse: WarehouseResource
) -> AssetCheckResult:
    window = context.partition_time_window
    day = window.start.date()
    staged = lake.read_parquet(staging_key(day), columns=["ms_played"])
    loaded = warehouse.read_frame(
        query(
            "SELECT COUNT(*) AS n, SUM(ms_played) AS ms FROM fact_streams WHERE dt = :day", day=day
        )
    ).iloc[0]
    loaded_rows = int(loaded["n"] or 0)
    loaded_ms = int(pd.to_numeric(loaded["ms"]) or 0) if loaded["ms"] is not None else 0
    staged_ms = int(staged["ms_played"].sum())
    return AssetCheckResult(
        passed=loaded_rows == len(staged) and loaded_ms == staged_ms,
        metadata={
            "day": day.isoformat(),
            "staged_rows": len(staged),
            "fact_rows": loaded_rows,
            "staged_ms_played": staged_ms,
            "fact_ms_played": loaded_ms,
        },
    )
