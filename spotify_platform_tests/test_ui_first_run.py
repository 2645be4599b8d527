"""A new user's first run: `dagster dev` on a fresh instance and an empty warehouse, then the
UI's "Materialize all" of yesterday's partition of the daily job, through the webserver's
GraphQL API. No `init-warehouse` or any other command runs before it."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from dagster import DagsterEventType, DagsterInstance

from spotify_platform import migrations
from spotify_platform.definitions import build_definitions
from spotify_platform.tables import TABLES
from spotify_platform_tests.private_mariadb import free_port

BIN = Path(sys.executable).parent
ACCOUNTS = "40"
START_TIMEOUT_S = 240
RUN_TIMEOUT_S = 1200

REPOSITORIES = """
query {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
    ... on PythonError { message }
  }
}
"""
LAUNCH = """
mutation($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
STATUS = """
query($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status } }
}
"""


def _graphql(base: str, query: str, variables: dict | None = None) -> dict:
    answer = requests.post(
        f"{base}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
    )
    answer.raise_for_status()
    body = answer.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def _wait_for_job(base: str, server: subprocess.Popen, log: Path) -> dict:
    """The repository holding daily_pipeline, once the webserver has loaded the code."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert server.poll() is None, f"dagster dev exited:\n{log.read_text()[-4000:]}"
        try:
            answer = _graphql(base, REPOSITORIES)["repositoriesOrError"]
        except requests.RequestException:
            time.sleep(1)
            continue
        for repository in answer.get("nodes", []):
            if any(job["name"] == "daily_pipeline" for job in repository["jobs"]):
                return repository
        time.sleep(1)
    raise AssertionError(f"the code location did not load:\n{log.read_text()[-4000:]}")


def _wait_for_run(base: str, run_id: str, log: Path) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        status = _graphql(base, STATUS, {"runId": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(2)
    raise AssertionError(f"run {run_id} did not finish:\n{log.read_text()[-4000:]}")


def _failures(instance: DagsterInstance, run_id: str) -> str:
    lines = []
    for event in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        error = event.dagster_event.event_specific_data.error
        lines.append(f"{event.dagster_event.step_key}: {error.message.strip()[:500]}")
    return "\n".join(lines)


@pytest.mark.parametrize("backend", ["sqlite", "mariadb"])
def test_materialize_all_from_the_ui_on_a_fresh_instance_and_empty_warehouse(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    clone = tmp_path / "clone"
    home = clone / ".data" / "dagster_home"
    clone.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAREHOUSE_", "LAKE_"))}
    env.update(DAGSTER_HOME=str(home), SIMULATOR_ACCOUNTS=ACCOUNTS)
    if backend == "mariadb":
        url = request.getfixturevalue("mysql_url")
        env["WAREHOUSE_URL"] = url
    else:
        url = f"sqlite:///{clone / '.data' / 'warehouse.db'}"  # the default, relative to clone
    # What `make dev` does: the instance's dagster.yaml, then `dagster dev`.
    subprocess.run(
        [sys.executable, "-m", "spotify_platform.event_storage", str(home)], env=env, check=True
    )
    port = free_port()
    log = tmp_path / "dagster_dev.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [BIN / "dagster", "dev", "-m", "spotify_platform.definitions", "-h", "127.0.0.1"]
            + ["-p", str(port)],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    base = f"http://127.0.0.1:{port}"
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    try:
        repository = _wait_for_job(base, server, log)
        launched = _graphql(
            base,
            LAUNCH,
            {
                "executionParams": {
                    "selector": {
                        "repositoryLocationName": repository["location"]["name"],
                        "repositoryName": repository["name"],
                        "jobName": "daily_pipeline",
                    },
                    "executionMetadata": {
                        "tags": [{"key": "dagster/partition", "value": yesterday}]
                    },
                }
            },
        )["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        status = _wait_for_run(base, run_id, log)
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        with DagsterInstance.get() as instance:
            assert status == "SUCCESS", _failures(instance, run_id)
            planned = {
                event.dagster_event.event_specific_data.asset_check_key
                for event in instance.all_logs(
                    run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
                )
            }
            evaluations = [
                event.dagster_event.event_specific_data
                for event in instance.all_logs(
                    run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
                )
            ]
    job = build_definitions().resolve_job_def("daily_pipeline")
    assert planned == set(job.asset_layer.asset_graph.asset_check_keys)
    assert {e.asset_check_key for e in evaluations} == planned
    failed = [e.asset_check_key.to_user_string() for e in evaluations if not e.passed]
    assert failed == []

    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            assert migrations.current(conn) == migrations.head()
            assert set(TABLES) <= set(sa.inspect(conn).get_table_names())
            day = dt.date.fromisoformat(yesterday)
            streams = conn.execute(
                sa.select(sa.func.count())
                .select_from(TABLES["fact_streams"])
                .where(TABLES["fact_streams"].c.dt == day)
            ).scalar()
            kpi = conn.execute(
                sa.select(TABLES["kpi_daily_streams"].c.plays).where(
                    TABLES["kpi_daily_streams"].c.dt == day
                )
            ).scalar()
    finally:
        engine.dispose()
    assert streams > 0
    assert kpi == streams
