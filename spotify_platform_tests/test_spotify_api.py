"""spotipy against a local server that answers like the 2026 Web API: parsing, catalog lookups,
recently-played pages and the choice between the live and the offline catalog."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import build_resources

from spotify_platform.core.sources.api_payloads import (
    parse_artists,
    parse_tracks,
    played_at_to_ts,
)
from spotify_platform.core.sources.raw import RAW_FIELDS, encode_records, parse_jsonl
from spotify_platform.defs.resources import build_spotify_catalog
from spotify_platform.defs.resources.catalog import (
    ARTIST_COLUMNS,
    TRACK_COLUMNS,
    OfflineCatalogResource,
)
from spotify_platform.defs.resources.spotify_web_api import (
    LiveCatalogResource,
    SpotifyApiError,
)
from spotify_platform_tests.support.web_api import (
    A1,
    CLIENT_ID,
    CLIENT_SECRET,
    T1,
    T2,
    T_GONE,
    FakeSpotify,
    artist,
    assert_no_secrets,
    track,
)

OFFICIAL_API = "https://api.spotify.com/v1/"


# -- pure parsing ------------------------------------------------------------------------------


def test_parsed_columns_match_the_catalog_contract() -> None:
    assert list(parse_tracks([])) == TRACK_COLUMNS
    assert list(parse_artists([])) == ARTIST_COLUMNS


def test_played_at_keeps_second_precision_in_utc() -> None:
    assert played_at_to_ts("2026-03-01T12:34:56.789Z") == "2026-03-01T12:34:56Z"
    assert played_at_to_ts("2026-03-01T12:34:56Z") == "2026-03-01T12:34:56Z"
    assert played_at_to_ts("2026-03-01T13:34:56.5+01:00") == "2026-03-01T12:34:56Z"


# -- catalog lookups ---------------------------------------------------------------------------


def test_client_credentials_and_single_lookups(spotify: FakeSpotify) -> None:
    catalog = spotify.catalog()

    tracks = catalog.tracks([T1, T2, T1])
    artists = catalog.artists([A1])

    assert spotify.paths("POST") == ["/api/token"], "one token for all calls"
    assert spotify.paths("GET") == [f"/v1/tracks/{T1}", f"/v1/tracks/{T2}", f"/v1/artists/{A1}"]
    assert list(tracks.columns) == TRACK_COLUMNS
    assert tracks["track_id"].tolist() == [T1, T2]
    first = tracks.iloc[0]
    assert (first["track_name"], first["spotify_artist_id"], first["artist_name"]) == (
        "The Funeral", A1, "Band of Horses"
    )
    assert (first["album_name"], first["duration_ms"], first["explicit"]) == (
        "Everything All the Time", 200_000, False
    )
    assert pd.isna(first["popularity"]), "2026 responses carry no popularity"
    assert list(artists.columns) == ARTIST_COLUMNS
    assert artists.iloc[0]["genres"] == ["indie"]


def test_fetch_returns_raw_json_for_the_lake(spotify: FakeSpotify) -> None:
    catalog = spotify.catalog()

    raw = catalog.fetch_tracks([T1])

    assert raw == [spotify.tracks[T1]]
    assert parse_tracks(raw).equals(catalog.tracks([T1]))


def test_missing_optional_fields_parse(spotify: FakeSpotify) -> None:
    bare = {"id": T2, "name": "Laredo", "duration_ms": 180_000}
    spotify.tracks[T2] = bare
    spotify.tracks[T1] = track(T1, "The Funeral", popularity=61, available_markets=["SE"])
    spotify.artists[A1] = artist(A1, "Band of Horses")

    tracks = spotify.catalog().tracks([T1, T2]).set_index("track_id")
    artists = spotify.catalog().artists([A1])

    assert tracks.loc[T1, "popularity"] == 61
    assert pd.isna(tracks.loc[T2, "popularity"])
    assert pd.isna(tracks.loc[T2, "explicit"])
    assert tracks.loc[T2, "album_name"] is None and tracks.loc[T2, "artist_name"] is None
    assert artists.iloc[0]["genres"] == []


def test_removed_track_is_absent(spotify: FakeSpotify) -> None:
    tracks = spotify.catalog().tracks([T1, T_GONE])

    assert tracks["track_id"].tolist() == [T1]
    assert f"/v1/tracks/{T_GONE}" in spotify.paths()


def test_batch_endpoints_403_fall_back_to_single_lookups(spotify: FakeSpotify) -> None:
    catalog = spotify.catalog(batch_lookups=True)

    tracks = catalog.tracks([T1, T2])
    artists = catalog.artists([A1])

    assert sorted(tracks["track_id"]) == sorted([T1, T2])
    assert artists["spotify_artist_id"].tolist() == [A1]
    batch_calls = [p for p in spotify.paths() if p in ("/v1/tracks/", "/v1/artists/")]
    assert batch_calls == ["/v1/tracks/"], "after one 403 the batch path is not tried again"
    assert f"/v1/tracks/{T1}" in spotify.paths() and f"/v1/artists/{A1}" in spotify.paths()


def test_batch_lookups_chunk_by_50_when_the_app_has_extended_quota(spotify: FakeSpotify) -> None:
    spotify.batch_allowed = True
    ids = [T1, T_GONE] + [f"z{i:021d}" for i in range(58)]

    tracks = spotify.catalog(batch_lookups=True).tracks(ids)

    assert tracks["track_id"].tolist() == [T1]
    batches = [q["ids"].split(",") for m, p, q in spotify.requests if p == "/v1/tracks/"]
    assert [len(b) for b in batches] == [50, 10]
    assert spotify.paths() == ["/v1/tracks/", "/v1/tracks/"], "no single lookups"


# -- recently played ---------------------------------------------------------------------------


def test_recently_played_follows_absolute_next_links(spotify: FakeSpotify) -> None:
    moments = spotify.add_plays(5)
    client = spotify.recently_played(account="alice")

    pages = client.fetch_pages(limit=2)
    records = client.records(limit=2)

    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    recent = [(p, q) for m, p, q in spotify.requests if p == "/v1/me/player/recently-played"]
    assert "before" in recent[1][1], "the second page came from the absolute next link"
    token_posts = [q for m, p, q in spotify.requests if p == "/api/token"]
    assert len(token_posts) == 1, "one refresh per client, none per page"
    assert len(records) == 5
    assert all(set(r) == set(RAW_FIELDS) for r in records)
    first = records[0]
    assert first["ts"] == moments[0].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first["ms_played"] == 200_000, "the API gives no play length: duration_ms stands in"
    assert first["spotify_track_uri"] == f"spotify:track:{T1}"
    assert first["master_metadata_track_name"] == "The Funeral"
    assert first["master_metadata_album_artist_name"] == "Band of Horses"
    assert first["master_metadata_album_album_name"] == "Everything All the Time"
    assert (first["platform"], first["account_id"]) == ("web_api", "alice")
    assert first["conn_country"] is None and first["reason_start"] is None
    batch = parse_jsonl(encode_records(records))
    assert len(batch.records) == 5 and not batch.bad_lines and not batch.unknown_fields
    # The Web API has no country or start/end reasons: the reader reports them as absent.
    assert batch.missing_fields == [], "API records lack no field the staging step needs"


def test_recently_played_after_cursor(spotify: FakeSpotify) -> None:
    moments = spotify.add_plays(5)
    after = int(moments[2].timestamp() * 1000)

    records = spotify.recently_played().records(after=after)

    assert [r["ts"] for r in records] == [m.strftime("%Y-%m-%dT%H:%M:%SZ") for m in moments[:2]]


def test_official_next_links_are_rebased_onto_api_url(spotify: FakeSpotify) -> None:
    spotify.add_plays(3)
    spotify.next_base = OFFICIAL_API

    pages = spotify.recently_played().fetch_pages(limit=2)

    assert [len(p["items"]) for p in pages] == [2, 1]


def test_next_links_to_other_hosts_are_refused(spotify: FakeSpotify) -> None:
    spotify.add_plays(3)
    spotify.next_base = "http://collector.example/v1/"

    with pytest.raises(SpotifyApiError, match=r"leaves the API \(collector.example"):
        spotify.recently_played().fetch_pages(limit=2)


def test_revoked_refresh_token_names_the_account(spotify: FakeSpotify) -> None:
    spotify.refresh_tokens.clear()

    with pytest.raises(SpotifyApiError) as caught:
        spotify.recently_played(account="carol@example").records()

    message = str(caught.value)
    assert "carol@example" in message and "invalid_grant" in message
    assert_no_secrets(message, repr(caught.value))
    assert spotify.paths() == [], "no API call without a token"


def test_recently_played_401_refreshes_with_the_stored_refresh_token(
    spotify: FakeSpotify,
) -> None:
    spotify.add_plays(2)
    client = spotify.recently_played()
    client.records()
    spotify.valid_tokens.clear()

    assert len(client.records()) == 2
    assert spotify.paths("POST") == ["/api/token", "/api/token"]


# -- wiring ------------------------------------------------------------------------------------


def test_build_spotify_catalog_is_live_only_with_credentials(monkeypatch) -> None:
    for name in ("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET", "SPOTIFY_API_URL",
                 "SPOTIFY_AUTH_URL", "SPOTIFY_BATCH_LOOKUPS"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(build_spotify_catalog(), OfflineCatalogResource)

    monkeypatch.setenv("SPOTIFY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SPOTIFY_API_URL", "http://127.0.0.1:1/v1/")
    monkeypatch.setenv("SPOTIFY_BATCH_LOOKUPS", "1")
    resource = build_spotify_catalog()
    assert isinstance(resource, LiveCatalogResource)

    with build_resources({"spotify": resource}) as resolved:
        live = resolved.spotify
        assert live.client_secret == CLIENT_SECRET
        assert live.api_url == "http://127.0.0.1:1/v1/"
        assert live.auth_url == "https://accounts.spotify.com/api/token"
        assert live.batch_lookups is True
        assert_no_secrets(repr(live), str(live), repr(resource))
