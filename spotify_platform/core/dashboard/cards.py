"""The dashboard's cards: which chart or table each shows under which title, and the empty state
that stands in when the day has nothing to draw."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup

from spotify_platform.core.dashboard import charts
from spotify_platform.core.dashboard.data import (
    CHURN_HISTORY_DAYS,
    HISTORY_DAYS,
    HISTORY_TOP,
    DashboardData,
    HistoryData,
    by_period,
    on_day,
    trend,
)
from spotify_platform.core.dashboard.page_tables import (
    ARTIST_COLUMNS,
    TRACK_COLUMNS,
    YEAR_ARTIST_COLUMNS,
    YEAR_TRACK_COLUMNS,
    Columns,
    Table,
    at_risk_table,
    top_artists,
    top_table,
    top_tracks,
    year_table,
)

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": False}


@dataclass(frozen=True)
class Chart:
    html: Markup  # plotly's <div> and the <script> that draws it
    kind: str = "chart"


@dataclass(frozen=True)
class Empty:
    message: str
    kind: str = "empty"


@dataclass(frozen=True)
class Years:
    """A table (or an empty state) under a heading per year, the latest year first."""

    parts: list[tuple[int, Table | Empty]] = field(default_factory=list)
    kind: str = "years"


Body = Chart | Empty | Table | Years


@dataclass(frozen=True)
class Card:
    key: str
    title: str
    subtitle: str
    body: Body
    span: int = 3  # columns of the page's 6-column grid
    tall: bool = False  # spans two grid rows


class Figures:
    """Renders figures to `<div>`s with stable ids, so the same data gives the same bytes."""

    def __init__(self) -> None:
        self.count = 0

    def chart(self, fig: go.Figure, key: str) -> Chart:
        self.count += 1
        return Chart(
            Markup(
                pio.to_html(
                    fig,
                    config=PLOTLY_CONFIG,
                    include_plotlyjs=False,
                    full_html=False,
                    div_id=f"chart-{key}",
                    default_height=f"{fig.layout.height}px",
                )
            )
        )


def _table_or_empty(table: Table | None, message: str) -> Table | Empty:
    return table if table is not None else Empty(message)


def daily_cards(data: DashboardData, days_of_history: int, figures: Figures) -> list[Card]:
    """The cards of the dashboard's day, in the page's order."""
    day = data.day
    iso = day.isoformat()
    no_streams = f"No streams on {iso}."
    no_plays = f"No plays on {iso}."

    def chart(key: str, fig: go.Figure | None, message: str) -> Chart | Empty:
        return figures.chart(fig, key) if fig is not None else Empty(message)

    daily = trend(data.daily_streams, day)
    users = trend(data.active_users, day)
    churn = trend(data.churn, day)
    no_history = f"No KPIs for the {HISTORY_DAYS} days up to {iso}."
    region_fig, countries = charts.region_chart(on_day(data.region_hour, day))
    region_note = (
        f"the {charts.HEATMAP_COUNTRIES} countries with most streams of {countries}"
        if countries > charts.HEATMAP_COUNTRIES
        else "every country with streams"
    )
    if days_of_history < CHURN_HISTORY_DAYS:
        unit = "day" if days_of_history == 1 else "days"
        churn_body: Chart | Empty = Empty(
            f"Churn needs {CHURN_HISTORY_DAYS} days of history; {days_of_history} {unit} so far."
        )
    else:
        first_full = day - dt.timedelta(days=days_of_history - CHURN_HISTORY_DAYS)
        ready = churn[churn["dt"] >= pd.Timestamp(first_full)] if not churn.empty else churn
        churn_body = chart(
            "churn",
            charts.rate_chart(ready, "churn_rate", "churned", "#ef4444"),
            f"No accounts streamed in the churn base window of any day up to {iso}.",
        )
    return [
        Card(
            "streams",
            "Streams over time",
            f"Track plays of 30 s or more per day, last {HISTORY_DAYS} days",
            chart("streams", charts.streams_chart(daily), no_history),
        ),
        Card(
            "active-users",
            "Active users",
            "Accounts with a stream in the day, 7 days and 30 days up to each date",
            chart("active-users", charts.users_chart(users), no_history),
        ),
        Card(
            "region-hour",
            "When each country listens",
            f"Streams on {iso} by local hour of the play's start; {region_note}",
            chart("region-hour", region_fig, no_streams),
            span=6,
        ),
        Card(
            "top-artists",
            "Top 10 artists",
            f"By streams on {iso}; equal streams share a rank",
            _table_or_empty(
                top_table(top_artists(on_day(data.top_artists, day)), ARTIST_COLUMNS), no_streams
            ),
        ),
        Card(
            "top-tracks",
            "Top 10 tracks",
            f"By streams on {iso}; equal streams share a rank",
            _table_or_empty(
                top_table(top_tracks(on_day(data.top_tracks, day)), TRACK_COLUMNS), no_streams
            ),
        ),
        Card(
            "genres",
            "Genre share",
            f"Share of streams on {iso} by the artist's primary genre",
            chart("genres", charts.genre_chart(on_day(data.genre_share, day)), no_streams),
            span=2,
        ),
        Card(
            "platforms",
            "Platform mix",
            f"Share of all plays on {iso} by device family",
            chart("platforms", charts.platform_chart(on_day(data.platform_mix, day)), no_plays),
            span=2,
        ),
        Card(
            "utc-hour",
            "Streams by UTC hour",
            f"Streams on {iso} by the UTC hour the play started",
            chart("utc-hour", charts.utc_chart(on_day(data.utc_hour, day)), no_streams),
            span=2,
        ),
        Card(
            "retention",
            "Weekly retention cohorts",
            "Share of each cohort (week of first stream) streaming again k weeks later; "
            "the latest week may be partial",
            chart("retention", charts.retention_chart(data.retention, day), "No cohorts yet."),
            span=4,
            tall=True,
        ),
        Card(
            "skip-rate",
            "Skip rate",
            "Skipped track plays / track plays per day",
            chart(
                "skip-rate",
                charts.rate_chart(daily, "skip_rate", "skipped", "#f59e0b"),
                f"No track plays in the {HISTORY_DAYS} days up to {iso}.",
            ),
            span=2,
        ),
        Card(
            "churn",
            "30-day churn rate",
            "Base: accounts streaming in D-59..D-30; churned: no stream in D-29..D",
            churn_body,
            span=2,
        ),
        Card(
            "growth-accounting",
            "Growth accounting",
            "Accounts per week: new and resurrected up, churned down; quick ratio = "
            "(new + resurrected) / churned; the latest week may be partial",
            chart(
                "growth-accounting",
                charts.growth_chart(data.growth_accounting, day),
                "No growth accounting yet.",
            ),
        ),
        Card(
            "listeners-at-risk",
            "Listeners at risk",
            f"Segments with the most accounts that streamed in the 28 days up to {iso} but "
            "not in the last 7",
            _table_or_empty(
                at_risk_table(data.listeners_at_risk, day), f"No listener at risk on {iso}."
            ),
        ),
        Card(
            "session-length",
            "Session length",
            "Minutes per session by the day it starts: plays at most 30 minutes apart",
            chart(
                "session-length",
                charts.session_chart(trend(data.sessions, day)),
                f"No sessions in the {HISTORY_DAYS} days up to {iso}.",
            ),
            span=6,
        ),
    ]


def _per_year(frame: pd.DataFrame, columns: Columns, empty: str) -> Years | Empty:
    if frame.empty:
        return Empty(empty)
    return Years(
        [
            (
                int(year),
                _table_or_empty(
                    top_table(frame[frame["year"] == year].head(HISTORY_TOP), columns), empty
                ),
            )
            for year in sorted(frame["year"].unique(), reverse=True)
        ]
    )


def history_cards(history: HistoryData, figures: Figures) -> list[Card]:
    """The whole history: streams by month, a row per year, top artists and tracks per year."""
    daily = history.daily
    if daily.empty or daily["plays"].sum() == 0:
        return []
    played = daily[daily["plays"] > 0]
    first, last = (pd.Timestamp(played["dt"].min()).date(), pd.Timestamp(played["dt"].max()).date())
    span = f"{first.isoformat()} to {last.isoformat()}, {len(played):,} days with plays"
    return [
        Card(
            "history-months",
            "All history: streams by month",
            span,
            figures.chart(charts.months_chart(by_period(daily, "M")), "history-months"),
            span=6,
        ),
        Card(
            "history-years",
            "All history: year by year",
            span,
            year_table(by_period(daily, "Y"), history),
            6,
        ),
        Card(
            "history-artists",
            "Top artists of each year",
            "by streams in the year",
            _per_year(history.top_artists, YEAR_ARTIST_COLUMNS, "No streams."),
        ),
        Card(
            "history-tracks",
            "Top tracks of each year",
            "by streams in the year",
            _per_year(history.top_tracks, YEAR_TRACK_COLUMNS, "No streams."),
        ),
    ]
