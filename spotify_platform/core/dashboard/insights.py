"""The facts the dashboard states in words, and their sentences: peak listening time, leading
genres, the fastest-growing artist, the week's quick ratio, the riskiest segment and the day's
sessions. Definitions are in docs/kpis.md.

Pure pandas: the page, the asset's metadata and the CLI's headline share these sentences.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from spotify_platform.core.dashboard.data import (
    GROWTH_HISTORY_DAYS,
    GROWTH_WINDOW_DAYS,
    UNKNOWN_GENRE,
    DashboardData,
    between,
    days_of,
    growth_weeks,
    history_days,
    number,
    on_day,
    ordered,
)
from spotify_platform.core.sources.identity import name_ids

BAND_HOURS = 3
LEADING_GENRES = 3
RISK_MIN_LISTENERS = 50
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


def _leading_genres(genre_share: pd.DataFrame) -> tuple[list[str], float | None]:
    """The top genres by share, leaving out `unknown` (no genre is not a genre)."""
    known = genre_share[genre_share["genre"] != UNKNOWN_GENRE]
    if known.empty:
        return [], None
    top = ordered(known, "share", ["genre"]).head(LEADING_GENRES)
    return list(top["genre"]), float(top["share"].sum())


def _fastest_growing(data: DashboardData) -> tuple[str, int, int] | None:
    """(artist, streams in the last 7 days, streams in the 7 before) with the largest increase.

    Only artists in a top list during the last 7 days compete; a day outside an artist's top 50
    counts as zero for it, which the top lists cannot tell apart from a handful of streams.
    """
    day = data.day
    history = between(data.artist_history, day - dt.timedelta(days=GROWTH_HISTORY_DAYS - 1), day)
    if history.empty:
        return None
    split = pd.Timestamp(day - dt.timedelta(days=GROWTH_WINDOW_DAYS - 1))
    recent = days_of(history) >= split
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
    growth = ordered(growth.reset_index(drop=True), "increase", ["artist"])
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
    riskiest_segment and sessions_today (see `lifecycle_facts`).
    Values are None where the data cannot tell (no streams, under 14 days of history, no growth).
    """
    day = data.day
    days = history_days(data)
    peak = _peak_band(on_day(data.region_hour, day))
    genres, genre_share = _leading_genres(on_day(data.genre_share, day))
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
        **lifecycle_facts(data.growth_accounting, data.listeners_at_risk, data.sessions, day),
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
    return sentences + lifecycle_sentences(found)


def insights_markdown(found: dict[str, object]) -> str:
    """The insight sentences as a markdown list, with markdown's special characters escaped."""
    special = "\\`*_{}[]()<>#+-.!|~"

    def escape(text: str) -> str:
        return "".join(f"\\{c}" if c in special else c for c in text)

    return "\n".join(f"- {escape(s)}" for s in insight_sentences(found))


# --- growth accounting, listeners at risk and sessions ------------------------------------------


def segment_label(country: str, platform: str) -> str:
    return f"{PLATFORM_LABELS.get(platform, platform)} in {country}"


def last_complete_week(day: dt.date) -> dt.date:
    """The Monday of the latest week that has ended by the end of `day`."""
    monday = day - dt.timedelta(days=day.weekday())
    return monday if day.weekday() == 6 else monday - dt.timedelta(days=7)


def growth_facts(growth: pd.DataFrame, day: dt.date) -> dict[str, object]:
    """The quick ratio of the latest complete week: growth_week (its Monday), quick_ratio,
    gained (new + resurrected), churned; None where there is no such week."""
    week = last_complete_week(day)
    rows = growth_weeks(growth, day)
    rows = rows[rows["period_start"] == pd.Timestamp(week)] if len(rows) else rows
    if rows.empty:
        return {"growth_week": None, "quick_ratio": None, "gained": None, "churned": None}
    row = rows.iloc[0]
    return {
        "growth_week": week.isoformat(),
        "quick_ratio": number(row["quick_ratio"]),
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
        (days_of(at_risk) == pd.Timestamp(day)) & (at_risk["active_28d"] >= RISK_MIN_LISTENERS)
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
    rows = sessions[days_of(sessions) == pd.Timestamp(day)]
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


def lifecycle_facts(
    growth: pd.DataFrame, at_risk: pd.DataFrame, sessions: pd.DataFrame, day: dt.date
) -> dict[str, object]:
    """growth_facts' keys, riskiest_segment and sessions_today."""
    return {
        **growth_facts(growth, day),
        "riskiest_segment": riskiest_segment(at_risk, day),
        "sessions_today": session_facts(sessions, day),
    }


def _trend_word(ratio: float) -> str:
    if ratio > 1:
        return "growing"
    return "shrinking" if ratio < 1 else "holding steady"


def lifecycle_sentences(found: dict[str, object]) -> list[str]:
    """The quick ratio, riskiest segment and sessions as plain-text sentences."""
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
