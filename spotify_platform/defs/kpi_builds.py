"""How each KPI table is built over a run's days: queries over the aggregates, shaped and
validated in pandas, written day by day. The KPI step (`assets/kpis.py`) runs these."""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa
from dagster import AssetKey, MetadataValue

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
from spotify_platform.defs.partitions import day_figures
from spotify_platform.defs.resources.warehouse import WarehouseResource

AGG = AssetKey(["warehouse", "agg_account_daily"])
ARTISTS_DAILY = AssetKey(["warehouse", "agg_artist_daily"])
TRACKS_DAILY = AssetKey(["warehouse", "agg_track_daily"])
HOURLY = AssetKey(["warehouse", "agg_account_hourly"])
SEGMENTS_DAILY = AssetKey(["warehouse", "agg_account_segment_daily"])
SESSIONS_DAILY = AssetKey(["warehouse", "agg_account_sessions"])


def _preview(frame: pd.DataFrame, rows: int = 10) -> MetadataValue:
    return MetadataValue.md(frame.head(rows).to_markdown(index=False) if len(frame) else "no rows")


@dataclass
class Built:
    """What building a KPI over the run's days gave: the run's figures, each day's own, and
    the days outside the run it recomputed (with why)."""

    metadata: dict
    per_day: dict[str, dict[str, object]] | None = None
    later: list[dt.date] = field(default_factory=list)
    later_reason: str = "recomputed: an earlier day in its window was (re)loaded"


@dataclass(frozen=True)
class Kpi:
    """A KPI table: the aggregates (and dimensions) it reads, and how it is built."""

    table: str
    deps: list[AssetKey]
    description: str
    build: Callable[[WarehouseResource, list[dt.date]], Built]

    @property
    def key(self) -> AssetKey:
        return AssetKey(["warehouse", self.table])


def _daily_streams(warehouse: WarehouseResource, days: list[dt.date]) -> Built:
    sums = warehouse.read_frame(kpis.query(kpis.DAILY_SUMS_SQL, first=days[0], last=days[-1]))
    frame = KpiDailyStreams.validate(kpis.daily_streams(sums, days))
    warehouse.replace_days("kpi_daily_streams", days, frame)
    return Built(
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
    table: str,
    horizon: int,
    sql: str,
    windows: Callable[[dt.date], dict[str, dt.date]],
    row: Callable[..., dict],
    model: type,
    figures: list[str],
) -> Callable[[WarehouseResource, list[dt.date]], Built]:
    """A KPI of each day's trailing window of agg_account_daily: one count query per day, and
    the later days whose window holds one of the run's days recomputed with them."""

    def build(warehouse: WarehouseResource, days: list[dt.date]) -> Built:
        with warehouse.exclusive(table):
            later = _later_days(warehouse, table, days, horizon)
            rows = []
            for day in days + later:
                counts = warehouse.read_frame(kpis.query(sql, **windows(day)))
                rows.append(row(*counts.iloc[0].tolist(), day=day))
            frame = model.validate(pd.DataFrame(rows))
            warehouse.replace_days(table, days + later, frame)
        return Built(
            {"later_days_recomputed": len(later), "preview": _preview(frame.tail(10))},
            day_figures(frame, figures),
            later,
        )

    return build


def _retention(warehouse: WarehouseResource, days: list[dt.date]) -> Built:
    with warehouse.exclusive("kpi_retention"):
        counts = warehouse.read_frame(kpis.retention_query(warehouse.dialect))
        frame = KpiRetention.validate(kpis.retention(counts))
        warehouse.replace_all("kpi_retention", frame)
    return Built(
        {
            "cohorts": int(frame["cohort_week"].nunique()),
            "dagster/row_count": len(frame),
            "preview": _preview(frame[frame["week_offset"] <= 4].tail(10)),
        }
    )


def _rows_by_day(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Each day's row count, as Dagster's per-partition row count."""
    counts = pd.to_datetime(frame["dt"]).dt.date.value_counts()
    return {day.isoformat(): {"dagster/partition_row_count": int(n)} for day, n in counts.items()}


def _grouped(
    table: str, sql: str, shape: Callable[[pd.DataFrame], pd.DataFrame]
) -> Callable[[WarehouseResource, list[dt.date]], Built]:
    """A KPI of groups within each day (countries, hours, genres, artists, ...): one grouped
    query over the run's days in the warehouse, shaped and validated in pandas."""

    def build(warehouse: WarehouseResource, days: list[dt.date]) -> Built:
        frame = shape(warehouse.read_frame(kpis.query(sql, first=days[0], last=days[-1])))
        warehouse.replace_days(table, days, frame)
        return Built({"rows": len(frame), "preview": _preview(frame)}, _rows_by_day(frame))

    return build


def _growth_accounting(warehouse: WarehouseResource, days: list[dt.date]) -> Built:
    t = TABLES["kpi_growth_accounting"]
    with warehouse.exclusive("kpi_growth_accounting"):
        first = warehouse.read_frame(sa.text(lifecycle.FIRST_STREAM_SQL))
        first_stream = pd.Timestamp(first.iloc[0, 0]).date() if len(first) else None
        stored = warehouse.read_frame(sa.select(t.c.period, t.c.period_start, t.c.days_through))
        loaded = lifecycle.account_days(warehouse.read_frame(sa.text(lifecycle.ACCOUNT_DAYS_SQL)))
        periods = lifecycle.growth_periods(days, first_stream, stored, loaded)
        counts = [warehouse.read_frame(q) for q in lifecycle.growth_queries(periods)]
        frame = KpiGrowthAccounting.validate(lifecycle.growth_accounting(counts, periods, loaded))
        warehouse.replace_where(
            "kpi_growth_accounting", lifecycle.replaced_periods(t, periods, first_stream), frame
        )
        stored_rows = warehouse.scalar("SELECT COUNT(*) FROM kpi_growth_accounting")
    return Built(
        {
            "periods_computed": len(frame),
            "dagster/row_count": int(stored_rows),
            "preview": _preview(frame.tail(10)),
        }
    )


def _listeners_at_risk(warehouse: WarehouseResource, days: list[dt.date]) -> Built:
    with warehouse.exclusive("kpi_listeners_at_risk"):
        # A day without active accounts has no row here; kpi_daily_streams has one for every
        # processed day, so it says which later days this run's days reach into. It is built
        # in the same step, maybe at the same time: its stored days before this run are what
        # tells, and the run's own days are not among the later ones.
        later = _later_days(warehouse, "kpi_daily_streams", days, lifecycle.RISK_WINDOW_DAYS - 1)
        counts = [
            warehouse.read_frame(statement)
            for statement in lifecycle.at_risk_queries(days + later, warehouse.dialect)
        ]
        frame = KpiListenersAtRisk.validate(lifecycle.listeners_at_risk(pd.concat(counts)))
        warehouse.replace_days("kpi_listeners_at_risk", days + later, frame)
    last = frame[frame["dt"] == pd.Timestamp(days[-1])]
    totals = frame.groupby("dt", as_index=False)[["at_risk", "active_28d"]].sum()
    return Built(
        {
            "rows": len(frame),
            "later_days_recomputed": len(later),
            "preview": _preview(last.sort_values("at_risk", ascending=False)),
        },
        day_figures(totals, ["at_risk", "active_28d"]),
        later,
    )


def _sessions(warehouse: WarehouseResource, days: list[dt.date]) -> Built:
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
    return Built(
        {
            "sessions_in_run": int(frame["sessions"].sum()),
            "neighbour_days_recomputed": len(neighbours),
            "preview": _preview(frame.tail(10)),
        },
        day_figures(
            frame, ["sessions", "listeners", "avg_session_minutes", "median_session_minutes"]
        ),
        neighbours,
        "recomputed: sessions cross midnight",
    )


KPIS = [
    Kpi(
        "kpi_daily_streams",
        [AGG],
        "Plays, streams (>= 30 s track plays), listeners, minutes and skip rate per day.",
        _daily_streams,
    ),
    Kpi(
        "kpi_active_users",
        [AGG],
        "DAU, WAU (7 days), MAU (30 days) and stickiness, from agg_account_daily.",
        _windowed(
            "kpi_active_users",
            kpis.ACTIVE_HORIZON_DAYS,
            kpis.ACTIVE_USERS_SQL,
            kpis.windows,
            kpis.active_users,
            KpiActiveUsers,
            ["dau", "wau", "mau", "stickiness"],
        ),
    ),
    Kpi(
        "kpi_churn",
        [AGG],
        "30-day churn: accounts streaming in [D-59, D-30] without a stream in [D-29, D].",
        _windowed(
            "kpi_churn",
            kpis.CHURN_HORIZON_DAYS,
            kpis.CHURN_SQL,
            kpis.churn_windows,
            kpis.churn,
            KpiChurn,
            ["base_accounts", "churned_accounts", "churn_rate"],
        ),
    ),
    Kpi(
        "kpi_retention",
        [AGG],
        "Weekly retention cohorts by first stream ever; the whole triangle is recomputed so "
        "late days land in every cohort they touch.",
        _retention,
    ),
    Kpi(
        "kpi_engagement_by_region_hour",
        [HOURLY],
        "Streams, listeners and minutes by country and local hour of the play's start.",
        _grouped(
            "kpi_engagement_by_region_hour",
            kpis.REGION_HOUR_SQL,
            lambda g: KpiEngagementByRegionHour.validate(
                kpis.engagement(g, ["country", "local_hour"])
            ),
        ),
    ),
    Kpi(
        "kpi_engagement_by_utc_hour",
        [HOURLY],
        "Streams, listeners and minutes by UTC hour of the play's start.",
        _grouped(
            "kpi_engagement_by_utc_hour",
            kpis.UTC_HOUR_SQL,
            lambda g: KpiEngagementByUtcHour.validate(kpis.engagement(g, ["utc_hour"])),
        ),
    ),
    Kpi(
        "kpi_genre_share",
        [ARTISTS_DAILY, AssetKey(["warehouse", "dim_artists"])],
        "Share of the day's streams by the artist's primary genre ('unknown' if none).",
        _grouped(
            "kpi_genre_share",
            kpis.GENRE_SQL,
            lambda g: KpiGenreShare.validate(kpis.shares(g, "streams")),
        ),
    ),
    Kpi(
        "kpi_platform_mix",
        [HOURLY],
        "Share of the day's plays by device family.",
        _grouped(
            "kpi_platform_mix",
            kpis.PLATFORM_SQL,
            lambda g: KpiPlatformMix.validate(kpis.shares(g, "plays")),
        ),
    ),
    Kpi(
        "kpi_top_artists",
        [ARTISTS_DAILY],
        "Top 50 artists per day by streams (dense rank), with listeners and minutes.",
        _grouped(
            "kpi_top_artists",
            kpis.TOP_ARTISTS_SQL,
            lambda g: KpiTopArtists.validate(kpis.top_list(g, ["artist_name"]))[
                ["dt", "rank", "artist_name", "streams", "listeners", "minutes_played"]
            ],
        ),
    ),
    Kpi(
        "kpi_top_tracks",
        [TRACKS_DAILY],
        "Top 50 tracks per day by streams (dense rank), with listeners and minutes.",
        _grouped(
            "kpi_top_tracks",
            kpis.TOP_TRACKS_SQL,
            lambda g: KpiTopTracks.validate(
                kpis.top_list(g, ["track_name", "artist_name", "track_id"])
            )[
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
        ),
    ),
    Kpi(
        "kpi_growth_accounting",
        [AGG],
        "Active accounts per calendar week and month split into new, retained and resurrected, "
        "with those churned and the quick ratio; a run recomputes its periods and later ones.",
        _growth_accounting,
    ),
    Kpi(
        "kpi_listeners_at_risk",
        [SEGMENTS_DAILY],
        "Per (country, platform) segment: accounts with a stream in the last 28 days and those "
        "of them without one in the last 7 (at risk).",
        _listeners_at_risk,
    ),
    Kpi(
        "kpi_sessions",
        [SESSIONS_DAILY],
        "Listening sessions (plays at most 30 minutes apart) by the UTC day they start: count, "
        "listeners, minutes, mean and median length, plays per session.",
        _sessions,
    ),
]
