"""The platform path: the real Dagster job over landed raw files, its steps grouped into the
stages the bench reports."""

import datetime as dt
import re
import tempfile
import time
from pathlib import Path

from dagster import DagsterInstance

from spotify_platform.core.contracts.tables import TABLES
from spotify_platform.definitions import build_definitions
from spotify_platform.defs.event_storage import ensure_instance_settings
from spotify_platform.defs.resources import (
    IdentityResource,
    LakeResource,
    SimulatorResource,
    WarehouseResource,
)
from spotify_platform.defs.resources.catalog import OfflineCatalogResource
from spotify_platform.defs.resources.spotify_accounts import SpotifyAccountsResource
from spotify_platform.defs.runs import run_range
from tools.bench.measure import RssSampler
from tools.bench.settings import HMAC_KEY, SEED

STEP_STAGES = {
    "lake__raw_listening_events": "raw (list landed files)",
    "staging_streams": "staging (parse, stage, validate, Parquet)",
    "warehouse_facts": "fact_streams load and aggregates",
    "warehouse_dimensions": "dimensions",
    "warehouse_kpis": "KPIs",
    "lake__dashboard": "dashboard",
}
STAGE_ORDER = [
    "raw (list landed files)",
    "staging (parse, stage, validate, Parquet)",
    "fact_streams load and aggregates",
    "dimensions",
    "KPIs",
    "dashboard",
    "checks",
]


def bench_resources(spec: dict) -> dict:
    """The code location's resources on the bench's lake folder and warehouse, simulator off."""
    return {
        "lake": LakeResource(url=f"file://{Path(spec['lake']).absolute()}"),
        "warehouse": WarehouseResource(url=spec["url"]),
        "identity": IdentityResource(hmac_key=HMAC_KEY),
        "simulator": SimulatorResource(accounts=0),
        "spotify": OfflineCatalogResource(seed=SEED),
        "spotify_accounts": SpotifyAccountsResource(),
    }


def stage_of(step_key: str) -> str:
    """Asset steps by layer; every other step of the job is an asset check."""
    if step_key in STEP_STAGES:
        return STEP_STAGES[step_key]
    if step_key.removeprefix("warehouse__") in TABLES and step_key.startswith("warehouse__kpi_"):
        return "KPIs"
    return "checks"


def group_steps(steps: list[dict]) -> list[dict]:
    """Step timings and peaks summed (seconds) and maxed (peak RSS) by stage, in stage order."""
    stages = {
        name: {"stage": name, "seconds": 0.0, "peak_rss": 0, "steps": 0} for name in STAGE_ORDER
    }
    for step in steps:
        row = stages[stage_of(step["step"])]
        row["seconds"] += step["seconds"]
        row["peak_rss"] = max(row["peak_rss"], step["peak_rss"])
        row["steps"] += 1
    return [row for row in stages.values() if row["steps"]]


def each_day(first: dt.date, last: dt.date) -> list[tuple[dt.date, dt.date]]:
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    return [(d, d) for d in days]


def platform_worker(spec: dict) -> dict:
    """The whole range of days as one run, or (`single_run` false) as one run per day."""
    first = dt.date.fromisoformat(spec["first"])
    last = dt.date.fromisoformat(spec["last"])
    resources = bench_resources(spec)
    resources["warehouse"].init_schema()
    defs = build_definitions(resources)
    ranges = [(first, last)] if spec.get("single_run", True) else each_day(first, last)
    with tempfile.TemporaryDirectory() as home, RssSampler() as sampler:
        # The instance `spotify-platform run` makes (`make instance`): its event log batched.
        ensure_instance_settings(home)
        instance = DagsterInstance.from_config(home)
        started = time.time()
        for a, b in ranges:
            if not run_range(a, b, defs=defs, instance=instance):
                raise RuntimeError(f"run for {a}..{b} failed")
        seconds = time.time() - started
        steps, fact_load_seconds = [], 0.0
        for run in instance.get_runs():
            fact_load_seconds += fact_load_time(instance, run.run_id)
            for stat in instance.get_run_step_stats(run.run_id):
                steps.append(
                    {
                        "step": stat.step_key,
                        "seconds": (stat.end_time or 0) - (stat.start_time or 0),
                        "peak_rss": sampler.peak(stat.start_time or 0, stat.end_time or 0),
                    }
                )
        instance.dispose()
    counts = resources["warehouse"].read_frame("SELECT COUNT(*) AS n FROM fact_streams").iloc[0, 0]
    return {
        "seconds": seconds,
        "runs": len(ranges),
        "steps": steps,
        "stages": group_steps(steps),
        "fact_rows": int(counts),
        "fact_load_seconds": fact_load_seconds,
    }


LOADED_IN = re.compile(r"^fact_streams: .* loaded in ([0-9.]+) s$")


def fact_load_time(instance: DagsterInstance, run_id: str) -> float:
    """The fact load's own seconds, from the run's log: it runs beside the aggregates in one
    step, so the step's time is not its own."""
    for entry in instance.all_logs(run_id):
        found = LOADED_IN.match(entry.user_message or "")
        if found:
            return float(found.group(1))
    raise RuntimeError(f"run {run_id} logged no fact_streams load time")
