"""One artist, one track, whatever the spelling: rows by identity, named by the latest play.

Expected rows come from `oracle` (plain Python over the raw records) or are worked out by hand
from the rule in the README ("Names and identities"): the latest play's names, ties to the
least in code point order.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from spotify_platform.core.kpis import aggregates, names
from spotify_platform.core.lake.layout import raw_key
from spotify_platform.core.sources.identity import name_ids
from spotify_platform.core.sources.raw import encode_records
from spotify_platform.defs.resources.warehouse import WarehouseResource
from spotify_platform_tests import oracle
from spotify_platform_tests.harness import (
    as_before_alembic,
    make_resources,
    read_table,
    run_days,
    synthetic_facts,
)

D1 = dt.date(2026, 2, 2)
D2 = dt.date(2026, 2, 3)


def _play(account, ts, artist, track, uri=None, ms=60_000):
    return {
        "ts": ts,
        "ms_played": ms,
        "account_id": account,
        "conn_country": "DE",
        "platform": "android",
        "master_metadata_track_name": track,
        "master_metadata_album_artist_name": artist,
        "master_metadata_album_album_name": None if uri is None else "Album",
        "spotify_track_uri": None if uri is None else f"spotify:track:{uri:0<22}",
        "reason_start": "clickrow",
        "reason_end": "trackdone",
        "skipped": None,
        "shuffle": False,
        "offline": False,
        "incognito_mode": False,
    }


# Records in file order: on each day a later play comes before an earlier one.
PLAYS = {
    D1: [
        _play("bob", "2026-02-02T11:00:00Z", "SIGUR RÓS", "Hoppípolla", uri="A2"),
        _play("ann", "2026-02-02T10:00:00Z", " Sigur Rós ", "Glósóli", uri="A1"),
        # The day's latest play of the artist is a skip: it names the day's row all the same.
        _play("cat", "2026-02-02T23:00:00Z", "sigur rós", "Glósóli", uri="A1", ms=5_000),
        # A legacy track (no id) in two spellings: one surrogate id from the names.
        _play("dan", "2026-02-02T12:30:00Z", "DEAD KENNEDYS", "holiday in cambodia"),
        _play("cat", "2026-02-02T12:00:00Z", "Dead Kennedys", "Holiday in Cambodia"),
        # Two spellings ending at the same second: the least in code point order ("J" < "j").
        _play("eve", "2026-02-02T13:00:00Z", "Björk", "Jóga", uri="B1"),
        _play("fay", "2026-02-02T13:00:00Z", "BJÖRK", "Jóga", uri="B1"),
        # Fifty-five artists of one stream each, named before "S": split in two, Sigur Rós
        # would fall out of the day's top 50.
        *(
            _play(f"fan{i}", f"2026-02-02T14:{i:02d}:00Z", f"Filler {i:02d}", "Song", uri=f"F{i}")
            for i in range(55)
        ),
    ],
    D2: [
        _play("ann", "2026-02-03T09:00:00Z", "Sigur rós", "Hoppípolla", uri="A2"),
        _play("dan", "2026-02-03T08:00:00Z", "Dead Kennedys", "Holiday In Cambodia"),
    ],
}


def _raw(days) -> pd.DataFrame:
    return pd.DataFrame([play for day in days for play in PLAYS[day]])


def _land(resources: dict) -> None:
    for day, plays in PLAYS.items():
        resources["lake"].write_bytes(raw_key(day, "export", "spellings"), encode_records(plays))


@pytest.fixture(params=["sqlite", "mariadb"])
def resources(request, tmp_path):
    url = request.getfixturevalue("mysql_url") if request.param == "mariadb" else None
    found = make_resources(tmp_path, warehouse_url=url, accounts=0)
    _land(found)
    return found


def _who(name: str) -> str:
    return name.strip().casefold()


def _check_dimensions(resources: dict, days) -> None:
    """dim_artists and dim_tracks hold the latest play's names over the days loaded."""
    expected = oracle.prepare(_raw(days))
    artists = read_table(resources, "dim_artists")
    assert sorted(artists["artist_name"].map(_who)) == sorted(oracle.artist_names(expected))
    assert {_who(n): n for n in artists["artist_name"]} == oracle.artist_names(expected)
    tracks = read_table(resources, "dim_tracks")
    want = oracle.track_names(expected)
    assert len(tracks) == len(want)
    got = {
        (tid if not tid.startswith("~") else "~" + _who(artist) + "\x1f" + _who(track)): (
            track,
            artist,
        )
        for tid, track, artist in zip(
            tracks["track_id"], tracks["track_name"], tracks["artist_name"], strict=True
        )
    }
    assert got == want
    # A track's artist id is that of the artist of the name it holds.
    artist_of = dict(zip(artists["artist_id"], artists["artist_name"].map(_who), strict=True))
    assert list(tracks["artist_id"].map(artist_of)) == list(tracks["artist_name"].map(_who))


def _check_days(resources: dict) -> None:
    """Each day's aggregates and top lists: one row per identity, under that day's name."""
    expected = oracle.prepare(_raw([D1, D2]))
    top = read_table(resources, "kpi_top_artists")
    tracks = read_table(resources, "kpi_top_tracks")
    for day in (D1, D2):
        stamp = pd.Timestamp(day)
        got = top[top["dt"] == stamp].sort_values(["rank", "artist_name"])
        assert [(int(r.rank), r.artist_name, int(r.streams)) for r in got.itertuples()] == (
            oracle.top_artists(expected, stamp)
        )
        got = tracks[tracks["dt"] == stamp].sort_values(["rank", "track_name", "artist_name"])
        assert [
            (int(r.rank), r.track_name, r.artist_name, int(r.streams)) for r in got.itertuples()
        ] == oracle.top_track_names(expected, stamp)
    d1 = top[top["dt"] == pd.Timestamp(D1)]
    sigur = d1[d1["artist_name"].map(_who) == "sigur rós"]
    assert list(zip(sigur["rank"], sigur["artist_name"], sigur["streams"], strict=True)) == [
        (1, "sigur rós", 2)
    ]
    artists = read_table(resources, "agg_artist_daily")
    per_day = artists.groupby(["dt", artists["artist_name"].map(_who)]).size()
    assert (per_day == 1).all()
    legacy = read_table(resources, "agg_track_daily")
    legacy = legacy[legacy["track_id"].str.startswith("~")].sort_values("dt")
    assert [(r.track_name, r.artist_name, int(r.streams)) for r in legacy.itertuples()] == [
        ("holiday in cambodia", "DEAD KENNEDYS", 2),
        ("Holiday In Cambodia", "Dead Kennedys", 1),
    ]


@pytest.mark.parametrize("order", ["one run", "in order", "later day first"])
def test_names_follow_the_latest_play_whatever_order_days_load_in(resources, order):
    if order == "one run":
        assert run_days(resources, D1, D2)
    else:
        first, second = (D1, D2) if order == "in order" else (D2, D1)
        assert run_days(resources, first, first)
        _check_dimensions(resources, [first])
        assert run_days(resources, second, second)
    _check_dimensions(resources, [D1, D2])
    _check_days(resources)
    # The top list names the day's spelling, the dimension the latest; the genre is still
    # found through the id.
    bi = resources["warehouse"].read_frame("SELECT artist_name, primary_genre FROM bi_top_artists")
    assert "sigur rós" in set(bi["artist_name"])
    assert bi["primary_genre"].notna().all()


def test_loading_a_day_again_leaves_the_dimensions_as_they_were(resources):
    assert run_days(resources, D1, D2)
    keys = {"dim_artists": "artist_id", "dim_tracks": "track_id"}

    def dims() -> dict[str, pd.DataFrame]:
        return {
            table: read_table(resources, table).sort_values(key).reset_index(drop=True)
            for table, key in keys.items()
        }

    before = dims()
    assert run_days(resources, D1, D1)
    for table, frame in dims().items():
        pd.testing.assert_frame_equal(frame, before[table])


def _spelled(rng: np.random.Generator, words: np.ndarray) -> np.ndarray:
    """Each name in one of four spellings of one identity."""
    styles = rng.integers(0, 4, len(words))
    out = words.astype(object).copy()
    out[styles == 1] = [w.upper() for w in words[styles == 1]]
    out[styles == 2] = [w.lower() for w in words[styles == 2]]
    out[styles == 3] = [w.title() for w in words[styles == 3]]
    return out


def _expected_daily(plays: pd.DataFrame, key: str, name_columns: list[str]) -> pd.DataFrame:
    """Per day and identity, by plain Python: the latest play's names and the stream counts."""
    best: dict = {}
    counts: dict = {}
    for row in plays.itertuples():
        group = (row.dt, getattr(row, key))
        spelled = tuple(getattr(row, c) for c in name_columns)
        rank = (-row.ended_at.value, spelled)
        if group not in best or rank < best[group]:
            best[group] = rank
        if row.is_stream:
            streams, accounts, ms = counts.get(group, (0, set(), 0))
            counts[group] = (streams + 1, accounts | {row.account_id}, ms + row.ms_played)
    rows = [
        (day, ident, *best[(day, ident)][1], streams, len(accounts), ms)
        for (day, ident), (streams, accounts, ms) in counts.items()
    ]
    columns = ["dt", key, *name_columns, "streams", "listeners", "ms_played"]
    return pd.DataFrame(rows, columns=columns).sort_values(["dt", key]).reset_index(drop=True)


def test_daily_aggregates_name_each_identity_by_its_latest_play_at_scale():
    rng = np.random.default_rng(7)
    plays = pd.concat(
        [synthetic_facts(6000, dt.date(2026, 5, d), seed=d) for d in (1, 2)], ignore_index=True
    )
    plays = plays.sample(frac=1, random_state=3).reset_index(drop=True)
    # To the hour, so plays of one identity often end together and the tie rule decides.
    plays["ended_at"] = plays["ended_at"].dt.floor("h")
    plays["artist_name"] = _spelled(rng, plays["artist_name"].to_numpy())
    plays["track_name"] = _spelled(rng, plays["track_name"].to_numpy())
    plays["artist_id"] = name_ids(plays["artist_name"])
    legacy = rng.random(len(plays)) < 0.5
    plays.loc[legacy, "track_id"] = name_ids(
        plays.loc[legacy, "artist_name"], plays.loc[legacy, "track_name"]
    ).to_numpy()
    for column in ("account_id", "track_id", "track_name", "artist_id", "artist_name"):
        plays[column] = plays[column].astype("string[pyarrow]")

    got = aggregates.artist_daily(plays).astype({"artist_id": object, "artist_name": object})
    want = _expected_daily(plays, "artist_id", ["artist_name"])
    assert want["artist_id"].nunique() < len(want)  # identities recur across the two days
    pd.testing.assert_frame_equal(got, want, check_dtype=False)

    got = aggregates.track_daily(plays).astype(
        {"track_id": object, "track_name": object, "artist_name": object}
    )
    want = _expected_daily(plays, "track_id", ["track_name", "artist_name"])
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


UTC = "datetime64[ns, UTC]"


def test_a_dimension_row_is_renamed_only_by_a_later_play_or_a_lesser_tie():
    at = pd.Timestamp("2026-02-02 12:00", tz="UTC")
    stored = pd.DataFrame(
        {
            "artist_id": ["~a", "~b", "~c", "~d", "~e"],
            "artist_name": ["Abba", "Bob", "cat", "Dan", "Eve"],
            names.SEEN_AT: pd.Series([at, at, at, at, pd.NaT], dtype=UTC),
        }
    )
    seen = pd.DataFrame(
        {
            "artist_id": ["~a", "~b", "~c", "~d", "~e", "~f"],
            "artist_name": ["ABBA", "BOB", "CAT", "dan", "EVE", "Fay"],
            names.SEEN_AT: pd.Series(
                [
                    at + pd.Timedelta(seconds=1),  # later: renames
                    at - pd.Timedelta(seconds=1),  # earlier: does not
                    at,  # same instant, "CAT" < "cat": renames
                    at,  # same instant, "dan" > "Dan": does not
                    at - pd.Timedelta(days=9),  # stored without a time: any play renames
                    at,  # not stored: not a rename
                ],
                dtype=UTC,
            ),
        }
    )
    got = names.renamed(stored, seen, "artist_id", ["artist_name"])
    assert list(zip(got["artist_id"], got["artist_name"], strict=True)) == [
        ("~a", "ABBA"),
        ("~c", "CAT"),
        ("~e", "EVE"),
    ]
    assert list(got[names.SEEN_AT]) == [
        at + pd.Timedelta(seconds=1),
        at,
        at - pd.Timedelta(days=9),
    ]


def _old_artist_key(warehouse: WarehouseResource) -> None:
    with warehouse.engine.begin() as conn:
        conn.execute(
            sa.text(
                "ALTER TABLE agg_artist_daily DROP PRIMARY KEY, "
                "ADD PRIMARY KEY (dt, artist_name)"
            )
        )


def _key(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        return sa.inspect(engine).get_pk_constraint("agg_artist_daily")["constrained_columns"]
    finally:
        engine.dispose()


def test_an_old_name_keyed_table_keeps_its_key_until_its_split_days_load_again(
    mysql_url, caplog
):
    warehouse = WarehouseResource(url=mysql_url)
    warehouse.init_schema()
    _old_artist_key(warehouse)
    day = dt.date(2026, 2, 2)
    split = pd.DataFrame(
        {
            "dt": pd.Timestamp(day),
            "artist_id": "~" + "0" * 21,
            "artist_name": ["Sigur Rós", "SIGUR RÓS"],
            "streams": 1,
            "listeners": 1,
            "ms_played": 60_000,
        }
    )
    warehouse.replace_days("agg_artist_daily", [day], split)
    as_before_alembic(warehouse)

    legacy = "spotify_platform.core.warehouse.migrations.legacy"
    with caplog.at_level(logging.WARNING, logger=legacy):
        WarehouseResource(url=mysql_url).init_schema()
    assert _key(mysql_url) == ["dt", "artist_name"]
    assert "2026-02-02" in caplog.text and "agg_artist_daily" in caplog.text

    again = WarehouseResource(url=mysql_url)
    facts = synthetic_facts(300, day, seed=4)
    again.replace_days("agg_artist_daily", [day], aggregates.artist_daily(facts))
    again.init_schema()
    again.engine.dispose()
    assert _key(mysql_url) == ["dt", "artist_id"]
