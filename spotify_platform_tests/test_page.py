"""The page on hand-built KPI frames: empty states, escaping of untrusted names, and the
growth accounting, listeners at risk and session cards."""

import dataclasses
import datetime as dt
import html
import re

import pandas as pd
import pytest

from spotify_platform.core.dashboard.data import HistoryData
from spotify_platform.core.dashboard.insights import insight_sentences, insights
from spotify_platform.core.dashboard.page import render_dashboard
from spotify_platform_tests.dashboard_frames import (
    DAY,
    WEEK_DAY,
    WEEKS,
    ago,
    at_risk,
    daily_rows,
    data_for,
    section,
    sessions,
    tiles,
    week_data,
)


def test_a_day_the_pipeline_never_processed_renders_empty_states_without_plotly():
    page = render_dashboard(data_for(), DAY)
    assert f"No KPIs for {DAY}: the pipeline has not processed this day." in page
    assert f"No streams on {DAY}." in page
    assert "Churn needs 60 days of history; 0 days so far." in page
    assert "plotly-graph-div" not in page
    assert "Plotly.newPlot" not in page
    assert "<script" not in page
    assert {value for value, _ in tiles(page).values()} == {"n/a"}
    assert len(tiles(page)) == 8
    found = insights(data_for())
    assert found["peak_band"] is None and found["leading_genres"] == []


def test_a_processed_day_without_streams_says_so():
    zero = {"dt": ago(0), "plays": 0, "streams": 0, "listeners": 0, "minutes_played": 0.0}
    page = render_dashboard(data_for(daily_streams=[{**zero, "skip_rate": None}]), DAY)
    assert f'<div class="banner" role="status">No streams on {DAY}.</div>' in page
    assert tiles(page)["streams"] == ("0", "n/a vs prev. day")


NASTY_NAMES = [
    '<script>alert("x")</script>',
    'Guns N\' Roses & "Friends"',
    "<b>Bold</b> & <i>brave</i>",
    "Beyoncé 🐝🎶",
    "坂本龍一",
    "فيروز",
    "עומר אדם ‏(live)",
]


def test_names_are_escaped_and_survive_byte_for_byte():
    top = [
        {"dt": ago(0), "rank": i + 1, "artist_name": name, "streams": 50 - i, "listeners": 5}
        for i, name in enumerate(NASTY_NAMES)
    ]
    for row in top:
        row["minutes_played"] = 9.5
    tracks = [
        {**row, "track_id": f"{i:022d}", "track_name": name[::-1] + name}
        for i, (row, name) in enumerate(zip(top, NASTY_NAMES, strict=True))
    ]
    history = [{**row, "dt": ago(0)} for row in top]  # the script name grows most: +50
    genres = [{"dt": ago(0), "genre": "<i>r&b</i>", "streams": 10, "share": 1.0}]
    data = data_for(
        daily_streams=daily_rows(20),
        top_artists=top,
        top_tracks=tracks,
        artist_history=history,
        genre_share=genres,
    )
    page = render_dashboard(data, DAY)
    for name in NASTY_NAMES:
        assert html.escape(name) in section(page, "top-artists"), name
        assert html.escape(name[::-1] + name) in section(page, "top-tracks"), name
    for raw in ("Beyoncé 🐝🎶", "坂本龍一", "فيروز", "עומר אדם ‏(live)"):
        assert raw in page  # non-ASCII text is written as itself, not as entities
    assert "<script>alert" not in page
    assert "<b>Bold" not in page and "<i>r&b" not in page and "<i>brave" not in page
    assert (
        "Fastest-growing artist of the week: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;, "
        "+50 streams" in section(page, "insights")
    )
    assert "The leading genre is &lt;i&gt;r&amp;b&lt;/i&gt;, with 100.0% of streams." in page
    # Only plotly's own script and one per chart: no name became a script.
    assert page.count("<script") == 1 + page.count('class="plotly-graph-div"')


def test_render_refuses_data_of_another_day():
    with pytest.raises(ValueError, match="not 2026-03-14"):
        render_dashboard(data_for(), DAY - dt.timedelta(days=1))


def test_the_page_draws_growth_bars_the_riskiest_segments_and_session_length():
    risk = at_risk([("BR", "android", 200, 40), ("US", "ios", 100, 20), ("SE", "tv", 60, 0)])
    trend = sessions(
        [
            (WEEK_DAY - dt.timedelta(days=1), 10, 8, 300.0, 30.0, 20.0, 9.5),
            (WEEK_DAY, 12, 9, 300.0, 25.0, 21.5, 10.25),
        ]
    )
    page = render_dashboard(
        week_data(growth_accounting=WEEKS, listeners_at_risk=risk, sessions=trend), WEEK_DAY
    )
    growth_card = page[page.index('id="growth-accounting"') :]
    assert 'id="chart-growth-accounting"' in growth_card
    assert '"name":"churned"' in growth_card and "[-5,-20,-52]" in growth_card
    risk_card = page[page.index('id="listeners-at-risk"') :]
    rows = risk_card[: risk_card.index("</table>")]
    assert rows.index("Android in BR") < rows.index("iOS in US") and "TV in SE" in rows
    assert 'id="chart-session-length"' in page
    sentences = insight_sentences(
        insights(week_data(growth_accounting=WEEKS, listeners_at_risk=risk, sessions=trend))
    )
    assert sentences[-1] == (
        "Sessions last 22 minutes at the median and 25 on average, 10.2 plays each "
        "(12 sessions by 9 listeners)."
    )


def test_empty_frames_render_empty_states_without_charts():
    page = render_dashboard(week_data(), WEEK_DAY)
    assert "No growth accounting yet." in page
    assert f"No listener at risk on {WEEK_DAY}." in page
    assert "No sessions in the 90 days up to" in page
    assert "<script" not in page


def _history(names: list[str]) -> HistoryData:
    days = pd.date_range("2024-12-30", "2025-01-02")
    daily = pd.DataFrame(
        {"dt": days, "plays": [2, 0, 3, 4], "streams": [1, 0, 2, 3], "minutes_played": 1.5}
    )
    artists = pd.DataFrame(
        [(2025, name, 5 - i, 2.0) for i, name in enumerate(names)] + [(2024, "Old", 1, 1.0)],
        columns=["year", "artist_name", "streams", "minutes_played"],
    )
    tracks = pd.DataFrame(
        [(2025, "Song", names[0], 5, 2.0)],
        columns=["year", "track_name", "artist_name", "streams", "minutes_played"],
    )
    return HistoryData(daily=daily, top_artists=artists, top_tracks=tracks)


def test_the_history_cards_show_each_year_with_escaped_names():
    history = _history(['<script>alert("x")</script>', "坂本龍一"])
    page = render_dashboard(dataclasses.replace(data_for(), history=history), DAY)
    assert "2024-12-30 to 2025-01-02, 3 days with plays" in section(page, "history-months")
    assert 'id="chart-history-months"' in page
    years = re.findall(r"<tr>(.*?)</tr>", section(page, "history-years"))
    assert years[1:] == [
        '<td>2024</td><td>1</td><td>2</td><td>1</td><td>3</td><td class="artist_name">'
        "<bdi>Old</bdi></td>",
        '<td>2025</td><td>2</td><td>7</td><td>5</td><td>3</td><td class="artist_name">'
        "<bdi>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</bdi></td>",
    ]
    artists = section(page, "history-artists")
    assert artists.index("<h3>2025</h3>") < artists.index("<h3>2024</h3>")
    assert "<bdi>坂本龍一</bdi>" in artists and "<script>alert" not in page
    # The day has no chart of its own: plotly.js is still embedded for the history's.
    assert page.count("<script") == 1 + page.count('class="plotly-graph-div"') == 2
