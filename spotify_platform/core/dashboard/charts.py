"""The dashboard's plotly figures, one function per chart, in the page's look.

Each takes the rows it draws and returns a figure, or None when there is nothing to draw (the
page then shows an empty state). Names from the data reach plotly escaped: plotly reads
`<b>`-like tags and entities in any label.
"""

from __future__ import annotations

import datetime as dt
import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from spotify_platform.core.dashboard.data import (
    GROWTH_WEEKS,
    TOP_ROWS,
    UNKNOWN_GENRE,
    growth_weeks,
    number,
    ordered,
)

HEATMAP_COUNTRIES = 20
RETENTION_COHORTS = 12
SMALL_COUNT = 6  # counts up to this get a tick per unit
RETENTION_MIN_HEIGHT = 470  # fills its card, which spans the skip-rate and churn cards

GREEN = "#1db954"
INK = "#191414"
GRID = "#e5e7eb"
NEW_COLOR = GREEN
RESURRECTED_COLOR = "#2563eb"
CHURNED_COLOR = "#ef4444"
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


def _count_axis(peak: object) -> dict[str, object]:
    """A y axis of whole numbers: small counts (one listener's DAU) get a tick per unit,
    where plotly would otherwise put ticks at halves and print them rounded (1, 1, 0)."""
    axis: dict[str, object] = {"rangemode": "tozero", "tickformat": ",d"}
    if pd.notna(peak) and float(peak) <= SMALL_COUNT:
        axis.update({"tick0": 0, "dtick": 1})
    return axis


def streams_chart(trend: pd.DataFrame) -> go.Figure | None:
    """Streams per day with their 7-day average."""
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


def users_chart(trend: pd.DataFrame) -> go.Figure | None:
    """MAU, WAU and DAU per day."""
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


def region_chart(region: pd.DataFrame) -> tuple[go.Figure | None, int]:
    """Streams by country and local hour for the HEATMAP_COUNTRIES busiest countries, and how
    many countries had streams."""
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


def utc_chart(utc: pd.DataFrame) -> go.Figure | None:
    """Streams by the UTC hour the play started."""
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


def genre_chart(genres: pd.DataFrame) -> go.Figure | None:
    """The TOP_ROWS genres by share, the rest as one bar; `unknown` in grey."""
    if genres.empty:
        return None
    by_share = ordered(genres, "share", ["genre"])
    top = by_share.head(TOP_ROWS)
    rest = float(by_share["share"].iloc[TOP_ROWS:].sum())
    labels = [str(g) for g in top["genre"]]
    values = [float(s) for s in top["share"]]
    if rest > 0:
        labels.append(f"{len(by_share) - TOP_ROWS} other genres")
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


def platform_chart(platforms: pd.DataFrame) -> go.Figure | None:
    """Plays by device family as a donut."""
    if platforms.empty:
        return None
    by_plays = ordered(platforms, "plays", ["platform"])
    plays = by_plays["plays"].astype(int)
    shares = plays / max(int(plays.sum()), 1)
    fig = go.Figure(
        go.Pie(
            labels=[_plotly_text(p) for p in by_plays["platform"]],
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


def retention_chart(retention: pd.DataFrame, day: dt.date) -> go.Figure | None:
    """The cohort triangle as seen on `day`: weeks starting after it are not shown."""
    if retention.empty:
        return None
    frame = retention.copy()
    frame["cohort_week"] = pd.to_datetime(frame["cohort_week"]).dt.normalize()
    week_start = frame["cohort_week"] + pd.to_timedelta(frame["week_offset"].astype(int) * 7, "D")
    frame = frame[week_start <= pd.Timestamp(day)]
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


def rate_chart(trend: pd.DataFrame, column: str, label: str, color: str) -> go.Figure | None:
    """A rate per day (skip rate, churn rate), as a percentage line."""
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


def growth_chart(growth: pd.DataFrame, day: dt.date) -> go.Figure | None:
    """New and resurrected accounts up, churned ones down, for the last GROWTH_WEEKS weeks."""
    weeks = growth_weeks(growth, day).tail(GROWTH_WEEKS)
    if weeks.empty:
        return None
    labels = [d.date().isoformat() for d in weeks["period_start"]]
    ratios = ["n/a" if number(r) is None else f"{float(r):.2f}" for r in weeks["quick_ratio"]]
    bars = [
        ("new", weeks["new"], 1, NEW_COLOR),
        ("resurrected", weeks["resurrected"], 1, RESURRECTED_COLOR),
        ("churned", weeks["churned"], -1, CHURNED_COLOR),
    ]
    fig = go.Figure(
        [
            go.Bar(
                x=labels,
                y=[sign * int(v) for v in values],
                name=name,
                marker_color=color,
                customdata=[[int(v), r] for v, r in zip(values, ratios, strict=True)],
                hovertemplate=(
                    f"week of %{{x}}: %{{customdata[0]:,}} {name} "
                    "(quick ratio %{customdata[1]})<extra></extra>"
                ),
            )
            for name, values, sign, color in bars
        ]
    )
    return _style(
        fig,
        290,
        barmode="relative",
        bargap=0.2,
        xaxis={"type": "category", "showgrid": False},
        yaxis={"tickformat": ",d", "zeroline": True, "zerolinecolor": INK},
    )


def session_chart(sessions: pd.DataFrame) -> go.Figure | None:
    """Median and mean session minutes per day, oldest first."""
    rows = sessions.dropna(subset=["median_session_minutes"]) if len(sessions) else sessions
    if rows.empty:
        return None
    rows = rows.assign(dt=pd.to_datetime(rows["dt"])).sort_values("dt")
    mode = "lines+markers" if len(rows) < 20 else "lines"
    fig = go.Figure(
        [
            go.Scatter(
                x=rows["dt"],
                y=rows[column],
                name=name,
                mode=mode,
                line={"color": color, "width": 2},
                hovertemplate=f"%{{x|%Y-%m-%d}}: %{{y:.1f}} min ({name})<extra></extra>",
            )
            for column, name, color in (
                ("median_session_minutes", "median", NEW_COLOR),
                ("avg_session_minutes", "mean", RESURRECTED_COLOR),
            )
        ]
    )
    return _style(fig, 250, yaxis={"rangemode": "tozero", "title": {"text": "minutes"}})


def months_chart(months: pd.DataFrame) -> go.Figure:
    """Streams by calendar month over the whole history (`data.by_period(daily, "M")`)."""
    fig = go.Figure(
        go.Bar(
            x=months["period"].dt.to_timestamp(),
            y=months["streams"],
            marker_color=GREEN,
            hovertemplate="%{x|%Y-%m}: %{y:,} streams<extra></extra>",
        )
    )
    return _style(fig, 260, yaxis=_count_axis(months["streams"].max()), bargap=0.1)
