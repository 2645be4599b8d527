"""`make bench` keeps working, and its paths agree: a small day through the lean path, the
seed-style path, the floor and the platform's Dagster job must leave the same rows, and the lean
path's streams must be what the raw files hold, counted here without pandas."""

from __future__ import annotations

import ast
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from tools.bench.generate import landed
from tools.bench.protocol import run_worker
from tools.bench.settings import DAY
from tools.bench.settle import PROBES, settle, shares
from tools.bench.streams_match import compare_streams
from tools.bench.timeline import TICK, Sample, intervals

REPOSITORY = Path(__file__).resolve().parents[1]
BENCH = REPOSITORY / "tools" / "bench"


@pytest.fixture(autouse=True)
def _workers_start_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests share the machine with another test process, which a settled machine excludes:
    the bench's workers start at once here, and settling is tested on its own."""
    monkeypatch.setenv("BENCH_SETTLE_LIMIT", "0")


def _raw_counts(lake: Path) -> dict[str, int]:
    """The day's raw records, those with a track name and those of them played 30 s or more,
    read with json and gzip alone."""
    counts = {"records": 0, "tracks": 0, "streams": 0}
    for path in sorted(lake.glob(f"raw/**/dt={DAY.isoformat()}/**/*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                counts["records"] += 1
                if record["master_metadata_track_name"] is not None:
                    counts["tracks"] += 1
                    counts["streams"] += record["ms_played"] >= 30_000
    return counts


def _bench_databases(server_url: str) -> set[str]:
    engine = sa.create_engine(server_url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        names = {name for (name,) in conn.execute(sa.text("SHOW DATABASES LIKE 'spt_bench_%'"))}
    engine.dispose()
    return names


def test_the_bench_day_section_runs_and_its_paths_load_the_same_rows(
    tmp_path: Path, mysql_server_url: str
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.bench",
            "--only",
            "day",
            "--events",
            "3000",
            "--mysql-url",
            mysql_server_url,
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / ".bench" / "latest.json").read_text())
    day = report["day"]
    for path in ("lean", "seed", "platform", "floor"):
        settled = day[path]["settled"]
        assert settled["settled"] is False and settled["seconds"] < 1
    assert "each path started once the machine had settled" in done.stdout
    raw = _raw_counts(tmp_path / ".bench" / "data" / "day_3000")
    assert raw["records"] == day["events"] > 2000
    assert day["same_fact_rows"] is True
    assert day["platform"]["fact_rows"] == day["seed"]["fact_rows"] == raw["records"]
    stages = {row["stage"] for row in day["platform"]["stages"]}
    assert {"fact_streams load and aggregates", "KPIs", "checks"} <= stages
    # The load's own time, from the run's log, within the step it shares with the aggregates.
    fused = next(r for r in day["platform"]["stages"] if r["stage"].startswith("fact_streams"))
    assert 0 < day["platform"]["fact_load_seconds"] <= fused["seconds"]
    # The lean path's streams, counted in its listening_events, are the raw file's; the
    # platform's are the same tuples.
    match = day["streams_match"]
    assert match["lean"]["rows"] == raw["streams"] > 1000
    assert match["identical"] is True and match["platform"] == match["lean"]
    assert match["repeated_stream_events"] == 0 and match["identical_with_repeats_once"] is True
    assert day["lean"]["listening_rows"] == raw["tracks"]
    # The floor parsed every raw record and loaded exactly the platform's rows.
    floor = day["floor"]
    assert floor["parsed_rows"] == raw["records"]
    assert floor["loaded_rows"] == floor["dump"]["rows"] == day["platform"]["fact_rows"]
    assert floor["same_rows_as_platform"] is True
    assert floor["seconds"] == floor["parse_seconds"] + floor["load_seconds"] > 0
    assert day["floor_multiple"] == day["platform"]["seconds"] / floor["seconds"]
    for text in ("lean path", "seed-style baseline", "floor", "platform path", "target"):
        assert text in done.stdout
    assert "streams identical to the lean path's streams" in done.stdout
    # It drops the databases it made (others' bench runs may share the server).
    assert len(report["databases"]) == 4
    assert not set(report["databases"]) & _bench_databases(mysql_server_url)


def test_the_bench_modules_stay_small_and_borrow_no_private_names() -> None:
    long, borrowed = {}, []
    for path in sorted(BENCH.glob("*.py")):
        text = path.read_text()
        if len(text.splitlines()) > 500:
            long[path.name] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
                "tools",
                "spotify_platform",
            ):
                borrowed += [
                    f"{path.name}: {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_")
                ]
    assert len(list(BENCH.glob("*.py"))) > 5
    assert long == {} and borrowed == []


def test_the_lean_worker_writes_keyless_text_tables_and_the_raw_files_streams(
    tmp_path: Path, mysql_url: str
) -> None:
    lake = tmp_path / "lake"
    landed(lake, DAY, 1, 2000)
    raw = _raw_counts(lake)
    result = run_worker("lean", {"lake": str(lake), "day": DAY.isoformat(), "url": mysql_url})
    assert [row["stage"] for row in result["stages"]] == [
        "read_json",
        "clean",
        "to_sql listening_events",
        "KPIs (pandas, to_sql)",
    ]
    assert result["raw_rows"] == raw["records"] and result["process_peak_rss"] > 0
    engine = sa.create_engine(mysql_url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        streams = conn.execute(
            sa.text("SELECT COUNT(*) FROM listening_events WHERE is_stream")
        ).scalar_one()
        rows = conn.execute(sa.text("SELECT COUNT(*) FROM listening_events")).scalar_one()
        indexes = conn.execute(sa.text("SHOW INDEX FROM listening_events")).all()
        types = dict(
            conn.execute(
                sa.text(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = DATABASE() AND table_name = 'listening_events'"
                )
            ).all()
        )
        daily = conn.execute(sa.text("SELECT streams FROM lean_daily_kpis")).scalar_one()
        top = conn.execute(
            sa.text("SELECT `rank`, streams FROM lean_top_artists ORDER BY `rank`")
        ).all()
    engine.dispose()
    assert streams == daily == result["stream_rows"] == raw["streams"] > 500
    assert rows == raw["tracks"]
    assert indexes == [] and types["track_name"] == types["artist_name"] == "text"
    assert 0 < len(top) <= 50 and [r for r, _ in top] == list(range(1, len(top) + 1))
    assert [n for _, n in top] == sorted((n for _, n in top), reverse=True)


def test_the_streams_comparison_names_a_repeated_raw_event_instead_of_hiding_it(
    tmp_path: Path, mysql_url: str
) -> None:
    stream = {
        "account_id": "a",
        "ended_at": pd.Timestamp("2026-03-10 09:08:59"),
        "track_uri": "spotify:track:x",
        "ms_played": 103_499,
        "track_name": "Éternel Saudade 🔥",
        "artist_name": "Leon Trio",
        "is_stream": True,
    }
    other = {**stream, "account_id": "b", "ms_played": 40_000}
    skip = {**stream, "ms_played": 5_000, "is_stream": False}
    engine = sa.create_engine(mysql_url, poolclass=sa.NullPool)
    # The lean side has the first stream twice (a repeated raw event) and a skip.
    pd.DataFrame([stream, stream, other, skip]).to_sql("listening_events", engine, index=False)
    pd.DataFrame([stream, other, skip]).to_sql("fact_streams", engine, index=False)
    engine.dispose()
    match = compare_streams(mysql_url, mysql_url, tmp_path, DAY)
    assert match["identical"] is False
    assert match["lean"]["rows"] == 3 and match["platform"]["rows"] == 2
    assert match["repeated_stream_events"] == 1
    assert match["identical_with_repeats_once"] is True
    assert match["lean_distinct_events"] == match["platform"]
    difference = match["difference"]
    assert (difference["only_lean"], difference["only_platform"]) == (1, 0)
    [example] = difference["examples"]
    assert example["track_name"] == stream["track_name"]
    assert (example["lean"], example["platform"]) == ("2", "1")


def test_busy_and_steal_shares_come_from_two_readings_of_proc_stat() -> None:
    # user nice system idle iowait irq softirq steal guest guest_nice, in jiffies
    before = [100, 0, 20, 500, 5, 0, 1, 7, 0, 0]
    after = [150, 0, 30, 530, 10, 0, 1, 17, 0, 0]
    busy, steal = shares(before, after)
    # 105 jiffies passed: 60 busy (user 50, system 10), 30 idle, 5 iowait, 10 steal.
    assert busy == 60 / 105
    assert steal == 10 / 105


def test_the_timeline_gives_cores_in_use_between_samples() -> None:
    # user nice system idle iowait irq softirq steal guest guest_nice, in jiffies
    first = Sample(100.0, [100, 0, 20, 500, 5, 0, 1, 7, 0, 0], server=1000)
    # Half a second on two cores later: TICK jiffies in all, of which 60% busy, 10% steal.
    busy, steal, idle = round(0.6 * TICK), round(0.1 * TICK), round(0.3 * TICK)
    second = Sample(100.5, [100 + busy, 0, 20, 500 + idle, 5, 0, 1, 7 + steal, 0, 0], 1040)
    repeated = Sample(100.5, second.cpu, 1040)
    third = Sample(101.0, [2 * busy + 100, 0, 20, 500 + 2 * idle, 5, 0, 1, 7 + steal, 0, 0], None)
    rows = intervals([first, second, repeated, third], start=99.0, cores=2)
    assert [row["from"] for row in rows] == [1.0, 1.5]
    assert rows[0]["busy_cores"] == pytest.approx(2 * busy / (busy + steal + idle))
    assert rows[0]["steal_cores"] == pytest.approx(2 * steal / (busy + steal + idle))
    assert rows[0]["server_cores"] == pytest.approx(40 / TICK / 0.5)
    # No steal in the second interval, and the server was not found at its end.
    assert rows[1]["steal_cores"] == 0
    assert rows[1]["server_cores"] is None


def test_settling_gives_up_at_its_limit_and_says_so() -> None:
    result = settle(limit=2.0)
    # Each probe rests and spins about a second: two seconds cannot hold PROBES quiet ones.
    assert PROBES > 2
    assert result["settled"] is False
    assert 2.0 <= result["seconds"] < 4.5
    assert 0.0 <= result["worst_steal_share"] <= 1.0
