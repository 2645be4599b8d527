"""A whole run against a local server that answers like the Spotify Web API."""

import datetime as dt
import time

import pytest
from dagster import AssetKey, DagsterInstance

from spotify_platform import cli
from spotify_platform.defs.resources.catalog import OfflineCatalogResource
from spotify_platform.defs.resources.warehouse import WarehouseResource
from spotify_platform_tests.support.web_api import CLIENT_ID, CLIENT_SECRET, FakeSpotify

DAY = dt.date(2026, 6, 3)
SEED = 5


@pytest.fixture
def fake(httpserver, tmp_path, monkeypatch):
    spotify = FakeSpotify(httpserver)
    catalog = OfflineCatalogResource(seed=SEED)
    tracks = catalog._get().tracks
    spotify.tracks = {t["id"]: t for t in catalog.fetch_tracks(tracks["track_id"].tolist())}
    artists = catalog._get().artists["artist_id"].tolist()
    spotify.artists = {a["id"]: a for a in catalog.fetch_artists(artists)}
    for name, value in {
        "LAKE_URL": f"file://{tmp_path}/lake",
        "WAREHOUSE_URL": f"sqlite:///{tmp_path}/wh.db",
        "DAGSTER_HOME": str(tmp_path / "home"),
        "SIMULATOR_ACCOUNTS": "12",
        "SIMULATOR_SEED": str(SEED),
        "SPOTIFY_CLIENT_ID": CLIENT_ID,
        "SPOTIFY_CLIENT_SECRET": CLIENT_SECRET,
        "SPOTIFY_API_URL": spotify.api_url,
        "SPOTIFY_AUTH_URL": spotify.auth_url,
    }.items():
        monkeypatch.setenv(name, value)
    return spotify, tmp_path


def test_run_enriches_new_tracks_from_the_api_once(fake):
    spotify, tmp_path = fake
    assert cli.main(["run", "--from", str(DAY), "--to", str(DAY)]) == 0
    lookups = [p for p in spotify.paths() if p.startswith("/v1/tracks/")]
    warehouse = WarehouseResource(url=f"sqlite:///{tmp_path}/wh.db")
    dim = warehouse.read_table("dim_tracks")
    assert len(lookups) == len(dim) > 0
    assert set(dim["catalog_source"]) == {"catalog"}
    genres = warehouse.read_table("dim_artists")["primary_genre"]
    assert (genres != "unknown").any()
    landed = list((tmp_path / "lake" / f"raw/spotify_api/tracks/dt={DAY}").glob("*.json"))
    assert landed

    before = len(spotify.requests)
    assert cli.main(["run", "--from", str(DAY), "--to", str(DAY)]) == 0
    again = [p for p in spotify.paths()[before:] if p.startswith("/v1/")]
    assert again == []


def test_the_clients_retries_show_in_the_run_log(fake):
    spotify, _ = fake
    for path in [f"/v1/tracks/{t}" for t in spotify.tracks]:
        spotify.script(path, 401, {}, times=1)
    assert cli.main(["run", "--from", str(DAY), "--to", str(DAY)]) == 0
    requested = set(spotify.paths())
    refused = [f"/v1/tracks/{t}" for t in spotify.tracks if f"/v1/tracks/{t}" in requested]
    assert refused
    instance = DagsterInstance.get()
    run = instance.get_runs(limit=1)[0]
    logged = [
        r.event_log_entry.user_message
        for r in instance.get_records_for_run(run.run_id, limit=100_000).records
        if "answered 401" in r.event_log_entry.user_message
    ]
    assert len(logged) == len(refused)
    assert all(any(p.removeprefix("/v1") in m for m in logged) for p in refused)
    instance.dispose()


def test_a_day_long_rate_limit_fails_the_run_fast_naming_the_wait(fake, capsys):
    spotify, _ = fake
    for path in [f"/v1/tracks/{t}" for t in spotify.tracks]:
        spotify.script(path, 429, {"Retry-After": "86400"}, times=3)
    started = time.monotonic()
    assert cli.main(["run", "--from", str(DAY), "--to", str(DAY)]) == 1
    assert time.monotonic() - started < 60
    error = capsys.readouterr().err
    assert "rate limit" in error and "86400" in error
    assert CLIENT_SECRET not in error
    # The dimension that needs no catalog is built all the same, in the same step.
    instance = DagsterInstance.get()
    accounts = AssetKey(["warehouse", "dim_accounts"])
    assert instance.get_materialized_partitions(accounts) == {DAY.isoformat()}
    assert not instance.get_materialized_partitions(AssetKey(["warehouse", "dim_tracks"]))
