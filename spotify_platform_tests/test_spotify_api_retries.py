"""spotipy against scripted refusals of the local Web API: rate limits, server errors, expired
and wrong credentials, each ending in bounded time."""

from __future__ import annotations

import time

import pytest

from spotify_platform.defs.resources.spotify_web_api import (
    LiveCatalogResource,
    SpotifyApiError,
    SpotifyRateLimited,
)
from spotify_platform_tests.support.web_api import (
    CLIENT_ID,
    CLIENT_SECRET,
    T1,
    T2,
    FakeSpotify,
    assert_no_secrets,
    assert_no_tokens,
)


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


def test_5xx_answers_are_retried_with_backoff_until_one_succeeds(httpserver) -> None:
    spotify = FakeSpotify(httpserver)
    for status in (500, 502, 503):
        spotify.script(f"/v1/tracks/{T1}", status)

    started = time.monotonic()
    tracks = spotify.catalog(max_retries=3, backoff_factor=0.2).tracks([T1])
    elapsed = time.monotonic() - started

    assert tracks["track_id"].tolist() == [T1]
    assert spotify.paths().count(f"/v1/tracks/{T1}") == 4
    # urllib3 waits 0, 2 x 0.2 and 4 x 0.2 s (plus jitter) before the second to fourth tries.
    assert 1.2 <= elapsed < 6, elapsed
