"""KPI frames built by hand for the dashboard's tests, and readers of the rendered page."""

import dataclasses
import datetime as dt
import html
import re

import pandas as pd

from spotify_platform.core.dashboard.data import DashboardData

DAY = dt.date(2026, 3, 15)

COLUMNS = {
    "daily_streams": ["dt", "plays", "streams", "listeners", "minutes_played", "skip_rate"],
    "active_users": ["dt", "dau", "wau", "mau", "stickiness"],
    "churn": ["dt", "base_accounts", "churned_accounts", "churn_rate"],
    "region_hour": ["dt", "country", "local_hour", "streams", "listeners", "minutes_played"],
    "utc_hour": ["dt", "utc_hour", "streams", "listeners", "minutes_played"],
    "top_artists": ["dt", "rank", "artist_name", "streams", "listeners", "minutes_played"],
    "top_tracks": [
        "dt",
        "rank",
        "track_id",
        "track_name",
        "artist_name",
        "streams",
        "listeners",
        "minutes_played",
    ],
    "genre_share": ["dt", "genre", "streams", "share"],
    "platform_mix": ["dt", "platform", "plays", "share"],
    "retention": [
        "cohort_week",
        "week_offset",
        "cohort_size",
        "retained_accounts",
        "retention_rate",
    ],
    "artist_history": ["dt", "rank", "artist_name", "streams", "listeners", "minutes_played"],
}


def frame(name: str, rows: list[dict] | None = None) -> pd.DataFrame:
    table = pd.DataFrame(rows or [], columns=COLUMNS[name])
    for column in ("dt", "cohort_week"):
        if column in table:
            table[column] = pd.to_datetime(table[column])
    return table


def data_for(day: dt.date = DAY, first_stream_day: dt.date | None = None, **rows) -> DashboardData:
    return DashboardData(
        day=day,
        first_stream_day=first_stream_day,
        **{name: frame(name, rows.get(name)) for name in COLUMNS},
    )


def ago(days: int, day: dt.date = DAY) -> pd.Timestamp:
    return pd.Timestamp(day - dt.timedelta(days=days))


def daily_rows(days: int, streams: int = 100) -> list[dict]:
    """`days` days of kpi_daily_streams ending on DAY, every one with streams."""
    return [
        {
            "dt": ago(i),
            "plays": streams + 10,
            "streams": streams,
            "listeners": 10,
            "minutes_played": 300.0,
            "skip_rate": 0.25,
        }
        for i in range(days)
    ]


def tiles(page: str) -> dict[str, tuple[str, str]]:
    """(value, change) of every headline tile, unescaped."""
    found = re.findall(
        r'<div class="tile" data-kpi="([a-z]+)"><div class="label">[^<]*</div>'
        r'<div class="value">([^<]*)</div><div class="change [a-z]+">([^<]*)</div>',
        page,
    )
    return {key: (html.unescape(value), html.unescape(change)) for key, value, change in found}


def section(page: str, key: str) -> str:
    start = page.index(f'id="{key}"')
    return page[start : page.index("</section>", start)]


# --- growth accounting, listeners at risk and sessions ---------------------------------------

WEEK_DAY = dt.date(2026, 3, 18)  # a Wednesday: the latest complete week began on 2026-03-09


def growth(rows: list[tuple]) -> pd.DataFrame:
    columns = ["period", "period_start", "active", "new", "retained", "resurrected", "churned"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["period_start"] = pd.to_datetime(frame["period_start"])
    churned = frame["churned"].astype(float)
    frame["quick_ratio"] = (frame["new"] + frame["resurrected"]) / churned.where(churned > 0)
    return frame


def at_risk(rows: list[tuple], day: dt.date = WEEK_DAY) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["country", "platform", "active_28d", "at_risk"])
    frame.insert(0, "dt", pd.Timestamp(day))
    frame["at_risk_share"] = frame["at_risk"] / frame["active_28d"]
    return frame


def sessions(rows: list[tuple]) -> pd.DataFrame:
    columns = [
        "dt",
        "sessions",
        "listeners",
        "minutes",
        "avg_session_minutes",
        "median_session_minutes",
        "avg_plays_per_session",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    frame["dt"] = pd.to_datetime(frame["dt"])
    return frame


def week_data(**frames) -> DashboardData:
    """A day the other KPIs have no rows for, with these frames."""
    return dataclasses.replace(data_for(WEEK_DAY), **frames)


WEEKS = growth(
    [
        ("week", "2026-03-02", 100, 10, 80, 10, 5),
        ("week", "2026-03-09", 90, 3, 80, 7, 20),
        ("week", "2026-03-16", 40, 1, 38, 1, 52),  # the partial week holding WEEK_DAY
        ("month", "2026-03-01", 120, 12, 100, 8, 9),
    ]
)
