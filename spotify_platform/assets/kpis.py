"""KPI layer: one warehouse table per KPI of DESIGN §5, keyed by day."""

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from spotify_platform import kpis
from spotify_platform.partitions import daily_partitions, days_of
from spotify_platform.resources.warehouse import WarehouseResource
from spotify_platform.schemas import (
    KpiActiveUsers,
    KpiDailyStreams,
    KpiTopArtists,
    KpiTopTracks,
)

FACTS = AssetKey(["warehouse", "fact_streams"])
AGG = AssetKey(["warehouse", "agg_account_daily"])
COMMON = {
    "group_name": "kpis",
    "kinds": {"mysql", "pandas"},
    "partitions_def": daily_partitions,
    "backfill_policy": BackfillPolicy.single_run(),
}


def _preview(frame: pd.DataFrame, rows: int = 10) -> MetadataValue:
    return MetadataValue.md(frame.head(rows).to_markdown(index=False) if len(frame) else "no rows")


@asset(
    key=["warehouse", "kpi_daily_streams"],
    deps=[AGG],
    description="Plays, streams (>= 30 s track plays), listeners, minutes and skip rate per day.",
    **COMMON,
)
def kpi_daily_streams(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    days = days_of(context)
    sums = warehouse.read_frame(kpis.query(kpis.DAILY_SUMS_SQL, first=days[0], last=days[-1]))
    frame = KpiDailyStreams.validate(kpis.daily_streams(sums, days))
    warehouse.replace_days("kpi_daily_streams", days, frame)
    return MaterializeResult(
        metadata={
            "days": len(frame),
            "streams": int(frame["streams"].sum()),
            "preview": _preview(frame.tail(10)),
        }
    )


@asset(
    key=["warehouse", "kpi_active_users"],
    deps=[AGG],
    description="DAU, WAU (7 days), MAU (30 days) and stickiness, from agg_account_daily.",
    **COMMON,
)
def kpi_active_users(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    days = days_of(context)
    rows = []
    for day in days:
        counts = warehouse.read_frame(kpis.query(kpis.ACTIVE_USERS_SQL, **kpis.windows(day)))
        rows.append(kpis.active_users(*counts.iloc[0].tolist(), day=day))
    frame = KpiActiveUsers.validate(pd.DataFrame(rows))
    warehouse.replace_days("kpi_active_users", days, frame)
    last = frame.iloc[-1]
    return MaterializeResult(
        metadata={
            "dau": int(last["dau"]),
            "wau": int(last["wau"]),
            "mau": int(last["mau"]),
            "preview": _preview(frame.tail(10)),
        }
    )


@asset(
    key=["warehouse", "kpi_top_artists"],
    deps=[FACTS],
    description="Top 50 artists per day by streams (dense rank), with listeners and minutes.",
    **COMMON,
)
def kpi_top_artists(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    days = days_of(context)
    grouped = warehouse.read_frame(kpis.query(kpis.TOP_ARTISTS_SQL, first=days[0], last=days[-1]))
    frame = KpiTopArtists.validate(kpis.top_list(grouped, ["artist_name"]))
    frame = frame[["dt", "rank", "artist_name", "streams", "listeners", "minutes_played"]]
    warehouse.replace_days("kpi_top_artists", days, frame)
    return MaterializeResult(metadata={"rows": len(frame), "preview": _preview(frame)})


@asset(
    key=["warehouse", "kpi_top_tracks"],
    deps=[FACTS],
    description="Top 50 tracks per day by streams (dense rank), with listeners and minutes.",
    **COMMON,
)
def kpi_top_tracks(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    days = days_of(context)
    grouped = warehouse.read_frame(kpis.query(kpis.TOP_TRACKS_SQL, first=days[0], last=days[-1]))
    frame = KpiTopTracks.validate(kpis.top_list(grouped, ["track_name", "artist_name", "track_id"]))
    frame = frame[
        [
            "dt",
            "rank",
            "track_id",
            "track_name",
            "artist_name",
            "streams",
            "listeners",
            "minutes_played",
        ]
    ]
    warehouse.replace_days("kpi_top_tracks", days, frame)
    return MaterializeResult(metadata={"rows": len(frame), "preview": _preview(frame)})
