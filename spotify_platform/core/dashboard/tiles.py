"""The headline tiles: each KPI's value on the dashboard's day and its change against an
earlier day, as the text the page shows and how the change should be read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from spotify_platform.core.dashboard.data import CHURN_HISTORY_DAYS, DashboardData, value_at


@dataclass(frozen=True)
class Tile:
    key: str
    label: str
    value: str
    change: str
    tone: str  # good, bad, flat or none: how the change should be read


def tile(
    key: str,
    label: str,
    current: float | None,
    previous: float | None,
    compared: str,
    kind: str,
    up_is_good: bool = True,
) -> Tile:
    """A tile of a count, minutes or a rate (kind), compared with `previous` as `compared`."""
    if current is None:
        return Tile(key, label, "n/a", f"n/a {compared}", "none")
    if kind == "rate":
        value = f"{current:.1%}"
    elif kind == "minutes":
        value = f"{current:,.0f}"
    else:
        value = f"{int(current):,}"
    if previous is None:
        return Tile(key, label, value, f"n/a {compared}", "none")
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
    return Tile(key, label, value, change, tone)


def headline_tiles(data: DashboardData, days_of_history: int) -> list[Tile]:
    """Streams, listeners, minutes, DAU, WAU, MAU, stickiness and churn, in the page's order."""
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
        return value_at(data.churn, "churn_rate", when)

    prev_day, prev_week, prev_month = "vs prev. day", "vs 7 days earlier", "vs 30 days earlier"
    return [
        tile(
            "streams",
            "Streams",
            value_at(daily, "streams", day),
            value_at(daily, "streams", before),
            prev_day,
            "count",
        ),
        tile(
            "listeners",
            "Listeners",
            value_at(daily, "listeners", day),
            value_at(daily, "listeners", before),
            prev_day,
            "count",
        ),
        tile(
            "minutes",
            "Minutes played",
            value_at(daily, "minutes_played", day),
            value_at(daily, "minutes_played", before),
            prev_day,
            "minutes",
        ),
        tile(
            "dau",
            "DAU",
            value_at(users, "dau", day),
            value_at(users, "dau", before),
            prev_day,
            "count",
        ),
        tile(
            "wau",
            "WAU",
            value_at(users, "wau", day),
            value_at(users, "wau", week),
            prev_week,
            "count",
        ),
        tile(
            "mau",
            "MAU",
            value_at(users, "mau", day),
            value_at(users, "mau", month),
            prev_month,
            "count",
        ),
        tile(
            "stickiness",
            "Stickiness (DAU/MAU)",
            value_at(users, "stickiness", day),
            value_at(users, "stickiness", before),
            prev_day,
            "rate",
        ),
        tile(
            "churn",
            "30-day churn",
            churn_at(day),
            churn_at(month),
            prev_month,
            "rate",
            up_is_good=False,
        ),
    ]
