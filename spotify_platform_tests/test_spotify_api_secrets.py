"""No client secret, refresh token or access token in spotipy's logs, errors or reprs."""

from __future__ import annotations

import logging

import pytest

from spotify_platform.defs.resources.spotify_web_api import (
    SpotifyApiError,
    SpotifyRateLimited,
    redact,
)
from spotify_platform_tests.support.web_api import (
    BASIC,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    T1,
    T2,
    T_GONE,
    FakeSpotify,
    assert_no_tokens,
)


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
