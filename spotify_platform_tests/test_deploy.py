"""The deployment in deploy/, run as its compose file runs it but without containers.

`dagster code-server start`, `dagster-webserver` on deploy/workspace.yaml (a gRPC workspace) and
`dagster-daemon run` on deploy/dagster.yaml with Postgres storage; one partition of the daily
job is launched through the webserver's GraphQL API, queued, started by the daemon in the code
server, and must succeed with every asset check it planned passing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

from spotify_platform.defs.partitions import PARTITION_TAG
from spotify_platform.defs.resources.warehouse import WarehouseResource
from spotify_platform_tests.support.deployment import (
    DEPLOY_YAML,
    deployment_environment,
    step_failure,
)

DEPLOY = DEPLOY_YAML.parent
DAY = "2026-03-02"
LOCATION = "spotify_platform"
SECRETS = ("DAGSTER_PG_PASSWORD", "WAREHOUSE_URL", "ACCOUNT_HMAC_KEY", "AWS_SECRET_ACCESS_KEY")

WORKSPACE_STATUS = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _started(
    name: str, command: list[str], env: dict[str, str], logs: Path
) -> Iterator[subprocess.Popen]:
    """A process in a session of its own, logging to logs/<name>.log; on exit its whole group
    (the run workers and step processes the code server starts stay in it) gets SIGINT, then
    SIGKILL."""
    out = (logs / f"{name}.log").open("w")
    proc = subprocess.Popen(
        command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=30)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        out.close()


def _check_alive(procs: dict[str, subprocess.Popen], logs: Path) -> None:
    for name, proc in procs.items():
        if proc.poll() is not None:
            pytest.fail(f"{name} exited: {(logs / f'{name}.log').read_text()[-3000:]}")


def _wait_for_code_server(
    port: int, env: dict[str, str], procs: dict[str, subprocess.Popen], logs: Path
) -> None:
    """Until `dagster api grpc-health-check` (compose's health check) passes."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        _check_alive(procs, logs)
        check = subprocess.run(
            ["dagster", "api", "grpc-health-check", "-p", str(port)],
            env=env,
            capture_output=True,
            timeout=60,
        )
        if check.returncode == 0:
            return
        time.sleep(1)
    pytest.fail("the code server did not become healthy within 120 s")


def _wait_for_location(port: int, procs: dict[str, subprocess.Popen], logs: Path) -> None:
    """Until the webserver answers and has loaded the code location from the gRPC server."""
    deadline = time.monotonic() + 120
    last = None
    while time.monotonic() < deadline:
        _check_alive(procs, logs)
        try:
            answer = requests.post(
                f"http://127.0.0.1:{port}/graphql", json={"query": WORKSPACE_STATUS}, timeout=10
            ).json()
            entries = answer["data"]["workspaceOrError"]["locationEntries"]
            last = entries
            loaded = [e for e in entries if e["name"] == LOCATION and e["loadStatus"] == "LOADED"]
            if loaded:
                assert loaded[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation", last
                return
        except (requests.ConnectionError, KeyError, TypeError, ValueError):
            pass
        time.sleep(1)
    pytest.fail(f"the code location did not load through the webserver: {last}")


def _wait_for_run(
    client: DagsterGraphQLClient,
    run_id: str,
    procs: dict[str, subprocess.Popen],
    logs: Path,
    timeout_s: float = 240,
) -> DagsterRunStatus:
    done = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    deadline = time.monotonic() + timeout_s
    status = None
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id)
        if status in done:
            return status
        _check_alive(procs, logs)
        time.sleep(2)
    pytest.fail(f"run {run_id} still {status} after {timeout_s} s")


def test_deploy_files_serve_the_workspace_module_and_hold_no_secret() -> None:
    """Dockerfile, compose file and Helm values start the module `dagster dev` loads, under one
    location name and port, and take secrets from outside."""
    local = yaml.safe_load((DEPLOY.parent / "workspace.yaml").read_text())["load_from"][0]
    module = local["python_module"]["module_name"]
    user_code = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["user_code"]
    command = user_code["command"]
    assert command[command.index("-m") + 1] == module
    assert command[command.index("--location-name") + 1] == LOCATION
    dockerfile = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    (cmd,) = [line for line in dockerfile.splitlines() if line.startswith("CMD ")]
    assert json.loads(cmd.removeprefix("CMD ")) == command
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["codeServerArgs"][deployment["codeServerArgs"].index("-m") + 1] == module
    assert str(deployment["port"]) == command[command.index("-p") + 1]
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())["load_from"][0]
    assert workspace["grpc_server"]["location_name"] == LOCATION
    # Secrets come from the environment in compose and from a Kubernetes secret under Helm.
    for name in SECRETS:
        assert user_code["environment"][name].startswith(f"${{{name}"), name
    named = {item["name"] for item in deployment.get("env", [])}
    assert not named & set(SECRETS)
    assert deployment["envSecrets"]


def test_a_partition_launched_through_graphql_succeeds_with_its_checks(
    tmp_path: Path, postgres_database: sa.URL, mysql_url: str
) -> None:
    home, lake, logs = tmp_path / "home", tmp_path / "lake", tmp_path / "logs"
    for folder in (home, lake, logs):
        folder.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    grpc_port, web_port = _free_port(), _free_port()
    env = deployment_environment(home, postgres_database, mysql_url, lake)
    env.update(DAGSTER_CODE_SERVER_HOST="127.0.0.1", DAGSTER_CODE_SERVER_PORT=str(grpc_port))

    workspace = str(DEPLOY / "workspace.yaml")
    commands = {
        "user_code": [
            "dagster", "code-server", "start", "-h", "127.0.0.1", "-p", str(grpc_port),
            "-m", "spotify_platform.definitions", "--location-name", LOCATION,
        ],
        "webserver": ["dagster-webserver", "-h", "127.0.0.1", "-p", str(web_port), "-w", workspace],
        "daemon": ["dagster-daemon", "run", "-w", workspace],
    }  # fmt: skip
    with ExitStack() as stack:
        code_server = _started("user_code", commands["user_code"], env, logs)
        procs = {"user_code": stack.enter_context(code_server)}
        # compose.yaml starts the webserver and the daemon once the code server is healthy.
        _wait_for_code_server(grpc_port, env, procs, logs)
        for name in ("webserver", "daemon"):
            procs[name] = stack.enter_context(_started(name, commands[name], env, logs))
        _wait_for_location(web_port, procs, logs)
        client = DagsterGraphQLClient("127.0.0.1", port_number=web_port, timeout=60)
        run_id = client.submit_job_execution(
            "daily_pipeline",
            repository_location_name=LOCATION,
            tags={PARTITION_TAG: DAY},
        )
        status = _wait_for_run(client, run_id, procs, logs)

    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        with DagsterInstance.get() as instance:
            assert status == DagsterRunStatus.SUCCESS, step_failure(instance, run_id)
            run = instance.get_run_by_id(run_id)
            assert run.tags[PARTITION_TAG] == DAY
            events = [
                record.event_log_entry.dagster_event
                for record in instance.get_records_for_run(run_id).records
                if record.event_log_entry.dagster_event
            ]
    types = [event.event_type for event in events]
    # Queued by the webserver, started by the daemon.
    assert types.index(DagsterEventType.RUN_ENQUEUED) < types.index(DagsterEventType.RUN_STARTING)
    planned = {
        event.event_specific_data.asset_check_key
        for event in events
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
    }
    evaluated = {
        event.event_specific_data.asset_check_key: event.event_specific_data.passed
        for event in events
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    }
    assert planned
    assert set(evaluated) == planned
    assert all(evaluated.values()), [key for key, ok in evaluated.items() if not ok]

    warehouse = WarehouseResource(url=mysql_url)
    loaded = warehouse.read_frame("SELECT dt, COUNT(*) AS n FROM fact_streams GROUP BY dt")
    assert [str(d)[:10] for d in loaded["dt"]] == [DAY]
    assert (loaded["n"] > 0).all()
    warehouse.engine.dispose()
