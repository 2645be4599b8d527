"""KPI layer: one warehouse table per KPI of DESIGN §5, keyed by day."""

import datetime as dt
from collections.abc import Iterator

import pandas as pd
import sqlalchemy as sa
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from spotify_platform import kpis
from spotify_platform.partitions import daily_partitions, days_of
from spotify_platform.resources.warehouse import WAREHOUSE_POOL, WarehouseResource
from spotify_platform.schemas import (
    KpiActiveUsers,
    KpiChurn,
    KpiDailyStreams,
    KpiEngagementByRegionHour,
    KpiEngagementByUtcHour,
    KpiGenreShare,
    KpiPlatformMix,
    KpiRetention,
    KpiTopArtists,
    KpiTopTracks,
)
from spotify_platform.tables import TABLES

AGG = AssetKey(["warehouse", "agg_account_daily"])
ARTISTS_DAILY = AssetKey(["warehouse", "agg_artist_daily"])
TRACKS_DAILY = AssetKey(["warehouse", "agg_track_daily"])
HOURLY = AssetKey(["warehouse", "agg_account_hourly"])
COMMON = {
    "group_name": "kpis",
    "kinds": {"mysql", "pandas"},
    "partitions_def": daily_partitions,
    "backfill_policy": BackfillPolicy.single_run(),
    "pool": WAREHOUSE_POOL,
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


def _later_days(
    warehouse: WarehouseResource, table: str, days: list[dt.date], horizon: int
) -> list[dt.date]:
    """Days after the run's range whose window includes it and that were already computed.

    A late or re-loaded day changes the windowed KPIs of the days after it; they are
    recomputed in the same run and reported as materialized (DESIGN §7's explicit rule).
    Callers hold the table's `warehouse.exclusive` lock from this read to their write, so a
    run over an overlapping range cannot slip stale windows in between.
    """
    t = TABLES[table]
    later = warehouse.read_frame(
        sa.select(t.c.dt).where(t.c.dt > days[-1], t.c.dt <= days[-1] + dt.timedelta(days=horizon))
    )
    return sorted(set(pd.to_datetime(later["dt"]).dt.date) - set(days))


def _windowed(asset_key: AssetKey, later: list[dt.date]) -> Iterator[AssetMaterialization]:
    for day in later:
        yield AssetMaterialization(
            asset_key=asset_key,
            partition=day.isoformat(),
            metadata={"reason": "recomputed: an earlier day in its window was (re)loaded"},
        )


@asset(
    key=["warehouse", "kpi_active_users"],
    deps=[AGG],
    description="DAU, WAU (7 days), MAU (30 days) and stickiness, from agg_account_daily.",
    **COMMON,
)
def kpi_active_users(context: AssetExecutionContext, warehouse: WarehouseResource):
    days = days_of(context)
    with warehouse.exclusive("kpi_active_users"):
        later = _later_days(warehouse, "kpi_active_users", days, kpis.ACTIVE_HORIZON_DAYS)
        rows = []
        for day in days + later:
            counts = warehouse.read_frame(kpis.query(kpis.ACTIVE_USERS_SQL, **kpis.windows(day)))
            rows.append(kpis.active_users(*counts.iloc[0].tolist(), day=day))
        frame = KpiActiveUsers.validate(pd.DataFrame(rows))
        warehouse.replace_days("kpi_active_users", days + later, frame)
    yield from _windowed(context.asset_key, later)
    last = frame[frame["dt"] == pd.Timestamp(days[-1])].iloc[0]
    yield MaterializeResult(
        metadata={
            "dau": int(last["dau"]),
            "wau": int(last["wau"]),
            "mau": int(last["mau"]),
            "later_days_recomputed": len(later),
            "preview": _preview(frame.tail(10)),
        }
    )


@asset(
    key=["warehouse", "kpi_churn"],
    deps=[AGG],
    description=("30-day churn: accounts streaming in [D-59, D-30] without a stream in [D-29, D]."),
    **COMMON,
)
def kpi_churn(context: AssetExecutionContext, warehouse: WarehouseResource):
    days = days_of(context)
    with warehouse.exclusive("kpi_churn"):
        later = _later_days(warehouse, "kpi_churn", days, kpis.CHURN_HORIZON_DAYS)
        rows = []
        for day in days + later:
            counts = warehouse.read_frame(kpis.query(kpis.CHURN_SQL, **kpis.churn_windows(day)))
            rows.append(kpis.churn(*counts.iloc[0].tolist(), day=day))
        frame = KpiChurn.validate(pd.DataFrame(rows))
        warehouse.replace_days("kpi_churn", days + later, frame)
    yield from _windowed(context.asset_key, later)
    yield MaterializeResult(
        metadata={"later_days_recomputed": len(later), "preview": _preview(frame.tail(10))}
    )


@asset(
    key=["warehouse", "kpi_retention"],
    deps=[AGG],
    description=(
        "Weekly retention cohorts by first stream ever; the whole triangle is recomputed so "
        "late days land in every cohort they touch."
    ),
    **COMMON,
)
def kpi_retention(context: AssetExecutionContext, warehouse: WarehouseResource):
    with warehouse.exclusive("kpi_retention"):
        counts = warehouse.read_frame(kpis.retention_query(warehouse.dialect))
        frame = KpiRetention.validate(kpis.retention(counts))
        warehouse.replace_all("kpi_retention", frame)
    return MaterializeResult(
        metadata={
            "cohorts": int(frame["cohort_week"].nunique()),
            "rows": len(frame),
            "preview": _preview(frame[frame["week_offset"] <= 4].tail(10)),
        }
    )


def _ranged(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    table: str,
    sql: str,
    shape,
) -> MaterializeResult:
    days = days_of(context)
    grouped = warehouse.read_frame(kpis.query(sql, first=days[0], last=days[-1]))
    frame = shape(grouped)
    warehouse.replace_days(table, days, frame)
    return MaterializeResult(metadata={"rows": len(frame), "preview": _preview(frame)})


@asset(
    key=["warehouse", "kpi_engagement_by_region_hour"],
    deps=[HOURLY],
    description="Streams, listeners and minutes by country and local hour of the play's start.",
    **COMMON,
)
def kpi_engagement_by_region_hour(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    return _ranged(
        context,
        warehouse,
        "kpi_engagement_by_region_hour",
        kpis.REGION_HOUR_SQL,
        lambda g: KpiEngagementByRegionHour.validate(kpis.engagement(g, ["country", "local_hour"])),
    )


@asset(
    key=["warehouse", "kpi_engagement_by_utc_hour"],
    deps=[HOURLY],
    description="Streams, listeners and minutes by UTC hour of the play's start.",
    **COMMON,
)
def kpi_engagement_by_utc_hour(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    return _ranged(
        context,
        warehouse,
        "kpi_engagement_by_utc_hour",
        kpis.UTC_HOUR_SQL,
        lambda g: KpiEngagementByUtcHour.validate(kpis.engagement(g, ["utc_hour"])),
    )


@asset(
    key=["warehouse", "kpi_genre_share"],
    deps=[ARTISTS_DAILY, AssetKey(["warehouse", "dim_artists"])],
    description="Share of the day's streams by the artist's primary genre ('unknown' if none).",
    **COMMON,
)
def kpi_genre_share(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    return _ranged(
        context,
        warehouse,
        "kpi_genre_share",
        kpis.GENRE_SQL,
        lambda g: KpiGenreShare.validate(kpis.shares(g, "streams")),
    )


@asset(
    key=["warehouse", "kpi_platform_mix"],
    deps=[HOURLY],
    description="Share of the day's plays by device family.",
    **COMMON,
)
def kpi_platform_mix(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    return _ranged(
        context,
        warehouse,
        "kpi_platform_mix",
        kpis.PLATFORM_SQL,
        lambda g: KpiPlatformMix.validate(kpis.shares(g, "plays")),
    )


@asset(
    key=["warehouse", "kpi_top_artists"],
    deps=[ARTISTS_DAILY],
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
    deps=[TRACKS_DAILY],
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
