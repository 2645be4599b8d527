"""KPI layer: one warehouse table per KPI, keyed by day."""

import datetime as dt
from collections.abc import Callable, Iterator

import pandas as pd
import sqlalchemy as sa
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from spotify_platform.core.contracts.schemas import (
    KpiActiveUsers,
    KpiChurn,
    KpiDailyStreams,
    KpiEngagementByRegionHour,
    KpiEngagementByUtcHour,
    KpiGenreShare,
    KpiGrowthAccounting,
    KpiListenersAtRisk,
    KpiPlatformMix,
    KpiRetention,
    KpiSessions,
    KpiTopArtists,
    KpiTopTracks,
)
from spotify_platform.core.contracts.tables import TABLES
from spotify_platform.core.kpis import lifecycle, sessions
from spotify_platform.core.kpis import measures as kpis
from spotify_platform.defs.partitions import (
    daily_partitions,
    day_figures,
    days_of,
    run_summary,
)
from spotify_platform.defs.resources.warehouse import WAREHOUSE_POOL, WarehouseResource

AGG = AssetKey(["warehouse", "agg_account_daily"])
ARTISTS_DAILY = AssetKey(["warehouse", "agg_artist_daily"])
TRACKS_DAILY = AssetKey(["warehouse", "agg_track_daily"])
HOURLY = AssetKey(["warehouse", "agg_account_hourly"])
SEGMENTS_DAILY = AssetKey(["warehouse", "agg_account_segment_daily"])
SESSIONS_DAILY = AssetKey(["warehouse", "agg_account_sessions"])
# The KPIs read the aggregates, built beside fact_streams from the same staged days. The facts
# are among every KPI's deps all the same: a day whose facts fail their blocking
# reconciliation with staging builds no KPIs in that run.
FACT_STREAMS = AssetKey(["warehouse", "fact_streams"])


def gated(*keys: AssetKey) -> list[AssetKey]:
    return [*keys, FACT_STREAMS]
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
    deps=gated(AGG),
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
    return run_summary(
        context,
        {
            "days": len(frame),
            "streams_in_run": int(frame["streams"].sum()),
            "preview": _preview(frame.tail(10)),
        },
        day_figures(frame, ["plays", "streams", "listeners", "minutes_played", "skip_rate"]),
    )


def _later_days(
    warehouse: WarehouseResource, table: str, days: list[dt.date], horizon: int
) -> list[dt.date]:
    """Days after the run's range whose window includes it and that were already computed.

    A late or re-loaded day changes the windowed KPIs of the days after it; they are
    recomputed in the same run and reported as materialized.
    Callers hold the table's `warehouse.exclusive` lock from this read to their write, so a
    run over an overlapping range cannot slip stale windows in between.
    """
    return _processed_days(
        warehouse, table, days[-1] + dt.timedelta(days=1), days[-1] + dt.timedelta(days=horizon)
    )


def _processed_days(
    warehouse: WarehouseResource, table: str, first: dt.date, last: dt.date
) -> list[dt.date]:
    """Days in [first, last] that `table` holds a row for (it has one for every processed day)."""
    t = TABLES[table]
    found = warehouse.read_frame(sa.select(t.c.dt).where(t.c.dt.between(first, last)).distinct())
    return sorted(set(pd.to_datetime(found["dt"]).dt.date))


def _windowed(
    asset_key: AssetKey,
    later: list[dt.date],
    reason: str = "recomputed: an earlier day in its window was (re)loaded",
) -> Iterator[AssetMaterialization]:
    for day in later:
        yield AssetMaterialization(
            asset_key=asset_key, partition=day.isoformat(), metadata={"reason": reason}
        )


def _windowed_kpi(
    table: str,
    description: str,
    horizon: int,
    sql: str,
    windows: Callable[[dt.date], dict[str, dt.date]],
    row: Callable[..., dict],
    model: type,
    figures: list[str],
) -> AssetsDefinition:
    """A KPI of each day's trailing window of agg_account_daily: one count query per day, and
    the later days whose window holds one of the run's days recomputed with them."""

    @asset(key=["warehouse", table], deps=gated(AGG), description=description, **COMMON)
    def windowed_kpi(context: AssetExecutionContext, warehouse: WarehouseResource):
        days = days_of(context)
        with warehouse.exclusive(table):
            later = _later_days(warehouse, table, days, horizon)
            rows = []
            for day in days + later:
                counts = warehouse.read_frame(kpis.query(sql, **windows(day)))
                rows.append(row(*counts.iloc[0].tolist(), day=day))
            frame = model.validate(pd.DataFrame(rows))
            warehouse.replace_days(table, days + later, frame)
        yield from _windowed(context.asset_key, later)
        yield run_summary(
            context,
            {"later_days_recomputed": len(later), "preview": _preview(frame.tail(10))},
            day_figures(frame, figures),
        )

    return windowed_kpi


kpi_active_users = _windowed_kpi(
    "kpi_active_users",
    "DAU, WAU (7 days), MAU (30 days) and stickiness, from agg_account_daily.",
    kpis.ACTIVE_HORIZON_DAYS,
    kpis.ACTIVE_USERS_SQL,
    kpis.windows,
    kpis.active_users,
    KpiActiveUsers,
    ["dau", "wau", "mau", "stickiness"],
)

kpi_churn = _windowed_kpi(
    "kpi_churn",
    "30-day churn: accounts streaming in [D-59, D-30] without a stream in [D-29, D].",
    kpis.CHURN_HORIZON_DAYS,
    kpis.CHURN_SQL,
    kpis.churn_windows,
    kpis.churn,
    KpiChurn,
    ["base_accounts", "churned_accounts", "churn_rate"],
)


@asset(
    key=["warehouse", "kpi_retention"],
    deps=gated(AGG),
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
    return run_summary(
        context,
        {
            "cohorts": int(frame["cohort_week"].nunique()),
            "dagster/row_count": len(frame),
            "preview": _preview(frame[frame["week_offset"] <= 4].tail(10)),
        },
    )


def _rows_by_day(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Each day's row count, as Dagster's per-partition row count."""
    counts = pd.to_datetime(frame["dt"]).dt.date.value_counts()
    return {day.isoformat(): {"dagster/partition_row_count": int(n)} for day, n in counts.items()}


def _grouped_kpi(
    table: str,
    deps: list[AssetKey],
    description: str,
    sql: str,
    shape: Callable[[pd.DataFrame], pd.DataFrame],
) -> AssetsDefinition:
    """A KPI of groups within each day (countries, hours, genres, artists, ...): one grouped
    query over the run's days in the warehouse, shaped and validated in pandas."""

    @asset(key=["warehouse", table], deps=gated(*deps), description=description, **COMMON)
    def grouped_kpi(
        context: AssetExecutionContext, warehouse: WarehouseResource
    ) -> MaterializeResult:
        days = days_of(context)
        frame = shape(warehouse.read_frame(kpis.query(sql, first=days[0], last=days[-1])))
        warehouse.replace_days(table, days, frame)
        return run_summary(
            context, {"rows": len(frame), "preview": _preview(frame)}, _rows_by_day(frame)
        )

    return grouped_kpi


kpi_engagement_by_region_hour = _grouped_kpi(
    "kpi_engagement_by_region_hour",
    [HOURLY],
    "Streams, listeners and minutes by country and local hour of the play's start.",
    kpis.REGION_HOUR_SQL,
    lambda g: KpiEngagementByRegionHour.validate(kpis.engagement(g, ["country", "local_hour"])),
)

kpi_engagement_by_utc_hour = _grouped_kpi(
    "kpi_engagement_by_utc_hour",
    [HOURLY],
    "Streams, listeners and minutes by UTC hour of the play's start.",
    kpis.UTC_HOUR_SQL,
    lambda g: KpiEngagementByUtcHour.validate(kpis.engagement(g, ["utc_hour"])),
)

kpi_genre_share = _grouped_kpi(
    "kpi_genre_share",
    [ARTISTS_DAILY, AssetKey(["warehouse", "dim_artists"])],
    "Share of the day's streams by the artist's primary genre ('unknown' if none).",
    kpis.GENRE_SQL,
    lambda g: KpiGenreShare.validate(kpis.shares(g, "streams")),
)

kpi_platform_mix = _grouped_kpi(
    "kpi_platform_mix",
    [HOURLY],
    "Share of the day's plays by device family.",
    kpis.PLATFORM_SQL,
    lambda g: KpiPlatformMix.validate(kpis.shares(g, "plays")),
)

kpi_top_artists = _grouped_kpi(
    "kpi_top_artists",
    [ARTISTS_DAILY],
    "Top 50 artists per day by streams (dense rank), with listeners and minutes.",
    kpis.TOP_ARTISTS_SQL,
    lambda g: KpiTopArtists.validate(kpis.top_list(g, ["artist_name"]))[
        ["dt", "rank", "artist_name", "streams", "listeners", "minutes_played"]
    ],
)

kpi_top_tracks = _grouped_kpi(
    "kpi_top_tracks",
    [TRACKS_DAILY],
    "Top 50 tracks per day by streams (dense rank), with listeners and minutes.",
    kpis.TOP_TRACKS_SQL,
    lambda g: KpiTopTracks.validate(kpis.top_list(g, ["track_name", "artist_name", "track_id"]))[
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
    ],
)


@asset(
    key=["warehouse", "kpi_growth_accounting"],
    deps=gated(AGG),
    description=(
        "Active accounts per calendar week and month split into new, retained and resurrected, "
        "with those churned and the quick ratio; a run recomputes its periods and later ones."
    ),
    **COMMON,
)
def kpi_growth_accounting(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    days = days_of(context)
    t = TABLES["kpi_growth_accounting"]
    with warehouse.exclusive("kpi_growth_accounting"):
        first = warehouse.read_frame(sa.text(lifecycle.FIRST_STREAM_SQL))
        first_stream = pd.Timestamp(first.iloc[0, 0]).date() if len(first) else None
        stored = warehouse.read_frame(sa.select(t.c.period, t.c.period_start))
        periods = lifecycle.growth_periods(days, first_stream, stored)
        counts = [warehouse.read_frame(q) for q in lifecycle.growth_queries(periods)]
        frame = KpiGrowthAccounting.validate(lifecycle.growth_accounting(counts, periods))
        warehouse.replace_where(
            "kpi_growth_accounting", lifecycle.replaced_periods(t, periods, first_stream), frame
        )
        stored_rows = warehouse.scalar("SELECT COUNT(*) FROM kpi_growth_accounting")
    return run_summary(
        context,
        {
            "periods_computed": len(frame),
            "dagster/row_count": int(stored_rows),
            "preview": _preview(frame.tail(10)),
        },
    )


@asset(
    key=["warehouse", "kpi_listeners_at_risk"],
    deps=gated(SEGMENTS_DAILY),
    description=(
        "Per (country, platform) segment: accounts with a stream in the last 28 days and those "
        "of them without one in the last 7 (at risk)."
    ),
    **COMMON,
)
def kpi_listeners_at_risk(context: AssetExecutionContext, warehouse: WarehouseResource):
    days = days_of(context)
    with warehouse.exclusive("kpi_listeners_at_risk"):
        # A day without active accounts has no row here; kpi_daily_streams has one for every
        # processed day, so it says which later days this run's days reach into.
        later = _later_days(warehouse, "kpi_daily_streams", days, lifecycle.RISK_WINDOW_DAYS - 1)
        counts = [
            warehouse.read_frame(statement)
            for statement in lifecycle.at_risk_queries(days + later, warehouse.dialect)
        ]
        frame = KpiListenersAtRisk.validate(lifecycle.listeners_at_risk(pd.concat(counts)))
        warehouse.replace_days("kpi_listeners_at_risk", days + later, frame)
    yield from _windowed(context.asset_key, later)
    last = frame[frame["dt"] == pd.Timestamp(days[-1])]
    totals = frame.groupby("dt", as_index=False)[["at_risk", "active_28d"]].sum()
    yield run_summary(
        context,
        {
            "rows": len(frame),
            "later_days_recomputed": len(later),
            "preview": _preview(last.sort_values("at_risk", ascending=False)),
        },
        day_figures(totals, ["at_risk", "active_28d"]),
    )


@asset(
    key=["warehouse", "kpi_sessions"],
    deps=gated(SESSIONS_DAILY),
    description=(
        "Listening sessions (plays at most 30 minutes apart) by the UTC day they start: count, "
        "listeners, minutes, mean and median length, plays per session."
    ),
    **COMMON,
)
def kpi_sessions(context: AssetExecutionContext, warehouse: WarehouseResource):
    days = days_of(context)
    one_day = dt.timedelta(days=1)
    with warehouse.exclusive("kpi_sessions"):
        # Sessions cross midnight: the day before and the day after, where already computed,
        # gain or lose plays with this run's days.
        neighbours = [
            day
            for day in _processed_days(
                warehouse, "kpi_sessions", days[0] - one_day, days[-1] + one_day
            )
            if day not in days
        ]
        wanted = sorted(days + neighbours)

        def read(horizon: dt.datetime) -> pd.DataFrame:
            statement = sessions.runs_query(warehouse.dialect, wanted[0], wanted[-1], horizon)
            return warehouse.read_frame(statement)

        found = sessions.sessions_starting(wanted[0], wanted[-1], read)
        frame = KpiSessions.validate(sessions.daily(found, wanted))
        warehouse.replace_days("kpi_sessions", wanted, frame)
    yield from _windowed(context.asset_key, neighbours, "recomputed: sessions cross midnight")
    yield run_summary(
        context,
        {
            "sessions_in_run": int(frame["sessions"].sum()),
            "neighbour_days_recomputed": len(neighbours),
            "preview": _preview(frame.tail(10)),
        },
        day_figures(
            frame, ["sessions", "listeners", "avg_session_minutes", "median_session_minutes"]
        ),
    )
