"""Work started outside the Dagster UI: a range of days as one run, the warehouse schema,
imports of personal exports and the headline KPIs of a day.

Each function returns what it did; the command line (`spotify_platform.cli`) prints it, and
tests and the benchmark call these functions directly.
"""

import datetime as dt
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from dagster import DagsterInstance, Definitions

from spotify_platform.core.contracts.tables import TABLES
from spotify_platform.core.dashboard import insights
from spotify_platform.core.kpis.measures import query
from spotify_platform.core.lake.ingest import ImportReport, import_history
from spotify_platform.core.lake.layout import dashboard_key
from spotify_platform.core.memory import settled_heap
from spotify_platform.defs.event_storage import ensure_instance_settings
from spotify_platform.defs.partitions import range_tags
from spotify_platform.defs.resources import resolved

QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def local_instance() -> DagsterInstance:
    """The Dagster instance of DAGSTER_HOME (default .data/dagster_home), so runs show in the UI."""
    home = os.environ.setdefault("DAGSTER_HOME", str(Path(".data/dagster_home").absolute()))
    ensure_instance_settings(home)
    return DagsterInstance.get()


@dataclass(frozen=True)
class RangeRun:
    """One run over a range of days; true when it succeeded."""

    run_id: str
    success: bool

    def __bool__(self) -> bool:
        return self.success


def run_range(
    first: dt.date,
    last: dt.date,
    defs: Definitions | None = None,
    instance: DagsterInstance | None = None,
    quiet: bool = True,
) -> RangeRun:
    """Materialize the daily pipeline for first..last as one Dagster run (single-run backfill).

    A failed step is named on stderr with its error, whoever called: the caller's only other
    clue would be a false result.
    """
    if defs is None:
        from spotify_platform.definitions import build_definitions

        defs = build_definitions()
    job = defs.resolve_job_def("daily_pipeline")
    with settled_heap():
        result = job.execute_in_process(
            run_config=QUIET_RUN_CONFIG if quiet else None,
            instance=instance or local_instance(),
            tags=range_tags(first, last),
            raise_on_error=False,
        )
    if not result.success:
        for event in result.all_events:
            if event.is_failure and event.step_key:
                error = event.event_specific_data.error
                sys.stderr.write(f"step {event.step_key} failed: {error.message.strip()}\n")
    return RangeRun(run_id=result.run_id, success=result.success)


@dataclass
class WarehouseSetup:
    """The schema brought up to date, and the read-only BI user if one was asked for."""

    display_url: str
    created: list[str]
    reader: str | None = None
    reader_grants: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def init_warehouse() -> WarehouseSetup:
    """Create or migrate the schema; grant BI_READONLY_USER SELECT on the bi_* views and kpi_*
    tables when BI_READONLY_PASSWORD is set and the warehouse is not SQLite."""
    warehouse = resolved("warehouse")
    setup = WarehouseSetup(warehouse.display_url, warehouse.init_schema())
    password = os.environ.get("BI_READONLY_PASSWORD")
    if password and warehouse.dialect != "sqlite":
        user = os.environ.get("BI_READONLY_USER", "bi_reader")
        try:
            setup.reader_grants = warehouse.grant_bi_reader(user, password)
            setup.reader = user
        except PermissionError as exc:
            setup.warnings.append(str(exc))
    return setup


def import_exports(
    paths: list[str], account: str | None, country: str | None
) -> tuple[ImportReport, str]:
    """Land export files in the lake's raw layer: the import's report and the raw layer's URI."""
    lake = resolved("lake")
    report = import_history(lake, paths, account=account, country=country)
    return report, lake.uri("raw/")


def recent_days(days: int) -> tuple[dt.date, dt.date]:
    """The last `days` complete UTC days."""
    last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    return last - dt.timedelta(days=days - 1), last


def dashboard_path(day: dt.date) -> str:
    return resolved("lake").uri(dashboard_key(day))


def headline(last: dt.date) -> str:
    """The headline KPIs of one day, as text for the terminal."""
    warehouse = resolved("warehouse")
    users = warehouse.read_frame(
        query("SELECT dau, wau, mau, stickiness FROM kpi_active_users WHERE dt = :d", d=last)
    )
    daily = warehouse.read_frame(
        query(
            "SELECT plays, streams, listeners, minutes_played, skip_rate "
            "FROM kpi_daily_streams WHERE dt = :d",
            d=last,
        )
    )
    top = TABLES["kpi_top_artists"]
    artists = warehouse.read_frame(
        sa.select(top.c.rank, top.c.artist_name, top.c.streams, top.c.listeners)
        .where(top.c.dt == last)
        .order_by(top.c.rank, top.c.artist_name)
        .limit(10)
    )
    lines = [f"Headline KPIs for {last.isoformat()} (UTC)"]
    if not users.empty:
        u = users.iloc[0]
        stickiness = "n/a" if u["stickiness"] is None else f"{float(u['stickiness']):.1%}"
        lines.append(
            f"  DAU {int(u['dau']):,}   WAU {int(u['wau']):,}   MAU {int(u['mau']):,}"
            f"   stickiness {stickiness}"
        )
    if not daily.empty:
        d = daily.iloc[0]
        skip = "n/a" if d["skip_rate"] is None else f"{float(d['skip_rate']):.1%}"
        lines.append(
            f"  plays {int(d['plays']):,}   streams {int(d['streams']):,}   "
            f"listeners {int(d['listeners']):,}   minutes {float(d['minutes_played']):,.0f}"
            f"   skip rate {skip}"
        )
    if not artists.empty:
        lines.append("  Top artists by streams:")
        for row in artists.itertuples(index=False):
            lines.append(
                f"    {int(row.rank):>2}. {row.artist_name}  "
                f"({int(row.streams):,} streams, {int(row.listeners):,} listeners)"
            )
    lines.extend(f"  {sentence}" for sentence in lifecycle_headline(warehouse, last))
    return "\n".join(lines)


def lifecycle_headline(warehouse, last: dt.date) -> list[str]:
    """The quick ratio of the latest complete week and the riskiest segment, as sentences."""
    growth = TABLES["kpi_growth_accounting"]
    week = insights.last_complete_week(last)
    weeks = warehouse.read_frame(
        sa.select(growth).where(growth.c.period == "week", growth.c.period_start == week)
    )
    at_risk = warehouse.read_table("kpi_listeners_at_risk", [last])
    found = {
        **insights.growth_facts(weeks, last),
        "riskiest_segment": insights.riskiest_segment(at_risk, last),
        "sessions_today": None,
    }
    return insights.lifecycle_sentences(found)[:2]
