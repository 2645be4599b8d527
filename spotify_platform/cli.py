"""`spotify-platform`: the demo, schema set-up and ranged runs through Dagster.

Argument parsing and printing only; the work is done by `spotify_platform.defs.runs`.
"""

import argparse
import datetime as dt
import os
import sys
import time

DEMO_DAYS = 30
DEMO_ACCOUNTS = 2000


def print_setup(setup) -> None:
    made = f" ({len(setup.created)} tables created)" if setup.created else ""
    print(f"warehouse {setup.display_url}: schema up to date{made}")
    if setup.reader:
        print(
            f"read-only user {setup.reader!r} may SELECT {len(setup.reader_grants)} "
            "bi_* views and kpi_* tables"
        )
    for warning in setup.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def init_warehouse() -> None:
    from spotify_platform.defs import runs

    print_setup(runs.init_warehouse())


def run_range(first: dt.date, last: dt.date) -> bool:
    """One run over the days, its progress on stderr as it goes."""
    from spotify_platform.defs import runs
    from spotify_platform.progress_bar import progress_shown

    with progress_shown(sys.stderr):
        outcome = runs.run_range(first, last)
    print(f"run {outcome.run_id}: {'succeeded' if outcome else 'FAILED'}")
    return outcome.success


def import_history_command(
    paths: list[str], account: str | None, country: str | None, run: bool
) -> int:
    from spotify_platform.defs import runs

    report, raw_uri = runs.import_exports(paths, account, country)
    for error in report.errors:
        print(f"warning: {error}", file=sys.stderr)
    print(
        f"{len(report.files)} files imported, {len(report.failed_files)} failed; "
        f"{report.records:,} plays over {len(report.days)} days into {raw_uri}"
    )
    if not report.days:
        return 1 if report.failed_files else 0
    first, last = report.first_day, report.last_day
    if not run:
        print(f"next: spotify-platform run --from {first} --to {last}")
        return 0
    init_warehouse()
    return 0 if run_range(first, last) else 1


def demo(days: int, accounts: int) -> int:
    from spotify_platform.defs import runs

    os.environ.setdefault("SIMULATOR_ACCOUNTS", str(accounts))
    first, last = runs.recent_days(days)
    started = time.monotonic()
    init_warehouse()
    print(f"simulating {os.environ['SIMULATOR_ACCOUNTS']} accounts, {first} .. {last}, one run")
    if not run_range(first, last):
        return 1
    print(runs.headline(last))
    print(f"dashboard: {runs.dashboard_path(last)}")
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
