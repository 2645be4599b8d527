"""The plotly figures on hand-built frames: labels from the data reach plotly escaped, small
counts get whole ticks, and nothing after the dashboard's day is drawn."""

import datetime as dt

import pandas as pd

from spotify_platform.core.dashboard import charts
from spotify_platform_tests.dashboard_frames import DAY, WEEK_DAY, WEEKS, ago, frame


def test_names_from_the_data_reach_plotly_as_escaped_text():
    genres = frame("genre_share", [{"dt": ago(0), "genre": "<i>r&b</i>", "streams": 1, "share": 1}])
    assert list(charts.genre_chart(genres).data[0].y) == ["&lt;i&gt;r&amp;b&lt;/i&gt;"]
    platforms = frame(
        "platform_mix", [{"dt": ago(0), "platform": "<b>tv</b>", "plays": 3, "share": 1.0}]
    )
    assert list(charts.platform_chart(platforms).data[0].labels) == ["&lt;b&gt;tv&lt;/b&gt;"]
    region = frame(
        "region_hour",
        [{"dt": ago(0), "country": "<X>", "local_hour": 5, "streams": 2, "listeners": 1}],
    )
    fig, countries = charts.region_chart(region)
    assert list(fig.data[0].y) == ["&lt;X&gt;"] and countries == 1


def test_small_counts_get_a_tick_per_unit():
    def trend(streams: int) -> pd.DataFrame:
        return pd.DataFrame({"dt": [pd.Timestamp(DAY)], "streams": [streams]})

    small = charts.streams_chart(trend(charts.SMALL_COUNT)).layout.yaxis
    assert (small.tick0, small.dtick, small.tickformat) == (0, 1, ",d")
    large = charts.streams_chart(trend(charts.SMALL_COUNT + 1)).layout.yaxis
    assert large.dtick is None and large.tickformat == ",d"


def test_nothing_to_draw_gives_no_figure():
    assert charts.streams_chart(pd.DataFrame()) is None
    assert charts.genre_chart(frame("genre_share")) is None
    assert charts.region_chart(frame("region_hour")) == (None, 0)
    assert charts.retention_chart(frame("retention"), DAY) is None
    assert charts.growth_chart(pd.DataFrame(), DAY) is None


def test_retention_shows_no_week_that_starts_after_the_day():
    monday = DAY - dt.timedelta(days=DAY.weekday() + 7)
    rows = [
        {
            "cohort_week": monday,
            "week_offset": k,
            "cohort_size": 10,
            "retained_accounts": 5,
            "retention_rate": 0.5,
        }
        for k in range(3)  # weeks starting on monday, monday + 7 and monday + 14 (after DAY)
    ]
    fig = charts.retention_chart(frame("retention", rows), DAY)
    assert list(fig.data[0].x) == ["W0", "W1"]
    assert list(fig.data[0].y) == [f"{monday.isoformat()} (n=10)"]


def test_growth_bars_go_up_for_gains_and_down_for_churn():
    fig = charts.growth_chart(WEEKS, WEEK_DAY)
    bars = {bar.name: list(bar.y) for bar in fig.data}
    assert bars == {"new": [10, 3, 1], "resurrected": [10, 7, 1], "churned": [-5, -20, -52]}
    assert list(fig.data[0].x) == ["2026-03-02", "2026-03-09", "2026-03-16"]
