"""spotipy against a local server that answers like the 2026 Web API.

The server is pytest-httpserver with one handler that routes like Spotify: the token endpoint,
single and batch lookups, recently-played with absolute `next` links, and scripted failures
(429 with Retry-After, 5xx, 401) queued per path.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import time
from collections import defaultdict, deque
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pandas as pd
import pytest
from dagster import build_resources
from werkzeug import Request, Response

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
    RecentlyPlayedClient,
    SpotifyApiError,
    SpotifyRateLimited,
    redact,
)

CLIENT_ID = "app-client-id"
CLIENT_SECRET = "client-secret-" + secrets.token_hex(8)
REFRESH_TOKEN = "refresh-token-" + secrets.token_hex(8)
BASIC = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
OFFICIAL_API = "https://api.spotify.com/v1/"

T1, T2, T_GONE = "4iV5W9uYEdYUVa79Axb7Rh", "1301WleyT98MSxVHPZCA6M", "0000000000000000000000"
A1 = "0OdUWJ0sBjDrqHygGUXeCF"


def track(track_id: str, name: str, **extra: object) -> dict:
    """A 2026 development-mode track object: no popularity, no available_markets."""
    return {
        "id": track_id,
        "type": "track",
        "uri": f"spotify:track:{track_id}",
        "name": name,
        "duration_ms": 200_000,
        "explicit": False,
        "artists": [{"id": A1, "name": "Band of Horses", "type": "artist"}],
        "album": {"id": "alb" + track_id[:19], "name": "Everything All the Time"},
        **extra,
    }


def artist(artist_id: str, name: str, **extra: object) -> dict:
    """A 2026 artist object: no followers, no popularity, genres only sometimes."""
    return {"id": artist_id, "type": "artist", "name": name, **extra}


def error_body(status: int, message: str) -> dict:
    return {"error": {"status": status, "message": message}}


def iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class FakeSpotify:
    """State and routing of the fake Web API and accounts service."""

    def __init__(self, httpserver) -> None:
        self.server = httpserver
        self.tracks: dict[str, dict] = {T1: track(T1, "The Funeral"), T2: track(T2, "Laredo")}
        self.artists: dict[str, dict] = {A1: artist(A1, "Band of Horses", genres=["indie"])}
        self.batch_allowed = False
        self.valid_tokens: set[str] = set()
        self.issued: list[str] = []
        self.refresh_tokens = {REFRESH_TOKEN}
        self.scripted: dict[str, deque[tuple[int, dict, dict]]] = defaultdict(deque)
        self.requests: list[tuple[str, str, dict]] = []
        self.plays: list[dict] = []
        self.next_base = httpserver.url_for("/v1/")
        httpserver.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    @property
    def api_url(self) -> str:
        return self.server.url_for("/v1/")

    @property
    def auth_url(self) -> str:
        return self.server.url_for("/api/token")

    def script(self, path: str, status: int, headers: dict | None = None, times: int = 1) -> None:
        for _ in range(times):
            self.scripted[path].append((status, headers or {}, error_body(status, "scripted")))

    def paths(self, method: str = "GET") -> list[str]:
        return [p for m, p, _ in self.requests if m == method]

    def catalog(self, **config: object) -> LiveCatalogResource:
        return LiveCatalogResource(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            api_url=self.api_url,
            auth_url=self.auth_url,
            **config,
        )

    def recently_played(self, account: str = "alice", **config: object) -> RecentlyPlayedClient:
        return RecentlyPlayedClient(
            account=account,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            refresh_token=REFRESH_TOKEN,
            api_url=self.api_url,
            auth_url=self.auth_url,
            **config,
        )

    # -- routing -----------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        query = {k: v[-1] for k, v in parse_qs(request.query_string.decode()).items()}
        self.requests.append((request.method, request.path, query))
        if request.path in self.scripted and self.scripted[request.path]:
            status, headers, body = self.scripted[request.path].popleft()
            return self.json(body, status, headers)
        if request.path == "/api/token" and request.method == "POST":
            return self.token(request)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[len("Bearer ") :] not in self.valid_tokens:
            return self.json(error_body(401, "Invalid access token"), 401)
        parts = request.path.strip("/").split("/")
        if parts[:1] != ["v1"]:
            return self.json(error_body(404, "Service not found"), 404)
        return self.route(parts[1:], query)

    def route(self, parts: list[str], query: dict) -> Response:
        kind = parts[0] if parts else ""
        if kind in ("tracks", "artists") and (len(parts) == 1 or parts[1] == ""):
            if not self.batch_allowed:
                return self.json(error_body(403, "Forbidden"), 403)
            store = self.tracks if kind == "tracks" else self.artists
            return self.json({kind: [store.get(i) for i in query.get("ids", "").split(",")]})
        if kind in ("tracks", "artists") and len(parts) == 2:
            store = self.tracks if kind == "tracks" else self.artists
            found = store.get(parts[1])
            if found is None:
                return self.json(error_body(404, "Resource not found"), 404)
            return self.json(found)
        if parts == ["me", "player", "recently-played"]:
            return self.json(self.recent_page(query))
        return self.json(error_body(404, "Service not found"), 404)

    def token(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Basic {BASIC}":
            return self.json({"error": "invalid_client", "error_description": "Bad client"}, 400)
        form = request.form
        if form.get("grant_type") == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return self.json(
                    {"error": "invalid_grant", "error_description": "Refresh token revoked"}, 400
                )
        elif form.get("grant_type") != "client_credentials":
            return self.json({"error": "unsupported_grant_type"}, 400)
        access = f"access-token-{len(self.issued)}-{secrets.token_hex(8)}"
        self.issued.append(access)
        self.valid_tokens.add(access)
        return self.json({"access_token": access, "token_type": "Bearer", "expires_in": 3600})

    def recent_page(self, query: dict) -> dict:
        limit = int(query.get("limit", 20))
        plays = self.plays
        if "after" in query:
            plays = [p for p in plays if p["_ms"] > int(query["after"])]
        if "before" in query:
            plays = [p for p in plays if p["_ms"] < int(query["before"])]
        page = plays[:limit]
        more = len(plays) > limit
        cursor = page[-1]["_ms"] if page else None
        return {
            "href": f"{self.next_base}me/player/recently-played?limit={limit}",
            "items": [{k: v for k, v in p.items() if k != "_ms"} for p in page],
            "next": f"{self.next_base}me/player/recently-played?before={cursor}&limit={limit}"
            if more
            else None,
            "cursors": {"after": str(page[0]["_ms"]), "before": str(cursor)} if page else None,
            "limit": limit,
        }

    def add_plays(self, count: int) -> list[datetime]:
        """Plays newest first, as the endpoint lists them."""
        start = datetime(2026, 3, 1, 12, 0, 0, 123_000, tzinfo=UTC)
        moments = [start - timedelta(minutes=4 * i) for i in range(count)]
        ids = [T1, T2]
        for i, moment in enumerate(moments):
            self.plays.append(
                {
                    "_ms": int(moment.timestamp() * 1000),
                    "played_at": iso_ms(moment),
                    "track": self.tracks[ids[i % 2]],
                    "context": None,
                }
            )
        return moments

    @staticmethod
    def json(body: object, status: int = 200, headers: dict | None = None) -> Response:
        return Response(json.dumps(body), status, headers, content_type="application/json")


@pytest.fixture
def spotify(httpserver, tmp_path, monkeypatch) -> FakeSpotify:
    """A fake Spotify; the working directory is a fresh folder so a stray `.cache` shows."""
    monkeypatch.chdir(tmp_path)
    fake = FakeSpotify(httpserver)
    yield fake
    assert not list(tmp_path.glob(".cache*")), "spotipy wrote a token cache file"


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        assert CLIENT_SECRET not in text
        assert BASIC not in text
        assert REFRESH_TOKEN not in text


def assert_no_tokens(spotify: FakeSpotify, *texts: str) -> None:
    assert spotify.issued, "no token was issued, so the check would prove nothing"
    assert_no_secrets(*texts)
    for text in texts:
        for token in spotify.issued:
            assert token not in text


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


# -- rate limits, retries and tokens -----------------------------------------------------------


def test_429_with_a_day_long_retry_after_fails_fast(spotify: FakeSpotify) -> None:
    spotify.script(f"/v1/tracks/{T1}", 429, {"Retry-After": "86400"})
    catalog = spotify.catalog()

    started = time.monotonic()
    with pytest.raises(SpotifyRateLimited) as caught:
        catalog.tracks([T1])

    assert time.monotonic() - started < 10
    assert caught.value.retry_after == 86400
    assert "Spotify API rate limit: retry after 86400 s" in str(caught.value)
    assert spotify.paths().count(f"/v1/tracks/{T1}") == 1
    assert_no_tokens(spotify, str(caught.value), repr(caught.value))


def test_429_with_a_short_retry_after_waits_and_succeeds(spotify: FakeSpotify) -> None:
    spotify.script(f"/v1/tracks/{T1}", 429, {"Retry-After": "2"})

    started = time.monotonic()
    tracks = spotify.catalog().tracks([T1])

    assert 2.0 <= time.monotonic() - started < 10
    assert tracks["track_id"].tolist() == [T1]
    assert spotify.paths().count(f"/v1/tracks/{T1}") == 2


def test_repeated_short_429s_give_up_with_the_rate_limit_error(spotify: FakeSpotify) -> None:
    spotify.script(f"/v1/tracks/{T1}", 429, {"Retry-After": "0"}, times=10)

    with pytest.raises(SpotifyRateLimited) as caught:
        spotify.catalog().tracks([T1])

    assert caught.value.retry_after == 0
    assert spotify.paths().count(f"/v1/tracks/{T1}") == 4


def test_500_then_200_is_retried(spotify: FakeSpotify) -> None:
    spotify.script(f"/v1/tracks/{T1}", 500)

    tracks = spotify.catalog(backoff_factor=0.05).tracks([T1])

    assert tracks["track_id"].tolist() == [T1]
    assert spotify.paths().count(f"/v1/tracks/{T1}") == 2


def test_persistent_503_fails_with_a_clear_error_in_bounded_time(spotify: FakeSpotify) -> None:
    spotify.script(f"/v1/tracks/{T1}", 503, {"Retry-After": "86400"}, times=20)

    started = time.monotonic()
    with pytest.raises(SpotifyApiError) as caught:
        spotify.catalog(max_retries=2, backoff_factor=0.05).tracks([T1])

    assert time.monotonic() - started < 10, "a 503's Retry-After must not be slept through"
    assert caught.value.status == 503
    assert f"Spotify API error 503 on GET /tracks/{T1}" in str(caught.value)
    assert spotify.paths().count(f"/v1/tracks/{T1}") == 3, "first try plus max_retries"


def test_token_endpoint_5xx_is_retried(spotify: FakeSpotify) -> None:
    spotify.script("/api/token", 502)

    assert spotify.catalog(backoff_factor=0.05).tracks([T1])["track_id"].tolist() == [T1]
    assert spotify.paths("POST") == ["/api/token", "/api/token"]


def test_unreachable_api_fails_in_bounded_time(spotify: FakeSpotify) -> None:
    catalog = LiveCatalogResource(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        api_url="http://127.0.0.1:9/v1/",
        auth_url="http://127.0.0.1:9/api/token",
        max_retries=1,
        backoff_factor=0.05,
        timeout_s=2,
    )

    started = time.monotonic()
    with pytest.raises(SpotifyApiError, match="unreachable"):
        catalog.tracks([T1])
    assert time.monotonic() - started < 10


def test_401_fetches_a_new_token_and_retries_once(spotify: FakeSpotify) -> None:
    catalog = spotify.catalog()
    catalog.tracks([T1])
    spotify.valid_tokens.clear()  # the server revokes the cached token

    tracks = catalog.tracks([T2])

    assert tracks["track_id"].tolist() == [T2]
    assert spotify.paths("POST") == ["/api/token", "/api/token"]
    assert spotify.paths().count(f"/v1/tracks/{T2}") == 2


def test_persistent_401_is_an_error_not_a_loop(spotify: FakeSpotify) -> None:
    spotify.script(f"/v1/tracks/{T1}", 401, times=5)

    with pytest.raises(SpotifyApiError) as caught:
        spotify.catalog().tracks([T1])

    assert caught.value.status == 401
    assert spotify.paths().count(f"/v1/tracks/{T1}") == 2


def test_wrong_client_secret_is_named_without_the_secret(spotify: FakeSpotify) -> None:
    catalog = LiveCatalogResource(
        client_id=CLIENT_ID,
        client_secret="wrong-" + CLIENT_SECRET,
        api_url=spotify.api_url,
        auth_url=spotify.auth_url,
    )

    with pytest.raises(SpotifyApiError, match="invalid_client") as caught:
        catalog.tracks([T1])

    assert "SPOTIFY_CLIENT_ID" in str(caught.value)
    assert_no_secrets(str(caught.value), repr(caught.value))


# -- secrets -----------------------------------------------------------------------------------


def test_no_secret_or_token_in_debug_logs_errors_or_repr(
    spotify: FakeSpotify, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Someone debugging lowers spotipy and urllib3 on purpose: records must still be clean.
    caplog.set_level(logging.DEBUG, logger="spotipy")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    spotify.add_plays(3)
    spotify.script(f"/v1/tracks/{T2}", 429, {"Retry-After": "86400"})
    catalog = spotify.catalog()

    catalog.tracks([T1, T_GONE])
    with pytest.raises(SpotifyRateLimited) as limited:
        catalog.tracks([T2])
    user = spotify.recently_played()
    user.records()
    spotify.refresh_tokens.clear()
    with pytest.raises(SpotifyApiError) as revoked:
        spotify.recently_played(account="bob").records()

    sent = [r.getMessage() for r in caplog.records if r.name.startswith("spotipy")]
    assert any("Sending GET" in m and "Bearer [REDACTED]" in m for m in sent), sent
    assert any("Sending POST" in m and "Basic [REDACTED]" in m for m in sent), sent
    assert_no_tokens(
        spotify,
        caplog.text,
        "\n".join(r.getMessage() for r in caplog.records),
        str(limited.value),
        repr(limited.value),
        str(revoked.value),
        repr(revoked.value),
        repr(catalog),
        str(catalog),
        repr(user),
    )


def test_spotipy_debug_lines_are_not_even_made_at_default_levels(
    spotify: FakeSpotify, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    spotify.catalog().tracks([T1])

    assert logging.getLogger("spotipy").getEffectiveLevel() >= logging.INFO
    assert logging.getLogger("urllib3").getEffectiveLevel() >= logging.INFO
    assert not [r for r in caplog.records if r.name.startswith(("spotipy", "urllib3"))
                and r.levelno < logging.INFO]
    assert_no_tokens(spotify, caplog.text)


def test_redact_covers_headers_and_token_bodies() -> None:
    text = (
        f"Headers: {{'Authorization': 'Bearer abc.DEF-123'}} {{'Authorization': 'Basic {BASIC}'}} "
        f"Body: {{'refresh_token': '{REFRESH_TOKEN}', 'grant_type': 'refresh_token'}} "
        f'{{"access_token": "tok-1"}} client_secret={CLIENT_SECRET}&x=1'
    )

    cleaned = redact(text)

    for secret in ("abc.DEF-123", BASIC, REFRESH_TOKEN, "tok-1", CLIENT_SECRET):
        assert secret not in cleaned
    assert "'grant_type': 'refresh_token'" in cleaned


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
