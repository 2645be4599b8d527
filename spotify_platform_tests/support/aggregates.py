"""Each aggregate table and the core function that builds it from staged plays."""

from spotify_platform.core.kpis import aggregates, lifecycle, sessions

AGGREGATE_BUILDS = {
    "agg_account_daily": aggregates.account_daily,
    "agg_artist_daily": aggregates.artist_daily,
    "agg_track_daily": aggregates.track_daily,
    "agg_account_hourly": aggregates.account_hourly,
    "agg_account_segment_daily": lifecycle.account_segment_daily,
    "agg_account_sessions": sessions.account_sessions,
}
