"""Reports layer: the self-contained HTML dashboard of a day, written to the lake."""

import dataclasses
import datetime as dt

import pandas as pd
import sqlalchemy as sa
from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from spotify_platform.core.contracts.tables import TABLES
from spotify_platform.core.dashboard.data import (
    GROWTH_WEEKS,
    HISTORY_TOP,
    DashboardData,
    HistoryData,
    growth_window,
    history_window,
)
from spotify_platform.core.dashboard.insights import insights, insights_markdown, segment_label
from spotify_platform.core.dashboard.page import render_dashboard
from spotify_platform.core.lake.layout import dashboard_key
from spotify_platform.core.warehouse.frames import typed_frame
from spotify_platform.defs.partitions import daily_partitions, days_of, run_summary
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform.defs.resources.warehouse import WAREHOUSE_POOL, WarehouseResource

KPI_TABLES = [name for name in TABLES if name.startswith("kpi_")]
# A year's backfill must not write a year of 5 MB pages: short ranges get every day's page.
RENDER_EVERY_DAY_UP_TO = 7


def days_to_render(days: list[dt.date]) -> list[dt.date]:
    """Every day of a range of at most 7 days, else only its last day."""
    return list(days) if len(days) <= RENDER_EVERY_DAY_UP_TO else [days[-1]]


def read_dashboard_data(warehouse: WarehouseResource, day: dt.date) -> DashboardData:
    """The KPI rows the dashboard of `day` shows, read from the warehouse."""
    trend = history_window(day)
    today = [day]
    daily = TABLES["kpi_daily_streams"]
    growth = TABLES["kpi_growth_accounting"]
    first = warehouse.read_frame(
        sa.select(sa.func.min(daily.c.dt)).where(daily.c.streams > 0, daily.c.dt <= day)
    ).iloc[0, 0]
    return DashboardData(
        day=day,
        daily_streams=warehouse.read_table("kpi_daily_streams", trend),
        active_users=warehouse.read_table("kpi_active_users", trend),
        churn=warehouse.read_table("kpi_churn", trend),
        region_hour=warehouse.read_table("kpi_engagement_by_region_hour", today),
        utc_hour=warehouse.read_table("kpi_engagement_by_utc_hour", today),
        top_artists=warehouse.read_table("kpi_top_artists", today),
        top_tracks=warehouse.read_table("kpi_top_tracks", today),
        genre_share=warehouse.read_table("kpi_genre_share", today),
        platform_mix=warehouse.read_table("kpi_platform_mix", today),
        retention=warehouse.read_table("kpi_retention"),
        artist_history=warehouse.read_table("kpi_top_artists", growth_window(day)),
        first_stream_day=None if pd.isna(first) else pd.Timestamp(first).date(),
        growth_accounting=typed_frame(
            warehouse.read_frame(
                sa.select(growth).where(
                    growth.c.period == "week",
                    growth.c.period_start.between(day - dt.timedelta(weeks=GROWTH_WEEKS + 1), day),
                )
            ),
            "kpi_growth_accounting",
        ),
        listeners_at_risk=warehouse.read_table("kpi_listeners_at_risk", today),
        sessions=warehouse.read_table("kpi_sessions", trend),
    )


def read_history(warehouse: WarehouseResource, day: dt.date) -> HistoryData:
    """The whole history up to `day`: daily totals, and the top artists and tracks of each
    year from the per-day aggregates (each artist or track under its latest spelling)."""
    daily_table = TABLES["kpi_daily_streams"]
    daily = warehouse.read_frame(
        sa.select(
            daily_table.c.dt,
            daily_table.c.plays,
            daily_table.c.streams,
            daily_table.c.minutes_played,
        ).where(daily_table.c.dt <= day)
    )
    daily = daily.astype({"plays": "int64", "streams": "int64", "minutes_played": "float64"})
    years = sorted({pd.Timestamp(d).year for d in daily.loc[daily["plays"] > 0, "dt"]})
    artists, tracks = [], []
    for year in years:
        first, last = dt.date(year, 1, 1), min(dt.date(year, 12, 31), day)
        artists.append(
            _year_top(
                warehouse, "agg_artist_daily", "artist_id", ["artist_name"], year, first, last
            )
        )
        tracks.append(
            _year_top(
                warehouse,
                "agg_track_daily",
                "track_id",
                ["track_name", "artist_name"],
                year,
                first,
                last,
            )
        )
    empty = pd.DataFrame(columns=["year", "streams", "minutes_played"])
    return HistoryData(
        daily=daily,
        top_artists=pd.concat(artists, ignore_index=True) if artists else empty,
        top_tracks=pd.concat(tracks, ignore_index=True) if tracks else empty,
    )


def _year_top(
    warehouse: WarehouseResource,
    table: str,
    key: str,
    names: list[str],
    year: int,
    first: dt.date,
    last: dt.date,
) -> pd.DataFrame:
    """A year's top identities by streams, each named as on its latest day in the year."""
    t = TABLES[table]
    grouped = warehouse.read_frame(
        sa.select(
            t.c[key],
            *(t.c[n] for n in names),
            sa.func.sum(t.c.streams).label("streams"),
            sa.func.sum(t.c.ms_played).label("ms_played"),
            sa.func.max(t.c.dt).label("last_dt"),
        )
        .where(t.c.dt.between(first, last), t.c.streams > 0)
        .group_by(t.c[key], *(t.c[n] for n in names))
    )
    if grouped.empty:
        return pd.DataFrame(columns=["year", *names, "streams", "minutes_played"])
    grouped = grouped.astype({"streams": "int64", "ms_played": "float64"})
    order = [True, False, *([True] * len(names))]
    named = grouped.sort_values([key, "last_dt", *names], ascending=order)
    shown = named.drop_duplicates(key)[[key, *names]]
    totals = grouped.groupby(key)[["streams", "ms_played"]].sum().reset_index()
    top = totals.merge(shown, on=key).sort_values(
        ["streams", *names], ascending=[False, *([True] * len(names))], kind="mergesort"
    )
    top = top.head(HISTORY_TOP)
    return pd.DataFrame(
        {
            "year": year,
            **{n: top[n].to_numpy() for n in names},
            "streams": top["streams"].to_numpy(),
            "minutes_played": top["ms_played"].to_numpy() / 60_000,
        }
    )


def _insight_metadata(found: dict[str, object]) -> dict[str, MetadataValue]:
    def text(value: object) -> MetadataValue:
        return MetadataValue.text(str(value)) if value is not None else MetadataValue.null()

    def number(value: object) -> MetadataValue:
        return MetadataValue.float(float(value)) if value is not None else MetadataValue.null()

    genres = list(found["leading_genres"])
    segment = found["riskiest_segment"]
    return {
        "peak_local_hour_band": text(found["peak_band"]),
        "peak_band_share": number(found["peak_band_share"]),
        "leading_genres": text(", ".join(genres) if genres else None),
        "leading_genres_share": number(found["leading_genres_share"]),
        "fastest_growing_artist": text(found["fastest_growing_artist"]),
        "fastest_growing_increase": number(found["fastest_growing_increase"]),
        "history_days": MetadataValue.int(int(found["history_days"])),
        "growth_week": text(found["growth_week"]),
        "quick_ratio": number(found["quick_ratio"]),
        "riskiest_segment": text(
            segment_label(segment["country"], segment["platform"]) if segment else None
        ),
        "riskiest_segment_share": number(segment["share"] if segment else None),
        "insights": MetadataValue.md(insights_markdown(found)),
    }


@asset(
    key=["lake", "dashboard"],
    group_name="reports",
    kinds={"s3", "html", "plotly"},
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    pool=WAREHOUSE_POOL,
    deps=[AssetKey(["warehouse", name]) for name in KPI_TABLES],
    description=(
        "One self-contained HTML page per day (reports/dashboard/dt=D/index.html): headline "
        "KPIs with their change, trends, engagement, top lists, cohorts and insights. A range "
        "run renders every day of up to 7 days, else only the last day."
    ),
)
def dashboard(
    context: AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource
) -> MaterializeResult:
    days = days_of(context)
    rendered = days_to_render(days)
    per_day: dict[str, dict[str, object]] = {}
    for day in rendered:
        data = read_dashboard_data(warehouse, day)
        if len(days) > RENDER_EVERY_DAY_UP_TO:
            # A long range is a backfill or an imported history: its one page shows it all.
            data = dataclasses.replace(data, history=read_history(warehouse, day))
        page = render_dashboard(data, day).encode("utf-8")
        key = dashboard_key(day)
        lake.write_bytes(key, page)
        context.log.info(f"dashboard of {day} written to {lake.uri(key)} ({len(page):,} bytes)")
        per_day[day.isoformat()] = {"dagster/uri": lake.uri(key), "size_bytes": len(page)}
    return run_summary(
        context,
        {
            "path": MetadataValue.path(lake.uri(key)),
            "day": MetadataValue.text(day.isoformat()),
            "rendered_days": MetadataValue.int(len(rendered)),
            **_insight_metadata(insights(data)),
        },
        per_day,
    )
