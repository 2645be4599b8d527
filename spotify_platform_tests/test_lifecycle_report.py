"""The dashboard's growth accounting, listeners at risk and session length on hand-built KPI
frames: facts and sentences worked out by hand."""

import dataclasses
import datetime as dt

import pandas as pd

from spotify_platform.core.dashboard import lifecycle_report, reports
from spotify_platform.core.dashboard.reports import DashboardData, render_dashboard
from spotify_platform_tests.test_reports import data_for

DAY = dt.date(2026, 3, 18)  # a Wednesday: the latest complete week began on 2026-03-09


def growth(rows: list[tuple]) -> pd.DataFrame:
    columns = ["period", "period_start", "active", "new", "retained", "resurrected", "churned"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["period_start"] = pd.to_datetime(frame["period_start"])
    churned = frame["churned"].astype(float)
    frame["quick_ratio"] = (frame["new"] + frame["resurrected"]) / churned.where(churned > 0)
    return frame


def at_risk(rows: list[tuple], day: dt.date = DAY) -> pd.DataFrame:
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


def data(**frames) -> DashboardData:
    """A day the other KPIs have no rows for, with these frames."""
    return dataclasses.replace(data_for(DAY), **frames)


WEEKS = growth(
    [
        ("week", "2026-03-02", 100, 10, 80, 10, 5),
        ("week", "2026-03-09", 90, 3, 80, 7, 20),
        ("week", "2026-03-16", 40, 1, 38, 1, 52),  # the partial week holding DAY
        ("month", "2026-03-01", 120, 12, 100, 8, 9),
    ]
)


def test_the_quick_ratio_is_the_latest_complete_weeks():
    assert lifecycle_report.last_complete_week(DAY) == dt.date(2026, 3, 9)
    assert lifecycle_report.last_complete_week(dt.date(2026, 3, 15)) == dt.date(2026, 3, 9)
    found = lifecycle_report.growth_facts(WEEKS, DAY)
    assert found == {"growth_week": "2026-03-09", "quick_ratio": 0.5, "gained": 10, "churned": 20}
    sentence = lifecycle_report.sentences(
        {**found, "riskiest_segment": None, "sessions_today": None}
    )[0]
    assert sentence == (
        "Quick ratio 0.50 in the week of 2026-03-09: shrinking "
        "(10 new or resurrected listeners, 20 churned)."
    )
    growing = lifecycle_report.growth_facts(WEEKS, dt.date(2026, 3, 9))
    assert growing["growth_week"] == "2026-03-02" and growing["quick_ratio"] == 4.0


def test_a_week_without_churn_or_without_data_says_so():
    calm = growth([("week", "2026-03-09", 5, 5, 0, 0, 0)])
    found = {**lifecycle_report.growth_facts(calm, DAY), "riskiest_segment": None}
    assert lifecycle_report.sentences({**found, "sessions_today": None})[0] == (
        "No listener churned in the week of 2026-03-09: 5 new or resurrected."
    )
    none = {**lifecycle_report.growth_facts(growth([]), DAY), "riskiest_segment": None}
    assert lifecycle_report.sentences({**none, "sessions_today": None})[0] == (
        "Growth accounting needs a complete week of data."
    )


def test_the_riskiest_segment_has_fifty_listeners_and_ties_go_to_more_at_risk_then_names():
    frame = at_risk(
        [
            ("ZZ", "web", 49, 40),  # the highest share, but under 50 listeners
            ("US", "ios", 100, 20),
            ("BR", "android", 200, 40),  # 20% too, with more at risk
            ("AR", "tv", 50, 10),
            ("SE", "android", 500, 5),
        ]
    )
    found = lifecycle_report.riskiest_segment(frame, DAY)
    assert found == {
        "country": "BR",
        "platform": "android",
        "share": 0.2,
        "at_risk": 40,
        "active_28d": 200,
    }
    tie = at_risk([("US", "ios", 100, 20), ("DE", "tv", 100, 20), ("DE", "cast", 100, 20)])
    assert lifecycle_report.riskiest_segment(tie, DAY)["platform"] == "cast"
    sentence = lifecycle_report.sentences(
        {"growth_week": None, "riskiest_segment": found, "sessions_today": None}
    )[1]
    assert sentence == (
        "Android in BR: 20% at risk (40 of 200), the highest segment with >= 50 listeners."
    )
    assert lifecycle_report.riskiest_segment(frame, DAY - dt.timedelta(days=1)) is None


def test_the_page_draws_growth_bars_the_riskiest_segments_and_session_length():
    risk = at_risk([("BR", "android", 200, 40), ("US", "ios", 100, 20), ("SE", "tv", 60, 0)])
    trend = sessions(
        [
            (DAY - dt.timedelta(days=1), 10, 8, 300.0, 30.0, 20.0, 9.5),
            (DAY, 12, 9, 300.0, 25.0, 21.5, 10.25),
        ]
    )
    page = render_dashboard(
        data(growth_accounting=WEEKS, listeners_at_risk=risk, sessions=trend), DAY
    )
    growth_card = page[page.index('id="growth-accounting"') :]
    assert 'id="chart-growth-accounting"' in growth_card
    assert '"name":"churned"' in growth_card and "[-5,-20,-52]" in growth_card
    risk_card = page[page.index('id="listeners-at-risk"') :]
    rows = risk_card[: risk_card.index("</table>")]
    assert rows.index("Android in BR") < rows.index("iOS in US") and "TV in SE" in rows
    assert 'id="chart-session-length"' in page
    insights = reports.insight_sentences(
        reports.insights(data(growth_accounting=WEEKS, listeners_at_risk=risk, sessions=trend))
    )
    assert insights[-1] == (
        "Sessions last 22 minutes at the median and 25 on average, 10.2 plays each "
        "(12 sessions by 9 listeners)."
    )


def test_empty_frames_render_empty_states_without_charts():
    page = render_dashboard(data(), DAY)
    assert "No growth accounting yet." in page
    assert f"No listener at risk on {DAY}." in page
    assert "No sessions in the 90 days up to" in page
    assert "<script" not in page
