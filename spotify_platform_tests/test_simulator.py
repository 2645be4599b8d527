"""Tests for the listening simulator: the raw records must look and behave like real exports."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from spotify_platform.core.sources.simulator import (
    RAW_COLUMNS,
    Catalog,
    ListeningSimulator,
    build_catalog,
)

EPOCH = dt.date(2024, 1, 1)
WEEKS = 6
TRACK_FIELDS = [
    "master_metadata_track_name",
    "master_metadata_album_artist_name",
    "master_metadata_album_album_name",
    "spotify_track_uri",
]
EPISODE_FIELDS = ["episode_name", "episode_show_name", "spotify_episode_uri"]
AUDIOBOOK_FIELDS = [
    "audiobook_title",
    "audiobook_uri",
    "audiobook_chapter_uri",
    "audiobook_chapter_title",
]
BASE62_ID = re.compile(r"^[0-9A-Za-z]{22}$")
EMOJI = re.compile("[\U0001f300-\U0001faff\u2728]")
CJK = re.compile("[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]")
RTL = re.compile("[\u0590-\u05ff\u0600-\u06ff]")
ACCENTED = re.compile("[À-ÿĀ-ž]")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return build_catalog()


@pytest.fixture(scope="module")
def sim(catalog: Catalog) -> ListeningSimulator:
    return ListeningSimulator(accounts=800, seed=11, catalog=catalog)


@pytest.fixture(scope="module")
def history(sim: ListeningSimulator) -> dict[dt.date, pd.DataFrame]:
    end = EPOCH + dt.timedelta(days=7 * WEEKS - 1)
    return dict(sim.days(EPOCH, end))


@pytest.fixture(scope="module")
def events(history: dict[dt.date, pd.DataFrame]) -> pd.DataFrame:
    frames = [frame.assign(day=day) for day, frame in history.items()]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def accounts(sim: ListeningSimulator) -> pd.DataFrame:
    return sim.accounts()


def _tracks(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["spotify_track_uri"].notna()]


def test_columns_and_dtypes(history: dict[dt.date, pd.DataFrame]) -> None:
    frame = history[EPOCH + dt.timedelta(days=10)]
    assert list(frame.columns) == RAW_COLUMNS
    assert len(frame) > 1000
    assert frame["ms_played"].dtype == np.int64
    assert frame["offline_timestamp"].dtype == "Int64"
    for column in ("shuffle", "skipped", "offline", "incognito_mode"):
        assert frame[column].dtype in ("boolean", object)
    assert frame["account_id"].str.fullmatch(r"listener-\d{6}").all()
    assert (frame["ms_played"] >= 0).all()


def test_same_inputs_give_identical_frames_in_any_day_order(catalog: Catalog) -> None:
    first, second = EPOCH + dt.timedelta(days=3), EPOCH + dt.timedelta(days=20)
    a = ListeningSimulator(accounts=300, seed=5)
    b = ListeningSimulator(accounts=300, seed=5)
    a_first, a_second = a.day(first), a.day(second)
    b_second, b_first = b.day(second), b.day(first)
    assert a_first.to_csv() == b_first.to_csv()
    assert a_second.to_csv() == b_second.to_csv()
    pd.testing.assert_frame_equal(a_first, b_first, check_exact=True)
    assert a.day(first).to_csv() == a_first.to_csv()
    other_seed = ListeningSimulator(accounts=300, seed=6, catalog=catalog).day(first)
    assert other_seed.to_csv() != a_first.to_csv()
    assert a_first.to_csv() != a_second.to_csv()


def test_population_fixed_by_accounts_seed_epoch(catalog: Catalog) -> None:
    base = ListeningSimulator(accounts=500, seed=3, catalog=catalog).accounts()
    heavier = ListeningSimulator(
        accounts=500, seed=3, plays_per_active_day=60.0, catalog=catalog
    ).accounts()
    pd.testing.assert_frame_equal(base, heavier)
    reseeded = ListeningSimulator(accounts=500, seed=4, catalog=catalog).accounts()
    assert not base["signup_date"].equals(reseeded["signup_date"])


def test_every_ts_is_on_the_requested_utc_day_and_rows_are_unsorted(
    history: dict[dt.date, pd.DataFrame],
) -> None:
    started_yesterday = 0
    for day in (EPOCH, EPOCH + dt.timedelta(days=17), EPOCH + dt.timedelta(days=40)):
        frame = history[day]
        assert frame["ts"].str.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z").all()
        assert (frame["ts"].str[:10] == day.isoformat()).all()
        assert not frame["ts"].is_monotonic_increasing
        assert not frame["ts"].is_monotonic_decreasing
        ended = pd.to_datetime(frame["ts"], utc=True)
        started = ended - pd.to_timedelta(frame["ms_played"], unit="ms")
        started_yesterday += int((started.dt.date < day).sum())
    assert started_yesterday > 0


def test_content_kind_decides_which_fields_are_null(events: pd.DataFrame) -> None:
    is_track = events["spotify_track_uri"].notna()
    is_episode = events["spotify_episode_uri"].notna()
    is_book = events["audiobook_uri"].notna()
    assert (is_track.astype(int) + is_episode.astype(int) + is_book.astype(int) == 1).all()

    tracks, episodes, books = events[is_track], events[is_episode], events[is_book]
    assert tracks[TRACK_FIELDS].notna().all().all()
    assert tracks[EPISODE_FIELDS + AUDIOBOOK_FIELDS].isna().all().all()
    assert episodes[EPISODE_FIELDS].notna().all().all()
    assert episodes[TRACK_FIELDS + AUDIOBOOK_FIELDS].isna().all().all()
    assert books[AUDIOBOOK_FIELDS].notna().all().all()
    assert books[TRACK_FIELDS + EPISODE_FIELDS].isna().all().all()

    assert tracks["spotify_track_uri"].str.fullmatch(r"spotify:track:[0-9A-Za-z]{22}").all()
    assert episodes["spotify_episode_uri"].str.fullmatch(r"spotify:episode:[0-9A-Za-z]{22}").all()
    assert 0.88 < is_track.mean() < 0.97
    assert 0.03 < is_episode.mean() < 0.10
    assert 0.002 < is_book.mean() < 0.03


def test_track_fields_and_full_plays_match_the_catalog(
    events: pd.DataFrame, catalog: Catalog
) -> None:
    tracks = _tracks(events)
    joined = tracks.assign(track_id=tracks["spotify_track_uri"].str[len("spotify:track:") :]).merge(
        catalog.tracks, on="track_id", how="left", validate="many_to_one"
    )
    assert joined["duration_ms"].notna().all()
    assert (joined["master_metadata_track_name"] == joined["track_name"]).all()
    assert (joined["master_metadata_album_artist_name"] == joined["artist_name"]).all()
    assert (joined["master_metadata_album_album_name"] == joined["album_name"]).all()
    done = joined[joined["reason_end"] == "trackdone"]
    assert len(done) > 0.4 * len(joined)
    assert (done["ms_played"] == done["duration_ms"]).all()
    assert (joined["ms_played"] <= joined["duration_ms"]).all()


def test_play_outcomes_look_like_real_exports(events: pd.DataFrame) -> None:
    tracks = _tracks(events)
    skips = tracks[tracks["reason_end"].isin(["fwdbtn", "backbtn"])]
    assert 0.15 < len(skips) / len(tracks) < 0.35
    assert (skips["ms_played"] < 30_000).mean() > 0.8
    assert 0.005 < events["ms_played"].between(29_000, 31_000).mean() < 0.06
    partial = tracks["reason_end"].isin(["endplay", "logout", "unexpected-exit"])
    assert partial.mean() > 0.05

    assert set(events["reason_start"]) <= {
        "trackdone", "fwdbtn", "clickrow", "playbtn", "backbtn", "appload", "remote"
    }  # fmt: skip
    assert set(events["reason_end"]) <= {
        "trackdone", "fwdbtn", "backbtn", "endplay", "logout", "unexpected-exit", "remote"
    }  # fmt: skip
    assert events["reason_start"].nunique() >= 6

    skipped = events["skipped"].astype("boolean")
    fwd = events["reason_end"] == "fwdbtn"
    assert not skipped[~fwd].fillna(False).any()
    assert 0.35 < skipped[fwd].mean() < 0.65
    assert skipped.isna().any()

    for column, low, high in (("shuffle", 0.15, 0.75), ("offline", 0.005, 0.15)):
        assert low < events[column].astype("boolean").mean() < high
    assert 0.0 < events["incognito_mode"].astype("boolean").mean() < 0.05


def test_offline_timestamp_only_for_offline_plays_in_mixed_units(events: pd.DataFrame) -> None:
    offline = events["offline"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    stamps = events["offline_timestamp"]
    assert stamps[~offline].isna().all()
    assert stamps[offline].notna().all()
    values = stamps[offline].astype("int64")
    ended = pd.to_datetime(events.loc[offline, "ts"], utc=True).astype("int64") // 10**9
    seconds = values < 10**11
    assert 0.2 < seconds.mean() < 0.8
    as_seconds = np.where(seconds, values, values // 1000)
    assert (np.abs(ended.to_numpy() - as_seconds) < 86_400).all()


def test_track_plays_are_zipf_concentrated(events: pd.DataFrame, catalog: Catalog) -> None:
    counts = _tracks(events)["spotify_track_uri"].value_counts()
    top = len(catalog.tracks) // 100
    share = counts.iloc[:top].sum() / counts.sum()
    assert share > 0.3
    assert counts.size > 5 * top


def test_local_listening_peaks_in_the_evening(events: pd.DataFrame, accounts: pd.DataFrame) -> None:
    us = set(accounts.loc[accounts["country"] == "US", "account_id"])
    local = pd.to_datetime(events.loc[events["account_id"].isin(us), "ts"], utc=True)
    hours = local.dt.tz_convert("America/New_York").dt.hour.value_counts()
    hours = hours.reindex(range(24), fill_value=0)
    assert 17 <= hours.idxmax() <= 23
    assert hours.loc[19:22].mean() > 4 * hours.loc[2:5].mean()
    assert hours.loc[19:22].mean() > 1.2 * hours.loc[9:12].mean()


def test_fridays_and_saturdays_are_busier_than_mondays(
    history: dict[dt.date, pd.DataFrame],
) -> None:
    size = {day: len(frame) for day, frame in history.items()}
    ratios = []
    for monday in sorted(day for day in size if day.weekday() == 0):
        next_monday = monday + dt.timedelta(days=7)
        if next_monday not in size:
            continue
        weekend = (size[monday + dt.timedelta(days=4)] + size[monday + dt.timedelta(days=5)]) / 2
        ratios.append(weekend / ((size[monday] + size[next_monday]) / 2))
    assert len(ratios) >= 4
    assert np.mean(ratios) > 1.08


def test_no_plays_outside_signup_and_churn(events: pd.DataFrame, accounts: pd.DataFrame) -> None:
    joined = events[["account_id", "day"]].merge(accounts, on="account_id", validate="many_to_one")
    assert (joined["day"] >= joined["signup_date"]).all()
    churned = joined[joined["churn_date"].notna()]
    assert (churned["day"] < churned["churn_date"]).all()

    last = EPOCH + dt.timedelta(days=7 * WEEKS - 1)
    in_window = accounts[accounts["churn_date"].notna() & (accounts["churn_date"] <= last)]
    assert len(in_window) >= 10
    assert set(in_window["account_id"]) & set(events["account_id"])


def test_signups_grow_the_active_population(events: pd.DataFrame, accounts: pd.DataFrame) -> None:
    assert 0.15 < (accounts["signup_date"] > EPOCH).mean() < 0.6
    week = (events["day"] - EPOCH).map(lambda delta: delta.days // 7)
    active = events.groupby(week)["account_id"].nunique()
    assert active[WEEKS - 1] > 1.1 * active[0]


def test_accounts_lapse_for_a_week_or_more_and_come_back(
    events: pd.DataFrame, accounts: pd.DataFrame
) -> None:
    days = events.groupby("account_id")["day"].unique().map(sorted)
    returned = [
        account
        for account, active in days.items()
        if any((b - a).days > 7 for a, b in zip(active, active[1:], strict=False))
    ]
    assert 0.03 < len(returned) / len(days) < 0.5
    churned = set(accounts.loc[accounts["churn_date"].notna(), "account_id"])
    assert set(returned) - churned


def test_signups_go_on_for_years_with_more_around_the_new_year(catalog: Catalog) -> None:
    frame = ListeningSimulator(accounts=5000, seed=2, catalog=catalog).accounts()
    signup = pd.to_datetime(frame["signup_date"])
    later = signup[signup > pd.Timestamp(EPOCH) + pd.Timedelta(days=365)]
    assert 0.05 < len(later) / len(frame) < 0.3
    winter = later.dt.month.isin([12, 1]).sum()
    summer = later.dt.month.isin([6, 7]).sum()
    assert winter > 1.5 * summer


def test_fewer_listen_in_summer_than_in_winter(catalog: Catalog) -> None:
    sim = ListeningSimulator(accounts=3000, seed=4, epoch=dt.date(2015, 1, 5), catalog=catalog)

    def listeners(first: dt.date) -> int:
        return sum(sim.day(first + dt.timedelta(days=i))["account_id"].nunique() for i in range(7))

    assert listeners(dt.date(2022, 7, 11)) < 0.93 * listeners(dt.date(2022, 1, 10))


def test_names_cover_emoji_cjk_rtl_accents_and_quotes(
    catalog: Catalog, events: pd.DataFrame
) -> None:
    names = pd.concat(
        [
            catalog.artists["artist_name"],
            catalog.albums["album_name"],
            catalog.tracks["track_name"],
            catalog.episodes["show_name"],
        ]
    )
    for pattern in (EMOJI, CJK, RTL, ACCENTED):
        assert names.str.contains(pattern).any(), pattern.pattern
    assert names.str.contains("'").any()
    assert names.str.contains('"').any()
    played = _tracks(events)["master_metadata_track_name"]
    assert played.str.contains(EMOJI).any()
    assert played.str.contains(CJK).any()


def test_network_country_and_platform_fields(events: pd.DataFrame, accounts: pd.DataFrame) -> None:
    assert events["ip_addr"].str.fullmatch(r"(192\.0\.2|198\.51\.100|203\.0\.113)\.\d{1,3}").all()
    home = events["account_id"].map(accounts.set_index("account_id")["country"])
    away = (events["conn_country"] != home).mean()
    assert 0.002 < away < 0.06

    known = (
        r"Android OS .*|iOS .*|Windows .*|OS X .*|Linux .*|web_player .*|Partner .*|cast_to_device"
    )
    assert events["platform"].str.fullmatch(known).all()
    primary = events["account_id"].map(accounts.set_index("account_id")["platform_primary"])
    on_primary = (events["platform"] == primary).groupby(events["account_id"]).mean()
    plays = events.groupby("account_id").size()
    assert on_primary[plays >= 50].median() > 0.7
    assert on_primary[plays >= 50].min() < 1.0


def test_accounts_frame(catalog: Catalog) -> None:
    frame = ListeningSimulator(accounts=5000, seed=2, catalog=catalog).accounts()
    assert list(frame.columns) == [
        "account_id", "country", "signup_date", "churn_date", "platform_primary"
    ]  # fmt: skip
    assert frame["account_id"].is_unique
    assert frame["country"].str.fullmatch(r"[A-Z]{2}").all()
    assert frame["country"].nunique() >= 30
    assert frame["country"].value_counts().index[0] == "US"
    churned = frame[frame["churn_date"].notna()]
    assert 0.05 < len(churned) / len(frame) < 0.3
    assert (churned["churn_date"] > churned["signup_date"]).all()
    assert all(isinstance(d, dt.date) for d in frame["signup_date"])


def test_catalog_shape(catalog: Catalog) -> None:
    artists, albums, tracks, episodes = (
        catalog.artists,
        catalog.albums,
        catalog.tracks,
        catalog.episodes,
    )
    assert (len(artists), len(albums), len(tracks), len(episodes)) == (2000, 6000, 48000, 400)
    for frame, column in (
        (artists, "artist_id"),
        (albums, "album_id"),
        (tracks, "track_id"),
        (episodes, "episode_id"),
    ):
        assert frame[column].str.fullmatch(BASE62_ID).all()
        assert frame[column].is_unique
    no_genre = artists["genres"].map(len) == 0
    assert 0.08 < no_genre.mean() < 0.22
    assert artists.loc[no_genre, "primary_genre"].isna().all()
    firsts = artists.loc[~no_genre, "genres"].map(lambda genres: genres[0])
    assert (firsts == artists.loc[~no_genre, "primary_genre"]).all()
    for frame in (artists, tracks):
        assert frame["popularity"].between(0, 100).all()
    assert tracks["popularity"].std() > 5
    assert tracks["duration_ms"].between(90_000, 420_000).all()
    assert 180_000 < tracks["duration_ms"].median() < 240_000
    assert tracks["explicit"].dtype == bool and 0.02 < tracks["explicit"].mean() < 0.4
    assert set(tracks["album_id"]) <= set(albums["album_id"])
    assert set(albums["artist_id"]) <= set(artists["artist_id"])
    assert albums["release_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert episodes["duration_ms"].between(10 * 60_000, 90 * 60_000).all()
    assert episodes["show_name"].nunique() > 5


def test_accounts_for_hits_the_requested_volume(catalog: Catalog) -> None:
    target = 100_000
    n = ListeningSimulator.accounts_for(target)
    assert ListeningSimulator.accounts_for(2 * target) == pytest.approx(2 * n, rel=0.01)
    assert ListeningSimulator.accounts_for(target, plays_per_active_day=60.0) == pytest.approx(
        n / 2, rel=0.01
    )
    sim = ListeningSimulator(accounts=n, seed=7, catalog=catalog)
    for day in (EPOCH, EPOCH + dt.timedelta(days=45)):
        assert 0.7 * target < len(sim.day(day)) < 1.3 * target, day


def test_day_before_any_signup_is_an_empty_frame_with_the_raw_columns(catalog: Catalog) -> None:
    frame = ListeningSimulator(accounts=50, seed=1, catalog=catalog).day(dt.date(2015, 6, 1))
    assert frame.empty
    assert list(frame.columns) == RAW_COLUMNS
