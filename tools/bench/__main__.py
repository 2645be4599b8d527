"""`python -m tools.bench`: the sections asked for, one after another, then the JSON report."""

import argparse
import datetime as dt
import json
import os
import sys
import time
from typing import Any

import tools.bench
from tools.bench.day import day_section
from tools.bench.history import SHAPES, history_section
from tools.bench.sections import backfill_section, kpi_section, scaling_section
from tools.bench.server import Server
from tools.bench.settings import BENCH_DIR, DEFAULT_MYSQL_URL
from tools.bench.spark import add_arguments as add_spark_arguments
from tools.bench.spark import spark_section

SECTIONS = {
    "day": day_section,
    "scaling": scaling_section,
    "backfill": backfill_section,
    "kpi": kpi_section,
    "history": history_section,
    "spark": spark_section,
}


def _sizes(text: str) -> list[int]:
    return [int(float(part)) for part in text.split(",") if part]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=tools.bench.__doc__)
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS), help="repeatable")
    parser.add_argument("--events", type=int, default=1_000_000, help="day comparison size")
    parser.add_argument("--scaling", type=_sizes, default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--backfill-days", type=int, default=30)
    parser.add_argument("--backfill-events", type=int, default=30_000, help="events per day")
    parser.add_argument("--kpi-days", type=int, default=30)
    parser.add_argument("--kpi-events", type=int, default=1_000_000, help="fact rows per day")
    parser.add_argument("--full", action="store_true", help="1M events a day in the backfill")
    parser.add_argument("--history-scale", type=float, default=1.0, help="share of the plays")
    parser.add_argument(
        "--history-shape", dest="history_shapes", action="append", choices=sorted(SHAPES)
    )
    add_spark_arguments(parser, _sizes)
    parser.add_argument("--mysql-url", default=os.environ.get("BENCH_MYSQL_URL", DEFAULT_MYSQL_URL))
    parser.add_argument("--keep", action="store_true", help="keep the spt_bench_* databases")
    args = parser.parse_args(argv)
    if args.full:
        args.backfill_events = 1_000_000
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    BENCH_DIR.mkdir(exist_ok=True)
    server = Server(args.mysql_url, keep=args.keep)
    report: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "args": vars(args),
    }
    started = time.time()
    try:
        for name in args.only or list(SECTIONS):
            SECTIONS[name](args, server, report)
            server.drop_all()
    finally:
        server.drop_all()
        report["databases"] = server.made
        report["seconds"] = time.time() - started
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        text = json.dumps(report, indent=2, default=str)
        (BENCH_DIR / f"bench-{stamp}.json").write_text(text)
        (BENCH_DIR / "latest.json").write_text(text)
    print(f"\nbench finished in {report['seconds']:.0f} s; JSON in {BENCH_DIR}/latest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
