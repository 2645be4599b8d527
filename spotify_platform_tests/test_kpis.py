"""Every KPI table against an independent pandas computation."""

import datetime as dt
import zoneinfo

import pandas as pd
import pytest

from spotify_platform.core.contracts.tables import TABLES, VIEWS
from spotify_platform.core.lake.layout import raw_key
from spotify_platform.core.sources.countries import COUNTRY_TIMEZONES
from spotify_platform.core.sources.platforms import classify_platform
from spotify_platform.core.sources.raw import encode_records
from spotify_platform_tests import oracle
from spotify_platform_tests.harness import make_resources, read_table, run_days, simulated_raw

FIRST = dt.date(2026, 1, 5)
LAST = dt.date(2026, 3, 8)


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """64 days of a small population: enough history for churn and retention."""
    resources = make_resources(tmp_path_factory.mktemp("long"), accounts=60)
    assert run_days(resources, FIRST, LAST)
    raw = simulated_raw(resources, FIRST, LAST)
    return resources, raw, oracle.prepare(raw)


def test_churn(long_run):
    resources, _, expected = long_run
    churn = read_table(resources, "kpi_churn").set_index("dt")
    assert len(churn) == (LAST - FIRST).days + 1
    for day in pd.date_range(LAST - dt.timedelta(days=4), LAST):
        base, churned = oracle.churn(expected, day)
        assert base > 0
        assert (int(churn.loc[day, "base_accounts"]), int(churn.loc[day, "churned_accounts"])) == (
            base,
            churned,
        )
        assert churn.loc[day, "churn_rate"] == pytest.approx(churned / base)
    early = churn.loc[pd.Timestamp(FIRST)]
    assert int(early["base_accounts"]) == 0 and pd.isna(early["churn_rate"])


def test_retention(long_run):
    resources, _, expected = long_run
    table = read_table(resources, "kpi_retention")
    got = {
        (r.cohort_week, int(r.week_offset)): (int(r.cohort_size), int(r.retained_accounts))
        for r in table.itertuples()
    }
    assert got == oracle.retention(expected)
    assert (table.loc[table["week_offset"] == 0, "retention_rate"] == 1.0).all()


def test_engagement_by_region_and_utc_hour(long_run):
    resources, raw, expected = long_run
    countries = raw["conn_country"].fillna("ZZ")
    started = expected["ended"] - pd.to_timedelta(expected["ms"], unit="ms")
    expected = expected.assign(
        country=countries,
        utc_hour=started.dt.hour,
        local_hour=[
            s.astimezone(zoneinfo.ZoneInfo(COUNTRY_TIMEZONES.get(c, "UTC"))).hour
            for s, c in zip(started, countries, strict=True)
        ],
    )
    expected["region"] = list(zip(expected["country"], expected["local_hour"], strict=True))
    day = pd.Timestamp(LAST)
    region = read_table(resources, "kpi_engagement_by_region_hour")
    region = region[region["dt"] == day]
    got = {
        (r.country, int(r.local_hour)): (int(r.streams), int(r.listeners), r.minutes_played)
        for r in region.itertuples()
    }
    want = oracle.engagement(expected, day, "region")
    assert got.keys() == want.keys()
    for key, (streams, listeners, minutes) in want.items():
        assert got[key][:2] == (streams, listeners)
        assert got[key][2] == pytest.approx(minutes)
    utc = read_table(resources, "kpi_engagement_by_utc_hour")
    utc = utc[utc["dt"] == day]
    want_utc = oracle.engagement(expected, day, "utc_hour")
    assert {int(r.utc_hour): (int(r.streams), int(r.listeners)) for r in utc.itertuples()} == {
        k: v[:2] for k, v in want_utc.items()
    }


def test_genre_share_and_platform_mix(long_run):
    resources, raw, expected = long_run
    day = pd.Timestamp(LAST)
    catalog = resources["simulator"].simulator().catalog
    genre_of = dict(
        zip(catalog.artists["artist_name"], catalog.artists["primary_genre"], strict=True)
    )
    streams = expected[expected["stream"] & (expected["day"] == day)]
    genres = streams["artist"].map(lambda a: genre_of.get(a) or "unknown")
    want = (genres.value_counts() / len(streams)).to_dict()
    table = read_table(resources, "kpi_genre_share")
    got = {r.genre: r.share for r in table[table["dt"] == day].itertuples()}
    assert got.keys() == want.keys()
    for genre, share in want.items():
        assert got[genre] == pytest.approx(share)

    today = raw[pd.to_datetime(raw["ts"], utc=True).dt.tz_localize(None).dt.normalize() == day]
    families = today["platform"].map(classify_platform)
    want_mix = (families.value_counts() / len(today)).to_dict()
    mix = read_table(resources, "kpi_platform_mix")
    got_mix = {r.platform: r.share for r in mix[mix["dt"] == day].itertuples()}
    assert got_mix.keys() == want_mix.keys()
    for platform, share in want_mix.items():
        assert got_mix[platform] == pytest.approx(share)


def test_top_tracks(long_run):
    resources, _, expected = long_run
    day = pd.Timestamp(LAST)
    table = read_table(resources, "kpi_top_tracks")
    got = table[table["dt"] == day].sort_values(["rank", "track_name", "artist_name"])
    assert [(int(r.rank), r.track_id, int(r.streams)) for r in got.itertuples()] == (
        oracle.top_tracks(expected, day)
    )


def _play(account, ts, ms, track="Song", artist="Band", country="DE", reason_end="trackdone"):
    track_id = (track + artist + "x" * 22).replace(" ", "x")[:22]
    return {
        "ts": ts,
        "ms_played": ms,
        "account_id": account,
        "conn_country": country,
        "platform": "android",
        "master_metadata_track_name": track,
        "master_metadata_album_artist_name": artist,
        "master_metadata_album_album_name": "Album",
        "spotify_track_uri": f"spotify:track:{track_id}",
        "reason_start": "clickrow",
        "reason_end": reason_end,
        "skipped": None,
        "shuffle": False,
        "offline": False,
        "incognito_mode": False,
    }


EDGE_PLAYS = [
    _play("ann", "2026-02-01T10:00:00Z", 29_999),
    _play("ann", "2026-02-01T11:00:00Z", 30_000),
    _play("bob", "2026-02-01T00:00:20Z", 200_000, track="Late", artist="Night"),
    _play("bob", "2026-02-01T12:00:00Z", 31_000, track="Tie A", artist="Zed"),
    _play("cat", "2026-02-01T12:00:00Z", 31_000, track="Tie B", artist="Amy"),
    _play("cat", "2026-02-01T13:00:00Z", 5_000, reason_end="fwdbtn"),
    _play("dan", "2026-03-10T09:00:00Z", 60_000),
    _play("ann", "2026-03-20T09:00:00Z", 60_000),
]


def test_hand_made_edge_cases(tmp_path):
    resources = make_resources(tmp_path, accounts=0)
    lake = resources["lake"]
    by_day: dict[dt.date, list[dict]] = {}
    for play in EDGE_PLAYS:
        by_day.setdefault(dt.date.fromisoformat(play["ts"][:10]), []).append(play)
    for day, plays in by_day.items():
        lake.write_bytes(raw_key(day, "export", "edge"), encode_records(plays))
    assert run_days(resources, dt.date(2026, 1, 31), dt.date(2026, 3, 31))

    daily = read_table(resources, "kpi_daily_streams").set_index("dt")
    feb1 = daily.loc[pd.Timestamp("2026-02-01")]
    assert int(feb1["plays"]) == 6
    assert int(feb1["streams"]) == 4
    assert int(feb1["listeners"]) == 3
    assert feb1["skip_rate"] == pytest.approx(1 / 6)
    empty = daily.loc[pd.Timestamp("2026-01-31")]
    assert (int(empty["plays"]), int(empty["streams"]), int(empty["listeners"])) == (0, 0, 0)
    assert pd.isna(empty["skip_rate"])

    utc = read_table(resources, "kpi_engagement_by_utc_hour")
    late = utc[(utc["dt"] == pd.Timestamp("2026-02-01")) & (utc["utc_hour"] == 23)]
    assert int(late["streams"].iloc[0]) == 1

    top = read_table(resources, "kpi_top_artists")
    feb1_top = top[top["dt"] == pd.Timestamp("2026-02-01")].sort_values(["rank", "artist_name"])
    assert list(zip(feb1_top["rank"], feb1_top["artist_name"], strict=True)) == [
        (1, "Amy"), (1, "Band"), (1, "Night"), (1, "Zed"),
    ]

    users = read_table(resources, "kpi_active_users").set_index("dt")
    assert int(users.loc[pd.Timestamp("2026-03-02"), "mau"]) == 3
    assert int(users.loc[pd.Timestamp("2026-03-03"), "mau"]) == 0
    assert int(users.loc[pd.Timestamp("2026-03-20"), "mau"]) == 2
    churn = read_table(resources, "kpi_churn").set_index("dt")
    march31 = churn.loc[pd.Timestamp("2026-03-31")]
    assert (int(march31["base_accounts"]), int(march31["churned_accounts"])) == (3, 2)

    retention = read_table(resources, "kpi_retention")
    cohort = retention[retention["cohort_week"] == pd.Timestamp("2026-01-26")]
    assert int(cohort["cohort_size"].iloc[0]) == 3
    week7 = cohort[cohort["week_offset"] == 7]
    assert int(week7["retained_accounts"].iloc[0]) == 1


def test_sqlite_and_mariadb_give_equal_tables(tmp_path, mysql_url):
    first, last = dt.date(2026, 2, 2), dt.date(2026, 2, 9)
    lite = make_resources(tmp_path / "lite", accounts=80)
    maria = make_resources(tmp_path / "maria", warehouse_url=mysql_url, accounts=80)
    assert run_days(lite, first, last)
    assert run_days(maria, first, last)
    for name, table in TABLES.items():
        keys = [c.name for c in table.primary_key.columns]
        a = read_table(lite, name).sort_values(keys).reset_index(drop=True)
        b = read_table(maria, name).sort_values(keys).reset_index(drop=True)
        assert len(a) > 0, name
        pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=False, rtol=1e-9)
    for view in VIEWS:
        lite_rows = lite["warehouse"].read_frame(f"SELECT COUNT(*) AS n FROM {view}")
        maria_rows = maria["warehouse"].read_frame(f"SELECT COUNT(*) AS n FROM {view}")
        assert int(lite_rows["n"].iloc[0]) == int(maria_rows["n"].iloc[0]) > 0, view
