"""What the dashboard of a day is drawn from: the KPI frames, the windows they cover, and the
day-keyed selections every part of the page makes from them.

Pure pandas, no Dagster and no I/O: the asset reads the frames, the rest of the package only
looks at them.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import pandas as pd

HISTORY_DAYS = 90
GROWTH_WINDOW_DAYS = 7
GROWTH_HISTORY_DAYS = 2 * GROWTH_WINDOW_DAYS
CHURN_HISTORY_DAYS = 60
GROWTH_WEEKS = 12  # weeks of growth accounting the chart shows
TOP_ROWS = 10
HISTORY_TOP = 5  # artists and tracks shown per year of history
UNKNOWN_GENRE = "unknown"


@dataclass(frozen=True, eq=False)
class DashboardData:
    """The KPI rows one day's dashboard is drawn from, typed as `WarehouseResource.read_table`
    returns them; frames may hold more rows than needed (each part filters what it uses)."""

    day: dt.date
    daily_streams: pd.DataFrame  # kpi_daily_streams, up to 90 days ending `day`
    active_users: pd.DataFrame  # kpi_active_users, same window
    churn: pd.DataFrame  # kpi_churn, same window
    region_hour: pd.DataFrame  # kpi_engagement_by_region_hour on `day`
    utc_hour: pd.DataFrame  # kpi_engagement_by_utc_hour on `day`
    top_artists: pd.DataFrame  # kpi_top_artists on `day`
    top_tracks: pd.DataFrame  # kpi_top_tracks on `day`
    genre_share: pd.DataFrame  # kpi_genre_share on `day`
    platform_mix: pd.DataFrame  # kpi_platform_mix on `day`
    retention: pd.DataFrame  # kpi_retention, the whole table
    artist_history: pd.DataFrame  # kpi_top_artists, the 14 days ending `day`
    # First day with a stream ever, when known: history older than the 90-day window counts.
    first_stream_day: dt.date | None = None
    # The whole history by month and year, drawn after a run over a long range.
    history: HistoryData | None = None
    growth_accounting: pd.DataFrame = field(default_factory=pd.DataFrame)  # weeks and months
    listeners_at_risk: pd.DataFrame = field(default_factory=pd.DataFrame)  # on `day`
    sessions: pd.DataFrame = field(default_factory=pd.DataFrame)  # kpi_sessions, 90 days


@dataclass(frozen=True, eq=False)
class HistoryData:
    """Everything up to the dashboard's day, for the page drawn after a long (history) run."""

    daily: pd.DataFrame  # kpi_daily_streams: dt, plays, streams, minutes_played
    top_artists: pd.DataFrame  # year, artist_name, streams, minutes_played (top per year)
    top_tracks: pd.DataFrame  # year, track_name, artist_name, streams, minutes_played


def history_window(day: dt.date) -> list[dt.date]:
    """The days whose day-keyed KPIs the dashboard of `day` shows (trends, tile comparisons)."""
    return [day - dt.timedelta(days=i) for i in range(HISTORY_DAYS - 1, -1, -1)]


def growth_window(day: dt.date) -> list[dt.date]:
    """The days of top-artist lists the week-over-week growth insight compares."""
    return [day - dt.timedelta(days=i) for i in range(GROWTH_HISTORY_DAYS - 1, -1, -1)]


def days_of(frame: pd.DataFrame) -> pd.Series:
    """The frame's `dt` column as midnight Timestamps, whatever type the warehouse gave."""
    return pd.to_datetime(frame["dt"]).dt.normalize()


def on_day(frame: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame[days_of(frame) == pd.Timestamp(day)]


def between(frame: pd.DataFrame, first: dt.date, last: dt.date) -> pd.DataFrame:
    if frame.empty:
        return frame
    days = days_of(frame)
    return frame[(days >= pd.Timestamp(first)) & (days <= pd.Timestamp(last))]


def trend(frame: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """Rows of the 90-day window ending `day`, oldest first, with `dt` as Timestamps."""
    rows = between(frame, day - dt.timedelta(days=HISTORY_DAYS - 1), day).copy()
    if rows.empty:
        return rows
    rows["dt"] = days_of(rows)
    return rows.sort_values("dt").reset_index(drop=True)


def number(value: object) -> float | None:
    """A float, or None for a missing value (None, NaN or anything not a number)."""
    if value is None:
        return None
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(as_float) else as_float


def value_at(frame: pd.DataFrame, column: str, day: dt.date) -> float | None:
    rows = on_day(frame, day)
    if rows.empty or column not in rows:
        return None
    return number(rows[column].iloc[0])


def ordered(frame: pd.DataFrame, by: str, names: list[str]) -> pd.DataFrame:
    """Descending by `by`, ties by names in code point order (how Python compares str)."""
    return frame.sort_values(names, kind="mergesort").sort_values(
        by, ascending=False, kind="mergesort"
    )


def history_days(data: DashboardData) -> int:
    """Days from the first day with a stream up to the dashboard's day, both included.

    Windowed KPIs (churn, growth) are only meaningful once their whole window has data; this
    count says how far along a young platform is. Without `first_stream_day` the first stream
    is looked for in the 90-day window, which is enough to tell 60 days from fewer.
    """
    if data.first_stream_day is not None:
        return max((data.day - data.first_stream_day).days + 1, 0)
    rows = trend(data.daily_streams, data.day)
    if rows.empty:
        return 0
    active = rows[rows["streams"] > 0]
    if active.empty:
        return 0
    return (data.day - active["dt"].min().date()).days + 1


def growth_weeks(growth: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """kpi_growth_accounting's weeks up to the one holding `day`, oldest first."""
    if growth.empty:
        return growth
    weeks = growth[growth["period"] == "week"].copy()
    weeks["period_start"] = pd.to_datetime(weeks["period_start"]).dt.normalize()
    weeks = weeks[weeks["period_start"] <= pd.Timestamp(day)]
    return weeks.sort_values("period_start").reset_index(drop=True)


def by_period(daily: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Plays, streams and minutes summed by calendar month ("M") or year ("Y")."""
    frame = daily.assign(period=pd.to_datetime(daily["dt"]).dt.to_period(freq))
    sums = frame.groupby("period")[["plays", "streams", "minutes_played"]].sum()
    days = frame[frame["plays"] > 0].groupby("period").size().rename("days_with_plays")
    return sums.join(days).fillna({"days_with_plays": 0}).reset_index()
