"""Issue 9: ways to break the platform, each tried against the real parts.

MariaDB (the shared server, or a private `mariadbd` where a case needs global settings, users
or TLS), moto's S3 server and a local Web-API-like server. Cases that other modules already
prove are cited in README's "Reliability" section, not repeated here; TLS is in test_tls.py.
"""

from __future__ import annotations

import datetime as dt
import gzip
import html
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pandas as pd
import pymysql
import pytest
import requests
import sqlalchemy as sa
from botocore.exceptions import EndpointConnectionError
from dagster import (
    DagsterInstance,
    SensorResult,
    SkipReason,
    build_sensor_context,
    serialize_value,
)

from spotify_platform import cli
from spotify_platform.core.contracts.tables import TABLES
from spotify_platform.core.lake.ingest import import_history
from spotify_platform.core.lake.layout import (
    dashboard_key,
    quarantine_key,
    raw_key,
    raw_prefix,
    staging_key,
    staging_stats_key,
)
from spotify_platform.core.lake.store import LakeUnavailable
from spotify_platform.core.sources.raw import encode_jsonl_gz, encode_records
from spotify_platform.core.warehouse.connection import redact
from spotify_platform.definitions import build_definitions
from spotify_platform.defs.automation import uploads_sensor
from spotify_platform.defs.resources import build_resources
from spotify_platform.defs.resources.catalog import OfflineCatalogResource
from spotify_platform.defs.resources.hmac_key import IdentityResource
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform.defs.resources.warehouse import WarehouseResource
from spotify_platform_tests import oracle
from spotify_platform_tests.conftest import temporary_database
from spotify_platform_tests.harness import (
    EPOCH,
    SEED,
    make_resources,
    read_table,
    run_days,
    simulated_raw,
    synthetic_facts,
    table_checksums,
)
from spotify_platform_tests.private_mariadb import PrivateMariaDB
from spotify_platform_tests.test_spotify_api import (
    BASIC,
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    T1,
    FakeSpotify,
)

DAY = dt.date(2026, 3, 2)
HMAC_KEY = "test-key-not-secret"  # the key make_resources gives the identity resource
GIB = 2**30


def play(ts: object, account: str = "listener-x", ms: object = 185_000, **fields: object) -> dict:
    """One raw listening record: Extended Streaming History fields plus `account_id`."""
    record: dict[str, object] = {
        "ts": ts,
        "platform": "android",
        "ms_played": ms,
        "conn_country": "DE",
        "master_metadata_track_name": "Song",
        "master_metadata_album_artist_name": "Band",
        "master_metadata_album_album_name": "Album",
        "spotify_track_uri": None,
        "reason_start": "trackdone",
        "reason_end": "trackdone",
        "shuffle": False,
        "skipped": False,
        "offline": False,
        "incognito_mode": False,
        "account_id": account,
    }
    record.update(fields)
    return record


def admin_engine(server_url: str) -> sa.Engine:
    return sa.create_engine(server_url, poolclass=sa.NullPool)


def database_of(url: str) -> str:
    return sa.make_url(url).database or ""


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


# -- 2. a crash in the middle of a MySQL load --------------------------------------------------

CRASH_ROWS = 60_000
LOAD_IN_CHILD = """
import datetime as dt, sys
import pandas as pd
from spotify_platform.defs.resources.warehouse import WarehouseResource
url, path, mode, day = sys.argv[1:]
warehouse = WarehouseResource(url=url, bulk_load=mode)
warehouse.replace_days("fact_streams", [dt.date.fromisoformat(day)], pd.read_parquet(path))
print("finished")
"""


def loading_session(admin: sa.Engine, database: str) -> int | None:
    """Id of a session of `database` running LOAD DATA or INSERT right now, if any."""
    with admin.connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT id FROM information_schema.processlist WHERE db = :db "
                "AND (info LIKE 'LOAD DATA%' OR info LIKE 'INSERT INTO%')"
            ),
            {"db": database},
        ).first()
    return int(found[0]) if found else None


def session_alive(admin: sa.Engine, session: int) -> bool:
    with admin.connect() as conn:
        return bool(
            conn.execute(
                sa.text("SELECT COUNT(*) FROM information_schema.processlist WHERE id = :id"),
                {"id": session},
            ).scalar()
        )


def await_load(admin: sa.Engine, database: str, running: Callable[[], bool]) -> int:
    """The loading session, caught mid-statement; fails if the load ends first."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        session = loading_session(admin, database)
        if session is not None:
            return session
        assert running(), "the load finished before it could be interrupted"
        time.sleep(0.005)
    raise AssertionError("no LOAD DATA or INSERT was seen within 180 s")


def day_summary(warehouse: WarehouseResource, day: dt.date) -> tuple[int, int, str, str]:
    row = warehouse.read_frame(
        sa.text(
            "SELECT COUNT(*) AS n, SUM(ms_played) AS ms, MIN(event_id) AS lo, "
            "MAX(event_id) AS hi FROM fact_streams WHERE dt = :d"
        ),
        {"d": day},
    ).iloc[0]
    return int(row["n"]), int(row["ms"] or 0), row["lo"], row["hi"]


def frame_summary(frame: pd.DataFrame) -> tuple[int, int, str, str]:
    return (
        len(frame),
        int(frame["ms_played"].sum()),
        frame["event_id"].min(),
        frame["event_id"].max(),
    )


@pytest.mark.parametrize("bulk_load", ["auto", "insert"])
def test_a_load_killed_mid_insert_leaves_the_previous_day_and_a_rerun_completes_it(
    bulk_load: str, mysql_url: str, mysql_server_url: str, tmp_path: Path
) -> None:
    warehouse = WarehouseResource(url=mysql_url, bulk_load=bulk_load)
    warehouse.init_schema()
    old = synthetic_facts(3_000, DAY, seed=1)
    new = synthetic_facts(CRASH_ROWS, DAY, seed=2)
    warehouse.replace_days("fact_streams", [DAY], old)
    path = tmp_path / "new.parquet"
    new.to_parquet(path)
    admin = admin_engine(mysql_server_url)

    child = subprocess.Popen(
        [sys.executable, "-c", LOAD_IN_CHILD, mysql_url, str(path), bulk_load, str(DAY)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        session = await_load(admin, database_of(mysql_url), lambda: child.poll() is None)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        wait_until(lambda: not session_alive(admin, session), 120, "the server to roll back")
    finally:
        if child.poll() is None:
            child.kill()
        admin.dispose()

    assert child.returncode == -signal.SIGKILL
    assert day_summary(warehouse, DAY) == frame_summary(old), "the previous day, whole"
    assert warehouse.replace_days("fact_streams", [DAY], new) == CRASH_ROWS
    assert day_summary(warehouse, DAY) == frame_summary(new)


def test_rows_that_cannot_be_written_mid_stream_fail_the_load_and_keep_the_previous_day(
    mysql_url: str,
) -> None:
    warehouse = WarehouseResource(url=mysql_url)
    warehouse.init_schema()
    assert warehouse.load_path == "load_data"
    old = synthetic_facts(3_000, DAY, seed=1)
    warehouse.replace_days("fact_streams", [DAY], old)
    new = synthetic_facts(250_000, DAY, seed=2)
    names = new["track_name"].astype(object)
    # The last row only: the slices before it have already gone down the pipe to the server.
    names.iloc[-1] = {"not": "text"}
    new["track_name"] = names
    with pytest.raises(RuntimeError, match="fact_streams: writing rows for LOAD DATA failed"):
        warehouse.replace_days("fact_streams", [DAY], new)
    assert day_summary(warehouse, DAY) == frame_summary(old), "the previous day, whole"
    writers = [t for t in threading.enumerate() if t.name.startswith("load-data-writer")]
    assert writers == [], "no writer thread left behind"


def test_a_connection_killed_mid_load_is_retried_to_completion(
    mysql_url: str, mysql_server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="spotify_platform.core.warehouse.retries")
    # MariaDB stops reading a KILLed LOAD DATA without closing the socket: the write timeout
    # is what turns the stalled send into an error (else about two minutes here).
    warehouse = WarehouseResource(url=mysql_url, write_timeout_s=5)
    warehouse.init_schema()
    warehouse.replace_days("fact_streams", [DAY], synthetic_facts(3_000, DAY, seed=1))
    new = synthetic_facts(CRASH_ROWS, DAY, seed=2)
    admin = admin_engine(mysql_server_url)
    outcome: dict[str, object] = {}

    def load() -> None:
        try:
            outcome["rows"] = warehouse.replace_days("fact_streams", [DAY], new)
        except Exception as exc:  # reported below, with the assertion that names it
            outcome["error"] = exc

    loader = threading.Thread(target=load)
    loader.start()
    try:
        session = await_load(admin, database_of(mysql_url), loader.is_alive)
        with admin.connect() as conn:
            conn.execute(sa.text(f"KILL CONNECTION {session}"))
        killed = time.monotonic()
    finally:
        loader.join(timeout=300)
        admin.dispose()

    assert "error" not in outcome, outcome.get("error")
    assert time.monotonic() - killed < 60, "the stalled connection was given up in bounded time"
    assert outcome["rows"] == CRASH_ROWS
    assert day_summary(warehouse, DAY) == frame_summary(new)
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert retries and "loading fact_streams" in retries[0], "the kill really hit the load"


# -- 3. the same file twice, overlapping files -------------------------------------------------


def unique_plays(raw: pd.DataFrame) -> pd.DataFrame:
    """Raw records with duplicates (same account, end second, content, ms) dropped."""
    content = (
        raw["spotify_track_uri"]
        .fillna(raw["spotify_episode_uri"])
        .fillna(
            raw["master_metadata_album_artist_name"].fillna("")
            + "\x1f"
            + raw["master_metadata_track_name"].fillna("")
        )
    )
    second = pd.to_datetime(raw["ts"], utc=True).dt.floor("s").astype(str)
    key = pd.DataFrame(
        {"a": raw["account_id"], "t": second, "c": content, "m": raw["ms_played"].astype(str)}
    )
    return raw.loc[~key.duplicated()]


def test_a_file_landed_twice_and_overlapping_files_count_each_play_once(
    mysql_url: str, tmp_path: Path
) -> None:
    resources = make_resources(tmp_path, warehouse_url=mysql_url, accounts=40)
    lake: LakeResource = resources["lake"]
    simulated = simulated_raw(resources, DAY, DAY)
    newcomers = simulated.head(25).assign(account_id="late-joiner")
    overlapping = pd.concat([simulated.iloc[::2], newcomers], ignore_index=True)
    # The simulator lands its own file in the run; here the same file under a second key,
    # and a file sharing half its plays, landed from two sources.
    lake.write_bytes(raw_key(DAY, "export", "same-file-again"), encode_jsonl_gz(simulated))
    lake.write_bytes(raw_key(DAY, "export", "overlap"), encode_jsonl_gz(overlapping))
    lake.write_bytes(raw_key(DAY, "api", "overlap-again"), encode_jsonl_gz(overlapping))

    assert run_days(resources, DAY, DAY)

    landed = len(simulated) * 2 + len(overlapping) * 2
    expected = unique_plays(pd.concat([simulated, newcomers], ignore_index=True))
    stats = json.loads(lake.read_bytes(staging_stats_key(DAY)))
    facts = read_table(resources, "fact_streams")
    assert stats["raw_records"] == landed
    assert stats["quarantined_rows"] == 0
    assert len(facts) == stats["staged_rows"] == len(expected)
    assert stats["duplicates_removed"] == landed - len(expected)
    assert facts["event_id"].is_unique
    want = oracle.daily_streams(oracle.prepare(expected), pd.Timestamp(DAY))
    daily = read_table(resources, "kpi_daily_streams").set_index("dt").loc[pd.Timestamp(DAY)]
    assert (int(daily["plays"]), int(daily["streams"]), int(daily["listeners"])) == (
        want["plays"],
        want["streams"],
        want["listeners"],
    )
    assert daily["minutes_played"] == pytest.approx(want["minutes_played"])


# -- 4. malformed raw lines --------------------------------------------------------------------


def test_malformed_lines_are_quarantined_with_reasons_and_the_counts_reconcile(
    mysql_url: str, tmp_path: Path
) -> None:
    resources = make_resources(tmp_path, warehouse_url=mysql_url, accounts=40)
    lake: LakeResource = resources["lake"]
    noon = f"{DAY}T12:00:00Z"
    lines: list[tuple[str, str | None]] = [
        ("{this is not json", "line is not JSON"),
        ("[1, 2, 3]", "line is not a JSON object"),
        (json.dumps({k: v for k, v in play(noon).items() if k != "ts"}), "ts: missing"),
        (json.dumps(play(None)), "ts: missing"),
        (json.dumps(play(1772452800)), "ts: not an ISO 8601 timestamp"),
        (json.dumps(play("yesterday at noon")), "ts: not an ISO 8601 timestamp"),
        (json.dumps(play(noon, ms="abc")), "ms_played: not a whole number"),
        (json.dumps(play(noon, ms=12.5)), "ms_played: not a whole number"),
        (json.dumps(play(noon, ms=True)), "ms_played: not a number"),
        (json.dumps(play(noon, ms=False)), "ms_played: not a number"),
        (json.dumps(play(noon, ms={"value": 1})), "ms_played: not a whole number"),
        (
            json.dumps({k: v for k, v in play(noon).items() if k != "ms_played"}),
            "ms_played: missing",
        ),
        (json.dumps(play(noon, ms=-5)), "ms_played=-5 fails greater_than_or_equal_to(0)"),
        (json.dumps(play(noon, ms=10**12)), "fails less_than_or_equal_to(86400000)"),
        (json.dumps(play(noon, ms=2**70)), "fails less_than_or_equal_to(86400000)"),
        (json.dumps(play("2099-06-01T12:00:00Z")), "not_in_future"),
        (json.dumps(play("2041-03-02T12:00:00Z")), "not_in_future"),
        (json.dumps(play(noon, account_id=None)), "account_id: missing"),
        (json.dumps(play(noon, account="a", conn_country="XX")), "country='XX'"),
        (json.dumps(play(noon, account="good-1")), None),
        (json.dumps(play(f"{DAY}T13:00:00Z", account="good-2", shuffle="yes")), None),
    ]
    text = "\n".join(line for line, _ in lines) + "\n"
    key = raw_key(DAY, "export", "broken")
    lake.write_bytes(key, gzip.compress(text.encode()))

    assert run_days(resources, DAY, DAY), "the rest of the day still loads"

    quarantine = lake.read_parquet(quarantine_key(DAY))
    from_file = quarantine[quarantine["source_file"] == key].set_index("line")
    for number, (_, reason) in enumerate(lines, start=1):
        if reason is None:
            assert number not in from_file.index, from_file.loc[number, "reason"]
        else:
            assert reason in from_file.loc[number, "reason"], (number, from_file.loc[number])
    stats = json.loads(lake.read_bytes(staging_stats_key(DAY)))
    facts = read_table(resources, "fact_streams")
    simulated = len(simulated_raw(resources, DAY, DAY))
    assert stats["raw_records"] == simulated + len(lines)
    assert len(quarantine) == stats["quarantined_rows"] == sum(r is not None for _, r in lines)
    assert stats["raw_records"] == (
        stats["staged_rows"] + stats["quarantined_rows"] + stats["duplicates_removed"]
    )
    assert len(facts) == stats["staged_rows"]
    good = facts[facts["ended_at"].dt.strftime("%H:%M") == "13:00"]
    assert len(good) == 1 and pd.isna(good["shuffle"].iloc[0]), "a bad optional flag is NULL"
    assert not quarantine["record"].str.contains("192.0.2.").any(), "IPs never leave raw/"


# -- 5, 6. the Web API: rate limits and server errors -------------------------------------------


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


# -- 8, 10, 12. awkward names and missing values through the whole pipeline ---------------------

UNICODE_DAY = dt.date(2026, 3, 3)
INJECTION_DAY = dt.date(2026, 3, 4)
UNICODE_NAMES = [
    "🔥 Fire 👩🏽‍🚀 and 🏳️‍🌈",
    "夜に駆ける 𠮷野家",
    "فيروز \u200f(مباشر)\u200e",
    "עומר אדם",
    "Beyonc\u00e9",  # é as one code point (NFC)
    "Beyonce\u0301",  # e + combining acute (NFD): other bytes, so another name
    "Z\u0351\u0354a\u0300l\u0316g\u0301o \u202eevil\u202c",
]
INJECTION_NAMES = [
    "'); DROP TABLE fact_streams; --",
    "Robert'); DROP TABLE students;--",
    "\\'; SELECT SLEEP(5); -- x",
    '" OR "1"="1',
    "%s %(name)s :name ? {0}",
    "\\N",
    "NULL",
    "back\\slash, tab\tand\nnewline",
    "`; DELETE FROM dim_tracks; #",
]
PLAIN = "Plain Song"
MISSING_TEXT = ("", "nan", "NaN", "None", "none", "<NA>", "NaT", "null", "undefined")


def named_plays(day: dt.date, names: list[str], with_uri: bool) -> list[dict]:
    """Each name as track, artist and album; more plays for earlier names, all streams."""
    records = []
    for i, name in enumerate(names):
        for k in range(len(names) - i + 1):
            uri = f"spotify:track:{i:02d}{'x' * 20}" if with_uri else None
            records.append(
                play(
                    f"{day}T{10 + k % 10:02d}:{i:02d}:{k:02d}Z",
                    account=f"listener-{i}-{k}",
                    master_metadata_track_name=name,
                    master_metadata_album_artist_name=name,
                    master_metadata_album_album_name=name,
                    spotify_track_uri=uri,
                )
            )
    return records


def missing_value_plays(day: dt.date) -> list[dict]:
    """Optional fields empty, blank, null, NaN or absent (NaN makes the file non-strict JSON)."""
    base = play(f"{day}T20:00:00Z", master_metadata_track_name=PLAIN)
    variants: list[dict] = [
        {"master_metadata_album_album_name": ""},
        {"master_metadata_album_album_name": "   "},
        {"master_metadata_album_album_name": None},
        {"master_metadata_album_album_name": float("nan")},
        {"reason_start": "", "reason_end": None, "shuffle": None, "incognito_mode": float("nan")},
        {"conn_country": "", "platform": None, "offline": None},
    ]
    records = []
    for i, change in enumerate(variants):
        record = {**base, **change, "account_id": f"listener-missing-{i}"}
        record["ts"] = f"{day}T20:{i:02d}:00Z"
        records.append(record)
    absent = {k: v for k, v in base.items() if k not in ("master_metadata_album_album_name",)}
    records.append({**absent, "ts": f"{day}T21:00:00Z", "account_id": "listener-missing-x"})
    return records


@pytest.fixture(scope="module", params=["auto", "insert"])
def awkward(request, mysql_server_url: str, tmp_path_factory) -> Iterator[dict]:
    """Two days of awkward plays run through the pipeline, per bulk path, on MariaDB."""
    with temporary_database(mysql_server_url) as url:
        resources = make_resources(
            tmp_path_factory.mktemp("awkward"), warehouse_url=url, accounts=0
        )
        resources["warehouse"] = WarehouseResource(url=url, bulk_load=request.param)
        lake: LakeResource = resources["lake"]
        unicode_day = named_plays(UNICODE_DAY, UNICODE_NAMES, True)
        lake.write_bytes(
            raw_key(UNICODE_DAY, "export", "unicode"),
            encode_records(unicode_day + missing_value_plays(UNICODE_DAY)),
        )
        injection_day = named_plays(INJECTION_DAY, INJECTION_NAMES, False)
        lake.write_bytes(raw_key(INJECTION_DAY, "export", "sql"), encode_records(injection_day))
        assert run_days(resources, UNICODE_DAY, INJECTION_DAY)
        assert resources["warehouse"].load_path == (
            "load_data" if request.param == "auto" else "insert"
        )
        yield resources
        resources["warehouse"].engine.dispose()


def stored_hex(warehouse: WarehouseResource, table: str, column: str, day: dt.date) -> set[str]:
    """The bytes MariaDB holds (HEX on the server), so no driver decoding can hide a change."""
    frame = warehouse.read_frame(
        sa.text(f"SELECT DISTINCT HEX({column}) AS h FROM {table} WHERE dt = :d"), {"d": day}
    )
    return set(frame["h"].dropna())


def hex_of(names: list[str]) -> set[str]:
    return {name.encode("utf-8").hex().upper() for name in names}


def dashboard(resources: dict, day: dt.date) -> str:
    return resources["lake"].read_bytes(dashboard_key(day)).decode("utf-8")


def test_unicode_names_survive_mysql_and_the_dashboard_byte_for_byte(awkward: dict) -> None:
    warehouse: WarehouseResource = awkward["warehouse"]
    named = hex_of(UNICODE_NAMES)
    for column in ("track_name", "artist_name", "album_name"):
        assert named <= stored_hex(warehouse, "fact_streams", column, UNICODE_DAY), column
    assert stored_hex(warehouse, "kpi_top_artists", "artist_name", UNICODE_DAY) == named | hex_of(
        ["Band"]
    )
    assert named <= stored_hex(warehouse, "kpi_top_tracks", "track_name", UNICODE_DAY)
    dims = warehouse.read_frame(
        "SELECT HEX(track_name) AS t, HEX(artist_name) AS a, HEX(album_name) AS b FROM dim_tracks"
    )
    assert named <= set(dims["t"]) and named <= set(dims["a"]) and named <= set(dims["b"])
    artists = warehouse.read_frame("SELECT HEX(artist_name) AS a FROM dim_artists")
    assert named <= set(artists["a"])
    page = dashboard(awkward, UNICODE_DAY)
    for name in UNICODE_NAMES:
        assert html.escape(name) in page, name
    top = read_table(awkward, "kpi_top_artists")
    names = set(top.loc[top["dt"] == pd.Timestamp(UNICODE_DAY), "artist_name"])
    assert {"Beyonc\u00e9", "Beyonce\u0301"} <= names, "NFC and NFD stay two artists"


def test_sql_shaped_names_are_stored_literally(awkward: dict) -> None:
    warehouse: WarehouseResource = awkward["warehouse"]
    assert warehouse.missing_tables() == []
    named = hex_of(INJECTION_NAMES)
    for column in ("track_name", "artist_name", "album_name"):
        assert stored_hex(warehouse, "fact_streams", column, INJECTION_DAY) == named, column
    assert stored_hex(warehouse, "kpi_top_artists", "artist_name", INJECTION_DAY) == named
    assert stored_hex(warehouse, "kpi_top_tracks", "track_name", INJECTION_DAY) == named
    nulls = warehouse.scalar(
        "SELECT COUNT(*) FROM fact_streams WHERE dt = :d AND "
        "(track_name IS NULL OR artist_name IS NULL OR album_name IS NULL)",
        {"d": INJECTION_DAY},
    )
    assert nulls == 0, "'\\N' and 'NULL' are names, not NULLs"
    plays = len(named_plays(INJECTION_DAY, INJECTION_NAMES, False))
    assert (
        warehouse.scalar("SELECT COUNT(*) FROM fact_streams WHERE dt = :d", {"d": INJECTION_DAY})
        == plays
    )
    assert warehouse.scalar("SELECT COUNT(*) FROM dim_tracks") > 0
    page = dashboard(awkward, INJECTION_DAY)
    for name in INJECTION_NAMES:
        assert html.escape(name) in page, name


def test_missing_optional_values_are_null_never_the_text_nan(awkward: dict) -> None:
    warehouse: WarehouseResource = awkward["warehouse"]
    checked = 0
    for name, table in TABLES.items():
        for column in table.columns:
            if isinstance(column.type, sa.String):
                found = warehouse.read_frame(
                    sa.select(column).where(column.in_(MISSING_TEXT)).limit(3)
                )
                assert found.empty, (name, column.name, found.iloc[:, 0].tolist())
                checked += 1
    assert checked >= 30, "every text column of every table was looked at"
    plain = warehouse.read_frame(
        sa.text(
            "SELECT album_name, reason_start, reason_end, shuffle, incognito, offline, "
            "country, platform FROM fact_streams WHERE track_name = :t"
        ),
        {"t": PLAIN},
    )
    assert len(plain) == len(missing_value_plays(UNICODE_DAY))
    assert plain["album_name"].isna().sum() == 5, "'', blank, null, NaN and absent albums"
    assert plain["reason_start"].isna().sum() == 1 and plain["reason_end"].isna().sum() == 1
    assert plain["shuffle"].isna().sum() == 1 and plain["incognito"].isna().sum() == 1
    assert plain["offline"].isna().sum() == 1
    assert set(plain["country"]) == {"DE", "ZZ"} and set(plain["platform"]) == {
        "android",
        "unknown",
    }
    dim = warehouse.read_frame(
        sa.text("SELECT album_name, popularity FROM dim_tracks WHERE track_name = :t"),
        {"t": PLAIN},
    )
    assert len(dim) == 1 and dim["popularity"].isna().all()


# -- 9. time -----------------------------------------------------------------------------------


def export_play(ts: str, offline_timestamp: int) -> dict:
    return {
        "ts": ts,
        "platform": "ios",
        "ms_played": 200_000,
        "conn_country": "SE",
        "ip_addr": "198.51.100.7",
        "master_metadata_track_name": "Offline Song",
        "master_metadata_album_artist_name": "Offline Band",
        "master_metadata_album_album_name": "Offline Album",
        "spotify_track_uri": "spotify:track:4iV5W9uYEdYUVa79Axb7Rh",
        "reason_start": "trackdone",
        "reason_end": "trackdone",
        "shuffle": False,
        "skipped": False,
        "offline": True,
        "offline_timestamp": offline_timestamp,
        "incognito_mode": False,
    }


def test_midnight_dst_and_offline_timestamps_land_on_the_right_day_and_hour(
    mysql_url: str, tmp_path: Path
) -> None:
    resources = make_resources(tmp_path, warehouse_url=mysql_url, accounts=0)
    lake: LakeResource = resources["lake"]
    minute = 60_000
    plays = {
        # US spring forward, 2026-03-08 07:00 UTC: 01:30 EST, then 03:30 EDT (no 02:xx).
        dt.date(2026, 3, 8): [
            play("2026-03-08T06:31:00Z", "us-1", minute, conn_country="US"),
            play("2026-03-08T07:31:00Z", "us-2", minute, conn_country="US"),
        ],
        # Started 23:58 on the 8th, ended 00:01 on the 9th: the 9th's play, UTC hour 23.
        dt.date(2026, 3, 9): [play("2026-03-09T00:01:00Z", "late-1", 3 * minute)],
        # EU spring forward, 2026-03-29 01:00 UTC: 01:30 CET, then 03:30 CEST.
        dt.date(2026, 3, 29): [
            play("2026-03-29T00:31:00Z", "de-1", minute),
            play("2026-03-29T01:31:00Z", "de-2", minute),
        ],
        # US fall back, 2026-11-01 06:00 UTC: 01:30 EDT, then 01:30 EST again.
        dt.date(2026, 11, 1): [
            play("2026-11-01T05:31:00Z", "us-3", minute, conn_country="US"),
            play("2026-11-01T06:31:00Z", "us-4", minute, conn_country="US"),
        ],
    }
    for day, records in plays.items():
        lake.write_bytes(raw_key(day, "export", "clock"), encode_records(records))
    export = tmp_path / "Streaming_History_Audio_2026.json"
    seconds = int(dt.datetime(2026, 3, 8, 22, tzinfo=dt.UTC).timestamp())
    export.write_text(
        json.dumps(
            [
                export_play("2026-03-09T10:00:00Z", seconds),
                export_play("2026-03-09T11:00:00Z", seconds * 1000 + 123),
            ]
        )
    )
    report = import_history(lake, [export], account="offline-listener")
    assert report.days == [dt.date(2026, 3, 9)] and not report.errors

    for first, last in [
        (dt.date(2026, 3, 8), dt.date(2026, 3, 9)),
        (dt.date(2026, 3, 29), dt.date(2026, 3, 29)),
        (dt.date(2026, 11, 1), dt.date(2026, 11, 1)),
    ]:
        assert run_days(resources, first, last)

    region = read_table(resources, "kpi_engagement_by_region_hour")
    got = {
        (r.dt.date(), r.country, int(r.local_hour)): int(r.streams)
        for r in region.itertuples(index=False)
    }
    assert got == {
        (dt.date(2026, 3, 8), "US", 1): 1,
        (dt.date(2026, 3, 8), "US", 3): 1,
        (dt.date(2026, 3, 9), "DE", 0): 1,
        (dt.date(2026, 3, 9), "SE", 10): 1,
        (dt.date(2026, 3, 9), "SE", 11): 1,
        (dt.date(2026, 3, 29), "DE", 1): 1,
        (dt.date(2026, 3, 29), "DE", 3): 1,
        (dt.date(2026, 11, 1), "US", 1): 2,
    }
    utc = read_table(resources, "kpi_engagement_by_utc_hour")
    late = utc[utc["dt"] == pd.Timestamp("2026-03-09")].set_index("utc_hour")["streams"]
    assert late.to_dict() == {23: 1, 9: 1, 10: 1}
    facts = read_table(resources, "fact_streams").set_index("ended_at")
    midnight = facts.loc[pd.Timestamp("2026-03-09T00:01:00Z")]
    assert midnight["dt"] == pd.Timestamp("2026-03-09")
    assert midnight["started_at"] == pd.Timestamp("2026-03-08T23:58:00Z")
    daily = read_table(resources, "kpi_daily_streams").set_index("dt")["streams"]
    assert (daily[pd.Timestamp("2026-03-08")], daily[pd.Timestamp("2026-03-09")]) == (2, 3)
    offline = [
        json.loads(line)["offline_timestamp"]
        for key in lake.list_keys(raw_prefix(dt.date(2026, 3, 9)))
        if "source=export" in key and "clock" not in key
        for line in gzip.decompress(lake.read_bytes(key)).splitlines()
    ]
    assert sorted(offline) == [seconds * 1000, seconds * 1000 + 123], "raw holds milliseconds"


@pytest.mark.parametrize("bulk_load", ["auto", "insert"])
def test_datetimes_after_2038_round_trip_exactly(bulk_load: str, mysql_url: str) -> None:
    """DATETIME(3), not TIMESTAMP: no 2038 wrap and no session time zone shift."""
    warehouse = WarehouseResource(url=mysql_url, bulk_load=bulk_load)
    warehouse.init_schema()
    moments = {
        dt.date(2038, 1, 19): "2038-01-19T03:14:08.001Z",
        dt.date(2040, 2, 29): "2040-02-29T23:59:59.999Z",
        dt.date(2199, 12, 31): "2199-12-31T12:00:00.500Z",
    }
    for day, moment in moments.items():
        frame = synthetic_facts(1, day, seed=day.year)
        frame["ended_at"] = pd.Series([pd.Timestamp(moment)])
        frame["started_at"] = frame["ended_at"] - pd.to_timedelta(frame["ms_played"], unit="ms")
        warehouse.replace_days("fact_streams", [day], frame)
    stored = warehouse.read_frame(
        "SELECT dt, CAST(ended_at AS CHAR) AS ended FROM fact_streams ORDER BY dt"
    )
    assert stored["ended"].tolist() == [
        pd.Timestamp(m).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] for m in moments.values()
    ]
    with warehouse.engine.connect() as conn:
        conn.execute(sa.text("SET time_zone = '-07:00'"))
        shifted = conn.execute(sa.text("SELECT MIN(ended_at) FROM fact_streams")).scalar()
    assert shifted == dt.datetime(2038, 1, 19, 3, 14, 8, 1000)
    read = warehouse.read_table("fact_streams")["ended_at"].tolist()
    assert read == [pd.Timestamp(m) for m in moments.values()]


# -- 11. a million rows, small packets, bounded memory -------------------------------------------

MILLION = 1_000_000
PEAK_RSS_LIMIT = 1.5 * GIB
MEASURE_IN_CHILD = """
import datetime as dt, json, re, sys, time
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform.defs.resources.warehouse import WarehouseResource
url, lake_url, key, mode, day = sys.argv[1:]

def peak_rss():
    # This process's own high-water mark. ru_maxrss would not do: Linux carries the parent's
    # peak across fork and exec, so a child of a large pytest process reported pytest's peak.
    status = open("/proc/self/status").read()
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) * 1024

started = time.monotonic()
frame = LakeResource(url=lake_url).read_parquet(key)
warehouse = WarehouseResource(url=url, bulk_load=mode)
rows = warehouse.replace_days("fact_streams", [dt.date.fromisoformat(day)], frame)
print(json.dumps({"rows": rows, "path": warehouse.load_path,
                  "seconds": time.monotonic() - started,
                  "peak_rss": peak_rss()}))
"""


def test_a_million_rows_load_in_small_packets_within_the_memory_target(
    private_mariadb: PrivateMariaDB, tmp_path: Path
) -> None:
    lake = LakeResource(url=f"file://{tmp_path}/lake")
    facts = synthetic_facts(MILLION, DAY, seed=3)
    lake.write_parquet(staging_key(DAY), facts)
    expected = frame_summary(facts)
    del facts
    names = {mode: f"spt_test_{mode}_{secrets.token_hex(4)}" for mode in ("auto", "insert")}
    for name in names.values():
        private_mariadb.create_database(name)
        WarehouseResource(url=private_mariadb.url(name)).init_schema()
    try:
        # The server's limit is real: PyMySQL's default 1,000,000-byte INSERTs are refused.
        with private_mariadb.admin(names["insert"]) as conn, conn.cursor() as cursor:
            cursor.execute("CREATE TABLE probe (v VARCHAR(255))")
            with pytest.raises(pymysql.err.OperationalError) as refused:
                cursor.executemany("INSERT INTO probe (v) VALUES (%s)", [("x" * 200,)] * 4000)
        assert refused.value.args[0] in (1153, 2006, 2013), refused.value
        # Upserts (SQLAlchemy executemany) are cut to the server's packet size as well.
        artists = pd.DataFrame(
            {
                "artist_id": [f"~{i:021x}" for i in range(5000)],
                "artist_name": [f"Artist {i} " + "x" * 60 for i in range(5000)],
                "name_seen_at": pd.Timestamp("2026-01-01", tz="UTC"),
                "spotify_artist_id": None,
                "primary_genre": "indie",
                "genres": "indie | " + "y" * 200,
            }
        )
        upserting = WarehouseResource(url=private_mariadb.url(names["insert"]))
        assert upserting.upsert("dim_artists", artists) == len(artists)
        assert upserting.scalar("SELECT COUNT(*) FROM dim_artists") == len(artists)
        upserting.engine.dispose()

        children = {
            mode: subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    MEASURE_IN_CHILD,
                    private_mariadb.url(name),
                    lake.url,
                    staging_key(DAY),
                    mode,
                    str(DAY),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for mode, name in names.items()
        }
        results = {}
        for mode, child in children.items():
            out, err = child.communicate(timeout=600)
            assert child.returncode == 0, err[-3000:]
            results[mode] = json.loads(out.strip().splitlines()[-1])
        for mode, name in names.items():
            result = results[mode]
            assert result["path"] == ("load_data" if mode == "auto" else "insert")
            assert result["rows"] == MILLION
            assert result["peak_rss"] < PEAK_RSS_LIMIT, (mode, result["peak_rss"] / GIB)
            warehouse = WarehouseResource(url=private_mariadb.url(name))
            assert day_summary(warehouse, DAY) == expected, mode
            warehouse.engine.dispose()
    finally:
        for name in names.values():
            private_mariadb.drop_database(name)


# -- 14. no secret, username or IP address outside raw/ --------------------------------------

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


def import_run(defs, request, instance: DagsterInstance):
    """The import run a sensor's request asks for, executed as the daemon would launch it."""
    return defs.resolve_job_def(request.job_name).execute_in_process(
        run_config=request.run_config, tags=request.tags, instance=instance, raise_on_error=False
    )


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


# -- 15. the S3 lake ---------------------------------------------------------------------------


def test_a_missing_or_denied_bucket_fails_at_once_naming_it(
    tmp_path: Path,
    s3_endpoint: str,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    resources = make_resources(
        tmp_path, lake_url="s3://spt-no-such-bucket/p", s3_endpoint_url=s3_endpoint, accounts=5
    )
    started = time.monotonic()
    assert not run_days(resources, DAY, DAY)
    assert time.monotonic() - started < 60
    error = capsys.readouterr().err
    assert "step lake__raw_listening_events failed" in error
    assert "lake bucket 'spt-no-such-bucket' is not usable" in error

    iam = boto3.client("iam", endpoint_url=s3_endpoint, region_name="us-east-1")
    iam.create_user(UserName="spt-no-s3-access")
    key = iam.create_access_key(UserName="spt-no-s3-access")["AccessKey"]
    requests.post(f"{s3_endpoint}/moto-api/reset-auth", data=b"0", timeout=10)
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        lake = LakeResource(url=f"s3://{s3_bucket}/p", s3_endpoint_url=s3_endpoint)
        started = time.monotonic()
        with pytest.raises(LakeUnavailable) as denied:
            lake.check()
        assert time.monotonic() - started < 10
    finally:
        requests.post(f"{s3_endpoint}/moto-api/reset-auth", data=b"inf", timeout=10)
    message = str(denied.value)
    assert f"lake bucket {s3_bucket!r} is not usable (403)" in message
    assert key["SecretAccessKey"] not in message


def test_an_interrupted_s3_upload_leaves_nothing_for_readers(
    s3_endpoint: str, s3_bucket: str
) -> None:
    lake = LakeResource(url=f"s3://{s3_bucket}/p", s3_endpoint_url=s3_endpoint)
    client = lake._s3()
    real_upload_part = client.upload_part
    parts: list[int] = []

    def drop_the_second_part(**kwargs: object) -> object:
        parts.append(int(kwargs["PartNumber"]))
        if len(parts) >= 2:
            raise EndpointConnectionError(endpoint_url=s3_endpoint)
        return real_upload_part(**kwargs)

    data = os.urandom(20 * 2**20)  # over boto3's 8 MiB threshold: a multipart upload
    key = raw_key(DAY, "export", "big")
    client.upload_part = drop_the_second_part
    try:
        with pytest.raises(EndpointConnectionError):
            lake.write_bytes(key, data)
    finally:
        del client.upload_part
    assert len(parts) >= 2, "the upload really was multipart and cut in the middle"
    assert not lake.exists(key)
    assert lake.list_keys("raw/") == []
    uploads = boto3.client("s3", endpoint_url=s3_endpoint).list_multipart_uploads(Bucket=s3_bucket)
    assert uploads.get("Uploads", []) == [], "the unfinished upload was aborted"
    lake.write_bytes(key, data)
    assert lake.read_bytes(key) == data


WRITE_IN_CHILD = """
import os, sys, time
from spotify_platform.defs.resources.lake import LakeResource
def stall(source, target):
    print("written", flush=True)
    time.sleep(120)
os.replace = stall
LakeResource(url=sys.argv[1]).write_bytes(sys.argv[2], os.urandom(8 * 2**20))
"""


def test_a_local_write_killed_before_its_rename_leaves_nothing_for_readers(
    tmp_path: Path,
) -> None:
    lake = LakeResource(url=f"file://{tmp_path}/lake")
    key = raw_key(DAY, "export", "killed")
    child = subprocess.Popen(
        [sys.executable, "-c", WRITE_IN_CHILD, lake.url, key],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "written"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    leftovers = list((tmp_path / "lake").rglob("*.part"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size == 8 * 2**20
    assert not lake.exists(key)
    assert lake.list_keys(raw_prefix(DAY)) == [], "staging would read nothing half-written"


# -- 17, 18. overlapping backfills at once; the warehouse lost mid-range ------------------------

RANGE_FIRST = dt.date(2026, 4, 6)
RANGE_LAST = dt.date(2026, 4, 11)
RANGE_ACCOUNTS = 20


@pytest.fixture(scope="module")
def clean_range(mysql_server_url: str, tmp_path_factory) -> dict[str, tuple]:
    """Checksums of every table after one clean run of the range, on its own database."""
    with temporary_database(mysql_server_url) as url:
        resources = make_resources(
            tmp_path_factory.mktemp("clean"), warehouse_url=url, accounts=RANGE_ACCOUNTS
        )
        assert run_days(resources, RANGE_FIRST, RANGE_LAST)
        sums = table_checksums(resources)
        resources["warehouse"].engine.dispose()
    assert sums["fact_streams"][0] > 0
    return sums


def test_two_overlapping_backfills_at_once_end_like_one_clean_run(
    clean_range: dict, mysql_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "WAREHOUSE_URL": mysql_url,
        "LAKE_URL": f"file://{tmp_path}/lake",
        "SIMULATOR_ACCOUNTS": str(RANGE_ACCOUNTS),
        "SIMULATOR_SEED": str(SEED),
        "SIMULATOR_EPOCH": EPOCH,
        "ACCOUNT_HMAC_KEY": HMAC_KEY,
    }
    for name in ("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET", "PARTITIONS_START"):
        env.pop(name, None)
    middle = RANGE_FIRST + dt.timedelta(days=3)
    ranges = [(RANGE_FIRST, middle), (middle - dt.timedelta(days=1), RANGE_LAST)]
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "spotify_platform.cli", "run", "--from", str(a), "--to", str(b)],
            env={**env, "DAGSTER_HOME": str(tmp_path / f"home-{i}")},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, (a, b) in enumerate(ranges)
    ]
    for child in children:
        out, err = child.communicate(timeout=600)
        assert child.returncode == 0, (out + err)[-4000:]
    resources = make_resources(tmp_path, warehouse_url=mysql_url)
    assert table_checksums(resources) == clean_range
    resources["warehouse"].engine.dispose()


def test_a_load_chosen_as_deadlock_victim_is_retried_not_lost(
    mysql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A deadlock made on purpose: the load is the lighter transaction, so InnoDB rolls it
    back; the warehouse must run it again rather than fail the step."""
    caplog.set_level(logging.WARNING, logger="spotify_platform.core.warehouse.retries")
    warehouse = WarehouseResource(url=mysql_url)
    warehouse.init_schema()
    first, second = DAY, DAY + dt.timedelta(days=1)

    def daily(plays: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "dt": pd.to_datetime([first, second]),
                "plays": [plays, plays],
                "streams": [1, 1],
                "listeners": [1, 1],
                "minutes_played": [1.0, 1.0],
                "skip_rate": [None, None],
            }
        )

    warehouse.replace_days("kpi_daily_streams", [first, second], daily(1))
    url = sa.make_url(mysql_url)
    other = pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        database=url.database,
        autocommit=False,
    )
    outcome: dict[str, object] = {}

    def load() -> None:
        outcome["rows"] = warehouse.replace_days("kpi_daily_streams", [first, second], daily(2))

    with other.cursor() as cursor:
        cursor.execute("CREATE TABLE ballast (n INT)")
        other.begin()
        cursor.executemany("INSERT INTO ballast VALUES (%s)", [(i,) for i in range(2000)])
        cursor.execute("SELECT * FROM kpi_daily_streams WHERE dt = %s FOR UPDATE", (second,))
        loader = threading.Thread(target=load)
        loader.start()
        admin = admin_engine(mysql_url)
        wait_until(
            lambda: _deleting(admin, database_of(mysql_url)), 60, "the load to wait on a lock"
        )
        cursor.execute("SELECT * FROM kpi_daily_streams WHERE dt = %s FOR UPDATE", (first,))
        other.commit()
    loader.join(timeout=120)
    other.close()
    admin.dispose()

    assert outcome.get("rows") == 2
    plays = warehouse.read_table("kpi_daily_streams")["plays"].tolist()
    assert plays == [2, 2]
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert retries and "Deadlock" in retries[0], retries


def _deleting(admin: sa.Engine, database: str) -> bool:
    with admin.connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT COUNT(*) FROM information_schema.processlist WHERE db = :db "
                    "AND info LIKE 'DELETE FROM%'"
                ),
                {"db": database},
            ).scalar()
        )


class CuttableProxy:
    """A TCP relay to MariaDB; `cut()` drops every connection and refuses new ones, as a
    network failure between the platform and its warehouse would."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.target)
            except OSError:
                return
            with self.lock:
                if not self.open:
                    client.close()
                    upstream.close()
                    return
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        with self.lock:
            self.open = False
            for end in [self.listener, *self.sockets]:
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()


def test_losing_the_warehouse_mid_range_fails_clearly_and_a_rerun_finishes(
    clean_range: dict,
    mysql_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    target = sa.make_url(mysql_url)
    proxy = CuttableProxy(target.host or "127.0.0.1", target.port or 3306)
    through_proxy = target.set(port=proxy.port).render_as_string(hide_password=False)
    resources = make_resources(tmp_path, warehouse_url=through_proxy, accounts=RANGE_ACCOUNTS)
    # One day per transaction, so the cut falls between two loaded days.
    resources["warehouse"] = WarehouseResource(url=through_proxy, batch_rows=1)
    loaded: list[dt.date] = []
    replace_days = WarehouseResource.replace_days

    def replace_then_cut(
        self: WarehouseResource, table: str, days: list[dt.date], frame: pd.DataFrame
    ) -> int:
        rows = replace_days(self, table, days, frame)
        if table == "fact_streams":
            loaded.extend(days)
            if len(loaded) == 2:
                proxy.cut()
        return rows

    monkeypatch.setattr(WarehouseResource, "replace_days", replace_then_cut)
    try:
        assert not run_days(resources, RANGE_FIRST, RANGE_LAST)
    finally:
        proxy.cut()
        monkeypatch.setattr(WarehouseResource, "replace_days", replace_days)
    error = capsys.readouterr().err
    assert f"warehouse {redact(through_proxy)} is unreachable while loading fact_streams" in error
    assert "2 of 6 days were loaded before 2026-04-08 failed and stay loaded" in error
    assert "Run the same range again to finish" in error

    direct = make_resources(tmp_path, warehouse_url=mysql_url, accounts=RANGE_ACCOUNTS)
    warehouse: WarehouseResource = direct["warehouse"]
    counts = warehouse.read_frame("SELECT dt, COUNT(*) AS n FROM fact_streams GROUP BY dt")
    assert (
        [d.date() for d in pd.to_datetime(counts["dt"])]
        == loaded
        == [
            RANGE_FIRST,
            RANGE_FIRST + dt.timedelta(days=1),
        ]
    )
    for day, n in zip(loaded, counts["n"], strict=True):
        assert int(n) == len(direct["lake"].read_parquet(staging_key(day))), "whole days"
    assert read_table(direct, "kpi_daily_streams").empty, "nothing downstream ran on half"

    assert run_days(direct, RANGE_FIRST, RANGE_LAST)
    assert table_checksums(direct) == clean_range
    warehouse.engine.dispose()


# -- 20. a corrupt upload ----------------------------------------------------------------------


def test_a_corrupt_upload_is_reported_once_set_aside_with_why_and_blocks_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    lake = LakeResource(url=f"file://{tmp_path}/lake")
    defs = build_definitions(make_resources(tmp_path, accounts=0))
    instance = DagsterInstance.ephemeral()
    good = [
        {k: v for k, v in play(f"{DAY}T08:{i:02d}:00Z").items() if k != "account_id"}
        for i in range(3)
    ]
    lake.write_bytes("uploads/zoe.private/my_spotify_data.zip", b"PK\x03\x04 cut short")
    lake.write_bytes("uploads/yann/Streaming_History_Audio_2026.json", json.dumps(good).encode())

    def tick() -> SensorResult | SkipReason:
        return uploads_sensor(build_sensor_context(resources={"lake": lake}, instance=instance))

    first = tick()
    assert isinstance(first, SensorResult) and len(first.run_requests) == 2
    capfd.readouterr()
    outcomes = {
        r.tags["spotify_platform/upload"]: import_run(defs, r, instance) for r in first.run_requests
    }
    log = capfd.readouterr().err
    assert outcomes["Streaming_History_Audio_2026.json"].success, "the bad upload blocks nothing"
    (failure,) = outcomes["my_spotify_data.zip"].get_step_failure_events()
    message = failure.step_failure_data.error.message
    assert "'my_spotify_data.zip' rejected" in message and "_rejected/" in message
    assert "zoe.private" not in log + message, "logs name the file, not the account"
    rejected = "uploads/_rejected/zoe.private/my_spotify_data.zip"
    assert lake.list_keys("uploads/_rejected/") == [rejected, f"{rejected}.reason.txt"]
    reason = lake.read_bytes(f"{rejected}.reason.txt").decode()
    assert "my_spotify_data.zip" in reason and len(reason.strip()) > len("my_spotify_data.zip")

    assert isinstance(tick(), SkipReason), "reported once, not every tick"

    later_upload = "uploads/zoe.private/Streaming_History_Audio_2026.json"
    lake.write_bytes(later_upload, json.dumps(good[:2]).encode())
    later = tick()
    assert isinstance(later, SensorResult) and len(later.run_requests) == 1
    assert import_run(defs, later.run_requests[0], instance).success
    assert lake.list_keys("uploads/_imported/zoe.private/") == [
        "uploads/_imported/zoe.private/Streaming_History_Audio_2026.json"
    ]
