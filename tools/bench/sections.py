"""The platform's sections of the bench besides the day (`day`): scaling, a backfill as one
run against one run per day, and KPIs on a month of facts."""

import argparse
import datetime as dt
from pathlib import Path

from tools.bench.generate import landed
from tools.bench.protocol import run_worker
from tools.bench.report import verdict
from tools.bench.server import Server
from tools.bench.settings import (
    BENCH_DIR,
    DAY,
    GIB,
    MIB,
    TARGET_BACKFILL_SPEEDUP,
    TARGET_KPI_SECONDS,
    TARGET_LINEAR_FACTOR,
    TARGET_PEAK_RSS,
)


def platform_run(
    lake: Path, first: dt.date, last: dt.date, url: str, events: int, single_run: bool = True
) -> dict:
    result = run_worker(
        "platform",
        {
            "lake": str(lake),
            "first": first.isoformat(),
            "last": last.isoformat(),
            "url": url,
            "single_run": single_run,
        },
    )
    for row in result["stages"]:
        if row["stage"].startswith("fact_streams load"):
            row["rows"] = result["fact_rows"]
        elif row["stage"].startswith("staging"):
            row["rows"] = events
    return result


def scaling_section(args: argparse.Namespace, server: Server, report: dict) -> None:
    """One day of each size through the platform: the peak must stay flat and the time per
    event too, from the smallest size to the largest."""
    print("\n== Scaling: one day, platform path ==")
    print(f"  {'events':>10} {'seconds':>8} {'us/event':>9} {'fact rows/s':>12} {'peak RSS':>10}")
    rows = []
    for events in args.scaling:
        lake = BENCH_DIR / "data" / f"day_{events}"
        gen = landed(lake, DAY, 1, events)
        raw_events = gen["events_by_day"][DAY.isoformat()]
        result = platform_run(lake, DAY, DAY, server.database("scale"), raw_events)
        rows.append(
            {
                "events": raw_events,
                "seconds": result["seconds"],
                "us_per_event": result["seconds"] / raw_events * 1e6,
                "peak_rss": result["process_peak_rss"],
                "fact_rows_per_s": result["fact_rows"] / result["fact_load_seconds"],
                "stages": result["stages"],
            }
        )
        print(
            f"  {raw_events:>10,} {result['seconds']:>8.2f} {rows[-1]['us_per_event']:>9.2f} "
            f"{rows[-1]['fact_rows_per_s']:>12,.0f} {result['process_peak_rss'] / MIB:>6.0f} MiB"
        )
        server.drop_all()
    largest = max(rows, key=lambda row: row["events"])
    smallest = min(rows, key=lambda row: row["events"])
    peak = max(row["peak_rss"] for row in rows)
    growth = largest["us_per_event"] / smallest["us_per_event"]
    peak_met, linear_met = peak <= TARGET_PEAK_RSS, growth <= TARGET_LINEAR_FACTOR
    print(
        f"  peak RSS <= {TARGET_PEAK_RSS / GIB:.0f} GiB up to {largest['events']:,} events: "
        f"{peak / GIB:.2f} GiB  {verdict(peak_met)}"
    )
    print(
        f"  time linear (us/event at {largest['events']:,} within {TARGET_LINEAR_FACTOR}x of "
        f"{smallest['events']:,}): {growth:.2f}x  {verdict(linear_met)}"
    )
    report["scaling"] = {
        "sizes": rows,
        "peak_rss": peak,
        "peak_rss_met": peak_met,
        "us_per_event_growth": growth,
        "linear_met": linear_met,
    }


def backfill_section(args: argparse.Namespace, server: Server, report: dict) -> None:
    days, events = args.backfill_days, args.backfill_events
    first = DAY - dt.timedelta(days=days - 1)
    lake = BENCH_DIR / "data" / f"backfill_{days}x{events}"
    gen = landed(lake, first, days, events)
    total_events = sum(gen["events_by_day"].values())
    print(
        f"\n== Backfill: {days} days x ~{events:,} events ({total_events:,} in all), "
        "one run vs one run per day =="
    )
    single_url, many_url = server.database("bf1"), server.database("bfn")
    single = platform_run(lake, first, DAY, single_url, total_events)
    many = platform_run(lake, first, DAY, many_url, total_events, single_run=False)
    same = server.checksum(single_url) == server.checksum(many_url)
    ratio = many["seconds"] / single["seconds"]
    print(f"  {'':<28} {'seconds':>8} {'runs':>5} {'peak RSS':>10}")
    for name, result in (("single run (single_run())", single), (f"{days} runs", many)):
        print(
            f"  {name:<28} {result['seconds']:>8.2f} {result['runs']:>5} "
            f"{result['process_peak_rss'] / MIB:>6.0f} MiB"
        )
    print(
        f"  one run >= {TARGET_BACKFILL_SPEEDUP:.0f}x faster than {days} runs: {ratio:.1f}x  "
        f"{verdict(ratio >= TARGET_BACKFILL_SPEEDUP)}"
    )
    print(f"  same fact_streams rows either way: {same}")
    report["backfill"] = {
        "days": days,
        "events": total_events,
        "single_run": single,
        "runs": many,
        "speedup": ratio,
        "same": same,
    }
    server.drop_all()


def kpi_section(args: argparse.Namespace, server: Server, report: dict) -> None:
    days, per_day = args.kpi_days, args.kpi_events
    lake = BENCH_DIR / "data" / f"day_{per_day}"
    gen = landed(lake, DAY, 1, per_day)
    raw_events = gen["events_by_day"][DAY.isoformat()]
    url = server.database("kpi")
    # Stage the source day once through the real job; the KPI worker replicates it.
    platform_run(lake, DAY, DAY, url, raw_events)
    first = DAY + dt.timedelta(days=1)
    result = run_worker(
        "kpi",
        {
            "lake": str(lake),
            "url": url,
            "source_day": DAY.isoformat(),
            "first": first.isoformat(),
            "days": days,
        },
    )
    print(
        f"\n== KPIs for one day on a {days}-day fact_streams of {result['fact_rows']:,} rows "
        f"({sum(result['table_bytes'].values()) / GIB:.1f} GiB with indexes) =="
    )
    load_rows = sum(r["rows"] for r in result["loads"])
    load_s = sum(r["seconds"] for r in result["loads"])
    last = result["loads"][-1]
    print(
        f"  loading it: {load_rows / load_s:,.0f} rows/s overall, "
        f"{last['rows'] / last['seconds']:,.0f} rows/s for the last day"
    )
    print(f"  {'asset':<44} {'seconds':>8}  access (table:type:key)")
    worst = 0.0
    for key, seconds in result["kpi_seconds"].items():
        name = key.split("/")[-1]
        plan = result["explain"].get(name, [])
        access = ", ".join(f"{p['table']}:{p['type']}:{p['key']}" for p in plan)
        print(f"  {key:<44} {seconds:>8.2f}  {access}")
        worst = max(worst, seconds)
    # Retention cohorts span all history by definition: its read of agg_account_daily is
    # the one whole-table read, and is expected.
    full_scans = [
        (name, p["table"])
        for name, plan in result["explain"].items()
        for p in plan
        if p["type"] == "ALL" and name != "kpi_retention" and not str(p["table"]).startswith("<")
    ]
    print(
        f"  every KPI asset under {TARGET_KPI_SECONDS:.0f} s: slowest {worst:.2f} s  "
        f"{verdict(worst < TARGET_KPI_SECONDS)}; full scans of fact tables: "
        f"{full_scans or 'none'}"
    )
    report["kpi"] = result
    server.drop_all()
