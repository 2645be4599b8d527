"""KPI maths: set-based SQL over the aggregate tables plus small pandas steps.

Queries take their days as typed parameters and run unchanged on MySQL/MariaDB and SQLite.
The aggregate tables they read are built by `aggregates`. Nothing here imports Dagster;
assets, the CLI and the benchmark all call these functions.
"""

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa

TOP_N = 50
MS_PER_MINUTE = 60_000.0


def query(sql: str, **dates: dt.date) -> sa.TextClause:
    """A text query whose parameters are bound as DATEs (SQLite stores them as ISO text)."""
    return sa.text(sql).bindparams(
        *(sa.bindparam(name, value, type_=sa.Date()) for name, value in dates.items())
    )


def dense_top(frame: pd.DataFrame, name_columns: Sequence[str], n: int = TOP_N) -> pd.DataFrame:
    """Per day: dense rank by streams, ties by name in code point order (how Python compares
    str), first n rows."""
    if frame.empty:
        return frame.assign(rank=pd.Series(dtype="int64"))
    ordered = frame.sort_values(
        ["dt", "streams", *name_columns],
        ascending=[True, False, *[True] * len(name_columns)],
        kind="mergesort",
    )
    ordered["rank"] = ordered.groupby("dt")["streams"].rank(method="dense", ascending=False)
    ordered["rank"] = ordered["rank"].astype("int64")
    return ordered.groupby("dt", sort=True).head(n).reset_index(drop=True)


def daily_streams(warehouse_rows: pd.DataFrame, days: Sequence[dt.date]) -> pd.DataFrame:
    """kpi_daily_streams from per-day sums of agg_account_daily, with zero rows for empty days."""
    sums = _by_day(warehouse_rows, days)
    track_plays = sums["track_plays"].astype(float)
    return pd.DataFrame(
        {
            "dt": sums["dt"],
            "plays": sums["plays"].astype("int64"),
            "streams": sums["streams"].astype("int64"),
            "listeners": sums["listeners"].astype("int64"),
            "minutes_played": sums["ms_played"].astype(float) / MS_PER_MINUTE,
            "skip_rate": np.where(
                track_plays > 0,
                sums["skipped_track_plays"] / track_plays.replace(0, np.nan),
                np.nan,
            ),
        }
    )


DAILY_SUMS_SQL = """
SELECT dt,
       SUM(plays) AS plays,
       SUM(streams) AS streams,
       SUM(CASE WHEN streams > 0 THEN 1 ELSE 0 END) AS listeners,
       SUM(ms_played) AS ms_played,
       SUM(track_plays) AS track_plays,
       SUM(skipped_track_plays) AS skipped_track_plays
FROM agg_account_daily
WHERE dt BETWEEN :first AND :last
GROUP BY dt
"""

# Each account's last stream day in the month says whether it was active that day, that week
# and that month. `streamed = 1` is an equality on ix_agg_account_daily_account_id_streamed_dt,
# so MariaDB and MySQL jump from account to account along that index (a loose index scan,
# "Using index for group-by"): a few index dives per account, however many days the window
# holds. The same goes for churn's window and for retention's cohorts.
ACTIVE_USERS_SQL = """
SELECT COALESCE(SUM(CASE WHEN last_day = :day THEN 1 ELSE 0 END), 0) AS dau,
       COALESCE(SUM(CASE WHEN last_day >= :week_start THEN 1 ELSE 0 END), 0) AS wau,
       COUNT(*) AS mau
FROM (SELECT account_id, MAX(dt) AS last_day FROM agg_account_daily
      WHERE streamed = 1 AND dt BETWEEN :month_start AND :day
      GROUP BY account_id) AS recent
"""

# Only the rows that can make a day's top 50 leave the server: a row with 50 rows of more
# streams ahead of it (RANK() > 50) cannot, while every row tied with the 50th is kept for
# `dense_top`, which orders the names by code point. Sending a month of tracks whole would
# cost the top-tracks step most of its time.
_TOP_SQL = """
SELECT {columns}
FROM (
    SELECT {columns}, RANK() OVER (PARTITION BY dt ORDER BY streams DESC) AS streams_rank
    FROM {table}
    WHERE dt BETWEEN :first AND :last
) ranked
WHERE streams_rank <= {n}
"""
TOP_ARTISTS_SQL = _TOP_SQL.format(
    columns="dt, artist_name, streams, listeners, ms_played", table="agg_artist_daily", n=TOP_N
)
TOP_TRACKS_SQL = _TOP_SQL.format(
    columns="dt, track_id, track_name, artist_name, streams, listeners, ms_played",
    table="agg_track_daily",
    n=TOP_N,
)


def active_users(dau: int, wau: int, mau: int, day: dt.date) -> dict:
    dau, wau, mau = int(dau or 0), int(wau or 0), int(mau or 0)
    return {
        "dt": pd.Timestamp(day),
        "dau": dau,
        "wau": wau,
        "mau": mau,
        "stickiness": (dau / mau) if mau else np.nan,
    }


def windows(day: dt.date) -> dict[str, dt.date]:
    return {
        "day": day,
        "week_start": day - dt.timedelta(days=6),
        "month_start": day - dt.timedelta(days=29),
    }


def top_list(grouped: pd.DataFrame, name_columns: Sequence[str]) -> pd.DataFrame:
    """Ranked top list rows from per-day grouped stream counts."""
    frame = grouped.copy()
    frame["dt"] = pd.to_datetime(frame["dt"])
    frame["streams"] = frame["streams"].astype("int64")
    frame["listeners"] = frame["listeners"].astype("int64")
    frame["minutes_played"] = frame.pop("ms_played").astype(float) / MS_PER_MINUTE
    return dense_top(frame, name_columns)


def _by_day(rows: pd.DataFrame, days: Sequence[dt.date]) -> pd.DataFrame:
    wanted = pd.DataFrame({"dt": pd.to_datetime(sorted(set(days)))})
    measures = ["plays", "streams", "listeners", "ms_played", "track_plays", "skipped_track_plays"]
    if rows.empty:
        for m in measures:
            wanted[m] = 0
        return wanted
    found = rows.copy()
    found["dt"] = pd.to_datetime(found["dt"])
    for m in measures:
        found[m] = pd.to_numeric(found[m]).fillna(0)
    merged = wanted.merge(found, on="dt", how="left")
    merged[measures] = merged[measures].fillna(0)
    return merged


# An account streamed in the base window [D-59, D-30] if its first stream day in [D-59, D] is
# at most D-30, and has churned if its last one is before D-29: one grouping pass, no join.
CHURN_SQL = """
SELECT COUNT(*) AS base_accounts,
       COALESCE(SUM(CASE WHEN last_day < :recent_start THEN 1 ELSE 0 END), 0)
         AS churned_accounts
FROM (SELECT account_id, MIN(dt) AS first_day, MAX(dt) AS last_day FROM agg_account_daily
      WHERE streamed = 1 AND dt BETWEEN :base_start AND :day
      GROUP BY account_id) AS seen
WHERE first_day <= :base_end
"""

# A week number counts Monday-to-Sunday weeks from WEEK_EPOCH, a Monday; the SQL differs by
# dialect only in how it counts days.
WEEK_EPOCH = dt.date(1970, 1, 5)
WEEK_NUMBER = {
    "sqlite": f"CAST(julianday(dt) - julianday('{WEEK_EPOCH}') AS INTEGER) / 7",
    "mysql": f"(TO_DAYS(dt) - TO_DAYS('{WEEK_EPOCH}')) DIV 7",
}

# Cohort sizes and retained accounts per (cohort, offset), counted in the warehouse: only a
# few hundred rows leave it, whatever the history's length.
RETENTION_SQL = """
SELECT cohort, active_week - cohort AS week_offset, COUNT(*) AS retained_accounts
FROM (SELECT account_id, active_week, MIN(active_week) OVER (PARTITION BY account_id) AS cohort
      FROM (SELECT DISTINCT account_id, {week} AS active_week
            FROM agg_account_daily WHERE streamed = 1) AS active_weeks) AS by_account
GROUP BY cohort, active_week - cohort
"""


def retention_query(dialect: str) -> sa.TextClause:
    week = WEEK_NUMBER["sqlite" if dialect == "sqlite" else "mysql"]
    return sa.text(RETENTION_SQL.format(week=week))


REGION_HOUR_SQL = """
SELECT dt, country, local_hour,
       SUM(streams) AS streams,
       COUNT(DISTINCT account_id) AS listeners,
       SUM(stream_ms_played) AS ms_played
FROM agg_account_hourly
WHERE dt BETWEEN :first AND :last AND streams > 0
GROUP BY dt, country, local_hour
"""

UTC_HOUR_SQL = """
SELECT dt, utc_hour,
       SUM(streams) AS streams,
       COUNT(DISTINCT account_id) AS listeners,
       SUM(stream_ms_played) AS ms_played
FROM agg_account_hourly
WHERE dt BETWEEN :first AND :last AND streams > 0
GROUP BY dt, utc_hour
"""

GENRE_SQL = """
SELECT g.dt, COALESCE(a.primary_genre, 'unknown') AS genre, SUM(g.streams) AS streams
FROM agg_artist_daily g
LEFT JOIN dim_artists a ON a.artist_id = g.artist_id
WHERE g.dt BETWEEN :first AND :last
GROUP BY g.dt, COALESCE(a.primary_genre, 'unknown')
"""

PLATFORM_SQL = """
SELECT dt, platform, SUM(plays) AS plays
FROM agg_account_hourly
WHERE dt BETWEEN :first AND :last
GROUP BY dt, platform
"""

CHURN_HORIZON_DAYS = 59
ACTIVE_HORIZON_DAYS = 29


def churn_windows(day: dt.date) -> dict[str, dt.date]:
    return {
        "day": day,
        "recent_start": day - dt.timedelta(days=29),
        "base_start": day - dt.timedelta(days=59),
        "base_end": day - dt.timedelta(days=30),
    }


def churn(base: int, churned: int, day: dt.date) -> dict:
    base, churned = int(base or 0), int(churned or 0)
    return {
        "dt": pd.Timestamp(day),
        "base_accounts": base,
        "churned_accounts": churned,
        "churn_rate": churned / base if base else np.nan,
    }


def retention(counts: pd.DataFrame) -> pd.DataFrame:
    """Weekly cohorts by first stream ever, every offset up to the last week, zeros kept,
    from RETENTION_SQL's counts (offset 0 of a cohort is all of it)."""
    columns = ["cohort_week", "week_offset", "cohort_size", "retained_accounts", "retention_rate"]
    if counts.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in columns}).astype(
            {"cohort_week": "datetime64[ns]", "retention_rate": float}
        )
    counts = counts.astype("int64")
    sizes = counts[counts["week_offset"] == 0].set_index("cohort")["retained_accounts"]
    last_week = int((counts["cohort"] + counts["week_offset"]).max())
    grid = pd.DataFrame(
        [
            (cohort, offset)
            for cohort in sorted(sizes.index)
            for offset in range(last_week - int(cohort) + 1)
        ],
        columns=["cohort", "week_offset"],
    )
    grid = grid.merge(counts, on=["cohort", "week_offset"], how="left")
    grid["retained_accounts"] = grid["retained_accounts"].fillna(0).astype("int64")
    grid["cohort_size"] = grid["cohort"].map(sizes).astype("int64")
    grid["retention_rate"] = grid["retained_accounts"] / grid["cohort_size"]
    grid["cohort_week"] = pd.Timestamp(WEEK_EPOCH) + pd.to_timedelta(grid["cohort"] * 7, "D")
    return grid[columns]


def shares(grouped: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Each group's share of its day's total `measure`."""
    frame = grouped.copy()
    frame["dt"] = pd.to_datetime(frame["dt"])
    frame[measure] = frame[measure].astype("int64")
    totals = frame.groupby("dt")[measure].transform("sum")
    frame["share"] = frame[measure] / totals
    return frame


def engagement(grouped: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    frame = grouped.copy()
    frame["dt"] = pd.to_datetime(frame["dt"])
    for key in keys:
        if key.endswith("hour"):
            frame[key] = frame[key].astype("int64")
    frame["streams"] = frame["streams"].astype("int64")
    frame["listeners"] = frame["listeners"].astype("int64")
    frame["minutes_played"] = frame.pop("ms_played").astype(float) / MS_PER_MINUTE
    return frame.sort_values(["dt", *keys]).reset_index(drop=True)


def queries_for_day(day: dt.date, dialect: str = "mysql") -> dict[str, sa.TextClause]:
    """Every KPI table's warehouse query for one day, as its asset runs it (for EXPLAIN)."""
    one_day = {"first": day, "last": day}
    return {
        "kpi_daily_streams": query(DAILY_SUMS_SQL, **one_day),
        "kpi_active_users": query(ACTIVE_USERS_SQL, **windows(day)),
        "kpi_churn": query(CHURN_SQL, **churn_windows(day)),
        "kpi_retention": retention_query(dialect),
        "kpi_engagement_by_region_hour": query(REGION_HOUR_SQL, **one_day),
        "kpi_engagement_by_utc_hour": query(UTC_HOUR_SQL, **one_day),
        "kpi_top_artists": query(TOP_ARTISTS_SQL, **one_day),
        "kpi_top_tracks": query(TOP_TRACKS_SQL, **one_day),
        "kpi_genre_share": query(GENRE_SQL, **one_day),
        "kpi_platform_mix": query(PLATFORM_SQL, **one_day),
    }
