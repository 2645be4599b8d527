"""`make bench` keeps working, and its two paths agree: a small day through the seed-style
path and through the platform's Dagster job must leave the same fact_streams rows."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

REPOSITORY = Path(__file__).resolve().parents[1]
BENCH = REPOSITORY / "tools" / "bench"


def _bench_databases(server_url: str) -> set[str]:
    engine = sa.create_engine(server_url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        names = {name for (name,) in conn.execute(sa.text("SHOW DATABASES LIKE 'spt_bench_%'"))}
    engine.dispose()
    return names


def test_the_bench_day_section_runs_and_both_paths_load_the_same_rows(
    tmp_path: Path, mysql_server_url: str
) -> None:
    before = _bench_databases(mysql_server_url)
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
    assert day["same_fact_rows"] is True
    assert day["platform"]["fact_rows"] == day["seed"]["fact_rows"] > 2000
    stages = {row["stage"] for row in day["platform"]["stages"]}
    assert {"fact_streams load", "KPIs", "aggregates", "checks"} <= stages
    assert "target" in done.stdout and "same fact_streams rows" in done.stdout
    assert _bench_databases(mysql_server_url) <= before  # it drops the databases it made


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
