"""The insights on hand-built KPI frames: peak listening time, leading genres, the
fastest-growing artist, the week's quick ratio, the riskiest segment; worked out by hand."""

import datetime as dt

import pytest

from spotify_platform.core.dashboard.insights import (
    growth_facts,
    insight_sentences,
    insights,
    insights_markdown,
    last_complete_week,
    lifecycle_sentences,
    riskiest_segment,
)
from spotify_platform_tests.dashboard_frames import (
    DAY,
    WEEK_DAY,
    WEEKS,
    ago,
    at_risk,
    daily_rows,
    data_for,
    growth,
)


def test_peak_band_is_the_busiest_three_local_hours_across_countries_and_wraps_midnight():
    region = [
        {"dt": ago(0), "country": "DE", "local_hour": 20, "streams": 10},
        {"dt": ago(0), "country": "DE", "local_hour": 21, "streams": 12},
        {"dt": ago(0), "country": "US", "local_hour": 21, "streams": 3},
        {"dt": ago(0), "country": "DE", "local_hour": 22, "streams": 8},
        {"dt": ago(0), "country": "US", "local_hour": 23, "streams": 20},
        {"dt": ago(0), "country": "US", "local_hour": 0, "streams": 4},
        {"dt": ago(0), "country": "BR", "local_hour": 8, "streams": 15},
        {"dt": ago(0), "country": "BR", "local_hour": 9, "streams": 5},
        # The day before is busier at 05:00 and must not count.
        {"dt": ago(1), "country": "BR", "local_hour": 5, "streams": 500},
    ]
    for row in region:
        row.update(listeners=1, minutes_played=1.0)
    found = insights(data_for(region_hour=region, daily_streams=daily_rows(2)))
    # Hour totals: 20:10 21:15 22:8 23:20 0:4 8:15 9:5 (77). Best band 21,22,23 = 15+8+20 = 43;
    # the next best, 22,23,0, has 32 and 20,21,22 has 33.
    assert found["peak_band"] == "21:00–00:00 local"
    assert found["peak_band_start_hour"] == 21
    assert found["peak_band_streams"] == 43
    assert found["peak_band_share"] == pytest.approx(43 / 77)


def test_leading_genres_are_the_top_three_known_ones_with_their_combined_share():
    shares = {"unknown": 0.30, "pop": 0.25, "rock": 0.15, "jazz": 0.12, "blues": 0.12, "r&b": 0.06}
    genres = [
        {"dt": ago(0), "genre": g, "streams": int(s * 100), "share": s} for g, s in shares.items()
    ]
    genres.append({"dt": ago(1), "genre": "polka", "streams": 900, "share": 0.9})
    found = insights(data_for(genre_share=genres, daily_streams=daily_rows(2)))
    # "unknown" is no genre; jazz and blues tie and "blues" sorts first.
    assert found["leading_genres"] == ["pop", "rock", "blues"]
    assert found["leading_genres_share"] == pytest.approx(0.25 + 0.15 + 0.12)


def _artist_history() -> list[dict]:
    rows = []
    for i in range(14):
        previous_week = i >= 7
        rows.append({"dt": ago(i), "artist_name": "Alpha", "streams": 10 if previous_week else 12})
        rows.append({"dt": ago(i), "artist_name": "Gamma", "streams": 100 if previous_week else 60})
        if previous_week:
            rows.append({"dt": ago(i), "artist_name": "Delta", "streams": 50})
        if i < 3:
            rows.append({"dt": ago(i), "artist_name": "Beta", "streams": 5})
    # Fifteen days back is outside both weeks; counted, it would sink Beta.
    rows.append({"dt": ago(14), "artist_name": "Beta", "streams": 1000})
    for row in rows:
        row.update(rank=1, listeners=1, minutes_played=1.0)
    return rows


def test_fastest_growing_artist_compares_the_last_seven_days_with_the_seven_before():
    found = insights(data_for(artist_history=_artist_history(), daily_streams=daily_rows(20)))
    # Alpha 84 vs 70 (+14), Beta 15 vs 0 (+15), Gamma 420 vs 700, Delta only the week before.
    assert found["fastest_growing_artist"] == "Beta"
    assert found["fastest_growing_streams_last_7_days"] == 15
    assert found["fastest_growing_streams_previous_7_days"] == 0
    assert found["fastest_growing_increase"] == 15
    sentences = insight_sentences(found)
    assert "Fastest-growing artist of the week: Beta, +15 streams" in sentences[2]


def test_fastest_growing_artist_ties_go_to_the_first_name_in_code_point_order():
    rows = [
        {"dt": ago(0), "artist_name": name, "streams": 9, "rank": 1, "listeners": 1}
        for name in ("beta", "Zed", "Ábel")
    ]
    for row in rows:
        row["minutes_played"] = 1.0
    found = insights(data_for(artist_history=rows, daily_streams=daily_rows(14)))
    assert found["fastest_growing_artist"] == "Zed"  # "Z" (U+005A) < "b" < "Á" (U+00C1)


def test_fastest_growing_artist_sums_its_spellings_under_its_latest_days_name():
    rows = [
        {"dt": ago(0), "artist_name": "Sigur Rós", "streams": 5},
        {"dt": ago(2), "artist_name": "SIGUR RÓS", "streams": 5},
        {"dt": ago(9), "artist_name": "sigur rós", "streams": 1},
        {"dt": ago(0), "artist_name": "Alpha", "streams": 8},
    ]
    for row in rows:
        row.update(rank=1, listeners=1, minutes_played=1.0)
    found = insights(data_for(artist_history=rows, daily_streams=daily_rows(14)))
    # One artist of 10 streams against 1 the week before, not two of 5 below Alpha's 8.
    assert found["fastest_growing_artist"] == "Sigur Rós"
    assert found["fastest_growing_streams_last_7_days"] == 10
    assert found["fastest_growing_streams_previous_7_days"] == 1
    assert found["fastest_growing_increase"] == 9


def test_growth_needs_fourteen_days_of_history():
    found = insights(data_for(artist_history=_artist_history(), daily_streams=daily_rows(13)))
    assert found["history_days"] == 13
    assert found["fastest_growing_artist"] is None
    assert found["fastest_growing_increase"] is None
    assert insight_sentences(found)[2] == (
        "Week-over-week artist growth needs 14 days of history; 13 days so far."
    )
    known = data_for(
        artist_history=_artist_history(),
        daily_streams=daily_rows(13),
        first_stream_day=DAY - dt.timedelta(days=200),
    )
    assert insights(known)["history_days"] == 201
    assert insights(known)["fastest_growing_artist"] == "Beta"


def test_no_growth_names_no_artist():
    rows = [
        {"dt": ago(i), "artist_name": name, "streams": 1 if i < 7 else 10, "rank": 1}
        for i in range(14)
        for name in ("Alpha", "Beta")
    ]
    for row in rows:
        row.update(listeners=1, minutes_played=1.0)
    found = insights(data_for(artist_history=rows, daily_streams=daily_rows(30)))
    assert found["fastest_growing_artist"] is None
    assert insight_sentences(found)[2] == "No artist in the top lists grew week over week."


def test_insights_markdown_escapes_markdown():
    found = insights(data_for())
    found.update(leading_genres=["*bold* [x](y)"], leading_genres_share=0.5)
    markdown = insights_markdown(found)
    assert r"\*bold\* \[x\]\(y\)" in markdown
    assert markdown.count("\n- ") == 5 and markdown.startswith("- ")


# --- growth accounting and listeners at risk -------------------------------------------------


def test_the_quick_ratio_is_the_latest_complete_weeks():
    assert last_complete_week(WEEK_DAY) == dt.date(2026, 3, 9)
    assert last_complete_week(dt.date(2026, 3, 15)) == dt.date(2026, 3, 9)
    found = growth_facts(WEEKS, WEEK_DAY)
    assert found == {"growth_week": "2026-03-09", "quick_ratio": 0.5, "gained": 10, "churned": 20}
    sentence = lifecycle_sentences({**found, "riskiest_segment": None, "sessions_today": None})[0]
    assert sentence == (
        "Quick ratio 0.50 in the week of 2026-03-09: shrinking "
        "(10 new or resurrected listeners, 20 churned)."
    )
    growing = growth_facts(WEEKS, dt.date(2026, 3, 9))
    assert growing["growth_week"] == "2026-03-02" and growing["quick_ratio"] == 4.0


def test_a_week_without_churn_or_without_data_says_so():
    calm = growth([("week", "2026-03-09", 5, 5, 0, 0, 0)])
    found = {**growth_facts(calm, WEEK_DAY), "riskiest_segment": None}
    assert lifecycle_sentences({**found, "sessions_today": None})[0] == (
        "No listener churned in the week of 2026-03-09: 5 new or resurrected."
    )
    none = {**growth_facts(growth([]), WEEK_DAY), "riskiest_segment": None}
    assert lifecycle_sentences({**none, "sessions_today": None})[0] == (
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
    found = riskiest_segment(frame, WEEK_DAY)
    assert found == {
        "country": "BR",
        "platform": "android",
        "share": 0.2,
        "at_risk": 40,
        "active_28d": 200,
    }
    tie = at_risk([("US", "ios", 100, 20), ("DE", "tv", 100, 20), ("DE", "cast", 100, 20)])
    assert riskiest_segment(tie, WEEK_DAY)["platform"] == "cast"
    sentence = lifecycle_sentences(
        {"growth_week": None, "riskiest_segment": found, "sessions_today": None}
    )[1]
    assert sentence == (
        "Android in BR: 20% at risk (40 of 200), the highest segment with >= 50 listeners."
    )
    assert riskiest_segment(frame, WEEK_DAY - dt.timedelta(days=1)) is None
