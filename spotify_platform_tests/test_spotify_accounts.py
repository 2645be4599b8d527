"""The connected accounts: refresh tokens read from the environment and a file, never shown."""

from __future__ import annotations

import json

import pytest
from dagster import (
    build_resources,
)

from spotify_platform.defs.resources.spotify_accounts import (
    SpotifyAccountsError,
    SpotifyAccountsResource,
    build_spotify_accounts,
)
from spotify_platform_tests.support.web_api import (
    ALICE,
    BOB,
    CLIENT_ID,
    CLIENT_SECRET,
    TOKENS,
    only,
)


def test_accounts_resource_reads_file_and_env_and_hides_tokens(tmp_path, monkeypatch) -> None:
    accounts_file = tmp_path / "spotify_accounts.json"
    accounts_file.write_text(json.dumps({ALICE: "file-token", BOB: TOKENS[BOB]}))
    for name in ("SPOTIFY_API_URL", "SPOTIFY_AUTH_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPOTIFY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SPOTIFY_ACCOUNTS_FILE", str(accounts_file))
    monkeypatch.setenv("SPOTIFY_REFRESH_TOKENS", json.dumps(only(ALICE)))

    resource = build_spotify_accounts()

    assert_hidden = [repr(resource), str(resource)]
    with build_resources({"accounts": resource}) as resolved:
        live = resolved.accounts
        assert live.connected() == sorted([ALICE, BOB])
        assert live._tokens()[ALICE] == TOKENS[ALICE], "the env mapping wins over the file"
        assert live.auth_url == "https://accounts.spotify.com/api/token"
        client = live.client(ALICE)
        assert_hidden += [repr(live), str(live), repr(client)]
    for text in assert_hidden:
        for secret in (*TOKENS.values(), "file-token", CLIENT_SECRET):
            assert secret not in text


def test_accounts_resource_errors_never_echo_tokens(tmp_path) -> None:
    assert SpotifyAccountsResource().connected() == []
    broken = SpotifyAccountsResource(refresh_tokens_json='{"a": "tok-123", "b": }')
    with pytest.raises(SpotifyAccountsError, match="not valid JSON") as caught:
        broken.connected()
    assert "tok-123" not in str(caught.value)
    empty = SpotifyAccountsResource(refresh_tokens_json='{"a": "", "b": "tok-456"}')
    with pytest.raises(SpotifyAccountsError, match="1 entries") as caught:
        empty.connected()
    assert "tok-456" not in str(caught.value)
    missing = SpotifyAccountsResource(accounts_file=str(tmp_path / "nope.json"))
    with pytest.raises(SpotifyAccountsError, match="cannot be read"):
        missing.connected()
    no_app = SpotifyAccountsResource(refresh_tokens_json=json.dumps(only(ALICE)))
    with pytest.raises(SpotifyAccountsError, match="SPOTIFY_CLIENT_ID"):
        no_app.client(ALICE)
