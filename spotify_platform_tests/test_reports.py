"""The dashboard: insights on hand-built KPI frames, the asset end to end, and a real browser.

Expected values are worked out by hand (pure tests) or recomputed from `fact_streams` and the
raw warehouse tables (end to end), never by calling the code under test.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import plotly.offline
import pytest
from dagster import (
    DagsterInstance,
    Definitions,
    define_asset_job,
    materialize,
)

from spotify_platform.core.dashboard import reports
from spotify_platform.core.dashboard.reports import DashboardData, insights, render_dashboard
from spotify_platform.core.lake.layout import dashboard_key
from spotify_platform.defs.assets.reports import KPI_TABLES, dashboard, days_to_render
from spotify_platform.defs.partitions import daily_partitions, range_tags
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform_tests.harness import make_resources, run_days

REPO_ROOT = Path(__file__).resolve().parents[1]
DAY = dt.date(2026, 3, 15)

COLUMNS = {
    "daily_streams": ["dt", "plays", "streams", "listeners", "minutes_played", "skip_rate"],
    "active_users": ["dt", "dau", "wau", "mau", "stickiness"],
    "churn": ["dt", "base_accounts", "churned_accounts", "churn_rate"],
    "region_hour": ["dt", "country", "local_hour", "streams", "listeners", "minutes_played"],
    "utc_hour": ["dt", "utc_hour", "streams", "listeners", "minutes_played"],
    "top_artists": ["dt", "rank", "artist_name", "streams", "listeners", "minutes_played"],
    "top_tracks": [
        "dt",
        "rank",
        "track_id",
        "track_name",
        "artist_name",
        "streams",
        "listeners",
        "minutes_played",
    ],
    "genre_share": ["dt", "genre", "streams", "share"],
    "platform_mix": ["dt", "platform", "plays", "share"],
    "retention": [
        "cohort_week",
        "week_offset",
        "cohort_size",
        "retained_accounts",
        "retention_rate",
    ],
    "artist_history": ["dt", "rank", "artist_name", "streams", "listeners", "minutes_played"],
}


def frame(name: str, rows: list[dict] | None = None) -> pd.DataFrame:
    table = pd.DataFrame(rows or [], columns=COLUMNS[name])
    for column in ("dt", "cohort_week"):
        if column in table:
            table[column] = pd.to_datetime(table[column])
    return table


def data_for(day: dt.date = DAY, first_stream_day: dt.date | None = None, **rows) -> DashboardData:
    return DashboardData(
        day=day,
        first_stream_day=first_stream_day,
        **{name: frame(name, rows.get(name)) for name in COLUMNS},
    )


def ago(days: int, day: dt.date = DAY) -> pd.Timestamp:
    return pd.Timestamp(day - dt.timedelta(days=days))


def daily_rows(days: int, streams: int = 100) -> list[dict]:
    """`days` days of kpi_daily_streams ending on DAY, every one with streams."""
    return [
        {
            "dt": ago(i),
            "plays": streams + 10,
            "streams": streams,
            "listeners": 10,
            "minutes_played": 300.0,
            "skip_rate": 0.25,
        }
        for i in range(days)
    ]


def tiles(page: str) -> dict[str, tuple[str, str]]:
    """(value, change) of every headline tile, unescaped."""
    found = re.findall(
        r'<div class="tile" data-kpi="([a-z]+)"><div class="label">[^<]*</div>'
        r'<div class="value">([^<]*)</div><div class="change [a-z]+">([^<]*)</div>',
        page,
    )
    return {key: (html.unescape(value), html.unescape(change)) for key, value, change in found}


def section(page: str, key: str) -> str:
    start = page.index(f'id="{key}"')
    return page[start : page.index("</section>", start)]


# --- insights on hand-built frames -------------------------------------------------------------


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
    sentences = reports.insight_sentences(found)
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
    assert reports.insight_sentences(found)[2] == (
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
    assert reports.insight_sentences(found)[2] == "No artist in the top lists grew week over week."


# --- the page ----------------------------------------------------------------------------------


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


def test_churn_shows_an_empty_state_until_sixty_days_of_history():
    churn = [
        {"dt": ago(i), "base_accounts": 0, "churned_accounts": 0, "churn_rate": None}
        for i in range(10)
    ]
    page = render_dashboard(data_for(daily_streams=daily_rows(10), churn=churn), DAY)
    assert "Churn needs 60 days of history; 10 days so far." in section(page, "churn")
    assert 'id="chart-churn"' not in page
    assert tiles(page)["churn"] == ("n/a", "n/a vs 30 days earlier")


def test_churn_chart_and_tile_once_the_window_is_full():
    churn = [
        {"dt": ago(i), "base_accounts": 100, "churned_accounts": 10, "churn_rate": 0.10}
        for i in range(31)
    ]
    churn[0].update(churned_accounts=15, churn_rate=0.15)
    young = data_for(
        daily_streams=daily_rows(31), churn=churn, first_stream_day=DAY - dt.timedelta(days=74)
    )
    page = render_dashboard(young, DAY)
    assert 'id="chart-churn"' in page
    # 75 days of history: D-30 has only 45 days behind it, too few for its own churn window.
    assert tiles(page)["churn"] == ("15.0%", "n/a vs 30 days earlier")
    old = data_for(
        daily_streams=daily_rows(31), churn=churn, first_stream_day=DAY - dt.timedelta(days=400)
    )
    assert tiles(render_dashboard(old, DAY))["churn"] == ("15.0%", "+5.0 pp vs 30 days earlier")


def test_tiles_compare_with_the_previous_day_week_and_month():
    daily = daily_rows(2)
    daily[0].update(streams=1100, listeners=44, minutes_played=1234.4)
    daily[1].update(streams=1000, listeners=40, minutes_played=1000.0)
    users = [
        {"dt": ago(0), "dau": 44, "wau": 150, "mau": 176, "stickiness": 0.25},
        {"dt": ago(1), "dau": 40, "wau": 149, "mau": 200, "stickiness": 0.20},
        {"dt": ago(7), "dau": 30, "wau": 200, "mau": 190, "stickiness": 0.15},
    ]
    got = tiles(render_dashboard(data_for(daily_streams=daily, active_users=users), DAY))
    assert got["streams"] == ("1,100", "+10.0% vs prev. day")
    assert got["listeners"] == ("44", "+10.0% vs prev. day")
    assert got["minutes"] == ("1,234", "+23.4% vs prev. day")
    assert got["dau"] == ("44", "+10.0% vs prev. day")
    assert got["wau"] == ("150", "-25.0% vs 7 days earlier")
    assert got["mau"] == ("176", "n/a vs 30 days earlier")
    assert got["stickiness"] == ("25.0%", "+5.0 pp vs prev. day")


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


def test_insights_markdown_escapes_markdown():
    found = insights(data_for())
    found.update(leading_genres=["*bold* [x](y)"], leading_genres_share=0.5)
    markdown = reports.insights_markdown(found)
    assert r"\*bold\* \[x\]\(y\)" in markdown
    assert markdown.count("\n- ") == 5 and markdown.startswith("- ")


def test_render_refuses_data_of_another_day():
    with pytest.raises(ValueError, match="not 2026-03-14"):
        render_dashboard(data_for(), DAY - dt.timedelta(days=1))


def test_short_ranges_render_every_day_long_ones_the_last():
    week = [DAY - dt.timedelta(days=i) for i in range(6, -1, -1)]
    assert days_to_render(week) == week
    assert days_to_render([DAY - dt.timedelta(days=7), *week]) == [DAY]
    assert days_to_render([DAY]) == [DAY]


def test_the_asset_depends_on_every_kpi_table():
    spec = dashboard.specs_by_key[dashboard.key]
    assert dashboard.key.path == ["lake", "dashboard"]
    assert {dep.asset_key.path[1] for dep in spec.deps} == set(KPI_TABLES)
    assert len(KPI_TABLES) == 13
    assert dashboard.partitions_def == daily_partitions
    assert spec.group_name == "reports"


# --- end to end --------------------------------------------------------------------------------

FIRST = dt.date(2026, 3, 1)
LAST = dt.date(2026, 3, 15)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict:
    resources = make_resources(tmp_path_factory.mktemp("reports"))
    assert run_days(resources, FIRST, LAST)
    return resources


@pytest.fixture(scope="module")
def dashboard_run(pipeline):
    result = materialize(
        [dashboard],
        resources=pipeline,
        partition_key=LAST.isoformat(),
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    return result


def _expected(resources: dict, day: dt.date) -> dict:
    """Headline numbers and insights recomputed from fact_streams and dim_artists."""
    warehouse = resources["warehouse"]
    facts = warehouse.read_table("fact_streams")
    facts["day"] = facts["dt"].dt.date
    streams = facts[facts["is_stream"].astype(bool)]

    def accounts(first: dt.date, last: dt.date) -> int:
        window = streams[(streams["day"] >= first) & (streams["day"] <= last)]
        return window["account_id"].nunique()

    def days(n: int) -> dt.date:
        return day - dt.timedelta(days=n)

    today = streams[streams["day"] == day]
    hours = today.groupby(today["local_hour"].astype(int)).size()
    bands = {s: sum(int(hours.get((s + i) % 24, 0)) for i in range(3)) for s in range(24)}
    best = max(bands.values())
    start = min(s for s, n in bands.items() if n == best)

    genres = warehouse.read_table("dim_artists")[["artist_id", "primary_genre"]]
    genre_of = today.merge(genres, on="artist_id", how="left")["primary_genre"].fillna("unknown")
    counts = genre_of[genre_of != "unknown"].value_counts()
    leading = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]

    top = warehouse.read_table("kpi_top_artists")
    top["day"] = top["dt"].dt.date
    recent = top[(top["day"] > days(7)) & (top["day"] <= day)]
    before = top[(top["day"] > days(14)) & (top["day"] <= days(7))]
    growth = {
        name: int(recent.loc[recent["artist_name"] == name, "streams"].sum())
        - int(before.loc[before["artist_name"] == name, "streams"].sum())
        for name in set(recent["artist_name"])
    }
    grower = min(growth, key=lambda name: (-growth[name], name))

    artist_counts = today.groupby("artist_name").size()
    top10 = sorted(artist_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    return {
        "streams": len(today),
        "streams_before": int((streams["day"] == days(1)).sum()),
        "listeners": today["account_id"].nunique(),
        "minutes": facts.loc[facts["day"] == day, "ms_played"].sum() / 60000,
        "wau": accounts(days(6), day),
        "wau_before": accounts(days(13), days(7)),
        "mau": accounts(days(29), day),
        "dau_before": accounts(days(1), days(1)),
        "mau_before": accounts(days(30), days(1)),
        "peak_band": f"{start:02d}:00–{(start + 3) % 24:02d}:00 local",
        "peak_streams": best,
        "leading": [name for name, _ in leading],
        "leading_share": sum(n for _, n in leading) / len(today),
        "grower": grower,
        "growth": growth[grower],
        "top10": [name for name, _ in top10],
    }


def test_the_asset_writes_the_dashboard_with_the_warehouse_numbers(pipeline, dashboard_run):
    lake = pipeline["lake"]
    key = dashboard_key(LAST)
    assert lake.exists(key)
    page = lake.read_bytes(key).decode("utf-8")
    want = _expected(pipeline, LAST)

    got = tiles(page)
    assert got["streams"][0] == f"{want['streams']:,}"
    change = (want["streams"] - want["streams_before"]) / want["streams_before"]
    assert got["streams"][1] == f"{change:+.1%} vs prev. day"
    assert got["listeners"][0] == f"{want['listeners']:,}"
    assert got["dau"][0] == f"{want['listeners']:,}"
    assert got["minutes"][0] == f"{want['minutes']:,.0f}"
    assert got["wau"] == (
        f"{want['wau']:,}",
        f"{(want['wau'] - want['wau_before']) / want['wau_before']:+.1%} vs 7 days earlier",
    )
    assert got["mau"] == (f"{want['mau']:,}", "n/a vs 30 days earlier")
    stickiness = want["listeners"] / want["mau"]
    stickiness_before = want["dau_before"] / want["mau_before"]
    assert got["stickiness"] == (
        f"{stickiness:.1%}",
        f"{(stickiness - stickiness_before) * 100:+.1f} pp vs prev. day",
    )
    assert got["churn"] == ("n/a", "n/a vs 30 days earlier")
    assert "Churn needs 60 days of history; 15 days so far." in page

    names = re.findall(
        r'<td class="artist_name"><bdi>(.*?)</bdi></td>', section(page, "top-artists")
    )
    assert names == [html.escape(name) for name in want["top10"]]

    assert f"Listening peaks at {want['peak_band']} time" in page
    assert f"{want['peak_streams']:,} streams" in page
    genres = [html.escape(g) for g in want["leading"]]
    assert (
        f"The leading genres are {genres[0]}, {genres[1]} and {genres[2]}, together "
        f"{want['leading_share']:.1%} of streams." in page
    )
    assert (
        f"Fastest-growing artist of the week: {html.escape(want['grower'])}, "
        f"{want['growth']:+,} streams" in page
    )
    # Ten charts (churn is an empty state), plotly.js embedded once, one script per chart.
    assert page.count('class="plotly-graph-div"') == 10
    assert page.count("<script") == 11
    assert page.count(plotly.offline.get_plotlyjs()[:40]) == 1


def test_the_asset_reports_path_size_and_insights(pipeline, dashboard_run):
    lake = pipeline["lake"]
    key = dashboard_key(LAST)
    metadata = dashboard_run.asset_materializations_for_node(dashboard.op.name)[0].metadata
    want = _expected(pipeline, LAST)
    assert metadata["path"].value == lake.uri(key)
    assert metadata["size_bytes"].value == len(lake.read_bytes(key))
    assert metadata["peak_local_hour_band"].value == want["peak_band"]
    assert metadata["leading_genres"].value == ", ".join(want["leading"])
    assert metadata["leading_genres_share"].value == pytest.approx(want["leading_share"])
    assert metadata["fastest_growing_artist"].value == want["grower"]
    assert metadata["fastest_growing_increase"].value == want["growth"]
    assert metadata["history_days"].value == 15
    assert metadata["insights"].value.count("\n- ") == 5


def _run_range(resources: dict, first: dt.date, last: dt.date) -> None:
    job = define_asset_job("dashboards", selection=[dashboard.key])
    defs = Definitions(assets=[dashboard], jobs=[job], resources=resources)
    result = defs.resolve_job_def("dashboards").execute_in_process(
        instance=DagsterInstance.ephemeral(),
        tags=range_tags(first, last),
    )
    assert result.success


def test_a_range_run_renders_each_day_of_a_week_and_only_the_last_of_longer(pipeline, tmp_path):
    lake = LakeResource(url=f"file://{tmp_path}/lake")
    resources = {**pipeline, "lake": lake}
    _run_range(resources, LAST - dt.timedelta(days=2), LAST)
    assert lake.list_keys("reports/") == [
        dashboard_key(LAST - dt.timedelta(days=i)) for i in (2, 1, 0)
    ]
    lake.delete_prefix("reports/")
    _run_range(resources, FIRST, FIRST + dt.timedelta(days=7))
    assert lake.list_keys("reports/") == [dashboard_key(FIRST + dt.timedelta(days=7))]


# --- in a real browser -------------------------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--virtual-time-budget=20000",
    "--enable-logging=stderr",
    "--v=0",
    # Hermetic: nothing resolves, so even the browser's own background calls stay local.
    "--host-resolver-rules=MAP * ~NOTFOUND",
]

# Injected before anything else on the page: records errors, CSP violations and every request
# the page made, on the <html> element where --dump-dom shows them.
PROBE = """<script>(function(){
var found=[],root=document.documentElement;
function note(kind,text){found.push(kind+': '+text);root.setAttribute('data-probe',
  JSON.stringify(found));}
root.setAttribute('data-probe','[]');
window.addEventListener('error',function(e){note('error',e.message||
  String(e.target&&(e.target.src||e.target.href)));},true);
window.addEventListener('unhandledrejection',function(e){note('rejection',String(e.reason));});
document.addEventListener('securitypolicyviolation',function(e){note('csp',e.blockedURI+' '+
  e.violatedDirective);});
var original=console.error;console.error=function(){note('console.error',
  Array.prototype.join.call(arguments,' '));return original.apply(console,arguments);};
window.addEventListener('load',function(){setTimeout(function(){
  performance.getEntriesByType('resource').forEach(function(r){
    if(!/^(data|blob|file):/.test(r.name)){note('request',r.name);}});
  root.setAttribute('data-probe-done','1');},500);});
})();</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    message = "no chromium on PATH (apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; under CI=true the browser test must run, not skip")
    pytest.skip(message)


def _network_off() -> list[str]:
    """`unshare --net` where the system allows it: the browser then runs with no network at
    all (only a downed loopback), not merely without DNS."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--net", "true"], capture_output=True).returncode == 0:
        return [unshare, "--net", "--"]
    return []


def _browse(chromium: str, page: Path, profile: Path, *extra: str) -> tuple[str, str]:
    done = subprocess.run(
        [
            *_network_off(),
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def _probe(dom: str) -> list[str]:
    opening = re.search(r"<html[^>]*>", dom)
    assert opening and 'data-probe-done="1"' in opening.group(0), "the page never finished loading"
    found = re.search(r'data-probe="([^"]*)"', opening.group(0))
    return json.loads(html.unescape(found.group(1)))


def _console_problems(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if ":CONSOLE" in line
        and any(word in line.lower() for word in ("uncaught", "error", "refused", "failed"))
    ]


class _Charts(HTMLParser):
    """Per plotly div of a rendered DOM: whether an <svg class="main-svg"> was drawn inside it."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str | None] = []
        self.drawn: dict[str, bool] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        if tag == "svg" and "main-svg" in classes:
            for chart in self.stack:
                if chart is not None:
                    self.drawn[chart] = True
        if tag in self.VOID:
            return
        chart = None
        if tag == "div" and "plotly-graph-div" in classes:
            chart = values.get("id") or f"chart-{len(self.drawn)}"
            self.drawn.setdefault(chart, False)
        self.stack.append(chart)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self.stack:
            self.stack.pop()


class _Fetches(HTMLParser):
    """Every URL in a page's markup that a browser would load by itself."""

    ATTRIBUTES = {"src", "href", "srcset", "data", "poster", "action", "background"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_style = tag == "style"
        for name, value in attrs:
            if value and (name in self.ATTRIBUTES and (tag != "a" or name != "href")):
                self.urls.append(value)
            if name == "style" and value and "url(" in value:
                self.urls.append(value)

    def handle_data(self, data: str) -> None:
        if self.in_style and ("url(" in data or "@import" in data):
            self.urls.append(data)

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False


def test_browser_probe_catches_errors_and_requests(tmp_path):
    """The detectors below must see a broken page, or their silence means nothing."""
    chromium = _chromium()
    bad = tmp_path / "bad.html"
    bad.write_text(
        f"<!DOCTYPE html><html><head>{PROBE}</head><body>"
        '<img src="https://example.com/pixel.png">'
        "<script>null.boom</script></body></html>",
        encoding="utf-8",
    )
    dom, stderr = _browse(chromium, bad, tmp_path / "profile", "--dump-dom")
    found = _probe(dom)
    assert any(f.startswith("error: ") and "boom" in f for f in found), found
    assert any("example.com" in f for f in found), found
    assert _console_problems(stderr)


def test_the_dashboard_draws_in_a_browser_without_errors_or_requests(
    pipeline, dashboard_run, tmp_path
):
    chromium = _chromium()
    lake = pipeline["lake"]
    source = Path(lake.uri(dashboard_key(LAST)))
    page = source.read_text(encoding="utf-8")

    fetches = _Fetches()
    fetches.feed(page)
    assert fetches.urls == []
    assert '<meta http-equiv="Content-Security-Policy"' in page

    probed = tmp_path / "probed.html"
    probed.write_text(
        page.replace('<meta charset="utf-8">', f'<meta charset="utf-8">{PROBE}', 1),
        encoding="utf-8",
    )
    dom, stderr = _browse(chromium, probed, tmp_path / "profile", "--dump-dom")
    assert _probe(dom) == []
    assert _console_problems(stderr) == []
    charts = _Charts()
    charts.feed(dom)
    assert len(charts.drawn) == page.count('class="plotly-graph-div"') == 10
    assert all(charts.drawn.values()), charts.drawn

    artifacts = REPO_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "dashboard.png"
    shot.unlink(missing_ok=True)
    _browse(
        chromium, source, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,3000"
    )
    image = shot.read_bytes()
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(image[16:20], "big"), int.from_bytes(image[20:24], "big")
    assert (width, height) == (1400, 3000)
    assert len(image) > 50_000  # a blank page is a few kilobytes


def test_the_dashboard_reads_the_warehouse_on_mariadb(mysql_url, tmp_path):
    """MySQL returns dates and numbers as other Python types than SQLite: the page must not care."""
    resources = make_resources(tmp_path, warehouse_url=mysql_url)
    last = FIRST + dt.timedelta(days=2)
    assert run_days(resources, FIRST, last)
    result = materialize(
        [dashboard],
        resources=resources,
        partition_key=last.isoformat(),
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    page = resources["lake"].read_bytes(dashboard_key(last)).decode("utf-8")
    want = _expected(resources, last)
    assert tiles(page)["streams"][0] == f"{want['streams']:,}"
    assert tiles(page)["wau"][0] == f"{want['wau']:,}"
    assert "Churn needs 60 days of history; 3 days so far." in page
    assert page.count('class="plotly-graph-div"') == 10
