"""What the deployment tests share: the production instance file and its processes' setting."""

import os
import sys
from pathlib import Path

import sqlalchemy as sa
from dagster import DagsterEventType, DagsterInstance

DEPLOY_YAML = Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml"
BIN = Path(sys.executable).parent


def deployment_environment(home: Path, pg: sa.URL, mysql_url: str, lake: Path) -> dict[str, str]:
    """The environment of a deployment's processes: `deploy/dagster.yaml` on the Postgres
    database `pg`, the warehouse and lake given, the simulator on; nothing of ours inherited."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DAGSTER_", "WAREHOUSE_", "LAKE_", "SIMULATOR_", "SPOTIFY_"))
    }
    env.update(
        DAGSTER_HOME=str(home),
        DAGSTER_PG_HOST=pg.host or "127.0.0.1",
        DAGSTER_PG_PORT=str(pg.port or 5432),
        DAGSTER_PG_USERNAME=pg.username or "postgres",
        DAGSTER_PG_PASSWORD=pg.password or "",
        DAGSTER_PG_DB=pg.database or "",
        WAREHOUSE_URL=mysql_url,
        LAKE_URL=f"file://{lake}",
        SIMULATOR_ACCOUNTS="40",
        SIMULATOR_EPOCH="2026-02-20",
        ACCOUNT_HMAC_KEY="scale-out-test-key",
        PATH=f"{BIN}:{env.get('PATH', '')}",
    )
    return env


def step_failure(instance: DagsterInstance, run_id: str) -> str:
    """The first failed step of a run and its error, for an assertion's message."""
    for record in instance.get_records_for_run(run_id).records:
        event = record.event_log_entry.dagster_event
        if event and event.event_type == DagsterEventType.STEP_FAILURE:
            return f"{event.step_key}: {event.step_failure_data.error.message[:2000]}"
    return "no step failure recorded"
