"""Baseline: the tables and bi_* views as the contracts defined them when Alembic took over.

Generated from `spotify_platform.core.contracts.tables` and frozen: later contract changes are later
revisions. A warehouse made before Alembic is brought to these tables and stamped here
(`spotify_platform.core.warehouse.migrations.legacy`).

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from spotify_platform.core.warehouse.migrations import replace_views

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def tables() -> sa.MetaData:
    """The baseline's tables; a column's info `backfill` fills it when an older table lacks it."""
    metadata = sa.MetaData()
    sa.Table(
        'fact_streams',
        metadata,
        sa.Column('event_id', sa.String(length=32), autoincrement=False, nullable=False, comment='Hash of account, ended_at, content and ms_played: one row per real play'),
        sa.Column('account_id', sa.String(length=32), autoincrement=False, nullable=False, comment='Keyed HMAC of the account name'),
        sa.Column('source', sa.String(length=16), autoincrement=False, nullable=False, comment='Where the raw record came from'),
        sa.Column('ended_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=3), 'mariadb').with_variant(mysql.DATETIME(fsp=3), 'mysql'), autoincrement=False, nullable=False, comment="UTC instant the play ended (the export's ts)"),
        sa.Column('started_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=3), 'mariadb').with_variant(mysql.DATETIME(fsp=3), 'mysql'), autoincrement=False, nullable=False, comment='ended_at - ms_played'),
        sa.Column('ms_played', sa.BigInteger(), autoincrement=False, nullable=False, comment='Milliseconds played; more than a day is absurd'),
        sa.Column('content_type', sa.String(length=16), autoincrement=False, nullable=False, comment='track/episode/audiobook'),
        sa.Column('track_id', sa.String(length=22), autoincrement=False, nullable=True, comment="Spotify track id, or '~' + hash of artist and track names for old exports"),
        sa.Column('track_name', sa.String(length=512), autoincrement=False, nullable=True, comment='Track title'),
        sa.Column('artist_id', sa.String(length=22), autoincrement=False, nullable=True, comment="'~' + hash of the artist name: exports carry no artist id"),
        sa.Column('artist_name', sa.String(length=512), autoincrement=False, nullable=True, comment='Album artist name'),
        sa.Column('album_name', sa.String(length=512), autoincrement=False, nullable=True, comment='Album title'),
        sa.Column('episode_name', sa.String(length=512), autoincrement=False, nullable=True, comment='Podcast episode or chapter'),
        sa.Column('show_name', sa.String(length=512), autoincrement=False, nullable=True, comment='Podcast show or audiobook'),
        sa.Column('country', sa.String(length=2), autoincrement=False, nullable=False, comment='ISO 3166-1 alpha-2; ZZ when unknown'),
        sa.Column('platform', sa.String(length=16), autoincrement=False, nullable=False, comment='Normalised device family'),
        sa.Column('reason_start', sa.String(length=32), autoincrement=False, nullable=True, comment='Why the play started'),
        sa.Column('reason_end', sa.String(length=32), autoincrement=False, nullable=True, comment='Why the play ended'),
        sa.Column('shuffle', sa.Boolean(), autoincrement=False, nullable=True, comment='Shuffle mode on'),
        sa.Column('skipped', sa.Boolean(), autoincrement=False, nullable=False, comment='Export flag, or reason_end fwdbtn/backbtn/endplay (flag unreliable 2015-22)'),
        sa.Column('offline', sa.Boolean(), autoincrement=False, nullable=True, comment='Played offline'),
        sa.Column('incognito', sa.Boolean(), autoincrement=False, nullable=True, comment='Private session'),
        sa.Column('is_stream', sa.Boolean(), autoincrement=False, nullable=False, comment='Track play of at least 30 seconds'),
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment='UTC date of ended_at: the partition'),
        sa.Column('utc_hour', sa.SmallInteger(), autoincrement=False, nullable=False, comment='UTC hour of started_at'),
        sa.Column('local_hour', sa.SmallInteger(), autoincrement=False, nullable=False, comment="Hour of started_at in the country's capital time zone"),
        sa.PrimaryKeyConstraint('dt', 'event_id'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'dim_tracks',
        metadata,
        sa.Column('track_id', sa.String(length=22), autoincrement=False, nullable=False, comment='Track id'),
        sa.Column('track_name', sa.String(length=512), autoincrement=False, nullable=False, comment='Track title of its latest play seen'),
        sa.Column('artist_id', sa.String(length=22), autoincrement=False, nullable=False, comment='Artist surrogate id (name hash)'),
        sa.Column('artist_name', sa.String(length=512), autoincrement=False, nullable=False, comment='Album artist of its latest play seen'),
        sa.Column('name_seen_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=3), 'mariadb').with_variant(mysql.DATETIME(fsp=3), 'mysql'), autoincrement=False, nullable=True, comment='End of the latest play seen, whose names the row holds; NULL in rows from before names followed the latest play, which the next load renames'),
        sa.Column('spotify_artist_id', sa.String(length=22), autoincrement=False, nullable=True, comment='Spotify id if known'),
        sa.Column('album_name', sa.String(length=512), autoincrement=False, nullable=True, comment='Album title'),
        sa.Column('duration_ms', sa.BigInteger(), autoincrement=False, nullable=True, comment='Length'),
        sa.Column('popularity', sa.BigInteger(), autoincrement=False, nullable=True, comment='Optional: development-mode apps lack it'),
        sa.Column('explicit', sa.Boolean(), autoincrement=False, nullable=True, comment='Explicit lyrics'),
        sa.Column('catalog_source', sa.String(length=16), autoincrement=False, nullable=False, comment='Who described the track'),
        sa.PrimaryKeyConstraint('track_id'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'dim_artists',
        metadata,
        sa.Column('artist_id', sa.String(length=22), autoincrement=False, nullable=False, comment="'~' + hash of the artist name"),
        sa.Column('artist_name', sa.String(length=512), autoincrement=False, nullable=False, comment='Name in its latest play seen'),
        sa.Column('name_seen_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=3), 'mariadb').with_variant(mysql.DATETIME(fsp=3), 'mysql'), autoincrement=False, nullable=True, comment='End of the latest play seen, whose names the row holds; NULL in rows from before names followed the latest play, which the next load renames'),
        sa.Column('spotify_artist_id', sa.String(length=22), autoincrement=False, nullable=True, comment='Spotify id if known'),
        sa.Column('primary_genre', sa.String(length=64), autoincrement=False, nullable=False, comment="First genre, 'unknown' where none"),
        sa.Column('genres', sa.String(length=1024), autoincrement=False, nullable=True, comment="All genres, ' | ' separated"),
        sa.PrimaryKeyConstraint('artist_id'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'dim_accounts',
        metadata,
        sa.Column('account_id', sa.String(length=32), autoincrement=False, nullable=False, comment='Keyed HMAC'),
        sa.Column('first_stream_dt', sa.Date(), autoincrement=False, nullable=True, comment='Day of first stream ever'),
        sa.Column('last_stream_dt', sa.Date(), autoincrement=False, nullable=True, comment='Day of latest stream'),
        sa.Column('active_days', sa.BigInteger(), autoincrement=False, nullable=False, comment='Days with at least one stream'),
        sa.Column('home_country', sa.String(length=2), autoincrement=False, nullable=False, comment='Country of most plays on the latest day'),
        sa.PrimaryKeyConstraint('account_id'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'agg_account_daily',
        metadata,
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment='UTC day (partition key)'),
        sa.Column('account_id', sa.String(length=32), autoincrement=False, nullable=False, comment='Keyed HMAC'),
        sa.Column('plays', sa.BigInteger(), autoincrement=False, nullable=False, comment='All plays'),
        sa.Column('track_plays', sa.BigInteger(), autoincrement=False, nullable=False, comment='Track plays'),
        sa.Column('skipped_track_plays', sa.BigInteger(), autoincrement=False, nullable=False, comment='Skipped track plays'),
        sa.Column('streams', sa.BigInteger(), autoincrement=False, nullable=False, comment='Track plays of at least 30 seconds'),
        sa.Column('ms_played', sa.BigInteger(), autoincrement=False, nullable=False, comment='Milliseconds of all plays'),
        sa.Column('stream_ms_played', sa.BigInteger(), autoincrement=False, nullable=False, comment='Milliseconds of streams'),
        sa.Column('country', sa.String(length=2), autoincrement=False, nullable=False, comment='Country of most plays that day'),
        sa.Column('streamed', sa.Boolean(), autoincrement=False, nullable=False, info={'backfill': 'streams > 0'}, comment="streams > 0: an equality the windowed KPIs' index can skip along"),
        sa.Index('ix_agg_account_daily_account_id_streamed_dt', 'account_id', 'streamed', 'dt'),
        sa.PrimaryKeyConstraint('dt', 'account_id'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'agg_artist_daily',
        metadata,
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment='UTC day (partition key)'),
        sa.Column('artist_id', sa.String(length=22), autoincrement=False, nullable=False, comment="'~' + hash of the artist name"),
        sa.Column('artist_name', sa.String(length=512), autoincrement=False, nullable=False, comment="Name in the day's latest play of it"),
        sa.Column('streams', sa.BigInteger(), autoincrement=False, nullable=False, comment='Streams of the artist'),
        sa.Column('listeners', sa.BigInteger(), autoincrement=False, nullable=False, comment='Accounts with a stream of the artist'),
        sa.Column('ms_played', sa.BigInteger(), autoincrement=False, nullable=False, comment='Milliseconds of those streams'),
        sa.Index('ix_agg_artist_daily_dt_artist_name', 'dt', 'artist_name'),
        sa.PrimaryKeyConstraint('dt', 'artist_id'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'agg_track_daily',
        metadata,
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment='UTC day (partition key)'),
        sa.Column('track_id', sa.String(length=22), autoincrement=False, nullable=False, comment='Track id'),
        sa.Column('track_name', sa.String(length=512), autoincrement=False, nullable=True, comment="Title in the day's latest play of the track"),
        sa.Column('artist_name', sa.String(length=512), autoincrement=False, nullable=True, comment="Artist in the day's latest play of the track"),
        sa.Column('streams', sa.BigInteger(), autoincrement=False, nullable=False, comment='Streams of the track'),
        sa.Column('listeners', sa.BigInteger(), autoincrement=False, nullable=False, comment='Accounts with a stream of the track'),
        sa.Column('ms_played', sa.BigInteger(), autoincrement=False, nullable=False, comment='Milliseconds of those streams'),
        sa.PrimaryKeyConstraint('dt', 'track_id'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'agg_account_hourly',
        metadata,
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment='UTC day (partition key)'),
        sa.Column('account_id', sa.String(length=32), autoincrement=False, nullable=False, comment='Keyed HMAC'),
        sa.Column('utc_hour', sa.SmallInteger(), autoincrement=False, nullable=False, comment='UTC hour of started_at'),
        sa.Column('country', sa.String(length=2), autoincrement=False, nullable=False, comment='ISO 3166-1 alpha-2 of the plays'),
        sa.Column('local_hour', sa.SmallInteger(), autoincrement=False, nullable=False, comment="Hour of started_at in the country's capital time zone"),
        sa.Column('platform', sa.String(length=16), autoincrement=False, nullable=False, comment='Normalised device family'),
        sa.Column('plays', sa.BigInteger(), autoincrement=False, nullable=False, comment='All plays'),
        sa.Column('streams', sa.BigInteger(), autoincrement=False, nullable=False, comment='Track plays of at least 30 seconds'),
        sa.Column('stream_ms_played', sa.BigInteger(), autoincrement=False, nullable=False, comment='Milliseconds of streams'),
        sa.PrimaryKeyConstraint('dt', 'account_id', 'utc_hour', 'country', 'local_hour', 'platform'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'agg_account_segment_daily',
        metadata,
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment='UTC day (partition key)'),
        sa.Column('account_id', sa.String(length=32), autoincrement=False, nullable=False, comment='Keyed HMAC'),
        sa.Column('country', sa.String(length=2), autoincrement=False, nullable=False, comment='ISO 3166-1 alpha-2 of the streams'),
        sa.Column('platform', sa.String(length=16), autoincrement=False, nullable=False, comment='Normalised device family'),
        sa.Column('streams', sa.BigInteger(), autoincrement=False, nullable=False, comment='Streams of the account on that pair'),
        sa.PrimaryKeyConstraint('dt', 'account_id', 'country', 'platform'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'agg_account_sessions',
        metadata,
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment='UTC day (partition key)'),
        sa.Column('account_id', sa.String(length=32), autoincrement=False, nullable=False, comment='Keyed HMAC'),
        sa.Column('started_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=3), 'mariadb').with_variant(mysql.DATETIME(fsp=3), 'mysql'), autoincrement=False, nullable=False, comment="Start of the run's first play"),
        sa.Column('ended_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=3), 'mariadb').with_variant(mysql.DATETIME(fsp=3), 'mysql'), autoincrement=False, nullable=False, comment="Latest end among the run's plays"),
        sa.Column('plays', sa.BigInteger(), autoincrement=False, nullable=False, comment='Plays in the run'),
        sa.Column('ms_played', sa.BigInteger(), autoincrement=False, nullable=False, comment='Milliseconds of all its plays'),
        sa.PrimaryKeyConstraint('dt', 'account_id', 'started_at'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'kpi_daily_streams',
        metadata,
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment='UTC day (partition key)'),
        sa.Column('plays', sa.BigInteger(), autoincrement=False, nullable=False, comment='All plays'),
        sa.Column('streams', sa.BigInteger(), autoincrement=False, nullable=False, comment='Track plays of at least 30 s'),
        sa.Column('listeners', sa.BigInteger(), autoincrement=False, nullable=False, comment='Accounts with a stream'),
        sa.Column('minutes_played', sa.Float(precision=53), autoincrement=False, nullable=False, comment='All plays, minutes'),
        sa.Column('skip_rate', sa.Float(precision=53), autoincrement=False, nullable=True, comment='Skipped track plays / track plays'),
        sa.PrimaryKeyConstraint('dt'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'kpi_active_users',
        metadata,
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment='UTC day (partition key)'),
        sa.Column('dau', sa.BigInteger(), autoincrement=False, nullable=False, comment='Accounts with a stream on dt'),
        sa.Column('wau', sa.BigInteger(), autoincrement=False, nullable=False, comment='Accounts with a stream in [dt-6, dt]'),
        sa.Column('mau', sa.BigInteger(), autoincrement=False, nullable=False, comment='Accounts with a stream in [dt-29, dt]'),
        sa.Column('stickiness', sa.Float(precision=53), autoincrement=False, nullable=True, comment='dau / mau'),
        sa.PrimaryKeyConstraint('dt'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'kpi_churn',
        metadata,
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment='UTC day (partition key)'),
        sa.Column('base_accounts', sa.BigInteger(), autoincrement=False, nullable=False, comment='Accounts with a stream in [dt-59, dt-30]'),
        sa.Column('churned_accounts', sa.BigInteger(), autoincrement=False, nullable=False, comment='Base accounts without a stream in [dt-29, dt]'),
        sa.Column('churn_rate', sa.Float(precision=53), autoincrement=False, nullable=True, comment='churned / base; NULL when base is 0'),
        sa.PrimaryKeyConstraint('dt'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'kpi_retention',
        metadata,
        sa.Column('cohort_week', sa.Date(), autoincrement=False, nullable=False, comment='Monday of the week of the first stream'),
        sa.Column('week_offset', sa.BigInteger(), autoincrement=False, nullable=False, comment='Weeks after the cohort week'),
        sa.Column('cohort_size', sa.BigInteger(), autoincrement=False, nullable=False, comment='Accounts in the cohort'),
        sa.Column('retained_accounts', sa.BigInteger(), autoincrement=False, nullable=False, comment='Cohort accounts streaming in that week'),
        sa.Column('retention_rate', sa.Float(precision=53), autoincrement=False, nullable=False, comment='retained / cohort size'),
        sa.PrimaryKeyConstraint('cohort_week', 'week_offset'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'kpi_engagement_by_region_hour',
        metadata,
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment='UTC day (partition key)'),
        sa.Column('country', sa.String(length=2), autoincrement=False, nullable=False, comment='ISO 3166-1 alpha-2'),
        sa.Column('local_hour', sa.BigInteger(), autoincrement=False, nullable=False, comment='Local hour of started_at'),
        sa.Column('streams', sa.BigInteger(), autoincrement=False, nullable=False, comment='Streams'),
        sa.Column('listeners', sa.BigInteger(), autoincrement=False, nullable=False, comment='Accounts'),
        sa.Column('minutes_played', sa.Float(precision=53), autoincrement=False, nullable=False, comment='Streams, minutes'),
        sa.PrimaryKeyConstraint('dt', 'country', 'local_hour'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'kpi_engagement_by_utc_hour',
        metadata,
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment='UTC day (partition key)'),
        sa.Column('utc_hour', sa.BigInteger(), autoincrement=False, nullable=False, comment='UTC hour of started_at'),
        sa.Column('streams', sa.BigInteger(), autoincrement=False, nullable=False, comment='Streams'),
        sa.Column('listeners', sa.BigInteger(), autoincrement=False, nullable=False, comment='Accounts'),
        sa.Column('minutes_played', sa.Float(precision=53), autoincrement=False, nullable=False, comment='Streams, minutes'),
        sa.PrimaryKeyConstraint('dt', 'utc_hour'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'kpi_top_artists',
        metadata,
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment='UTC day (partition key)'),
        sa.Column('rank', sa.BigInteger(), autoincrement=False, nullable=False, comment='Dense rank by streams'),
        sa.Column('artist_name', sa.String(length=512), autoincrement=False, nullable=False, comment='Artist name'),
        sa.Column('streams', sa.BigInteger(), autoincrement=False, nullable=False, comment='Streams'),
        sa.Column('listeners', sa.BigInteger(), autoincrement=False, nullable=False, comment='Accounts'),
        sa.Column('minutes_played', sa.Float(precision=53), autoincrement=False, nullable=False, comment='Streams, minutes'),
        sa.PrimaryKeyConstraint('dt', 'artist_name'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'kpi_top_tracks',
        metadata,
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment='UTC day (partition key)'),
        sa.Column('rank', sa.BigInteger(), autoincrement=False, nullable=False, comment='Dense rank by streams'),
        sa.Column('track_id', sa.String(length=22), autoincrement=False, nullable=False, comment='Track id'),
        sa.Column('track_name', sa.String(length=512), autoincrement=False, nullable=False, comment='Track title'),
        sa.Column('artist_name', sa.String(length=512), autoincrement=False, nullable=False, comment='Artist name'),
        sa.Column('streams', sa.BigInteger(), autoincrement=False, nullable=False, comment='Streams'),
        sa.Column('listeners', sa.BigInteger(), autoincrement=False, nullable=False, comment='Accounts'),
        sa.Column('minutes_played', sa.Float(precision=53), autoincrement=False, nullable=False, comment='Streams, minutes'),
        sa.PrimaryKeyConstraint('dt', 'track_id'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'kpi_genre_share',
        metadata,
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment='UTC day (partition key)'),
        sa.Column('genre', sa.String(length=64), autoincrement=False, nullable=False, comment="Artist's primary genre or 'unknown'"),
        sa.Column('streams', sa.BigInteger(), autoincrement=False, nullable=False, comment='Streams'),
        sa.Column('share', sa.Float(precision=53), autoincrement=False, nullable=False, comment="Share of the day's streams"),
        sa.PrimaryKeyConstraint('dt', 'genre'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'kpi_platform_mix',
        metadata,
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment='UTC day (partition key)'),
        sa.Column('platform', sa.String(length=16), autoincrement=False, nullable=False, comment='Normalised device family'),
        sa.Column('plays', sa.BigInteger(), autoincrement=False, nullable=False, comment='Plays'),
        sa.Column('share', sa.Float(precision=53), autoincrement=False, nullable=False, comment="Share of the day's plays"),
        sa.PrimaryKeyConstraint('dt', 'platform'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'kpi_growth_accounting',
        metadata,
        sa.Column('period', sa.String(length=5), autoincrement=False, nullable=False, comment='Calendar period kind'),
        sa.Column('period_start', sa.Date(), autoincrement=False, nullable=False, comment='Monday of the week or 1st of the month (UTC)'),
        sa.Column('active', sa.BigInteger(), autoincrement=False, nullable=False, comment='Accounts with a stream in the period'),
        sa.Column('new', sa.BigInteger(), autoincrement=False, nullable=False, comment='Active, with no stream before the period'),
        sa.Column('retained', sa.BigInteger(), autoincrement=False, nullable=False, comment='Active in the period and in the previous one'),
        sa.Column('resurrected', sa.BigInteger(), autoincrement=False, nullable=False, comment='Active, not in the previous period, but in an earlier one'),
        sa.Column('churned', sa.BigInteger(), autoincrement=False, nullable=False, comment='Active in the previous period, not in this one'),
        sa.Column('quick_ratio', sa.Float(precision=53), autoincrement=False, nullable=True, comment='(new + resurrected) / churned; NULL when churned is 0'),
        sa.PrimaryKeyConstraint('period', 'period_start'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'kpi_listeners_at_risk',
        metadata,
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment='UTC day (partition key)'),
        sa.Column('country', sa.String(length=2), autoincrement=False, nullable=False, comment='Country of the segment (ISO alpha-2)'),
        sa.Column('platform', sa.String(length=16), autoincrement=False, nullable=False, comment='Device family of the segment'),
        sa.Column('active_28d', sa.BigInteger(), autoincrement=False, nullable=False, comment='Accounts with a stream in [dt-27, dt]'),
        sa.Column('at_risk', sa.BigInteger(), autoincrement=False, nullable=False, comment='Of those, accounts without a stream in [dt-6, dt]'),
        sa.Column('at_risk_share', sa.Float(precision=53), autoincrement=False, nullable=False, comment='at_risk / active_28d'),
        sa.PrimaryKeyConstraint('dt', 'country', 'platform'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    sa.Table(
        'kpi_sessions',
        metadata,
        sa.Column('dt', sa.Date(), autoincrement=False, nullable=False, comment="UTC day the sessions' first plays started on"),
        sa.Column('sessions', sa.BigInteger(), autoincrement=False, nullable=False, comment='Sessions starting on dt'),
        sa.Column('listeners', sa.BigInteger(), autoincrement=False, nullable=False, comment='Accounts with a session starting on dt'),
        sa.Column('minutes', sa.Float(precision=53), autoincrement=False, nullable=False, comment='ms_played of all their plays, minutes'),
        sa.Column('avg_session_minutes', sa.Float(precision=53), autoincrement=False, nullable=True, comment='minutes / sessions'),
        sa.Column('median_session_minutes', sa.Float(precision=53), autoincrement=False, nullable=True, comment="Median of the sessions' minutes"),
        sa.Column('avg_plays_per_session', sa.Float(precision=53), autoincrement=False, nullable=True, comment='Plays / sessions'),
        sa.PrimaryKeyConstraint('dt'),
        mysql_charset='utf8mb4',
        mysql_collate='utf8mb4_bin',
        mysql_engine='InnoDB',
    )
    return metadata


VIEWS = {
    'bi_daily_overview': """
        SELECT d.dt, d.plays, d.streams, d.listeners, d.minutes_played, d.skip_rate,
               u.dau, u.wau, u.mau, u.stickiness,
               c.base_accounts AS churn_base_accounts, c.churned_accounts, c.churn_rate
        FROM kpi_daily_streams d
        LEFT JOIN kpi_active_users u ON u.dt = d.dt
        LEFT JOIN kpi_churn c ON c.dt = d.dt
    """,
    'bi_engagement_region_hour': """
        SELECT dt, country, local_hour, streams, listeners, minutes_played
        FROM kpi_engagement_by_region_hour
    """,
    'bi_engagement_utc_hour': """
        SELECT dt, utc_hour, streams, listeners, minutes_played
        FROM kpi_engagement_by_utc_hour
    """,
    'bi_top_artists': """
        SELECT t.dt, t.rank AS artist_rank, t.artist_name, g.primary_genre, t.streams,
               t.listeners, t.minutes_played
        FROM kpi_top_artists t
        LEFT JOIN agg_artist_daily d ON d.dt = t.dt AND d.artist_name = t.artist_name
        LEFT JOIN dim_artists g ON g.artist_id = d.artist_id
    """,
    'bi_top_tracks': """
        SELECT t.dt, t.rank AS track_rank, t.track_name, t.artist_name, d.album_name,
               t.streams, t.listeners, t.minutes_played
        FROM kpi_top_tracks t
        LEFT JOIN dim_tracks d ON d.track_id = t.track_id
    """,
    'bi_genre_share': """SELECT dt, genre, streams, share FROM kpi_genre_share""",
    'bi_platform_mix': """SELECT dt, platform, plays, share FROM kpi_platform_mix""",
    'bi_retention': """
        SELECT cohort_week, week_offset, cohort_size, retained_accounts, retention_rate
        FROM kpi_retention
    """,
    'bi_growth_accounting': """
        SELECT period, period_start, active, new, retained, resurrected, churned, quick_ratio
        FROM kpi_growth_accounting
    """,
    'bi_listeners_at_risk': """
        SELECT dt, country, platform, active_28d, at_risk, at_risk_share
        FROM kpi_listeners_at_risk
    """,
    'bi_sessions': """
        SELECT dt, sessions, listeners, minutes, avg_session_minutes, median_session_minutes,
               avg_plays_per_session
        FROM kpi_sessions
    """,
    'bi_streams': """
        SELECT f.dt, f.ended_at, f.started_at, f.country, f.local_hour, f.utc_hour, f.platform,
               f.content_type, f.track_name, f.artist_name, f.album_name, f.episode_name,
               f.show_name, COALESCE(a.primary_genre, 'unknown') AS genre, f.ms_played,
               f.is_stream, f.skipped, f.shuffle, f.offline
        FROM fact_streams f
        LEFT JOIN dim_artists a ON a.artist_id = f.artist_id
    """,
}


def upgrade() -> None:
    bind = op.get_bind()
    tables().create_all(bind, checkfirst=False)
    replace_views(bind, VIEWS)


def downgrade() -> None:
    bind = op.get_bind()
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    tables().drop_all(bind)
