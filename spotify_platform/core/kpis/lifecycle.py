"""Where listeners come from and where they go: growth accounting and listeners at risk.

`kpi_growth_accounting` splits each calendar week's and month's active accounts into new,
retained and resurrected ones and counts those who churned; `kpi_listeners_at_risk` counts,
per (country, platform) segment, the accounts active in the last 28 days that have not
streamed in the last 7. Activity is a stream, as for DAU/WAU/MAU.

Set-based SQL over the account aggregates plus small pandas steps, as in
`spotify_platform.core.kpis.measures`; nothing here imports Dagster.
"""

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from spotify_platform.core.kpis import sessions
from spotify_platform.core.kpis.measures import query

PERIODS = ("week", "month")
RISK_WINDOW_DAYS = 28
LAPSE_DAYS = 7
# Periods per statement: each is a pair of index-only passes over the accounts, so a run over
# years of history is a handful of statements rather than one per period.
PERIODS_PER_QUERY = 50
DAYS_PER_QUERY = 200
GROWTH_COLUMNS = [
    "period",
    "period_start",
    "active",
    "new",
    "retained",
    "resurrected",
    "churned",
    "quick_ratio",
    "days_through",
]
AT_RISK_COLUMNS = ["dt", "country", "platform", "active_28d", "at_risk", "at_risk_share"]


def period_of(kind: str, day: dt.date) -> dt.date:
    """The first day of the week (Monday) or month holding `day`."""
    if kind == "week":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period(kind: str, start: dt.date) -> dt.date:
    if kind == "week":
        return start + dt.timedelta(days=7)
    return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def previous_period(kind: str, start: dt.date) -> dt.date:
    return period_of(kind, start - dt.timedelta(days=1))


def period_starts(kind: str, first: dt.date, last: dt.date) -> list[dt.date]:
    """Every period from the one holding `first` to the one holding `last`."""
    starts, start = [], period_of(kind, first)
    while start <= last:
        starts.append(start)
        start = next_period(kind, start)
    return starts


def periods_to_compute(
    kind: str,
    days: Sequence[dt.date],
    first_stream: dt.date | None,
    stored: Sequence[dt.date],
) -> list[dt.date]:
    """The periods a run over `days` (re)computes: from the period holding its first day to the
    last period stored or run, reaching back over periods never computed, and never before the
    period of the first stream (an earlier period has no row)."""
    if first_stream is None:
        return []
    start = period_of(kind, days[0])
    earlier = [p for p in stored if p < start]
    if not earlier:
        start = period_of(kind, first_stream)
    elif max(earlier) < previous_period(kind, start):
        start = next_period(kind, max(earlier))
    start = max(start, period_of(kind, first_stream))
    last = max([period_of(kind, days[-1]), *stored])
    return period_starts(kind, start, last) if start <= last else []


def account_days(frame: pd.DataFrame) -> np.ndarray:
    """ACCOUNT_DAYS_SQL's days, sorted, as datetime64[D]."""
    return np.sort(pd.to_datetime(frame.iloc[:, 0]).to_numpy().astype("datetime64[D]"))


def days_through(kind: str, starts: Sequence[dt.date], days: np.ndarray) -> list[int]:
    """How many of `days` (sorted, `account_days`) fall on or before the end of each period."""
    ends = np.array([next_period(kind, start) for start in starts], dtype="datetime64[D]")
    return np.searchsorted(days, ends, side="left").tolist()


def growth_periods(
    days: Sequence[dt.date],
    first_stream: dt.date | None,
    stored: pd.DataFrame,
    loaded: np.ndarray,
) -> list[tuple[str, dt.date]]:
    """(period, start) of every week and month a run over `days` (re)computes, given the
    (period, period_start, days_through) rows kpi_growth_accounting holds and the days that
    hold account aggregates now (`account_days`).

    A stored period counted other days up to its end than hold aggregates now: days were
    loaded or cleared since without this KPI (a backfill of the facts alone, then the KPI
    for its last day). It and every later one are computed again, as for a late day."""
    starts = pd.to_datetime(stored["period_start"]).dt.date
    periods = []
    for kind in PERIODS:
        mine = (stored["period"] == kind).to_numpy()
        kept = starts[mine].tolist()
        counted = stored["days_through"][mine].tolist()
        stale = [
            start
            for start, was, now in zip(kept, counted, days_through(kind, kept, loaded), strict=True)
            if pd.isna(was) or int(was) != now
        ]
        reach = sorted([*days, min(stale)]) if stale else list(days)
        periods += [(kind, s) for s in periods_to_compute(kind, reach, first_stream, kept)]
    return periods


def replaced_periods(
    table: sa.Table, periods: Sequence[tuple[str, dt.date]], first_stream: dt.date | None
) -> sa.ColumnElement[bool]:
    """The rows of kpi_growth_accounting that `periods`' rows replace: from their first period
    on, and any before the first stream (a re-loaded day may have taken the earliest away)."""
    conditions = []
    for kind in PERIODS:
        starts = [start for k, start in periods if k == kind]
        stale: sa.ColumnElement[bool] = sa.true()
        if first_stream is not None:
            stale = table.c.period_start < period_of(kind, first_stream)
            if starts:
                stale = sa.or_(stale, table.c.period_start >= starts[0])
        conditions.append(sa.and_(table.c.period == kind, stale))
    return sa.or_(*conditions)


# One period's counts from one pass over the previous period and itself: an account's first
# and last stream days in that span say whether it was active in either, and only accounts
# absent from the previous period are looked up further back (new or resurrected). MIN and
# MAX of dt for `streamed = 1` per account are an index-only loose scan of
# ix_agg_account_daily_account_id_streamed_dt, as for kpi_churn.
GROWTH_PERIOD_SQL = """
SELECT {i} AS period_index,
       COALESCE(SUM(CASE WHEN last_in >= :start_{i} THEN 1 ELSE 0 END), 0) AS active,
       COALESCE(SUM(CASE WHEN first_in >= :start_{i} AND seen_before = 0 THEN 1 ELSE 0 END), 0)
         AS new,
       COALESCE(SUM(CASE WHEN first_in < :start_{i} AND last_in >= :start_{i} THEN 1 ELSE 0 END),
                0) AS retained,
       COALESCE(SUM(CASE WHEN first_in >= :start_{i} AND seen_before = 1 THEN 1 ELSE 0 END), 0)
         AS resurrected,
       COALESCE(SUM(CASE WHEN last_in < :start_{i} THEN 1 ELSE 0 END), 0) AS churned
FROM (SELECT account_id, first_in, last_in,
             CASE WHEN first_in >= :start_{i} AND EXISTS (
                 SELECT 1 FROM agg_account_daily earlier
                 WHERE earlier.account_id = span.account_id AND earlier.streamed = 1
                   AND earlier.dt < :previous_{i}) THEN 1 ELSE 0 END AS seen_before
      FROM (SELECT account_id, MIN(dt) AS first_in, MAX(dt) AS last_in FROM agg_account_daily
            WHERE streamed = 1 AND dt BETWEEN :previous_{i} AND :end_{i}
            GROUP BY account_id) AS span) AS classified
"""

FIRST_STREAM_SQL = "SELECT dt FROM agg_account_daily WHERE streamed = 1 ORDER BY dt LIMIT 1"
# The days holding account aggregates: the key's leading column, read by a loose index scan.
ACCOUNT_DAYS_SQL = "SELECT DISTINCT dt FROM agg_account_daily"


def growth_queries(periods: Sequence[tuple[str, dt.date]]) -> list[sa.TextClause]:
    """Statements whose rows (period_index, counts) cover `periods`, in chunks."""
    statements = []
    for offset in range(0, len(periods), PERIODS_PER_QUERY):
        chunk = periods[offset : offset + PERIODS_PER_QUERY]
        dates = {}
        for i, (kind, start) in enumerate(chunk, start=offset):
            dates[f"start_{i}"] = start
            dates[f"previous_{i}"] = previous_period(kind, start)
            dates[f"end_{i}"] = next_period(kind, start) - dt.timedelta(days=1)
        parts = [GROWTH_PERIOD_SQL.format(i=i) for i in range(offset, offset + len(chunk))]
        statements.append(query(" UNION ALL ".join(parts), **dates))
    return statements


def growth_accounting(
    counts: Sequence[pd.DataFrame],
    periods: Sequence[tuple[str, dt.date]],
    loaded: np.ndarray | None = None,
) -> pd.DataFrame:
    """kpi_growth_accounting rows from the results of `growth_queries` over `periods`, each
    with the days of `loaded` (`account_days`) it counted."""
    measures = ["active", "new", "retained", "resurrected", "churned"]
    frame = pd.DataFrame(
        {
            "period": pd.Series([kind for kind, _ in periods], dtype=object),
            "period_start": pd.to_datetime([start for _, start in periods]),
        }
    )
    found = (
        pd.concat(counts, ignore_index=True)
        if counts
        else pd.DataFrame(columns=["period_index", *measures])
    )
    counts = found.astype("int64").set_index("period_index").reindex(range(len(periods)))
    for name in measures:
        frame[name] = counts[name].fillna(0).astype("int64").to_numpy()
    churned = frame["churned"].astype(float)
    frame["quick_ratio"] = (frame["new"] + frame["resurrected"]) / churned.where(churned > 0)
    loaded = np.array([], dtype="datetime64[D]") if loaded is None else loaded
    through = [days_through(kind, [start], loaded)[0] for kind, start in periods]
    frame["days_through"] = pd.array(through, dtype="Int64")
    return frame[GROWTH_COLUMNS].astype({"period_start": "datetime64[ns]"})


def account_segment_daily(plays: pd.DataFrame) -> pd.DataFrame:
    """agg_account_segment_daily rows from staged plays: streams per day, account, country and
    platform, for the pairs with at least one stream."""
    columns = ["dt", "account_id", "country", "platform", "streams"]
    streams = plays[plays["is_stream"].astype(bool)]
    table = pa.Table.from_pandas(streams[columns[:-1]], preserve_index=False)
    grouped = (
        table.group_by(columns[:-1], use_threads=False)
        .aggregate([("account_id", "count")])
        .sort_by([(name, "ascending") for name in columns[:-1]])
    )
    frame = grouped.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)
    frame = frame.rename(columns={"account_id_count": "streams"})[columns]
    frame["dt"] = pd.to_datetime(frame["dt"]).astype("datetime64[ns]")
    frame["streams"] = frame["streams"].astype("int64")
    return frame


# Each account counts once per day, in the segment holding most of its streams of the 28-day
# window (ties: the smaller country, then the smaller platform, in code point order: the
# columns' binary collation). An account is at risk when its latest stream in the window is
# older than the lapse window. `{days}` is the run's calendar; `{big}` asks MySQL to group by
# sorting rather than in a temporary table, which a grouping of many accounts needs.
AT_RISK_SQL = """
SELECT day, country, platform, COUNT(*) AS active_28d,
       SUM(CASE WHEN account_last < lapse_start THEN 1 ELSE 0 END) AS at_risk
FROM (SELECT day, lapse_start, country, platform,
             ROW_NUMBER() OVER (PARTITION BY day, account_id
                                ORDER BY streams DESC, country, platform) AS pick,
             MAX(last_day) OVER (PARTITION BY day, account_id) AS account_last
      FROM (SELECT {big} d.day, d.lapse_start, seg.account_id, seg.country, seg.platform,
                   SUM(seg.streams) AS streams, MAX(seg.dt) AS last_day
            FROM agg_account_segment_daily seg
            JOIN ({days}) AS d ON seg.dt BETWEEN d.window_start AND d.day
            WHERE seg.dt BETWEEN :window_start AND :last
            GROUP BY d.day, d.lapse_start, seg.account_id, seg.country, seg.platform) AS sums
     ) AS ranked
WHERE pick = 1
GROUP BY day, country, platform
"""


def at_risk_queries(days: Sequence[dt.date], dialect: str) -> list[sa.TextClause]:
    """AT_RISK_SQL for `days`, `DAYS_PER_QUERY` days a statement: SQLite refuses a compound
    SELECT of more than 500 terms, and a long history's calendar would be thousands."""
    days = sorted(set(days))
    return [
        _at_risk_query(days[offset : offset + DAYS_PER_QUERY], dialect)
        for offset in range(0, len(days), DAYS_PER_QUERY)
    ]


def _at_risk_query(days: Sequence[dt.date], dialect: str) -> sa.TextClause:
    dates: dict[str, dt.date] = {
        "window_start": days[0] - dt.timedelta(days=RISK_WINDOW_DAYS - 1),
        "last": days[-1],
    }
    # A derived table of typed dates: MySQL would otherwise type the calendar's columns as text
    # and compare every row of the window as strings, and it joins a VALUES list in a CTE
    # much more slowly. SQLite keeps dates as text anyway.
    typed = "{}" if dialect == "sqlite" else "CAST({} AS DATE)"
    rows = []
    for i, day in enumerate(days):
        dates[f"d{i}"] = day
        dates[f"w{i}"] = day - dt.timedelta(days=RISK_WINDOW_DAYS - 1)
        dates[f"l{i}"] = day - dt.timedelta(days=LAPSE_DAYS - 1)
        rows.append(
            f"SELECT {typed.format(f':d{i}')} AS day, {typed.format(f':w{i}')} AS window_start, "
            f"{typed.format(f':l{i}')} AS lapse_start"
        )
    big = "" if dialect == "sqlite" else "SQL_BIG_RESULT"
    return query(AT_RISK_SQL.format(days=" UNION ALL ".join(rows), big=big), **dates)


def listeners_at_risk(counts: pd.DataFrame) -> pd.DataFrame:
    """kpi_listeners_at_risk rows from AT_RISK_SQL's counts."""
    frame = counts.rename(columns={"day": "dt"}).copy()
    frame["dt"] = pd.to_datetime(frame["dt"]).astype("datetime64[ns]")
    for name in ("active_28d", "at_risk"):
        frame[name] = frame[name].astype("int64")
    frame["at_risk_share"] = frame["at_risk"] / frame["active_28d"].replace(0, np.nan)
    return frame.sort_values(["dt", "country", "platform"]).reset_index(drop=True)[AT_RISK_COLUMNS]


def queries_for_day(day: dt.date, dialect: str = "mysql") -> dict[str, sa.TextClause]:
    """The warehouse queries of this module's KPI tables and of kpi_sessions as a daily run of
    `day` makes them (for EXPLAIN): the week and month holding it, its 28-day window, its
    sessions."""
    periods = [(kind, period_of(kind, day)) for kind in PERIODS]
    horizon = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    return {
        "kpi_growth_accounting": growth_queries(periods)[0],
        "kpi_listeners_at_risk": at_risk_queries([day], dialect)[0],
        "kpi_sessions": sessions.runs_query(
            dialect, day, day, horizon + dt.timedelta(milliseconds=sessions.GAP_MS)
        ),
    }
