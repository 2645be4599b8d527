"""Past one machine by configuration: `deploy/dagster.yaml` as the instance, Postgres storage,
runs queued by the QueuedRunCoordinator and launched by the daemon, steps in processes of
their own (the multiprocess executor), warehouse steps held to the `warehouse` pool's limit.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, EventRecordsFilter

from spotify_platform.defs.partitions import BACKFILL_TAG, PARTITION_TAG
from spotify_platform.defs.resources.warehouse import WAREHOUSE_POOL, WarehouseResource
from spotify_platform_tests.support.deployment import (
    DEPLOY_YAML,
    deployment_environment,
    step_failure,
)

DAYS = ["2026-03-02", "2026-03-03"]
BIN = Path(sys.executable).parent


def _overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = most = 0
    for _, step in edges:
        open_now += step
        most = max(most, open_now)
    return most


def test_deploy_yaml_is_a_valid_instance_with_queue_pool_and_postgres(
    tmp_path: Path, postgres_database: sa.URL, mysql_url: str, monkeypatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")
    for key, value in deployment_environment(home, postgres_database, mysql_url, tmp_path).items():
        monkeypatch.setenv(key, value)
    with DagsterInstance.get() as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        limit = yaml.safe_load(DEPLOY_YAML.read_text())["concurrency"]["pools"]["default_limit"]
        assert instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).limit == limit


def test_a_backfill_fans_out_through_the_queue_onto_postgres_storage(
    tmp_path: Path, postgres_database: sa.URL, mysql_url: str
) -> None:
    home, lake = tmp_path / "home", tmp_path / "lake"
    home.mkdir()
    lake.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")
    env = deployment_environment(home, postgres_database, mysql_url, lake)
    submitted = subprocess.run(
        [
            "dagster",
            "job",
            "backfill",
            "-m",
            "spotify_platform.definitions",
            "-j",
            "daily_pipeline",
            "--partitions",
            ",".join(DAYS),
            "--noprompt",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert submitted.returncode == 0, submitted.stderr[-3000:]

    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen(
        ["dagster-daemon", "run", "-m", "spotify_platform.definitions"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            with DagsterInstance.get() as instance:
                runs = _wait_for_runs(instance, len(DAYS), daemon, tmp_path / "daemon.log")
                _check_runs(instance, runs)
    finally:
        os.killpg(daemon.pid, signal.SIGINT)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        log.close()

    warehouse = WarehouseResource(url=mysql_url)
    loaded = warehouse.read_frame("SELECT dt, COUNT(*) AS n FROM fact_streams GROUP BY dt")
    assert sorted(str(d)[:10] for d in loaded["dt"]) == DAYS
    assert (loaded["n"] > 0).all()
    daily = warehouse.read_frame("SELECT dt FROM kpi_daily_streams ORDER BY dt")
    assert [str(d)[:10] for d in daily["dt"]] == DAYS
    warehouse.engine.dispose()


def _wait_for_runs(instance, count: int, daemon: subprocess.Popen, log: Path, timeout_s=900):
    """The backfill's runs once they are all done; the daemon's sensors may launch others (the
    freshness checks), which are not this test's business."""
    done = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = [run for run in instance.get_runs() if BACKFILL_TAG in run.tags]
        if len(runs) >= count and all(run.status in done for run in runs):
            return runs
        if daemon.poll() is not None:
            pytest.fail(f"the daemon exited: {log.read_text()[-3000:]}")
        time.sleep(2)
    pytest.fail(f"runs did not finish: {[(r.run_id, r.status) for r in instance.get_runs()]}")


def _check_runs(instance, runs) -> None:
    assert len(runs) == len(DAYS)
    assert sorted(run.tags[PARTITION_TAG] for run in runs) == DAYS
    assert len({run.tags[BACKFILL_TAG] for run in runs}) == 1
    for run in runs:
        assert run.status == DagsterRunStatus.SUCCESS, step_failure(instance, run.run_id)
        # Queued by the submitting CLI, then launched by the daemon's run queue.
        statuses = [
            record.event_log_entry.dagster_event.event_type
            for record in instance.get_records_for_run(run.run_id).records
            if record.event_log_entry.dagster_event
        ]
        assert statuses.index(DagsterEventType.RUN_ENQUEUED) < statuses.index(
            DagsterEventType.RUN_STARTING
        )

    pool_steps = _pool_steps()
    starts: dict[tuple[str, str], tuple[float, int]] = {}
    intervals: list[tuple[float, float]] = []
    step_pids: dict[str, set[int]] = {}
    steps: dict[str, int] = {}
    for record in instance.get_event_records(
        EventRecordsFilter(event_type=DagsterEventType.STEP_START)
    ):
        entry = record.event_log_entry
        starts[(entry.run_id, entry.step_key)] = (entry.timestamp, entry.dagster_event.pid)
        step_pids.setdefault(entry.run_id, set()).add(entry.dagster_event.pid)
        steps[entry.run_id] = steps.get(entry.run_id, 0) + 1
    for event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
        for record in instance.get_event_records(EventRecordsFilter(event_type=event_type)):
            entry = record.event_log_entry
            if entry.step_key in pool_steps and (entry.run_id, entry.step_key) in starts:
                intervals.append((starts[(entry.run_id, entry.step_key)][0], entry.timestamp))
    # The multiprocess executor: each step in a process of its own.
    for run in runs:
        assert len(step_pids[run.run_id]) == steps[run.run_id] > 5, step_pids[run.run_id]
    limit = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).limit
    assert intervals
    assert _overlap(intervals) <= limit


def _pool_steps() -> set[str]:
    """Step keys of the daily pipeline's steps in the warehouse pool."""
    from spotify_platform.definitions import build_definitions

    job = build_definitions().resolve_job_def("daily_pipeline")
    return {node.name for node in job.graph.node_defs if node.pool == WAREHOUSE_POOL}


def test_overlap_counts_the_most_intervals_open_at_once() -> None:
    assert _overlap([(0, 2), (1, 3), (2.5, 4)]) == 2
    assert _overlap([(0, 1), (2, 3)]) == 1
    assert _overlap([(0, 10), (1, 2), (1.5, 3), (1.8, 2.2)]) == 4
