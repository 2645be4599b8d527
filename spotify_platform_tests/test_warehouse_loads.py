"""Loading the warehouse when things go wrong: a load killed mid-statement, rows that cannot
be written, a connection killed, a deadlock, and a million rows through small packets.

Against MariaDB: the shared server, or a private `mariadbd` where a case needs its own
max_allowed_packet.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pymysql
import pytest
import sqlalchemy as sa

from spotify_platform.core.lake.layout import (
    staging_key,
)
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform.defs.resources.warehouse import WarehouseResource
from spotify_platform_tests.harness import (
    synthetic_facts,
)
from spotify_platform_tests.private_mariadb import PrivateMariaDB
from spotify_platform_tests.support.mariadb import (
    admin_engine,
    database_of,
    wait_until,
)

DAY = dt.date(2026, 3, 2)
GIB = 2**30


# -- a crash in the middle of a MySQL load -----------------------------------------------------

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


# -- a deadlock --------------------------------------------------------------------------------

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


# -- a million rows, small packets, bounded memory ---------------------------------------------

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
