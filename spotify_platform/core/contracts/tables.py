"""Warehouse tables, generated from the pandera contracts in `core.contracts.schemas`.

Only keys and indexes are declared here; columns, types and nullability come from the models,
so the DDL cannot drift from the contract that validated the data.
"""

from dataclasses import dataclass, field

import pandera.pandas as pa
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from spotify_platform.core.contracts import schemas

metadata = sa.MetaData()

UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")
MYSQL_TABLE_OPTIONS = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


@dataclass(frozen=True)
class TableDef:
    name: str
    model: type[pa.DataFrameModel]
    primary_key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = field(default=())
    partitioned: bool = True

    @property
    def columns(self) -> list[str]:
        return list(self.model.to_schema().columns)


def _sql_type(column: pa.Column) -> sa.types.TypeEngine:
    meta = column.metadata or {}
    if meta.get("sql") == "date":
        return sa.Date()
    if "max_length" in meta:
        return sa.String(meta["max_length"])
    kind = str(column.dtype).lower()
    if kind.startswith("datetime"):
        return UTC_DATETIME
    if kind in ("bool", "boolean"):
        return sa.Boolean()
    if kind in ("int8", "int16"):
        return sa.SmallInteger()
    if kind.startswith("int"):
        return sa.BigInteger()
    if kind.startswith("float"):
        return sa.Float(precision=53)
    if kind in ("str", "string", "object"):
        return sa.Text()
    raise TypeError(f"no SQL type for column {column.name!r} of dtype {kind}")


def _build(definition: TableDef) -> sa.Table:
    columns = [
        sa.Column(
            name,
            _sql_type(col),
            nullable=bool(col.nullable) and name not in definition.primary_key,
            autoincrement=False,
            comment=col.description,
        )
        for name, col in definition.model.to_schema().columns.items()
    ]
    indexes = [
        sa.Index(f"ix_{definition.name}_{'_'.join(cols)}", *cols) for cols in definition.indexes
    ]
    # The key in declared order, not in column order: fact_streams' (dt, event_id) keeps each
    # day together in storage, so a day's load appends and a day's query is a range.
    key = sa.PrimaryKeyConstraint(*definition.primary_key)
    return sa.Table(definition.name, metadata, *columns, key, *indexes, **MYSQL_TABLE_OPTIONS)


TABLE_DEFS: dict[str, TableDef] = {
    d.name: d
    for d in (
        # No secondary index: every query of the facts reads whole days, which the primary
        # key's leading dt ranges over in storage order. An index that does not cover such a
        # query makes MariaDB follow it with a random row lookup per stream, and every index
        # slows the load.
        TableDef("fact_streams", schemas.StagingStreams, ("dt", "event_id")),
        TableDef("dim_tracks", schemas.DimTracks, ("track_id",), partitioned=False),
        TableDef("dim_artists", schemas.DimArtists, ("artist_id",), partitioned=False),
        TableDef("dim_accounts", schemas.DimAccounts, ("account_id",), partitioned=False),
        TableDef(
            "agg_account_daily",
            schemas.AggAccountDaily,
            ("dt", "account_id"),
            indexes=(("account_id", "streamed", "dt"),),
        ),
        # Per day and artist or track id: what the top lists and genre shares need, a few
        # thousand rows a day instead of a scan and sort of the day's streams. The index
        # finds a top list row's artist id by its name of that day (bi_top_artists).
        TableDef(
            "agg_artist_daily",
            schemas.AggArtistDaily,
            ("dt", "artist_id"),
            indexes=(("dt", "artist_name"),),
        ),
        TableDef("agg_track_daily", schemas.AggTrackDaily, ("dt", "track_id")),
        # Per account, hour, country and platform: the engagement and platform KPIs.
        TableDef(
            "agg_account_hourly",
            schemas.AggAccountHourly,
            ("dt", "account_id", "utc_hour", "country", "local_hour", "platform"),
        ),
        # Per account, day and (country, platform): the 28-day segments of listeners at risk
        # group these, a third of agg_account_hourly's rows.
        TableDef(
            "agg_account_segment_daily",
            schemas.AggAccountSegmentDaily,
            ("dt", "account_id", "country", "platform"),
        ),
        # A day's plays cut into sessions on their own: kpi_sessions reads these instead of
        # the facts and joins the few that meet across midnight.
        TableDef(
            "agg_account_sessions", schemas.AggAccountSessions, ("dt", "account_id", "started_at")
        ),
        TableDef("kpi_daily_streams", schemas.KpiDailyStreams, ("dt",)),
        TableDef("kpi_active_users", schemas.KpiActiveUsers, ("dt",)),
        TableDef("kpi_churn", schemas.KpiChurn, ("dt",)),
        TableDef(
            "kpi_retention",
            schemas.KpiRetention,
            ("cohort_week", "week_offset"),
            partitioned=False,
        ),
        TableDef(
            "kpi_engagement_by_region_hour",
            schemas.KpiEngagementByRegionHour,
            ("dt", "country", "local_hour"),
        ),
        TableDef("kpi_engagement_by_utc_hour", schemas.KpiEngagementByUtcHour, ("dt", "utc_hour")),
        TableDef("kpi_top_artists", schemas.KpiTopArtists, ("dt", "artist_name")),
        TableDef("kpi_top_tracks", schemas.KpiTopTracks, ("dt", "track_id")),
        TableDef("kpi_genre_share", schemas.KpiGenreShare, ("dt", "genre")),
        TableDef("kpi_platform_mix", schemas.KpiPlatformMix, ("dt", "platform")),
        TableDef(
            "kpi_growth_accounting",
            schemas.KpiGrowthAccounting,
            ("period", "period_start"),
            partitioned=False,
        ),
        TableDef(
            "kpi_listeners_at_risk", schemas.KpiListenersAtRisk, ("dt", "country", "platform")
        ),
        TableDef("kpi_sessions", schemas.KpiSessions, ("dt",)),
    )
}

TABLES: dict[str, sa.Table] = {name: _build(d) for name, d in TABLE_DEFS.items()}

VIEWS: dict[str, str] = {
    "bi_daily_overview": """
        SELECT d.dt, d.plays, d.streams, d.listeners, d.minutes_played, d.skip_rate,
               u.dau, u.wau, u.mau, u.stickiness,
               c.base_accounts AS churn_base_accounts, c.churned_accounts, c.churn_rate
        FROM kpi_daily_streams d
        LEFT JOIN kpi_active_users u ON u.dt = d.dt
        LEFT JOIN kpi_churn c ON c.dt = d.dt
    """,
    "bi_engagement_region_hour": """
        SELECT dt, country, local_hour, streams, listeners, minutes_played
        FROM kpi_engagement_by_region_hour
    """,
    "bi_engagement_utc_hour": """
        SELECT dt, utc_hour, streams, listeners, minutes_played
        FROM kpi_engagement_by_utc_hour
    """,
    # A top list shows its day's spelling, and dim_artists the latest: genres are found by
    # the artist id of the day's aggregate row, not by name.
    "bi_top_artists": """
        SELECT t.dt, t.rank AS artist_rank, t.artist_name, g.primary_genre, t.streams,
               t.listeners, t.minutes_played
        FROM kpi_top_artists t
        LEFT JOIN agg_artist_daily d ON d.dt = t.dt AND d.artist_name = t.artist_name
        LEFT JOIN dim_artists g ON g.artist_id = d.artist_id
    """,
    "bi_top_tracks": """
        SELECT t.dt, t.rank AS track_rank, t.track_name, t.artist_name, d.album_name,
               t.streams, t.listeners, t.minutes_played
        FROM kpi_top_tracks t
        LEFT JOIN dim_tracks d ON d.track_id = t.track_id
    """,
    "bi_genre_share": "SELECT dt, genre, streams, share FROM kpi_genre_share",
    "bi_platform_mix": "SELECT dt, platform, plays, share FROM kpi_platform_mix",
    "bi_retention": """
        SELECT cohort_week, week_offset, cohort_size, retained_accounts, retention_rate
        FROM kpi_retention
    """,
    "bi_growth_accounting": """
        SELECT period, period_start, active, new, retained, resurrected, churned, quick_ratio
        FROM kpi_growth_accounting
    """,
    "bi_listeners_at_risk": """
        SELECT dt, country, platform, active_28d, at_risk, at_risk_share
        FROM kpi_listeners_at_risk
    """,
    "bi_sessions": """
        SELECT dt, sessions, listeners, minutes, avg_session_minutes, median_session_minutes,
               avg_plays_per_session
        FROM kpi_sessions
    """,
    "bi_streams": """
        SELECT f.dt, f.ended_at, f.started_at, f.country, f.local_hour, f.utc_hour, f.platform,
               f.content_type, f.track_name, f.artist_name, f.album_name, f.episode_name,
               f.show_name, COALESCE(a.primary_genre, 'unknown') AS genre, f.ms_played,
               f.is_stream, f.skipped, f.shuffle, f.offline
        FROM fact_streams f
        LEFT JOIN dim_artists a ON a.artist_id = f.artist_id
    """,
}
