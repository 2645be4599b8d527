"""No secret, username or IP address outside raw/: a whole session of the platform (history
import, runs, recently-played, a refused login, a bad upload) is searched everywhere it leaves
text.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import (
    DagsterInstance,
    build_sensor_context,
    serialize_value,
)

from spotify_platform import cli
from spotify_platform.core.contracts.tables import TABLES
from spotify_platform.core.lake.layout import (
    dashboard_key,
)
from spotify_platform.definitions import build_definitions
from spotify_platform.defs.automation import uploads_sensor
from spotify_platform.defs.resources import build_resources
from spotify_platform.defs.resources.catalog import OfflineCatalogResource
from spotify_platform.defs.resources.hmac_key import IdentityResource
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform.defs.resources.warehouse import WarehouseResource
from spotify_platform_tests.harness import (
    import_run,
)
from spotify_platform_tests.private_mariadb import PrivateMariaDB
from spotify_platform_tests.support.records import export_play
from spotify_platform_tests.support.web_api import (
    BASIC,
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    FakeSpotify,
)

DAY = dt.date(2026, 3, 2)


LISTENER = "rp.listener@example.com"
EXPORT_USER = "real.person.name"
EXPORT_IP = "198.51.100.23"


def lake_texts(lake: LakeResource) -> dict[str, str]:
    """Every lake object outside the raw landing zones, as text (Parquet as its rows)."""
    texts = {}
    for key in lake.list_keys(""):
        if key.startswith(("raw/listening_events/", "uploads/")):
            continue
        if key.endswith(".parquet"):
            texts[key] = lake.read_parquet(key).to_csv()
        else:
            texts[key] = lake.read_bytes(key).decode("utf-8", "replace")
    return texts


def instance_texts(instance: DagsterInstance) -> dict[str, str]:
    """Runs, their config and tags, job snapshots and every event of every run, serialised."""
    texts = {}
    for run in instance.get_runs():
        parts = [serialize_value(run), serialize_value(instance.all_logs(run.run_id))]
        if run.job_snapshot_id:
            parts.append(serialize_value(instance.get_job_snapshot(run.job_snapshot_id)))
        texts[f"run {run.run_id}"] = "\n".join(parts)
    return texts


def folder_texts(folder: Path) -> dict[str, str]:
    return {
        str(path): path.read_bytes().decode("latin-1")
        for path in folder.rglob("*")
        if path.is_file()
    }


def warehouse_text(warehouse: WarehouseResource) -> str:
    return "\n".join(warehouse.read_frame(sa.select(table)).to_csv() for table in TABLES.values())


def test_no_secret_username_or_ip_appears_outside_raw(
    private_mariadb: PrivateMariaDB,
    private_database: str,
    httpserver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    spotify = FakeSpotify(httpserver)
    catalog = OfflineCatalogResource(seed=5)
    spotify.tracks.update(
        {t["id"]: t for t in catalog.fetch_tracks(catalog._get().tracks["track_id"])}
    )
    spotify.artists.update(
        {a["id"]: a for a in catalog.fetch_artists(catalog._get().artists["artist_id"])}
    )
    spotify.add_plays(3)
    hmac_key = "hmac-" + secrets.token_hex(12)
    url = private_mariadb.url(private_database)
    wrong_password = "wrong-pw-" + secrets.token_hex(6)
    for name, value in {
        "LAKE_URL": f"file://{tmp_path}/lake",
        "WAREHOUSE_URL": url,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "ACCOUNT_HMAC_KEY": hmac_key,
        "SIMULATOR_ACCOUNTS": "5",
        "SIMULATOR_SEED": "5",
        "SPOTIFY_CLIENT_ID": CLIENT_ID,
        "SPOTIFY_CLIENT_SECRET": CLIENT_SECRET,
        "SPOTIFY_API_URL": spotify.api_url,
        "SPOTIFY_AUTH_URL": spotify.auth_url,
        "SPOTIFY_REFRESH_TOKENS": json.dumps({LISTENER: REFRESH_TOKEN}),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    export = tmp_path / "Streaming_History_Audio_2026.json"
    record = export_play(f"{DAY}T09:00:00Z", 1772442000)
    export.write_text(json.dumps([{**record, "username": EXPORT_USER, "ip_addr": EXPORT_IP}]))

    assert cli.main(["import-history", str(export), "--account", EXPORT_USER]) == 0
    assert cli.main(["run", "--from", str(DAY), "--to", str(DAY)]) == 0
    instance = DagsterInstance.get()
    recent = build_definitions().resolve_job_def("recently_played")
    assert recent.execute_in_process(instance=instance).success
    spotify.refresh_tokens.clear()
    assert not recent.execute_in_process(instance=instance, raise_on_error=False).success
    monkeypatch.setenv("WAREHOUSE_URL", url.replace(private_mariadb.app_password, wrong_password))
    assert cli.main(["init-warehouse"]) == 2
    lake = LakeResource(url=f"file://{tmp_path}/lake")
    lake.write_bytes(f"uploads/{EXPORT_USER}/my_spotify_data.zip", b"PK\x03\x04 truncated")
    tick = uploads_sensor(build_sensor_context(resources={"lake": lake}, instance=instance))
    assert not import_run(build_definitions(), tick.run_requests[0], instance).success
    console = capfd.readouterr()

    texts = {
        "console": console.out + console.err,
        "python logging": caplog.text,
        "dashboard": lake.read_bytes(dashboard_key(DAY)).decode("utf-8"),
        "warehouse": warehouse_text(WarehouseResource(url=url)),
        **lake_texts(lake),
        **instance_texts(instance),
        **folder_texts(tmp_path / "home"),
        "resource reprs": repr(WarehouseResource(url=url))
        + repr(IdentityResource(hmac_key=hmac_key))
        + repr(build_resources()),
    }
    everything = "\n".join(texts.values())
    # The search is real: the things around the secrets are there.
    assert "mysql+pymysql://spt_app:***@127.0.0.1" in everything
    assert "Access denied" in console.err and "invalid_grant" in everything
    assert "'my_spotify_data.zip' rejected" in everything, "the rejected upload's run was seen"
    assert "Offline Band" in texts["warehouse"] and "listener-00" in simulated_names(tmp_path)
    forbidden = {
        "database password": private_mariadb.app_password,
        "wrong database password": wrong_password,
        "client secret": CLIENT_SECRET,
        "basic credentials": BASIC,
        "refresh token": REFRESH_TOKEN,
        "HMAC key": hmac_key,
        "export username": EXPORT_USER,
        "connected account": LISTENER,
        "export IP address": EXPORT_IP,
        "simulated IP addresses": "192.0.2.",
        "simulated usernames": "listener-00",
        **{f"access token {i}": token for i, token in enumerate(spotify.issued)},
    }
    assert spotify.issued, "tokens were issued, so looking for them means something"
    for where, text in texts.items():
        for what, value in forbidden.items():
            assert value not in text, f"{what} found in {where}"


def simulated_names(tmp_path: Path) -> str:
    """The simulated raw file as text: it does hold account names, so their absence elsewhere
    is meaningful."""
    folder = tmp_path / "lake" / "raw" / "listening_events"
    return "\n".join(gzip.decompress(p.read_bytes()).decode() for p in folder.rglob("*.gz"))
