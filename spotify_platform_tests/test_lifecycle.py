"""Growth accounting, listeners at risk and sessions against an independent oracle, on
simulated weeks and on hand-made edges, on SQLite and MariaDB."""

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance, materialize

from spotify_platform.core.contracts.schemas import AggAccountSegmentDaily, KpiGrowthAccounting
from spotify_platform.core.dashboard import insights
from spotify_platform.core.kpis import lifecycle, sessions
from spotify_platform.core.lake.layout import raw_key
from spotify_platform.core.sources.platforms import classify_platform
from spotify_platform.core.sources.raw import encode_records
from spotify_platform.definitions import build_definitions
from spotify_platform.defs import runs
from spotify_platform.defs.assets import kpis
from spotify_platform.defs.assets.facts import AGGREGATES, FACT_STREAMS
from spotify_platform.defs.assets.reports import read_dashboard_data
from spotify_platform_tests import oracle
from spotify_platform_tests.harness import make_resources, read_table, run_days, simulated_raw
from spotify_platform_tests.support.mariadb import temporary_database

FIRST = dt.date(2026, 1, 5)
LAST = dt.date(2026, 2, 22)


def _expected_frame(raw: pd.DataFrame) -> pd.DataFrame:
    frame = oracle.prepare(raw)
    frame["started"] = frame["ended"] - pd.to_timedelta(frame["ms"], unit="ms")
    frame["country"] = raw["conn_country"].fillna("ZZ").to_numpy()
    frame["platform"] = raw["platform"].map(classify_platform).to_numpy()
    return frame


@pytest.fixture(scope="module", params=["sqlite", "mariadb"])
def backend(request) -> Iterator[str | None]:
    """None for SQLite, else the URL of a MariaDB database for the module's tests."""
    if request.param == "sqlite":
        yield None
        return
    with temporary_database(request.getfixturevalue("mysql_server_url")) as url:
        yield url


@pytest.fixture(scope="module")
def simulated(backend, tmp_path_factory):
    """Seven weeks of a small population with sign-ups, lapses and returns."""
    resources = make_resources(
        tmp_path_factory.mktemp("lifecycle"), warehouse_url=backend, accounts=70
    )
    assert run_days(resources, FIRST, LAST)
    return resources, _expected_frame(simulated_raw(resources, FIRST, LAST))


def _growth_table(resources) -> dict:
    table = read_table(resources, "kpi_growth_accounting")
    return {
        (r.period, r.period_start): (
            int(r.active),
            int(r.new),
            int(r.retained),
            int(r.resurrected),
            int(r.churned),
        )
        for r in table.itertuples()
    }


def _growth_expected(frame: pd.DataFrame, last: dt.date) -> dict:
    return {
        (kind, start): counts
        for kind in ("week", "month")
        for start, counts in oracle.growth_accounting(frame, kind, pd.Timestamp(last)).items()
    }


def test_growth_accounting(simulated):
    resources, expected = simulated
    want = _growth_expected(expected, LAST)
    assert _growth_table(resources) == want
    table = read_table(resources, "kpi_growth_accounting")
    assert (table["resurrected"] > 0).any() and (table["churned"] > 0).any()
    for row in table.itertuples():
        if row.churned:
            assert row.quick_ratio == pytest.approx((row.new + row.resurrected) / row.churned)
        else:
            assert pd.isna(row.quick_ratio)


@pytest.mark.parametrize("kind", ["sqlite", "mariadb"])
def test_growth_accounting_catches_up_with_days_loaded_without_it(kind, tmp_path, request):
    """A first day run whole, the next weeks' facts backfilled on their own, then the KPIs
    of the last day alone (a click in the UI after a backfill of the warehouse group): the
    weeks and month the first run computed are computed again with the days loaded since."""
    if kind == "sqlite":
        _catch_up(tmp_path, None)
        return
    with temporary_database(request.getfixturevalue("mysql_server_url")) as url:
        _catch_up(tmp_path, url)


def _catch_up(tmp_path, url: str | None) -> None:
    resources = make_resources(tmp_path, warehouse_url=url, accounts=40)
    first, last = FIRST, FIRST + dt.timedelta(days=23)
    instance = DagsterInstance.ephemeral()
    assert run_days(resources, first, first, instance=instance)
    defs = build_definitions(resources)
    lake = [AssetKey(["lake", "raw_listening_events"]), AssetKey(["lake", "staging_streams"])]
    facts = AssetSelection.assets(*lake, FACT_STREAMS, *(a.key for a in AGGREGATES))
    facts = facts.required_multi_asset_neighbors()
    loaded = defs.resolve_job_def("daily_pipeline").execute_in_process(
        asset_selection=list(facts.resolve(defs.resolve_asset_graph())),
        tags=runs.range_tags(first + dt.timedelta(days=1), last),
        instance=instance,
        run_config=runs.QUIET_RUN_CONFIG,
    )
    assert loaded.success
    result = materialize(
        [kpis.warehouse_kpis],
        selection=AssetSelection.assets(AssetKey(["warehouse", "kpi_growth_accounting"])),
        resources={"warehouse": resources["warehouse"]},
        partition_key=last.isoformat(),
        instance=instance,
        raise_on_error=False,
    )
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed
    expected = _expected_frame(simulated_raw(resources, first, last))
    assert _growth_table(resources) == _growth_expected(expected, last)


def _at_risk_table(resources, day: dt.date) -> dict:
    table = read_table(resources, "kpi_listeners_at_risk")
    today = table[table["dt"] == pd.Timestamp(day)]
    for row in today.itertuples():
        assert row.at_risk_share == pytest.approx(row.at_risk / row.active_28d)
    return {
        (r.country, r.platform): (int(r.active_28d), int(r.at_risk)) for r in today.itertuples()
    }


def test_listeners_at_risk(simulated):
    resources, expected = simulated
    for day in (FIRST, FIRST + dt.timedelta(days=10), LAST - dt.timedelta(days=1), LAST):
        want = oracle.listeners_at_risk(expected, pd.Timestamp(day))
        assert _at_risk_table(resources, day) == want, day
    last = read_table(resources, "kpi_listeners_at_risk")
    assert int(last.loc[last["dt"] == pd.Timestamp(LAST), "at_risk"].sum()) > 0


def _assert_sessions(resources, expected: pd.DataFrame, days) -> None:
    table = read_table(resources, "kpi_sessions").set_index("dt")
    found = oracle.sessions(expected)
    for day in days:
        want = oracle.sessions_on(found, pd.Timestamp(day))
        row = table.loc[pd.Timestamp(day)]
        assert (int(row["sessions"]), int(row["listeners"])) == (
            want["sessions"],
            want["listeners"],
        ), day
        assert row["minutes"] == pytest.approx(want["minutes"])
        if want["sessions"]:
            assert row["median_session_minutes"] == pytest.approx(want["median"])
            assert row["avg_session_minutes"] == pytest.approx(want["minutes"] / want["sessions"])
            assert row["avg_plays_per_session"] == pytest.approx(want["plays"])
        else:
            assert pd.isna(row["median_session_minutes"]) and pd.isna(row["avg_session_minutes"])


def test_sessions(simulated):
    resources, expected = simulated
    days = pd.date_range(FIRST, LAST).date
    table = read_table(resources, "kpi_sessions")
    assert sorted(table["dt"].dt.date) == list(days)
    _assert_sessions(resources, expected, days)


def test_the_dashboard_and_the_headline_state_the_quick_ratio_and_riskiest_segment(
    simulated, monkeypatch
):
    resources, expected = simulated
    monkeypatch.setattr(insights, "RISK_MIN_LISTENERS", 3)
    week = pd.Timestamp(LAST - dt.timedelta(days=6))  # LAST is a Sunday: its week is complete
    _, new, _, resurrected, churned = oracle.growth_accounting(
        expected, "week", pd.Timestamp(LAST)
    )[week]
    segments = oracle.listeners_at_risk(expected, pd.Timestamp(LAST))
    (country, platform), (active, at_risk) = min(
        ((k, v) for k, v in segments.items() if v[0] >= 3),
        key=lambda kv: (-kv[1][1] / kv[1][0], -kv[1][1], kv[0]),
    )
    ratio = f"Quick ratio {(new + resurrected) / churned:.2f} in the week of {week.date()}: "
    segment = (
        f"{insights.segment_label(country, platform)}: {at_risk / active:.0%} at risk "
        f"({at_risk:,} of {active:,}), the highest segment with >= 3 listeners."
    )

    sentences = insights.insight_sentences(
        insights.insights(read_dashboard_data(resources["warehouse"], LAST))
    )
    assert sentences[3].startswith(ratio) and sentences[4] == segment
    monkeypatch.setenv("WAREHOUSE_URL", resources["warehouse"].url)
    lines = runs.headline(LAST).splitlines()
    assert lines[-2].strip().startswith(ratio) and lines[-1].strip() == segment


# --- hand-made edges ---------------------------------------------------------------------------

PLATFORM = {
    "android": "Android OS 14 API 34 (Google, Pixel 7)",
    "ios": "iOS 17.1 (iPhone15,2)",
    "windows": "Windows 10 (10.0.19045; x64)",
}


def _play(account, started, seconds, country="NL", platform="android", track="Song"):
    """A raw export record of a track play starting at `started` (UTC) for `seconds`."""
    ends = pd.Timestamp(started, tz="UTC") + pd.Timedelta(seconds=seconds)
    return {
        "ts": ends.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ms_played": seconds * 1000,
        "account_id": account,
        "conn_country": country,
        "platform": PLATFORM[platform],
        "master_metadata_track_name": track,
        "master_metadata_album_artist_name": "Band",
        "master_metadata_album_album_name": "Album",
        "spotify_track_uri": f"spotify:track:{(track + 'x' * 22)[:22]}",
        "reason_start": "clickrow",
        "reason_end": "trackdone",
        "skipped": None,
        "shuffle": False,
        "offline": False,
        "incognito_mode": False,
    }


EDGE_FIRST = dt.date(2026, 2, 2)  # a Monday
EDGE_LAST = dt.date(2026, 3, 8)
EDGE_PLAYS = [
    # ann streams in weeks 1, 2 and 4: churned in week 3 (which nobody streams in), back in 4.
    _play("ann", "2026-02-02 09:00:00", 200),
    _play("ann", "2026-02-10 09:00:00", 200),
    _play("ann", "2026-02-24 09:00:00", 200),
    # bob streams in week 1 only; cat starts in week 2 and returns in week 4 and in March.
    _play("bob", "2026-02-03 09:00:00", 200),
    _play("cat", "2026-02-11 09:00:00", 200),
    _play("cat", "2026-02-25 09:00:00", 200),
    _play("cat", "2026-03-04 09:00:00", 200),
    # dan's session crosses midnight (00:15 is within 30 minutes of 23:50); 02:00 is another.
    _play("dan", "2026-02-10 23:40:00", 600),
    _play("dan", "2026-02-11 00:15:00", 300),
    _play("dan", "2026-02-11 02:00:00", 300),
    # eve: a start exactly 30 minutes after the latest end joins; a second later does not.
    _play("eve", "2026-02-12 09:30:00", 1800),
    _play("eve", "2026-02-12 10:30:00", 60),
    _play("eve", "2026-02-12 11:01:01", 60),
    # fay: overlapping plays; 13:05 is within 30 minutes of the 12:40 end, not of 12:10.
    _play("fay", "2026-02-12 12:00:00", 2400),
    _play("fay", "2026-02-12 12:05:00", 300),
    _play("fay", "2026-02-12 13:05:00", 120),
    # gus ties DE/android with BR/ios (BR wins); hal ties SE/ios with SE/android (android).
    _play("gus", "2026-02-13 08:00:00", 60, country="DE", platform="android"),
    _play("gus", "2026-02-13 09:00:00", 60, country="DE", platform="android"),
    _play("gus", "2026-02-13 10:00:00", 60, country="BR", platform="ios"),
    _play("gus", "2026-02-13 11:00:00", 60, country="BR", platform="ios"),
    _play("hal", "2026-02-13 08:00:00", 60, country="SE", platform="ios"),
    _play("hal", "2026-02-13 09:00:00", 60, country="SE", platform="android"),
    _play("hal", "2026-02-13 10:00:00", 60, country="SE", platform="windows"),
    _play("hal", "2026-02-14 10:00:00", 60, country="SE", platform="ios"),
    _play("hal", "2026-02-14 11:00:00", 60, country="SE", platform="android"),
]
# Landed after the first run: bob streams in week 3, which had no activity, and a play of
# dan's links his 02:00 session on 02-11 to the one before midnight.
LATE_DAY = dt.date(2026, 2, 17)
LATE_PLAYS = [
    _play("bob", "2026-02-17 21:00:00", 200),
    _play("dan", "2026-02-11 00:30:00", 5400, track="Long"),
]


def _land(lake, plays: list[dict], name: str) -> list[dt.date]:
    by_day: dict[dt.date, list[dict]] = {}
    for play in plays:
        by_day.setdefault(dt.date.fromisoformat(play["ts"][:10]), []).append(play)
    for day, records in by_day.items():
        lake.write_bytes(raw_key(day, "export", name), encode_records(records))
    return sorted(by_day)


def _edge_frame(plays: list[dict]) -> pd.DataFrame:
    return _expected_frame(pd.DataFrame(plays))


@pytest.mark.parametrize("engine", ["sqlite", "mariadb"])
def test_hand_made_edges_and_a_late_day(engine, request, tmp_path):
    url = request.getfixturevalue("mysql_url") if engine == "mariadb" else None
    resources = make_resources(tmp_path, warehouse_url=url, accounts=0)
    lake = resources["lake"]
    _land(lake, EDGE_PLAYS, "edges")
    assert run_days(resources, EDGE_FIRST, EDGE_LAST)
    expected = _edge_frame(EDGE_PLAYS)

    growth = _growth_table(resources)
    assert growth == _growth_expected(expected, EDGE_LAST)
    week = pd.Timestamp
    assert growth[("week", week("2026-02-16"))] == (0, 0, 0, 0, 7)  # no activity: all churned
    assert growth[("week", week("2026-02-23"))] == (2, 0, 0, 2, 0)  # ann and cat resurrected
    assert growth[("month", week("2026-03-01"))] == (1, 0, 1, 0, 7)

    for day in pd.date_range(EDGE_FIRST, EDGE_LAST).date:
        assert _at_risk_table(resources, day) == oracle.listeners_at_risk(
            expected, pd.Timestamp(day)
        ), day
    ties = _at_risk_table(resources, dt.date(2026, 2, 14))
    assert ties[("BR", "ios")] == (1, 0) and ("DE", "android") not in ties
    assert ties[("SE", "android")] == (1, 0) and ("SE", "ios") not in ties

    _assert_sessions(resources, expected, pd.date_range(EDGE_FIRST, EDGE_LAST).date)
    sessions = read_table(resources, "kpi_sessions").set_index("dt")
    assert int(sessions.loc[week("2026-02-10"), "sessions"]) == 2  # ann, and dan across midnight
    assert int(sessions.loc[week("2026-02-11"), "sessions"]) == 2  # cat, dan at 02:00
    assert int(sessions.loc[week("2026-02-12"), "sessions"]) == 3  # eve twice, fay once

    changed = _land(lake, LATE_PLAYS, "late")
    assert changed == [dt.date(2026, 2, 11), LATE_DAY]
    for day in changed:
        assert run_days(resources, day, day)
    expected = _edge_frame(EDGE_PLAYS + LATE_PLAYS)
    growth = _growth_table(resources)
    assert growth == _growth_expected(expected, EDGE_LAST)
    assert growth[("week", week("2026-02-16"))] == (1, 0, 0, 1, 7)
    assert growth[("week", week("2026-02-23"))] == (2, 0, 0, 2, 1)
    for day in pd.date_range(LATE_DAY, EDGE_LAST).date:
        assert _at_risk_table(resources, day) == oracle.listeners_at_risk(
            expected, pd.Timestamp(day)
        ), day
    _assert_sessions(resources, expected, pd.date_range(EDGE_FIRST, EDGE_LAST).date)
    sessions = read_table(resources, "kpi_sessions").set_index("dt")
    assert int(sessions.loc[week("2026-02-10"), "sessions"]) == 2
    assert int(sessions.loc[week("2026-02-11"), "sessions"]) == 1  # dan's 02:00 joined 02-10's


# --- the pieces, on their own ------------------------------------------------------------------


def test_periods_reach_back_over_gaps_and_forward_to_the_latest_stored():
    monday = dt.date(2026, 3, 2)
    weeks = [monday - dt.timedelta(weeks=k) for k in (4, 3)]  # stored: two weeks in February
    compute = lifecycle.periods_to_compute
    # A day in the week after the last stored one: that week alone.
    first = dt.date(2026, 2, 3)
    assert compute("week", [dt.date(2026, 2, 18)], first, weeks) == [dt.date(2026, 2, 16)]
    # Two weeks later: the week never computed in between as well.
    assert compute("week", [monday], first, weeks) == [
        dt.date(2026, 2, 16),
        dt.date(2026, 2, 23),
        monday,
    ]
    # A late day in the first stored week: it and every later stored one.
    assert compute("week", [dt.date(2026, 2, 4)], first, weeks) == weeks
    # A stream earlier than any stored week: from its week.
    assert compute("week", [dt.date(2026, 1, 31)], dt.date(2026, 1, 31), weeks) == [
        dt.date(2026, 1, 26),
        *weeks,
    ]
    # Nothing stored yet: from the first stream's period; no stream at all: nothing.
    assert compute("month", [dt.date(2026, 3, 5)], dt.date(2026, 1, 20), []) == [
        dt.date(2026, 1, 1),
        dt.date(2026, 2, 1),
        dt.date(2026, 3, 1),
    ]
    assert compute("month", [dt.date(2026, 3, 5)], None, []) == []
    # Days loaded since a stored week was computed, without this KPI: from that week on.
    stored = pd.DataFrame(
        {"period": ["week", "week"], "period_start": weeks, "days_through": [1, 8]}
    )
    held = lambda *days: np.array(days, dtype="datetime64[D]")  # noqa: E731
    as_computed = held("2026-02-03", *pd.date_range("2026-02-09", "2026-02-15").date)
    one_later = [dt.date(2026, 2, 16)]
    assert lifecycle.growth_periods(one_later, first, stored, as_computed)[:1] == [
        ("week", dt.date(2026, 2, 16))
    ]
    backfilled = held(*pd.date_range("2026-02-03", "2026-02-15").date)
    assert [s for k, s in lifecycle.growth_periods(one_later, first, stored, backfilled)][:3] == [
        *weeks,
        dt.date(2026, 2, 16),
    ]
    assert KpiGrowthAccounting.validate(lifecycle.growth_accounting([], [])).empty
    assert lifecycle.next_period("month", dt.date(2026, 12, 1)) == dt.date(2027, 1, 1)
    assert lifecycle.previous_period("month", dt.date(2026, 3, 1)) == dt.date(2026, 2, 1)


def test_listeners_at_risk_over_years_of_sparse_days(backend, tmp_path):
    """More days than one statement's calendar holds (SQLite allows 500 compound terms)."""
    first = dt.date(2023, 1, 1)
    days = list(pd.date_range(first, periods=3 * lifecycle.DAYS_PER_QUERY + 17).date)
    rng = np.random.default_rng(16)
    played = sorted(rng.choice(len(days), size=90, replace=False))
    plays = pd.DataFrame(
        {
            "day": pd.to_datetime([days[i] for i in played for _ in range(3)]),
            "account": rng.choice([c * 32 for c in "abcde"], size=3 * len(played)),
            "country": rng.choice(["BR", "SE"], size=3 * len(played)),
            "platform": rng.choice(["android", "ios"], size=3 * len(played)),
            "stream": True,
        }
    )
    segments = (
        plays.groupby(["day", "account", "country", "platform"]).size().reset_index(name="streams")
    ).rename(columns={"day": "dt", "account": "account_id"})
    warehouse = make_resources(tmp_path, warehouse_url=backend, accounts=0)["warehouse"]
    warehouse.init_schema()
    warehouse.replace_days(
        "agg_account_segment_daily", days, AggAccountSegmentDaily.validate(segments)
    )
    statements = lifecycle.at_risk_queries(days, warehouse.dialect)
    assert len(statements) == 4
    table = lifecycle.listeners_at_risk(pd.concat([warehouse.read_frame(s) for s in statements]))
    for day in days:
        rows = table[table["dt"] == pd.Timestamp(day)]
        got = {(r.country, r.platform): (r.active_28d, r.at_risk) for r in rows.itertuples()}
        assert got == oracle.listeners_at_risk(plays, pd.Timestamp(day)), day


def _runs(*rows: tuple[str, int, int, int]) -> pd.DataFrame:
    """Runs (account, start minute, end minute, plays) as merge_runs takes them."""
    return pd.DataFrame(
        {
            "account_id": [r[0] for r in rows],
            "start_ms": [r[1] * 60_000 for r in rows],
            "end_ms": [r[2] * 60_000 for r in rows],
            "plays": [r[3] for r in rows],
            "ms_played": [(r[2] - r[1]) * 60_000 for r in rows],
        }
    )


def test_runs_join_within_thirty_minutes_of_the_latest_end():
    merged = sessions.merge_runs(
        _runs(
            ("a", 0, 40, 1),
            ("a", 5, 10, 1),
            ("a", 70, 72, 1),  # within 30 minutes of 40, not of 10
            ("a", 102, 103, 1),  # exactly 30 minutes after 72
            ("a", 134, 135, 1),  # 31 minutes after 103
            ("b", 0, 1, 2),
        ),
        ["account_id"],
    )
    assert merged[["account_id", "start_ms", "plays"]].values.tolist() == [
        ["a", 0, 4],
        ["a", 134 * 60_000, 1],
        ["b", 0, 2],
    ]


def test_a_session_reaching_past_the_horizon_is_read_again_until_complete():
    day = dt.date(2026, 3, 10)
    base = (day - dt.date(1970, 1, 1)).days * 24 * 60  # minutes since 1970
    stored = _runs(
        ("a", base + 23 * 60, base + 24 * 60 + 20, 1),  # crosses midnight into the next day
        ("a", base + 24 * 60 + 40, base + 26 * 60, 1),  # the next day's, starting at 00:40
        ("a", base + 26 * 60 + 25, base + 27 * 60, 1),  # and another at 02:25
        ("b", base + 24 * 60 + 10, base + 24 * 60 + 20, 1),  # b's session starts the next day
    )
    horizons = []

    def read(horizon: dt.datetime) -> pd.DataFrame:
        horizons.append(horizon)
        limit = (horizon - dt.datetime(1970, 1, 1)) // dt.timedelta(milliseconds=1)
        return stored[stored["start_ms"] <= limit]

    found = sessions.sessions_starting(day, day, read)
    assert found[["account_id", "plays"]].values.tolist() == [["a", 3]]
    assert horizons[0] == dt.datetime(2026, 3, 11, 0, 30)
    assert horizons[-1] == dt.datetime(2026, 3, 11, 3, 30)
