"""A new user's first run: `dagster dev` on a fresh instance and an empty warehouse, then the
UI's "Materialize all" of yesterday's partition of the daily job, or a backfill of a range of
days, through the webserver's GraphQL API. No `init-warehouse` or any other command runs
before it."""

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from dagster import AssetKey, DagsterEventType, DagsterInstance

from spotify_platform.core.contracts.tables import TABLES
from spotify_platform.core.warehouse import migrations
from spotify_platform.definitions import build_definitions
from spotify_platform_tests.private_mariadb import free_port

BIN = Path(sys.executable).parent
ACCOUNTS = "40"
START_TIMEOUT_S = 240
RUN_TIMEOUT_S = 1200
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

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
BACKFILL = """
mutation($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}
"""
BACKFILL_STATUS = """
query($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename ... on PartitionBackfill { status runs(limit: 100) { runId status } }
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


def _wait_for_backfill(base: str, backfill_id: str, log: Path) -> dict[str, str]:
    """The backfill's runs and their statuses, once the backfill is done with them."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        backfill = _graphql(base, BACKFILL_STATUS, {"backfillId": backfill_id})
        backfill = backfill["partitionBackfillOrError"]
        runs = {run["runId"]: run["status"] for run in backfill["runs"]}
        finished = all(s in ("SUCCESS", "FAILURE", "CANCELED") for s in runs.values())
        if backfill["status"] != "REQUESTED" and finished:
            return runs
        time.sleep(2)
    raise AssertionError(f"backfill {backfill_id} did not finish:\n{log.read_text()[-4000:]}")


def _failures(instance: DagsterInstance, run_id: str) -> str:
    lines = []
    for event in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        error = event.dagster_event.event_specific_data.error
        lines.append(f"{event.dagster_event.step_key}: {error.message.strip()[:500]}")
    return "\n".join(lines)


@dataclass
class DagsterDev:
    base: str
    home: Path
    warehouse_url: str
    log: Path
    repository: dict

    def selector(self) -> dict:
        return {
            "repositoryLocationName": self.repository["location"]["name"],
            "repositoryName": self.repository["name"],
        }


@pytest.fixture(params=["sqlite", "mariadb"])
def dagster_dev(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DagsterDev]:
    """`make dev` in a new folder: a fresh DAGSTER_HOME and an empty warehouse (SQLite at its
    default place, or a new MariaDB database), and no other command."""
    clone = tmp_path / "clone"
    home = clone / ".data" / "dagster_home"
    clone.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAREHOUSE_", "LAKE_"))}
    env.update(DAGSTER_HOME=str(home), SIMULATOR_ACCOUNTS=ACCOUNTS)
    if request.param == "mariadb":
        url = request.getfixturevalue("mysql_url")
        env["WAREHOUSE_URL"] = url
    else:
        url = f"sqlite:///{clone / '.data' / 'warehouse.db'}"  # the default, relative to clone
    subprocess.run(
        [sys.executable, "-m", "spotify_platform.defs.event_storage", str(home)],
        env=env,
        check=True,
    )
    with _running(clone, env, tmp_path / "dagster_dev.log") as (base, repository):
        yield DagsterDev(base, home, url, tmp_path / "dagster_dev.log", repository)


@contextmanager
def _running(clone: Path, env: dict, log: Path) -> Iterator[tuple[str, dict]]:
    port = free_port()
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
    try:
        yield base, _wait_for_job(base, server, log)
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _assert_all_checks_passed(
    dev: DagsterDev, run_ids: list[str], assets: set[AssetKey] | None = None
) -> None:
    """Each run succeeded, ran every check of `assets` (else of the daily job), all passed."""
    if assets is None:
        job = build_definitions().resolve_job_def("daily_pipeline")
        expected = set(job.asset_layer.asset_graph.asset_check_keys)
    else:
        graph = build_definitions().resolve_asset_graph()
        expected = {key for key in graph.asset_check_keys if key.asset_key in assets}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(dev.home))
        with DagsterInstance.get() as instance:
            for run_id in run_ids:
                assert instance.get_run_by_id(run_id).is_success, _failures(instance, run_id)
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
                assert planned == expected
                assert {e.asset_check_key for e in evaluations} == planned
                failed = [e.asset_check_key.to_user_string() for e in evaluations if not e.passed]
                assert failed == []


def _schema_upgrades(dev: DagsterDev, run_id: str) -> list[str]:
    """The run's log lines of the warehouse set-up that upgraded the schema."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(dev.home))
        with DagsterInstance.get() as instance:
            return [
                entry.user_message
                for entry in instance.all_logs(run_id)
                if "schema upgraded" in entry.user_message
            ]


def _assert_loaded(url: str, days: list[dt.date]) -> dict[str, int]:
    """The warehouse is at the newest revision and holds the days' streams and KPIs; the
    number of plays of each day."""
    facts, daily = TABLES["fact_streams"], TABLES["kpi_daily_streams"]
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            assert migrations.current(conn) == migrations.head()
            assert set(TABLES) <= set(sa.inspect(conn).get_table_names())
            streams = dict(
                conn.execute(
                    sa.select(facts.c.dt, sa.func.count())
                    .where(facts.c.dt.in_(days))
                    .group_by(facts.c.dt)
                ).all()
            )
            plays = dict(
                conn.execute(sa.select(daily.c.dt, daily.c.plays).where(daily.c.dt.in_(days))).all()
            )
    finally:
        engine.dispose()
    assert sorted(str(day)[:10] for day in streams) == [day.isoformat() for day in days]
    assert all(count > 0 for count in streams.values())
    assert {str(day)[:10]: n for day, n in plays.items()} == {
        str(day)[:10]: n for day, n in streams.items()
    }
    return {str(day)[:10]: int(n) for day, n in streams.items()}


def _partition_row_counts(dev: DagsterDev, key: AssetKey) -> dict[str, int]:
    """Each partition's `dagster/partition_row_count`, as the asset page shows it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(dev.home))
        with DagsterInstance.get() as instance:
            records = instance.fetch_materializations(key, limit=100).records
            return {
                r.partition_key: r.asset_materialization.metadata[
                    "dagster/partition_row_count"
                ].value
                for r in records
            }


def _screenshot(base: str, path: str, target: Path, profile: Path) -> None:
    """The page as headless Chromium draws it, where Chromium is installed (CI installs it).
    The UI's welcome dialog, shown once per instance, is marked seen first."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return
    assert _graphql(base, "mutation { setNuxSeen }")["setNuxSeen"] is True
    url = base + path
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={profile}", "--window-size=1440,1100",
         "--virtual-time-budget=20000", f"--screenshot={target}", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert target.stat().st_size > 10_000


def test_materialize_all_from_the_ui_on_a_fresh_instance_and_empty_warehouse(
    dagster_dev: DagsterDev,
) -> None:
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    launched = _graphql(
        dagster_dev.base,
        LAUNCH,
        {
            "executionParams": {
                "selector": {**dagster_dev.selector(), "jobName": "daily_pipeline"},
                "executionMetadata": {
                    "tags": [{"key": "dagster/partition", "value": yesterday.isoformat()}]
                },
            }
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    _wait_for_run(dagster_dev.base, run_id, dagster_dev.log)
    _assert_all_checks_passed(dagster_dev, [run_id])
    # The run's first warehouse step migrated the empty warehouse; the steps after only read.
    upgrades = _schema_upgrades(dagster_dev, run_id)
    assert len(upgrades) == 1
    assert upgrades[0].endswith(f"from revision (none) to {migrations.head()}")
    _assert_loaded(dagster_dev.warehouse_url, [yesterday])


@pytest.mark.parametrize("dagster_dev", ["sqlite"], indirect=True)
def test_backfilling_a_range_from_the_ui_on_a_fresh_instance_and_empty_warehouse(
    dagster_dev: DagsterDev,
) -> None:
    last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    days = [last - dt.timedelta(days=back) for back in (2, 1, 0)]
    assets = set(
        build_definitions().resolve_job_def("daily_pipeline").asset_layer.selected_asset_keys
    )
    launched = _graphql(
        dagster_dev.base,
        BACKFILL,
        {
            "backfillParams": {
                "partitionNames": [day.isoformat() for day in days],
                "assetSelection": [{"path": list(key.path)} for key in sorted(assets)],
                "fromFailure": False,
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    runs = _wait_for_backfill(dagster_dev.base, launched["backfillId"], dagster_dev.log)
    assert runs
    # A backfill of assets runs all their checks, the freshness checks the job leaves out too.
    _assert_all_checks_passed(dagster_dev, list(runs), assets)
    plays = _assert_loaded(dagster_dev.warehouse_url, days)
    # One run over three days: each day's own row count on its own materialization.
    facts = AssetKey(["warehouse", "fact_streams"])
    assert len(runs) == 1
    assert _partition_row_counts(dagster_dev, facts) == plays
    assert len(set(plays.values())) == len(days)
    _screenshot(
        dagster_dev.base,
        "/assets/warehouse/fact_streams",
        ARTIFACTS / "asset_page_fact_streams.png",
        dagster_dev.home.parent / "chromium",
    )
