"""`spotify-platform`: the demo, schema set-up and ranged runs through Dagster."""

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

DEMO_DAYS = 30
DEMO_ACCOUNTS = 2000


QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _instance():
    """The Dagster instance of DAGSTER_HOME (default .data/dagster_home), so runs show in the UI."""
    from dagster import DagsterInstance

    from spotify_platform.defs.event_storage import ensure_instance_settings

    home = os.environ.setdefault("DAGSTER_HOME", str(Path(".data/dagster_home").absolute()))
    ensure_instance_settings(home)
    return DagsterInstance.get()


def run_range(first: dt.date, last: dt.date, defs=None, instance=None, quiet: bool = True) -> bool:
    """Materialize the daily pipeline for first..last as one Dagster run (single-run backfill)."""
    from spotify_platform.defs.partitions import range_tags

    if defs is None:
        from spotify_platform.definitions import build_definitions

        defs = build_definitions()

    job = defs.resolve_job_def("daily_pipeline")
    result = job.execute_in_process(
        run_config=QUIET_RUN_CONFIG if quiet else None,
        instance=instance or _instance(),
        tags=range_tags(first, last),
        raise_on_error=False,
    )
    if not result.success:
        for event in result.all_events:
            if event.is_failure and event.step_key:
                error = event.event_specific_data.error
                print(f"step {event.step_key} failed: {error.message.strip()}", file=sys.stderr)
    print(f"run {result.run_id}: {'succeeded' if result.success else 'FAILED'}")
    return result.success


def init_warehouse() -> list[str]:
    from spotify_platform.defs.resources import resolved

    warehouse = resolved("warehouse")
    created = warehouse.init_schema()
    made = f" ({len(created)} tables created)" if created else ""
    print(f"warehouse {warehouse.display_url}: schema up to date{made}")
    password = os.environ.get("BI_READONLY_PASSWORD")
    if password and warehouse.dialect != "sqlite":
        user = os.environ.get("BI_READONLY_USER", "bi_reader")
        try:
            granted = warehouse.grant_bi_reader(user, password)
            print(f"read-only user {user!r} may SELECT {len(granted)} bi_* views and kpi_* tables")
        except PermissionError as exc:
            print(f"warning: {exc}", file=sys.stderr)
    return created


def headline(last: dt.date) -> str:
    """The headline KPIs of one day, as text for the terminal."""
    import sqlalchemy as sa

    from spotify_platform.core.contracts.tables import TABLES
    from spotify_platform.core.kpis.measures import query
    from spotify_platform.defs.resources import resolved

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
    import sqlalchemy as sa

    from spotify_platform.core.contracts.tables import TABLES
    from spotify_platform.core.dashboard import lifecycle_report

    growth = TABLES["kpi_growth_accounting"]
    week = lifecycle_report.last_complete_week(last)
    weeks = warehouse.read_frame(
        sa.select(growth).where(growth.c.period == "week", growth.c.period_start == week)
    )
    at_risk = warehouse.read_table("kpi_listeners_at_risk", [last])
    found = {
        **lifecycle_report.growth_facts(weeks, last),
        "riskiest_segment": lifecycle_report.riskiest_segment(at_risk, last),
        "sessions_today": None,
    }
    return lifecycle_report.sentences(found)[:2]


def import_history_command(
    paths: list[str], account: str | None, country: str | None, run: bool
) -> int:
    from spotify_platform.core.lake.ingest import import_history
    from spotify_platform.defs.resources import resolved

    lake = resolved("lake")
    report = import_history(lake, paths, account=account, country=country)
    for error in report.errors:
        print(f"warning: {error}", file=sys.stderr)
    print(
        f"{len(report.files)} files imported, {len(report.failed_files)} failed; "
        f"{report.records:,} plays over {len(report.days)} days into {lake.uri('raw/')}"
    )
    if not report.days:
        return 1 if report.failed_files else 0
    first, last = report.first_day, report.last_day
    if not run:
        print(f"next: spotify-platform run --from {first} --to {last}")
        return 0
    init_warehouse()
    return 0 if run_range(first, last) else 1


def dashboard_path(day: dt.date) -> str:
    from spotify_platform.core.lake.layout import dashboard_key
    from spotify_platform.defs.resources import resolved

    return resolved("lake").uri(dashboard_key(day))


def demo(days: int, accounts: int) -> int:
    os.environ.setdefault("SIMULATOR_ACCOUNTS", str(accounts))
    last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    first = last - dt.timedelta(days=days - 1)
    started = time.monotonic()
    init_warehouse()
    print(f"simulating {os.environ['SIMULATOR_ACCOUNTS']} accounts, {first} .. {last}, one run")
    if not run_range(first, last):
        return 1
    print(headline(last))
    print(f"dashboard: {dashboard_path(last)}")
    print(f"finished in {time.monotonic() - started:.0f} s; `make dev` opens the Dagster UI")
    return 0


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spotify-platform", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo_cmd = commands.add_parser("demo", help="simulate recent days and build every KPI")
    demo_cmd.add_argument("--days", type=int, default=DEMO_DAYS)
    demo_cmd.add_argument("--accounts", type=int, default=DEMO_ACCOUNTS)
    commands.add_parser("init-warehouse", help="create or migrate the warehouse schema")
    imp = commands.add_parser(
        "import-history", help="land Spotify export files (json, json.gz, zip) in the raw layer"
    )
    imp.add_argument("paths", nargs="+", help="export files, zips or unzipped folders")
    imp.add_argument("--account", help="account name (else the export's username field)")
    imp.add_argument("--country", help="ISO country for legacy exports, which carry none")
    imp.add_argument("--run", action="store_true", help="then run the days it touched")
    run_cmd = commands.add_parser("run", help="materialize days A..B as one Dagster run")
    run_cmd.add_argument("--from", dest="first", type=_date, required=True)
    run_cmd.add_argument("--to", dest="last", type=_date, required=True)
    args = parser.parse_args(argv)

    from spotify_platform.core.lake.store import LakeUnavailable
    from spotify_platform.core.warehouse.connection import WarehouseUnavailable

    try:
        if args.command == "demo":
            return demo(args.days, args.accounts)
        if args.command == "import-history":
            return import_history_command(args.paths, args.account, args.country, args.run)
        if args.command == "init-warehouse":
            init_warehouse()
            return 0
        if args.command == "run":
            if args.last < args.first:
                parser.error("--to is before --from")
            init_warehouse()
            return 0 if run_range(args.first, args.last) else 1
    except (WarehouseUnavailable, LakeUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
