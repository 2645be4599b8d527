"""Which engine stages the days (`PROCESSING_ENGINE`), and the Spark engine started through
Dagster Pipes.

With `pandas` (the default) staging runs in the step's process (`stage_lake_days`). With
`spark` the step starts the Spark job (`spotify_platform/spark/job.py`): by default as
`spark-submit` on this machine through `PipesSubprocessClient`; with an EMR Serverless
application configured, as a job run of that application through `PipesEMRServerlessClient`.
Either way the job writes each day's staged rows, quarantine, stats and aggregates to the lake,
and the step reads the stats from there, so metadata and checks are built by the same code
for both engines. Settings are read when a step runs, so a test or a run can switch engines.
"""

import datetime as dt
import importlib.util
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from dagster import AssetExecutionContext, Failure, PipesSubprocessClient

from spotify_platform.core.lake.aggregated import clear_aggregates
from spotify_platform.core.lake.layout import staging_stats_key
from spotify_platform.core.lake.store import LakeStore
from spotify_platform.core.progress import Log
from spotify_platform.core.staging.lake_days import stage_lake_days

ENGINES = ("pandas", "spark")
FACT_STREAMS_MODES = ("load", "skip")
TOTALS = ("raw_records", "staged_rows", "quarantined_rows", "duplicates_removed")


def processing_engine() -> str:
    """`PROCESSING_ENGINE`: `pandas` (default) or `spark`."""
    engine = os.environ.get("PROCESSING_ENGINE", "pandas").strip().lower() or "pandas"
    if engine not in ENGINES:
        raise ValueError(f"PROCESSING_ENGINE={engine!r}: expected one of {', '.join(ENGINES)}")
    return engine


def aggregates_from_lake() -> bool:
    """Whether the aggregate assets load the per-day aggregates the engine wrote to the lake
    (the Spark engine) rather than build them from the staged rows."""
    return processing_engine() == "spark"


def fact_streams_mode() -> str:
    """`WAREHOUSE_FACT_STREAMS`: `load` (default) copies the staged rows into fact_streams;
    `skip` leaves the table alone, the staged Parquet in the lake being the fact table."""
    mode = os.environ.get("WAREHOUSE_FACT_STREAMS", "load").strip().lower() or "load"
    if mode not in FACT_STREAMS_MODES:
        raise ValueError(
            f"WAREHOUSE_FACT_STREAMS={mode!r}: expected one of {', '.join(FACT_STREAMS_MODES)}"
        )
    return mode


@dataclass(frozen=True)
class SparkSettings:
    """How the Spark job is started, from the environment."""

    master: str = "local[2]"
    driver_memory: str = "2g"
    shuffle_partitions: int = 8
    submit: str | None = None
    emr_application_id: str | None = None
    emr_execution_role_arn: str | None = None
    emr_entry_point: str | None = None
    emr_archive: str | None = None
    emr_log_group: str | None = None
    hmac_secret_id: str | None = None

    @classmethod
    def from_env(cls) -> "SparkSettings":
        env = os.environ.get
        return cls(
            master=env("SPARK_MASTER", cls.master),
            driver_memory=env("SPARK_DRIVER_MEMORY", cls.driver_memory),
            shuffle_partitions=int(env("SPARK_SHUFFLE_PARTITIONS", cls.shuffle_partitions)),
            submit=env("SPARK_SUBMIT"),
            emr_application_id=env("EMR_SERVERLESS_APPLICATION_ID"),
            emr_execution_role_arn=env("EMR_SERVERLESS_EXECUTION_ROLE_ARN"),
            emr_entry_point=env("EMR_SERVERLESS_ENTRY_POINT"),
            emr_archive=env("EMR_SERVERLESS_ARCHIVE"),
            emr_log_group=env("EMR_SERVERLESS_LOG_GROUP"),
            hmac_secret_id=env("ACCOUNT_HMAC_KEY_SECRET_ID"),
        )

    @property
    def on_emr(self) -> bool:
        return bool(self.emr_application_id)


def stage_range(
    context: AssetExecutionContext, lake: LakeStore, key: bytes, days: list[dt.date], log: Log
) -> dict[dt.date, dict]:
    """Stage `days` with the configured engine; the stats of each day that had raw files."""
    if processing_engine() == "pandas":
        # Parts a Spark run wrote for these days would be stale once they are staged again.
        clear_aggregates(lake, days)
        return stage_lake_days(lake, key, days, log=log)
    settings = SparkSettings.from_env()
    extras = {
        "days": [day.isoformat() for day in days],
        "lake": {
            "url": lake.url,
            "s3_endpoint_url": lake.s3_endpoint_url,
            "region_name": lake.region_name,
        },
    }
    if settings.on_emr:
        from spotify_platform.defs.emr import run_on_emr_serverless

        invocation = run_on_emr_serverless(context, settings, lake, extras)
    else:
        invocation = PipesSubprocessClient().run(
            context=context,
            command=spark_submit_command(settings),
            extras=extras,
            env={"ACCOUNT_HMAC_KEY": key.decode("utf-8"), "PYSPARK_PYTHON": sys.executable},
        )
    reports = [m for m in invocation.get_custom_messages() if isinstance(m, dict)]
    if len(reports) != 1:
        raise Failure(f"the Spark job sent {len(reports)} reports, expected one")
    return read_reported_stats(lake, reports[0])


def read_reported_stats(lake: LakeStore, report: dict) -> dict[dt.date, dict]:
    """Each staged day's stats as the job wrote them to the lake, checked against its totals
    (a stats file left by another run would not add up)."""
    days = [dt.date.fromisoformat(day) for day in report["staged_days"]]
    stats = {day: json.loads(lake.read_bytes(staging_stats_key(day))) for day in days}
    read = {name: sum(s[name] for s in stats.values()) for name in TOTALS}
    if read != report["totals"]:
        raise Failure(
            f"the staged days' stats in the lake ({read}) are not what the Spark job "
            f"reported ({report['totals']})"
        )
    return stats


def spark_submit_command(settings: SparkSettings) -> list[str]:
    """`spark-submit` of the job on this machine, with the settings' master and memory."""
    return [
        settings.submit or spark_submit_path(),
        "--master",
        settings.master,
        "--driver-memory",
        settings.driver_memory,
        "--conf",
        f"spark.sql.shuffle.partitions={settings.shuffle_partitions}",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        "spark.log.level=WARN",
        "--conf",
        "spark.ui.showConsoleProgress=false",
        str(job_path()),
    ]


def job_path() -> Path:
    """The job's file, found without importing it (that would import pyspark here)."""
    spec = importlib.util.find_spec("spotify_platform.spark.job")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin)


def spark_submit_path() -> str:
    """`spark-submit` from the pyspark wheel, else from PATH."""
    spec = importlib.util.find_spec("pyspark")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "spark-submit"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("spark-submit")
    if found is None:
        raise Failure(
            "PROCESSING_ENGINE=spark needs pyspark (pip install 'spotify-platform[spark]') "
            "and Java 17, or SPARK_SUBMIT naming a spark-submit"
        )
    return found
