"""Exports from the command line, through to KPIs in the warehouse (uploads: test_sensors.py)."""

import datetime as dt
import json
import zipfile

import pandas as pd
import pytest
from dagster import DagsterInstance

from spotify_platform import cli
from spotify_platform.core.sources.simulator import ListeningSimulator
from spotify_platform.defs.resources import WarehouseResource
from spotify_platform_tests import oracle

FIRST = dt.date(2026, 5, 4)
LAST = dt.date(2026, 5, 17)


def _history(account_index: int) -> pd.DataFrame:
    simulator = ListeningSimulator(accounts=40, seed=3, epoch=dt.date(2026, 1, 1))
    name = simulator.accounts()["account_id"].iloc[account_index]
    frames = [frame[frame["account_id"] == name] for _, frame in simulator.days(FIRST, LAST)]
    return pd.concat(frames, ignore_index=True)


def _extended_export(history: pd.DataFrame) -> list[dict]:
    records = json.loads(history.drop(columns=["account_id"]).to_json(orient="records"))
    for record in records:
        record["username"] = "real-user-name"
    return list(reversed(records))


def _legacy_export(history: pd.DataFrame) -> list[dict]:
    tracks = history[history["spotify_track_uri"].notna()]
    ended = pd.to_datetime(tracks["ts"], utc=True)
    return [
        {
            "endTime": e.strftime("%Y-%m-%d %H:%M"),
            "artistName": a,
            "trackName": t,
            "msPlayed": int(m),
        }
        for e, a, t, m in zip(
            ended,
            tracks["master_metadata_album_artist_name"],
            tracks["master_metadata_track_name"],
            tracks["ms_played"],
            strict=True,
        )
    ]


def _expected(extended: pd.DataFrame, legacy: list[dict]) -> pd.DataFrame:
    """Raw-shaped records of both people, duplicates counted once."""
    first = extended.assign(account_id="ext")
    second = pd.DataFrame(
        {
            "ts": [r["endTime"].replace(" ", "T") + ":00Z" for r in legacy],
            "ms_played": [r["msPlayed"] for r in legacy],
            "account_id": "leg",
            "spotify_track_uri": None,
            "master_metadata_track_name": [r["trackName"] for r in legacy],
            "master_metadata_album_artist_name": [r["artistName"] for r in legacy],
            "skipped": None,
            "reason_end": None,
        }
    )
    both = pd.concat([first, second], ignore_index=True)
    content = both["spotify_track_uri"].fillna(
        both["master_metadata_album_artist_name"] + "/" + both["master_metadata_track_name"]
    )
    return both.loc[
        ~pd.DataFrame(
            {"a": both["account_id"], "t": both["ts"], "c": content, "m": both["ms_played"]}
        ).duplicated()
    ]


@pytest.fixture
def environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKE_URL", f"file://{tmp_path}/lake")
    monkeypatch.setenv("WAREHOUSE_URL", f"sqlite:///{tmp_path}/wh.db")
    monkeypatch.setenv("ACCOUNT_HMAC_KEY", "test-only-key")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SIMULATOR_ACCOUNTS", raising=False)
    return tmp_path


def test_import_history_then_run_gives_the_kpis_of_the_exports(environment, capsys):
    extended = _history(0)
    legacy = _legacy_export(_history(1))
    archive = environment / "my_spotify_data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(
            "Spotify Extended Streaming History/Streaming_History_Audio_2026.json",
            json.dumps(_extended_export(extended)),
        )
        zf.writestr("Spotify Extended Streaming History/ReadMeFirst.txt", "not history")
    legacy_file = environment / "StreamingHistory_music_0.json"
    legacy_file.write_text(json.dumps(legacy))

    assert cli.main(["import-history", str(archive), "--account", "ext"]) == 0
    assert (
        cli.main(["import-history", str(legacy_file), "--account", "leg", "--country", "SE"]) == 0
    )
    assert cli.main(["import-history", str(archive), "--account", "ext"]) == 0
    output = capsys.readouterr().out
    assert f"next: spotify-platform run --from {FIRST}" in output
    assert cli.main(["run", "--from", str(FIRST), "--to", str(LAST)]) == 0

    warehouse = WarehouseResource(url=f"sqlite:///{environment}/wh.db")
    expected = oracle.prepare(_expected(extended, legacy))
    daily = warehouse.read_table("kpi_daily_streams").set_index("dt")
    for day in pd.date_range(FIRST, LAST):
        want = oracle.daily_streams(expected, day)
        assert int(daily.loc[day, "plays"]) == want["plays"], day
        assert int(daily.loc[day, "streams"]) == want["streams"], day
        assert int(daily.loc[day, "listeners"]) == want["listeners"], day
    countries = warehouse.read_frame("SELECT DISTINCT country FROM fact_streams")
    assert "SE" in set(countries["country"])
    facts = warehouse.read_frame("SELECT * FROM fact_streams")
    assert not facts.astype(str).apply(lambda c: c.str.contains("real-user-name")).any().any()
    runs = DagsterInstance.get().get_runs()
    assert len(runs) == 1
