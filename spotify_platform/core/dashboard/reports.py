"""The daily dashboard (`reports/dashboard/` in the lake) and the insights written on it.

Pure: pandas and plotly only, no Dagster and no I/O, so the asset, the CLI and the tests share
one implementation. The page is a single self-contained HTML file: plotly.js is embedded once
and a Content-Security-Policy forbids every request, so the file opens the same from S3, a mail
attachment or an offline laptop, and leaks nothing about who opened it.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import plotly.offline

from spotify_platform.core.dashboard import lifecycle_report
from spotify_platform.core.sources.identity import name_ids

HISTORY_DAYS = 90
GROWTH_WINDOW_DAYS = 7
GROWTH_HISTORY_DAYS = 2 * GROWTH_WINDOW_DAYS
CHURN_HISTORY_DAYS = 60
TOP_ROWS = 10
BAND_HOURS = 3
LEADING_GENRES = 3
HEATMAP_COUNTRIES = 20
RETENTION_COHORTS = 12
SMALL_COUNT = 6  # counts up to this get a tick per unit
HISTORY_TOP = 5  # artists and tracks shown per year of history
RETENTION_MIN_HEIGHT = 470  # fills its card, which spans the skip-rate and churn cards
UNKNOWN_GENRE = "unknown"

GREEN = "#1db954"
INK = "#191414"
GRID = "#e5e7eb"
FONT = (
    "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'Noto Sans', "
    "sans-serif, 'Apple Color Emoji', 'Segoe UI Emoji', 'Noto Color Emoji'"
)
GREENS = [[0.0, "#f3faf5"], [0.35, "#a7e3bb"], [0.7, "#3cbf6b"], [1.0, "#0b5d2a"]]
PALETTE = [
    GREEN,
    "#2563eb",
    "#f59e0b",
    "#ef4444",
    "#8b5cf6",
    "#14b8a6",
    "#ec4899",
    "#64748b",
    "#84cc16",
    "#0ea5e9",
    "#a16207",
    "#111827",
]
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": False}
# The page may run its own inline code and nothing else: no fetch, no font, no image from afar.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:"
)


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


def _ts(day: dt.date) -> pd.Timestamp:
    return pd.Timestamp(day)


def _days(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["dt"]).dt.normalize()


def _on(frame: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame[_days(frame) == _ts(day)]


def _between(frame: pd.DataFrame, first: dt.date, last: dt.date) -> pd.DataFrame:
    if frame.empty:
        return frame
    days = _days(frame)
    return frame[(days >= _ts(first)) & (days <= _ts(last))]


def _trend(frame: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """Rows of the 90-day window ending `day`, oldest first, with `dt` as Timestamps."""
    rows = _between(frame, day - dt.timedelta(days=HISTORY_DAYS - 1), day).copy()
    if rows.empty:
        return rows
    rows["dt"] = _days(rows)
    return rows.sort_values("dt").reset_index(drop=True)


def history_days(data: DashboardData) -> int:
    """Days from the first day with a stream up to the dashboard's day, both included.

    Windowed KPIs (churn, growth) are only meaningful once their whole window has data; this
    count says how far along a young platform is. Without `first_stream_day` the first stream
    is looked for in the 90-day window, which is enough to tell 60 days from fewer.
    """
    if data.first_stream_day is not None:
        return max((data.day - data.first_stream_day).days + 1, 0)
    rows = _trend(data.daily_streams, data.day)
    if rows.empty:
        return 0
    active = rows[rows["streams"] > 0]
    if active.empty:
        return 0
    return (data.day - active["dt"].min().date()).days + 1


def _number(value: object) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _value_at(frame: pd.DataFrame, column: str, day: dt.date) -> float | None:
    rows = _on(frame, day)
    if rows.empty or column not in rows:
        return None
    return _number(rows[column].iloc[0])


def _band_label(start: int) -> str:
    return f"{start:02d}:00–{(start + BAND_HOURS) % 24:02d}:00 local"


def _peak_band(region_hour: pd.DataFrame) -> tuple[int, int, int] | None:
    """(start hour, streams in the band, streams of the day) of the busiest 3-hour local band.

    Bands wrap around midnight (23:00–02:00 is a band); ties go to the earliest start hour.
    """
    if region_hour.empty:
        return None
    by_hour = (
        region_hour.groupby(region_hour["local_hour"].astype(int))["streams"]
        .sum()
        .reindex(range(24), fill_value=0)
        .to_numpy(dtype="int64")
    )
    total = int(by_hour.sum())
    if total == 0:
        return None
    sums = [int(sum(by_hour[(start + i) % 24] for i in range(BAND_HOURS))) for start in range(24)]
    start = int(np.argmax(sums))
    return start, sums[start], total


def _ordered(frame: pd.DataFrame, by: str, names: list[str]) -> pd.DataFrame:
    """Descending by `by`, ties by names in code point order (how Python compares str)."""
    return frame.sort_values(names, kind="mergesort").sort_values(
        by, ascending=False, kind="mergesort"
    )


def _leading_genres(genre_share: pd.DataFrame) -> tuple[list[str], float | None]:
    """The top genres by share, leaving out `unknown` (no genre is not a genre)."""
    known = genre_share[genre_share["genre"] != UNKNOWN_GENRE]
    if known.empty:
        return [], None
    top = _ordered(known, "share", ["genre"]).head(LEADING_GENRES)
    return list(top["genre"]), float(top["share"].sum())


def _fastest_growing(data: DashboardData) -> tuple[str, int, int] | None:
    """(artist, streams in the last 7 days, streams in the 7 before) with the largest increase.

    Only artists in a top list during the last 7 days compete; a day outside an artist's top 50
    counts as zero for it, which the top lists cannot tell apart from a handful of streams.
    """
    day = data.day
    history = _between(data.artist_history, day - dt.timedelta(days=GROWTH_HISTORY_DAYS - 1), day)
    if history.empty:
        return None
    split = _ts(day - dt.timedelta(days=GROWTH_WINDOW_DAYS - 1))
    recent = _days(history) >= split
    # Each day's list spells an artist as that day's latest play did: rows are summed by the
    # artist's identity (as its id is made) and named as on the latest day.
    history = history.assign(artist=name_ids(history["artist_name"]))
    last = history[recent].groupby("artist")["streams"].sum()
    previous = history[~recent].groupby("artist")["streams"].sum()
    if last.empty:
        return None
    shown = history.sort_values("dt", kind="mergesort").groupby("artist")["artist_name"].last()
    growth = pd.DataFrame(
        {
            "artist": shown.reindex(last.index),
            "last": last,
            "previous": previous.reindex(last.index, fill_value=0),
        }
    )
    growth["increase"] = growth["last"] - growth["previous"]
    growth = _ordered(growth.reset_index(drop=True), "increase", ["artist"])
    best = growth.iloc[0]
    if best["increase"] <= 0:
        return None
    return str(best["artist"]), int(best["last"]), int(best["previous"])


def insights(data: DashboardData) -> dict[str, object]:
    """The facts the dashboard states in words, computed from the KPI frames.

    Keys: day, history_days, peak_band (e.g. "20:00–23:00 local") with its start hour, streams
    and share of the day; leading_genres (top 3 known genres) and leading_genres_share;
    fastest_growing_artist with its streams in the last and previous 7 days and the increase;
    growth_week (the latest complete week) with its quick_ratio, gained and churned accounts,
    riskiest_segment and sessions_today (see `lifecycle_report.facts`).
    Values are None where the data cannot tell (no streams, under 14 days of history, no growth).
    """
    day = data.day
    days = history_days(data)
    peak = _peak_band(_on(data.region_hour, day))
    genres, genre_share = _leading_genres(_on(data.genre_share, day))
    growing = _fastest_growing(data) if days >= GROWTH_HISTORY_DAYS else None
    return {
        "day": day.isoformat(),
        "history_days": days,
        "peak_band": _band_label(peak[0]) if peak else None,
        "peak_band_start_hour": peak[0] if peak else None,
        "peak_band_streams": peak[1] if peak else None,
        "peak_band_share": peak[1] / peak[2] if peak else None,
        "leading_genres": genres,
        "leading_genres_share": genre_share,
        "fastest_growing_artist": growing[0] if growing else None,
        "fastest_growing_streams_last_7_days": growing[1] if growing else None,
        "fastest_growing_streams_previous_7_days": growing[2] if growing else None,
        "fastest_growing_increase": growing[1] - growing[2] if growing else None,
        **lifecycle_report.facts(
            data.growth_accounting, data.listeners_at_risk, data.sessions, day
        ),
    }


def _join_names(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def insight_sentences(found: dict[str, object]) -> list[str]:
    """The insights as plain-text sentences (not escaped: each output format escapes its own)."""
    sentences = []
    if found["peak_band"] is None:
        sentences.append(f"No streams on {found['day']}, so there is no peak listening time.")
    else:
        sentences.append(
            f"Listening peaks at {found['peak_band']} time across countries: "
            f"{found['peak_band_streams']:,} streams, {found['peak_band_share']:.0%} of the day's."
        )
    genres = list(found["leading_genres"])
    if genres:
        if len(genres) == 1:
            lead = f"The leading genre is {genres[0]}, with"
        else:
            lead = f"The leading genres are {_join_names(genres)}, together"
        sentences.append(f"{lead} {found['leading_genres_share']:.1%} of streams.")
    else:
        sentences.append("No streams with a known genre on this day.")
    days = int(found["history_days"])
    if found["fastest_growing_artist"] is not None:
        sentences.append(
            f"Fastest-growing artist of the week: {found['fastest_growing_artist']}, "
            f"{found['fastest_growing_increase']:+,} streams "
            f"({found['fastest_growing_streams_last_7_days']:,} in the last 7 days vs "
            f"{found['fastest_growing_streams_previous_7_days']:,} in the 7 before)."
        )
    elif days < GROWTH_HISTORY_DAYS:
        sentences.append(
            f"Week-over-week artist growth needs {GROWTH_HISTORY_DAYS} days of history; "
            f"{days} {'day' if days == 1 else 'days'} so far."
        )
    else:
        sentences.append("No artist in the top lists grew week over week.")
    return sentences + lifecycle_report.sentences(found)


@dataclass(frozen=True)
class _Tile:
    key: str
    label: str
    value: str
    change: str
    tone: str  # good, bad, flat or none: how the change should be read


def _tile(
    key: str,
    label: str,
    current: float | None,
    previous: float | None,
    compared: str,
    kind: str,
    up_is_good: bool = True,
) -> _Tile:
    if current is None:
        return _Tile(key, label, "n/a", f"n/a {compared}", "none")
    if kind == "rate":
        value = f"{current:.1%}"
    elif kind == "minutes":
        value = f"{current:,.0f}"
    else:
        value = f"{int(current):,}"
    if previous is None:
        return _Tile(key, label, value, f"n/a {compared}", "none")
    diff = current - previous
    if kind == "rate":
        change = f"{diff * 100:+.1f} pp {compared}"
    elif previous == 0:
        change = f"{diff:+,.0f} {compared}"
    else:
        change = f"{diff / previous:+.1%} {compared}"
    if abs(diff) < 1e-12:
        tone = "flat"
    else:
        tone = "good" if (diff > 0) == up_is_good else "bad"
    return _Tile(key, label, value, change, tone)


def _tiles(data: DashboardData, days_of_history: int) -> list[_Tile]:
    day = data.day
    before = day - dt.timedelta(days=1)
    week = day - dt.timedelta(days=7)
    month = day - dt.timedelta(days=30)
    daily, users = data.daily_streams, data.active_users

    def churn_at(when: dt.date) -> float | None:
        # A churn rate is only shown once its whole 60-day window lies inside the history.
        first = day - dt.timedelta(days=days_of_history - 1)
        if (when - first).days + 1 < CHURN_HISTORY_DAYS:
            return None
        return _value_at(data.churn, "churn_rate", when)

    prev_day, prev_week, prev_month = "vs prev. day", "vs 7 days earlier", "vs 30 days earlier"
    return [
        _tile(
            "streams",
            "Streams",
            _value_at(daily, "streams", day),
            _value_at(daily, "streams", before),
            prev_day,
            "count",
        ),
        _tile(
            "listeners",
            "Listeners",
            _value_at(daily, "listeners", day),
            _value_at(daily, "listeners", before),
            prev_day,
            "count",
        ),
        _tile(
            "minutes",
            "Minutes played",
            _value_at(daily, "minutes_played", day),
            _value_at(daily, "minutes_played", before),
            prev_day,
            "minutes",
        ),
        _tile(
            "dau",
            "DAU",
            _value_at(users, "dau", day),
            _value_at(users, "dau", before),
            prev_day,
            "count",
        ),
        _tile(
            "wau",
            "WAU",
            _value_at(users, "wau", day),
            _value_at(users, "wau", week),
            prev_week,
            "count",
        ),
        _tile(
            "mau",
            "MAU",
            _value_at(users, "mau", day),
            _value_at(users, "mau", month),
            prev_month,
            "count",
        ),
        _tile(
            "stickiness",
            "Stickiness (DAU/MAU)",
            _value_at(users, "stickiness", day),
            _value_at(users, "stickiness", before),
            prev_day,
            "rate",
        ),
        _tile(
            "churn",
            "30-day churn",
            churn_at(day),
            churn_at(month),
            prev_month,
            "rate",
            up_is_good=False,
        ),
    ]


def _e(text: object) -> str:
    """Escape for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


def _plotly_text(text: object) -> str:
    """Escape a label for plotly, which reads `<b>`-like tags and entities in any text."""
    return html.escape(str(text), quote=False)


def _style(fig: go.Figure, height: int, **layout: object) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 64, "r": 16, "t": 12, "b": 40},
        font={"family": FONT, "size": 12, "color": INK},
        hoverlabel={"font": {"family": FONT}},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        colorway=PALETTE,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
    )
    fig.update_xaxes(gridcolor=GRID, zeroline=False)
    fig.update_yaxes(gridcolor=GRID, zeroline=False)
    fig.update_layout(**layout)
    return fig


@dataclass(frozen=True)
class _Card:
    key: str
    title: str
    subtitle: str
    body: str
    span: int = 3  # columns of the page's 6-column grid
    tall: bool = False  # spans two grid rows


class _Figures:
    """Renders figures to `<div>`s with stable ids, so the same data gives the same bytes."""

    def __init__(self) -> None:
        self.count = 0

    def html(self, fig: go.Figure, key: str) -> str:
        self.count += 1
        return pio.to_html(
            fig,
            config=PLOTLY_CONFIG,
            include_plotlyjs=False,
            full_html=False,
            div_id=f"chart-{key}",
            default_height=f"{fig.layout.height}px",
        )


def _empty(message: str) -> str:
    return f'<div class="empty" role="status">{_e(message)}</div>'


def _streams_chart(trend: pd.DataFrame) -> go.Figure | None:
    if trend.empty:
        return None
    average = trend["streams"].rolling(7, min_periods=1).mean()
    fig = go.Figure(
        [
            go.Scatter(
                x=trend["dt"],
                y=trend["streams"],
                name="streams",
                mode="lines+markers" if len(trend) < 20 else "lines",
                line={"color": GREEN, "width": 2.5},
                fill="tozeroy",
                fillcolor="rgba(29,185,84,0.10)",
                hovertemplate="%{x|%Y-%m-%d}: %{y:,} streams<extra></extra>",
            ),
            go.Scatter(
                x=trend["dt"],
                y=average,
                name="7-day average",
                mode="lines",
                line={"color": INK, "width": 1.5, "dash": "dot"},
                hovertemplate="%{x|%Y-%m-%d}: %{y:,.0f} (7-day average)<extra></extra>",
            ),
        ]
    )
    return _style(fig, 250, yaxis=_count_axis(trend["streams"].max()))


def _count_axis(peak: object) -> dict[str, object]:
    """A y axis of whole numbers: small counts (one listener's DAU) get a tick per unit,
    where plotly would otherwise put ticks at halves and print them rounded (1, 1, 0)."""
    axis: dict[str, object] = {"rangemode": "tozero", "tickformat": ",d"}
    if pd.notna(peak) and float(peak) <= SMALL_COUNT:
        axis.update({"tick0": 0, "dtick": 1})
    return axis


def _users_chart(trend: pd.DataFrame) -> go.Figure | None:
    if trend.empty:
        return None
    fig = go.Figure(
        [
            go.Scatter(
                x=trend["dt"],
                y=trend[column],
                name=column.upper(),
                mode="lines+markers" if len(trend) < 20 else "lines",
                line={"color": color, "width": 2},
                hovertemplate=f"%{{x|%Y-%m-%d}}: %{{y:,}} {column.upper()}<extra></extra>",
            )
            for column, color in (("mau", "#2563eb"), ("wau", "#8b5cf6"), ("dau", GREEN))
        ]
    )
    return _style(fig, 250, yaxis=_count_axis(trend[["mau", "wau", "dau"]].max().max()))


def _region_chart(region: pd.DataFrame) -> tuple[go.Figure | None, int]:
    if region.empty or region["streams"].sum() == 0:
        return None, 0
    grid = region.pivot_table(
        index="country", columns="local_hour", values="streams", aggfunc="sum", fill_value=0
    ).reindex(columns=range(24), fill_value=0)
    totals = grid.sum(axis=1)
    order = sorted(grid.index, key=lambda c: (-int(totals[c]), c))
    shown = order[:HEATMAP_COUNTRIES]
    grid = grid.loc[shown]
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[f"{h:02d}" for h in range(24)],
            y=[_plotly_text(c) for c in shown],
            colorscale=GREENS,
            xgap=1,
            ygap=1,
            colorbar={"title": {"text": "streams", "side": "right"}, "thickness": 12},
            hovertemplate="%{y}, %{x}:00 local: %{z:,} streams<extra></extra>",
        )
    )
    _style(
        fig,
        max(80 + 19 * len(shown), 220),
        xaxis={"title": {"text": "local hour"}, "side": "bottom", "showgrid": False},
        yaxis={"autorange": "reversed", "showgrid": False, "type": "category"},
    )
    return fig, len(order)


def _utc_chart(utc: pd.DataFrame) -> go.Figure | None:
    if utc.empty or utc["streams"].sum() == 0:
        return None
    by_hour = (
        utc.groupby(utc["utc_hour"].astype(int))["streams"].sum().reindex(range(24), fill_value=0)
    )
    fig = go.Figure(
        go.Bar(
            x=[f"{h:02d}" for h in by_hour.index],
            y=by_hour.to_numpy(),
            marker_color=GREEN,
            hovertemplate="%{x}:00 UTC: %{y:,} streams<extra></extra>",
        )
    )
    return _style(
        fig,
        290,
        bargap=0.15,
        xaxis={"title": {"text": "UTC hour"}, "type": "category", "showgrid": False},
        yaxis={"tickformat": ",d"},
    )


def _genre_chart(genres: pd.DataFrame) -> go.Figure | None:
    if genres.empty:
        return None
    ordered = _ordered(genres, "share", ["genre"])
    top = ordered.head(TOP_ROWS)
    rest = float(ordered["share"].iloc[TOP_ROWS:].sum())
    labels = [str(g) for g in top["genre"]]
    values = [float(s) for s in top["share"]]
    if rest > 0:
        labels.append(f"{len(ordered) - TOP_ROWS} other genres")
        values.append(rest)
    colors = [
        "#9ca3af" if label == UNKNOWN_GENRE or i == TOP_ROWS else GREEN
        for i, label in enumerate(labels)
    ]
    fig = go.Figure(
        go.Bar(
            x=values,
            y=[_plotly_text(label) for label in labels],
            orientation="h",
            marker_color=colors,
            text=[f"{v:.1%}" for v in values],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1%} of streams<extra></extra>",
        )
    )
    return _style(
        fig,
        290,
        margin={"l": 120, "r": 48, "t": 12, "b": 32},
        xaxis={"tickformat": ".0%", "rangemode": "tozero"},
        yaxis={"autorange": "reversed", "type": "category", "showgrid": False},
    )


def _platform_chart(platforms: pd.DataFrame) -> go.Figure | None:
    if platforms.empty:
        return None
    ordered = _ordered(platforms, "plays", ["platform"])
    plays = ordered["plays"].astype(int)
    shares = plays / max(int(plays.sum()), 1)
    fig = go.Figure(
        go.Pie(
            labels=[_plotly_text(p) for p in ordered["platform"]],
            values=plays,
            hole=0.55,
            sort=False,
            direction="clockwise",
            marker={"colors": PALETTE, "line": {"color": "#ffffff", "width": 2}},
            # Slices under 4% are too thin for a label; the legend and hover still name them.
            text=[f"{v:.0%}" if v >= 0.04 else "" for v in shares],
            textinfo="text",
            textposition="inside",
            insidetextorientation="horizontal",
            hovertemplate="%{label}: %{value:,} plays (%{percent})<extra></extra>",
        )
    )
    return _style(
        fig,
        290,
        margin={"l": 16, "r": 16, "t": 12, "b": 12},
        legend={"orientation": "v", "x": 1.02, "y": 0.5, "yanchor": "middle"},
    )


def _retention_chart(retention: pd.DataFrame, day: dt.date) -> go.Figure | None:
    """The cohort triangle as seen on `day`: weeks starting after it are not shown."""
    if retention.empty:
        return None
    frame = retention.copy()
    frame["cohort_week"] = pd.to_datetime(frame["cohort_week"]).dt.normalize()
    week_start = frame["cohort_week"] + pd.to_timedelta(frame["week_offset"].astype(int) * 7, "D")
    frame = frame[week_start <= _ts(day)]
    if frame.empty:
        return None
    cohorts = sorted(frame["cohort_week"].unique())[-RETENTION_COHORTS:]
    frame = frame[frame["cohort_week"].isin(cohorts)]
    grid = frame.pivot_table(
        index="cohort_week", columns="week_offset", values="retention_rate", aggfunc="first"
    ).reindex(index=cohorts)
    sizes = frame.groupby("cohort_week")["cohort_size"].first()
    labels = [f"{pd.Timestamp(c).date().isoformat()} (n={int(sizes[c]):,})" for c in cohorts]
    z = grid.to_numpy(dtype=float)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"W{int(k)}" for k in grid.columns],
            y=labels,
            zmin=0,
            zmax=1,
            colorscale=GREENS,
            xgap=2,
            ygap=2,
            text=[["" if np.isnan(v) else f"{v:.0%}" for v in row] for row in z],
            texttemplate="%{text}",
            hoverongaps=False,
            colorbar={
                "title": {"text": "retained", "side": "right"},
                "tickformat": ".0%",
                "thickness": 12,
            },
            hovertemplate="cohort %{y}, %{x}: %{z:.1%} retained<extra></extra>",
        )
    )
    return _style(
        fig,
        max(RETENTION_MIN_HEIGHT, 90 + 28 * len(cohorts)),
        margin={"l": 150, "r": 16, "t": 12, "b": 40},
        xaxis={"title": {"text": "weeks after the first stream"}, "showgrid": False},
        yaxis={"autorange": "reversed", "type": "category", "showgrid": False},
    )


def _rate_chart(trend: pd.DataFrame, column: str, label: str, color: str) -> go.Figure | None:
    rows = trend.dropna(subset=[column]) if not trend.empty else trend
    if rows.empty:
        return None
    fig = go.Figure(
        go.Scatter(
            x=rows["dt"],
            y=rows[column],
            mode="lines+markers" if len(rows) < 20 else "lines",
            line={"color": color, "width": 2.5},
            hovertemplate=f"%{{x|%Y-%m-%d}}: %{{y:.1%}} {label}<extra></extra>",
        )
    )
    top = float(rows[column].max())
    return _style(
        fig,
        200,
        showlegend=False,
        yaxis={"tickformat": ".0%", "range": [0, min(1.0, max(top * 1.25, 0.05))]},
    )


def _top_table(
    rows: pd.DataFrame,
    columns: list[tuple[str, str, Callable[[object], str]]],
    empty: str,
) -> str:
    """A ranked table with a bar behind the stream count; every cell is escaped text."""
    if rows.empty:
        return _empty(empty)
    peak = max(int(rows["streams"].max()), 1)
    head = "".join(f'<th class="{_e(key)}">{_e(title)}</th>' for key, title, _ in columns)
    body = []
    for _, row in rows.iterrows():
        cells = []
        for key, _, fmt in columns:
            text = fmt(row[key])
            if key == "streams":
                width = 100 * int(row["streams"]) / peak
                cells.append(
                    f'<td class="streams"><span class="bar" style="width:{width:.1f}%"></span>'
                    f"<span>{_e(text)}</span></td>"
                )
            elif key in ("artist_name", "track_name"):
                cells.append(f'<td class="{key}"><bdi>{_e(text)}</bdi></td>')
            else:
                cells.append(f'<td class="{_e(key)}">{_e(text)}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<table class="top"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def _count(value: object) -> str:
    return f"{int(value):,}"


def _minutes(value: object) -> str:
    return f"{float(value):,.0f}"


def _name(value: object) -> str:
    return str(value)


def _top_artists(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame.sort_values(["rank", "artist_name"], kind="mergesort").head(TOP_ROWS)


def _top_tracks(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    order = ["rank", "track_name", "artist_name", "track_id"]
    return frame.sort_values(order, kind="mergesort").head(TOP_ROWS)


def _cards(data: DashboardData, days_of_history: int, figures: _Figures) -> list[_Card]:
    day = data.day
    iso = day.isoformat()
    no_streams = f"No streams on {iso}."
    no_plays = f"No plays on {iso}."

    def chart(key: str, fig: go.Figure | None, message: str) -> str:
        return figures.html(fig, key) if fig is not None else _empty(message)

    daily = _trend(data.daily_streams, day)
    users = _trend(data.active_users, day)
    churn = _trend(data.churn, day)
    no_history = f"No KPIs for the {HISTORY_DAYS} days up to {iso}."
    region_fig, countries = _region_chart(_on(data.region_hour, day))
    region_note = (
        f"the {HEATMAP_COUNTRIES} countries with most streams of {countries}"
        if countries > HEATMAP_COUNTRIES
        else "every country with streams"
    )
    artist_columns = [
        ("rank", "#", _count),
        ("artist_name", "Artist", _name),
        ("streams", "Streams", _count),
        ("listeners", "Listeners", _count),
        ("minutes_played", "Minutes", _minutes),
    ]
    track_columns = [
        ("rank", "#", _count),
        ("track_name", "Track", _name),
        ("artist_name", "Artist", _name),
        ("streams", "Streams", _count),
        ("listeners", "Listeners", _count),
    ]
    if days_of_history < CHURN_HISTORY_DAYS:
        unit = "day" if days_of_history == 1 else "days"
        churn_body = _empty(
            f"Churn needs {CHURN_HISTORY_DAYS} days of history; {days_of_history} {unit} so far."
        )
    else:
        first_full = day - dt.timedelta(days=days_of_history - CHURN_HISTORY_DAYS)
        ready = churn[churn["dt"] >= _ts(first_full)] if not churn.empty else churn
        churn_body = chart(
            "churn",
            _rate_chart(ready, "churn_rate", "churned", "#ef4444"),
            f"No accounts streamed in the churn base window of any day up to {iso}.",
        )
    return [
        _Card(
            "streams",
            "Streams over time",
            f"Track plays of 30 s or more per day, last {HISTORY_DAYS} days",
            chart("streams", _streams_chart(daily), no_history),
        ),
        _Card(
            "active-users",
            "Active users",
            "Accounts with a stream in the day, 7 days and 30 days up to each date",
            chart("active-users", _users_chart(users), no_history),
        ),
        _Card(
            "region-hour",
            "When each country listens",
            f"Streams on {iso} by local hour of the play's start; {region_note}",
            chart("region-hour", region_fig, no_streams),
            span=6,
        ),
        _Card(
            "top-artists",
            "Top 10 artists",
            f"By streams on {iso}; equal streams share a rank",
            _top_table(_top_artists(_on(data.top_artists, day)), artist_columns, no_streams),
        ),
        _Card(
            "top-tracks",
            "Top 10 tracks",
            f"By streams on {iso}; equal streams share a rank",
            _top_table(_top_tracks(_on(data.top_tracks, day)), track_columns, no_streams),
        ),
        _Card(
            "genres",
            "Genre share",
            f"Share of streams on {iso} by the artist's primary genre",
            chart("genres", _genre_chart(_on(data.genre_share, day)), no_streams),
            span=2,
        ),
        _Card(
            "platforms",
            "Platform mix",
            f"Share of all plays on {iso} by device family",
            chart("platforms", _platform_chart(_on(data.platform_mix, day)), no_plays),
            span=2,
        ),
        _Card(
            "utc-hour",
            "Streams by UTC hour",
            f"Streams on {iso} by the UTC hour the play started",
            chart("utc-hour", _utc_chart(_on(data.utc_hour, day)), no_streams),
            span=2,
        ),
        _Card(
            "retention",
            "Weekly retention cohorts",
            "Share of each cohort (week of first stream) streaming again k weeks later; "
            "the latest week may be partial",
            chart("retention", _retention_chart(data.retention, day), "No cohorts yet."),
            span=4,
            tall=True,
        ),
        _Card(
            "skip-rate",
            "Skip rate",
            "Skipped track plays / track plays per day",
            chart(
                "skip-rate",
                _rate_chart(daily, "skip_rate", "skipped", "#f59e0b"),
                f"No track plays in the {HISTORY_DAYS} days up to {iso}.",
            ),
            span=2,
        ),
        _Card(
            "churn",
            "30-day churn rate",
            "Base: accounts streaming in D-59..D-30; churned: no stream in D-29..D",
            churn_body,
            span=2,
        ),
        _Card(
            "growth-accounting",
            "Growth accounting",
            "Accounts per week: new and resurrected up, churned down; quick ratio = "
            "(new + resurrected) / churned; the latest week may be partial",
            chart(
                "growth-accounting",
                _growth_chart(data.growth_accounting, day),
                "No growth accounting yet.",
            ),
        ),
        _Card(
            "listeners-at-risk",
            "Listeners at risk",
            f"Segments with the most accounts that streamed in the 28 days up to {iso} but "
            "not in the last 7",
            lifecycle_report.at_risk_table(data.listeners_at_risk, day)
            or _empty(f"No listener at risk on {iso}."),
        ),
        _Card(
            "session-length",
            "Session length",
            "Minutes per session by the day it starts: plays at most 30 minutes apart",
            chart(
                "session-length",
                _session_chart(_trend(data.sessions, day)),
                f"No sessions in the {HISTORY_DAYS} days up to {iso}.",
            ),
            span=6,
        ),
    ]


def _growth_chart(growth: pd.DataFrame, day: dt.date) -> go.Figure | None:
    fig = lifecycle_report.growth_figure(growth, day)
    if fig is None:
        return None
    return _style(
        fig,
        290,
        barmode="relative",
        bargap=0.2,
        xaxis={"type": "category", "showgrid": False},
        yaxis={"tickformat": ",d", "zeroline": True, "zerolinecolor": INK},
    )


def _session_chart(sessions: pd.DataFrame) -> go.Figure | None:
    fig = lifecycle_report.session_figure(sessions)
    if fig is None:
        return None
    return _style(fig, 250, yaxis={"rangemode": "tozero", "title": {"text": "minutes"}})


STYLE = """
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:#f4f5f7;color:#191414;font:14px/1.45 {font}}
header{background:#191414;color:#fff;padding:22px 0 20px}
.wrap{max-width:1320px;margin:0 auto;padding:0 24px}
header h1{margin:0;font-size:22px;font-weight:650;letter-spacing:-.01em}
header h1 .dot{display:inline-block;width:12px;height:12px;border-radius:50%;
  background:#1db954;margin-right:10px;vertical-align:1px}
header p{margin:4px 0 0;color:#b3b3b3}
main.wrap{padding-top:20px;padding-bottom:24px}
.banner{background:#fff7ed;border:1px solid #fed7aa;color:#9a3412;border-radius:10px;
  padding:12px 16px;margin-bottom:16px}
.tiles{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:14px;margin-bottom:16px}
.tile{background:#fff;border-radius:12px;padding:14px 16px;box-shadow:0 1px 2px rgba(0,0,0,.06),
  0 0 0 1px rgba(0,0,0,.04)}
.tile .label{color:#6b7280;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.tile .value{font-size:28px;font-weight:700;margin:2px 0;font-variant-numeric:tabular-nums}
.tile .change{font-size:12.5px;color:#6b7280;font-variant-numeric:tabular-nums}
.tile .change.good{color:#117a37}.tile .change.bad{color:#b91c1c}
.grid{display:grid;grid-template-columns:repeat(6,minmax(0,1fr));gap:16px}
.span2{grid-column:span 2}.span3{grid-column:span 3}.span4{grid-column:span 4}
.span6{grid-column:span 6}
.tall{grid-row:span 2}
.card{background:#fff;border-radius:12px;padding:16px 18px 12px;min-width:0;
  display:flex;flex-direction:column;
  box-shadow:0 1px 2px rgba(0,0,0,.06),0 0 0 1px rgba(0,0,0,.04)}
.card>*{flex:0 0 auto}.card>.empty{flex:1 1 auto}
.card h2{margin:0;font-size:15px;font-weight:650}
.card .sub{margin:2px 0 10px;color:#6b7280;font-size:12.5px}
.insights{margin-bottom:16px;border-left:4px solid #1db954}
.insights ul{margin:6px 0 4px;padding-left:20px}
.insights li{margin:3px 0}
.empty{display:flex;align-items:center;justify-content:center;min-height:160px;
  color:#6b7280;background:#f9fafb;border:1px dashed #d1d5db;border-radius:10px;
  padding:16px;text-align:center}
table.top{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
table.top th{text-align:left;font-size:11.5px;color:#6b7280;font-weight:600;
  text-transform:uppercase;letter-spacing:.04em;border-bottom:1px solid #e5e7eb;padding:6px 8px}
table.top td{padding:6px 8px;border-bottom:1px solid #f1f2f4;vertical-align:middle}
table.top td.rank{color:#6b7280;width:32px}
table.top td.artist_name,table.top td.track_name{max-width:260px;overflow:hidden;
  text-overflow:ellipsis;white-space:nowrap}
table.top td.streams{position:relative;width:150px}
table.top td.streams .bar{position:absolute;left:0;top:5px;bottom:5px;background:#d8f3e1;
  border-radius:4px}
table.top td.streams span:last-child{position:relative;padding-left:6px;font-weight:600}
table.top td.listeners,table.top td.minutes_played{color:#374151;width:90px}
footer.wrap{color:#6b7280;font-size:12px;padding-bottom:28px}
@media (max-width:900px){.tiles{grid-template-columns:repeat(2,minmax(0,1fr))}
  .grid{grid-template-columns:1fr}.span2,.span3,.span4,.span6{grid-column:auto}
  .tall{grid-row:auto}}
"""


def _tile_html(tile: _Tile) -> str:
    return (
        f'<div class="tile" data-kpi="{_e(tile.key)}">'
        f'<div class="label">{_e(tile.label)}</div>'
        f'<div class="value">{_e(tile.value)}</div>'
        f'<div class="change {_e(tile.tone)}">{_e(tile.change)}</div></div>'
    )


def _card_html(card: _Card) -> str:
    classes = f"card span{card.span}" + (" tall" if card.tall else "")
    return (
        f'<section class="{classes}" id="{_e(card.key)}"><h2>{_e(card.title)}</h2>'
        f'<p class="sub">{_e(card.subtitle)}</p>{card.body}</section>'
    )


def render_dashboard(data: DashboardData, day: dt.date) -> str:
    """The dashboard of `day` as one self-contained HTML page (UTF-8 text).

    Every name from the data is HTML-escaped text; plotly.js is embedded once, only if a chart
    is drawn, and nothing is loaded from anywhere else.
    """
    if day != data.day:
        raise ValueError(f"data is for {data.day}, not {day}")
    iso = day.isoformat()
    days_of_history = history_days(data)
    found = insights(data)
    figures = _Figures()
    cards = _cards(data, days_of_history, figures)
    banner = ""
    streams_today = _value_at(data.daily_streams, "streams", day)
    if streams_today is None:
        banner = f"No KPIs for {iso}: the pipeline has not processed this day."
    elif streams_today == 0:
        banner = f"No streams on {iso}."
    plotly_js = (
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>'
        if figures.count
        else ""
    )
    if data.history is not None:
        cards += history_cards(data.history, figures)
    sentences = "".join(f"<li>{_e(s)}</li>" for s in insight_sentences(found))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Listening dashboard · {_e(iso)}</title>",
        f"<style>{STYLE.replace('{font}', FONT)}</style>",
        plotly_js,
        "</head><body>",
        '<header><div class="wrap"><h1><span class="dot"></span>Listening dashboard</h1>',
        f"<p>{_e(iso)} (UTC day) · KPIs from the warehouse kpi_* tables</p></div></header>",
        '<main class="wrap">',
        f'<div class="banner" role="status">{_e(banner)}</div>' if banner else "",
        '<section class="tiles">',
        "".join(_tile_html(t) for t in _tiles(data, days_of_history)),
        "</section>",
        '<section class="card insights" id="insights"><h2>Insights</h2>',
        f"<ul>{sentences}</ul></section>",
        '<div class="grid">',
        "".join(_card_html(c) for c in cards),
        "</div></main>",
        '<footer class="wrap">Streams are track plays of at least 30 seconds; days are UTC; '
        "definitions in the project's README.</footer>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def insights_markdown(found: dict[str, object]) -> str:
    """The insight sentences as a markdown list, with markdown's special characters escaped."""
    special = "\\`*_{}[]()<>#+-.!|~"

    def escape(text: str) -> str:
        return "".join(f"\\{c}" if c in special else c for c in text)

    return "\n".join(f"- {escape(s)}" for s in insight_sentences(found))


def _by_period(daily: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Plays, streams and minutes summed by calendar month ("M") or year ("Y")."""
    frame = daily.assign(period=pd.to_datetime(daily["dt"]).dt.to_period(freq))
    sums = frame.groupby("period")[["plays", "streams", "minutes_played"]].sum()
    days = frame[frame["plays"] > 0].groupby("period").size().rename("days_with_plays")
    return sums.join(days).fillna({"days_with_plays": 0}).reset_index()


def _months_chart(months: pd.DataFrame) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=months["period"].dt.to_timestamp(),
            y=months["streams"],
            marker_color=GREEN,
            hovertemplate="%{x|%Y-%m}: %{y:,} streams<extra></extra>",
        )
    )
    return _style(fig, 260, yaxis=_count_axis(months["streams"].max()), bargap=0.1)


def _year_rows(years: pd.DataFrame, history: HistoryData) -> str:
    head = "".join(
        f"<th>{_e(t)}</th>"
        for t in ("Year", "Days with plays", "Plays", "Streams", "Minutes", "Top artist")
    )
    body = []
    for row in years.itertuples(index=False):
        year = int(row.period.year)
        artists = history.top_artists[history.top_artists["year"] == year]
        top = str(artists.iloc[0]["artist_name"]) if len(artists) else "—"
        cells = [
            str(year),
            _count(row.days_with_plays),
            _count(row.plays),
            _count(row.streams),
            _minutes(row.minutes_played),
        ]
        body.append(
            "<tr>"
            + "".join(f"<td>{_e(c)}</td>" for c in cells)
            + f'<td class="artist_name"><bdi>{_e(top)}</bdi></td></tr>'
        )
    rows = "".join(body)
    return f'<table class="top"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _per_year(frame: pd.DataFrame, columns, empty: str) -> str:
    if frame.empty:
        return _empty(empty)
    parts = []
    for year in sorted(frame["year"].unique(), reverse=True):
        rows = frame[frame["year"] == year].head(HISTORY_TOP)
        parts.append(f"<h3>{_e(int(year))}</h3>{_top_table(rows, columns, empty)}")
    return "".join(parts)


def history_cards(history: HistoryData, figures: _Figures) -> list[_Card]:
    """The whole history: streams by month, a row per year, top artists and tracks per year."""
    daily = history.daily
    if daily.empty or daily["plays"].sum() == 0:
        return []
    played = daily[daily["plays"] > 0]
    first, last = (pd.Timestamp(played["dt"].min()).date(), pd.Timestamp(played["dt"].max()).date())
    span = f"{first.isoformat()} to {last.isoformat()}, {len(played):,} days with plays"
    months = _by_period(daily, "M")
    years = _by_period(daily, "Y")
    artist_columns = [
        ("artist_name", "Artist", _name),
        ("streams", "Streams", _count),
        ("minutes_played", "Minutes", _minutes),
    ]
    track_columns = [
        ("track_name", "Track", _name),
        ("artist_name", "Artist", _name),
        ("streams", "Streams", _count),
    ]
    return [
        _Card(
            "history-months",
            "All history: streams by month",
            span,
            figures.html(_months_chart(months), "history-months"),
            span=6,
        ),
        _Card("history-years", "All history: year by year", span, _year_rows(years, history), 6),
        _Card(
            "history-artists",
            "Top artists of each year",
            "by streams in the year",
            _per_year(history.top_artists, artist_columns, "No streams."),
        ),
        _Card(
            "history-tracks",
            "Top tracks of each year",
            "by streams in the year",
            _per_year(history.top_tracks, track_columns, "No streams."),
        ),
    ]
