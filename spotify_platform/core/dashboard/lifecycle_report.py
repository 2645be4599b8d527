"""The dashboard's growth accounting, listeners at risk and session length: their facts,
sentences, charts and table, computed from kpi_growth_accounting, kpi_listeners_at_risk and
kpi_sessions frames.

Pure like `core.dashboard.reports`, which lays these parts out on the page: pandas and
plotly in, facts, figures and escaped HTML out.
"""

from __future__ import annotations

import datetime as dt
import html
import math

import pandas as pd
import plotly.graph_objects as go

GROWTH_WEEKS = 12
RISK_MIN_LISTENERS = 50
RISK_ROWS = 10
NEW_COLOR = "#1db954"
RESURRECTED_COLOR = "#2563eb"
CHURNED_COLOR = "#ef4444"
PLATFORM_LABELS = {
    "android": "Android",
    "ios": "iOS",
    "windows": "Windows",
    "macos": "macOS",
    "linux": "Linux",
    "web": "Web player",
    "tv": "TV",
    "speaker": "Speakers",
    "cast": "Cast",
    "car": "Car",
    "console": "Console",
    "wearable": "Wearables",
    "other": "Other devices",
    "unknown": "Unknown devices",
}


def _number(value: object) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def segment_label(country: str, platform: str) -> str:
    return f"{PLATFORM_LABELS.get(platform, platform)} in {country}"


def last_complete_week(day: dt.date) -> dt.date:
    """The Monday of the latest week that has ended by the end of `day`."""
    monday = day - dt.timedelta(days=day.weekday())
    return monday if day.weekday() == 6 else monday - dt.timedelta(days=7)


def _weeks(growth: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """kpi_growth_accounting's weeks up to the one holding `day`, oldest first."""
    if growth.empty:
        return growth
    weeks = growth[growth["period"] == "week"].copy()
    weeks["period_start"] = pd.to_datetime(weeks["period_start"]).dt.normalize()
    weeks = weeks[weeks["period_start"] <= pd.Timestamp(day)]
    return weeks.sort_values("period_start").reset_index(drop=True)


def growth_facts(growth: pd.DataFrame, day: dt.date) -> dict[str, object]:
    """The quick ratio of the latest complete week: growth_week (its Monday), quick_ratio,
    gained (new + resurrected), churned; None where there is no such week."""
    week = last_complete_week(day)
    rows = _weeks(growth, day)
    rows = rows[rows["period_start"] == pd.Timestamp(week)] if len(rows) else rows
    if rows.empty:
        return {"growth_week": None, "quick_ratio": None, "gained": None, "churned": None}
    row = rows.iloc[0]
    return {
        "growth_week": week.isoformat(),
        "quick_ratio": _number(row["quick_ratio"]),
        "gained": int(row["new"]) + int(row["resurrected"]),
        "churned": int(row["churned"]),
    }


def riskiest_segment(at_risk: pd.DataFrame, day: dt.date) -> dict[str, object] | None:
    """The segment with the highest share at risk among those with at least
    RISK_MIN_LISTENERS listeners in 28 days on `day` (ties: more at risk, then country and
    platform in code point order), or None."""
    if at_risk.empty:
        return None
    rows = at_risk[
        (pd.to_datetime(at_risk["dt"]).dt.normalize() == pd.Timestamp(day))
        & (at_risk["active_28d"] >= RISK_MIN_LISTENERS)
    ]
    if rows.empty:
        return None
    best = min(
        rows.itertuples(),
        key=lambda r: (-float(r.at_risk_share), -int(r.at_risk), r.country, r.platform),
    )
    return {
        "country": best.country,
        "platform": best.platform,
        "share": float(best.at_risk_share),
        "at_risk": int(best.at_risk),
        "active_28d": int(best.active_28d),
    }


def session_facts(sessions: pd.DataFrame, day: dt.date) -> dict[str, object] | None:
    """Sessions starting on `day` with their median and mean minutes and plays, or None."""
    if sessions.empty:
        return None
    rows = sessions[pd.to_datetime(sessions["dt"]).dt.normalize() == pd.Timestamp(day)]
    if rows.empty or int(rows["sessions"].iloc[0]) == 0:
        return None
    row = rows.iloc[0]
    return {
        "sessions": int(row["sessions"]),
        "listeners": int(row["listeners"]),
        "median_minutes": float(row["median_session_minutes"]),
        "mean_minutes": float(row["avg_session_minutes"]),
        "plays": float(row["avg_plays_per_session"]),
    }


def facts(
    growth: pd.DataFrame, at_risk: pd.DataFrame, sessions: pd.DataFrame, day: dt.date
) -> dict[str, object]:
    return {
        **growth_facts(growth, day),
        "riskiest_segment": riskiest_segment(at_risk, day),
        "sessions_today": session_facts(sessions, day),
    }


def _trend_word(ratio: float) -> str:
    if ratio > 1:
        return "growing"
    return "shrinking" if ratio < 1 else "holding steady"


def sentences(found: dict[str, object]) -> list[str]:
    """The facts as plain-text sentences (each output format escapes its own)."""
    out = []
    if found["growth_week"] is None:
        out.append("Growth accounting needs a complete week of data.")
    elif found["quick_ratio"] is None:
        out.append(
            f"No listener churned in the week of {found['growth_week']}: "
            f"{found['gained']:,} new or resurrected."
        )
    else:
        ratio = float(found["quick_ratio"])
        out.append(
            f"Quick ratio {ratio:.2f} in the week of {found['growth_week']}: "
            f"{_trend_word(ratio)} ({found['gained']:,} new or resurrected listeners, "
            f"{found['churned']:,} churned)."
        )
    segment = found["riskiest_segment"]
    if segment is None:
        out.append(f"No segment has {RISK_MIN_LISTENERS} listeners in the last 28 days.")
    else:
        out.append(
            f"{segment_label(segment['country'], segment['platform'])}: "
            f"{segment['share']:.0%} at risk ({segment['at_risk']:,} of "
            f"{segment['active_28d']:,}), the highest segment with >= {RISK_MIN_LISTENERS} "
            "listeners."
        )
    today = found["sessions_today"]
    if today is None:
        out.append("No listening sessions started on this day.")
    else:
        out.append(
            f"Sessions last {today['median_minutes']:.0f} minutes at the median and "
            f"{today['mean_minutes']:.0f} on average, {today['plays']:.1f} plays each "
            f"({today['sessions']:,} sessions by {today['listeners']:,} listeners)."
        )
    return out


def growth_figure(growth: pd.DataFrame, day: dt.date) -> go.Figure | None:
    """New and resurrected accounts up, churned ones down, for the last GROWTH_WEEKS weeks."""
    weeks = _weeks(growth, day).tail(GROWTH_WEEKS)
    if weeks.empty:
        return None
    labels = [d.date().isoformat() for d in weeks["period_start"]]
    ratios = ["n/a" if _number(r) is None else f"{float(r):.2f}" for r in weeks["quick_ratio"]]
    bars = [
        ("new", weeks["new"], 1, NEW_COLOR),
        ("resurrected", weeks["resurrected"], 1, RESURRECTED_COLOR),
        ("churned", weeks["churned"], -1, CHURNED_COLOR),
    ]
    return go.Figure(
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


def session_figure(sessions: pd.DataFrame) -> go.Figure | None:
    """Median and mean session minutes per day, oldest first."""
    rows = sessions.dropna(subset=["median_session_minutes"]) if len(sessions) else sessions
    if rows.empty:
        return None
    rows = rows.assign(dt=pd.to_datetime(rows["dt"])).sort_values("dt")
    mode = "lines+markers" if len(rows) < 20 else "lines"
    return go.Figure(
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


def at_risk_table(at_risk: pd.DataFrame, day: dt.date) -> str | None:
    """The RISK_ROWS segments with the most listeners at risk on `day`, as an HTML table."""
    if at_risk.empty:
        return None
    rows = at_risk[pd.to_datetime(at_risk["dt"]).dt.normalize() == pd.Timestamp(day)]
    if rows.empty or int(rows["at_risk"].sum()) == 0:
        return None
    top = sorted(
        rows.itertuples(),
        key=lambda r: (-int(r.at_risk), -float(r.at_risk_share), r.country, r.platform),
    )[:RISK_ROWS]
    head = "".join(
        f'<th class="{key}">{title}</th>'
        for key, title in (
            ("segment", "Segment"),
            ("at_risk", "At risk"),
            ("active_28d", "Listeners (28 days)"),
            ("share", "Share"),
        )
    )
    body = "".join(
        "<tr>"
        f'<td class="segment"><bdi>{html.escape(segment_label(r.country, r.platform))}</bdi></td>'
        f'<td class="at_risk">{int(r.at_risk):,}</td>'
        f'<td class="active_28d">{int(r.active_28d):,}</td>'
        f'<td class="share">{float(r.at_risk_share):.0%}</td>'
        "</tr>"
        for r in top
    )
    return f'<table class="top"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
