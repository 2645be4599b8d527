"""The bench's history section: years of sparse personal exports, imported and run once.

The shape real users bring first: one extended and three legacy exports over six years with
gaps of months, and a heavy listener over ten years. Each is imported with `import_history`
and run as one Dagster run over its whole range, on the project's own local instance settings
(SQLite, asset events in batches), against SQLite and MariaDB warehouses.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

from tools.bench.measure import RssSampler
from tools.bench.protocol import run_worker
from tools.bench.report import verdict
from tools.bench.settings import MIB, TARGET_HISTORY_SECONDS

SHAPES = {
    "four listeners, 6 years": {
        "first": "2020-01-01",
        "last": "2026-05-31",
        "plays": 71_000,
        "heavy": False,
    },
    "heavy listener, 10 years": {
        "first": "2016-06-01",
        "last": "2026-05-31",
        "plays": 200_000,
        "heavy": True,
    },
}


def listener_specs(shape: dict, scale: float):
    from spotify_platform.core.sources.histories import HistorySpec, four_listeners

    first = dt.date.fromisoformat(shape["first"])
    last = dt.date.fromisoformat(shape["last"])
    plays = int(shape["plays"] * scale)
    if shape["heavy"]:
        return [HistorySpec("heavy", first, last, plays, active_share=0.85, seed=9)]
    return four_listeners(first, last, plays)


def history_worker(spec: dict) -> dict:
    """Write the exports, import them, run the whole range once; figures per phase."""
    from dagster import DagsterEventType, DagsterInstance

    from spotify_platform.core.lake.ingest import import_history
    from spotify_platform.core.sources.histories import active_days, export_files
    from spotify_platform.definitions import build_definitions
    from spotify_platform.defs.event_storage import instance_settings
    from spotify_platform.defs.runs import run_range
    from tools.bench.platform_path import bench_resources, group_steps

    shape = SHAPES[spec["shape"]]
    specs = listener_specs(shape, spec.get("scale", 1.0))
    with tempfile.TemporaryDirectory() as work, RssSampler():
        folder = Path(work)
        for person in specs:
            target = folder / "exports" / person.account
            target.mkdir(parents=True)
            for name, body in export_files(person):
                (target / name).write_bytes(body)
        resources = bench_resources({"lake": str(folder / "lake"), "url": spec["url"]})
        started = time.time()
        plays = 0
        for person in specs:
            report = import_history(
                resources["lake"],
                [str(folder / "exports" / person.account)],
                account=person.account,
                country=person.country,
            )
            plays += report.records
        imported = time.time() - started
        home = folder / "home"
        home.mkdir()
        (home / "dagster.yaml").write_text(instance_settings(str(home)))
        instance = DagsterInstance.from_config(str(home))
        resources["warehouse"].init_schema()
        first = dt.date.fromisoformat(shape["first"])
        last = dt.date.fromisoformat(shape["last"])
        started = time.time()
        if not run_range(first, last, defs=build_definitions(resources), instance=instance):
            raise RuntimeError(f"history run {first}..{last} failed")
        ran = time.time() - started
        run = instance.get_runs(limit=1)[0]
        steps = [
            {
                "step": stat.step_key,
                "seconds": (stat.end_time or 0) - (stat.start_time or 0),
                "peak_rss": 0,
            }
            for stat in instance.get_run_step_stats(run.run_id)
        ]
        events = {
            kind.value: len(
                instance.get_records_for_run(run.run_id, of_type=kind, limit=1_000_000).records
            )
            for kind in (
                DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
                DagsterEventType.ASSET_MATERIALIZATION,
            )
        }
        run_stats = instance.get_run_stats(run.run_id)
        instance.dispose()
    active = set().union(*(active_days(person) for person in specs))
    return {
        "plays": plays,
        "calendar_days": (last - first).days + 1,
        "days_with_plays": len(active),
        "import_seconds": imported,
        "run_seconds": ran,
        "planning_seconds": (run_stats.start_time or started) - started,
        "stages": group_steps(steps),
        "events": events,
    }


def history_section(args, server, report: dict) -> None:
    print("\n== History: sparse years of personal exports, imported and run once ==")
    print(
        f"  {'shape':<26} {'warehouse':<9} {'plays':>8} {'days':>6} {'played':>6} "
        f"{'import':>7} {'planning':>8} {'run':>7} {'total':>7} {'events':>8} {'peak':>8}"
    )
    rows = []
    for shape in args.history_shapes or SHAPES:
        for backend in ("sqlite", "mariadb"):
            with tempfile.TemporaryDirectory() as scratch:
                url = (
                    f"sqlite:///{scratch}/warehouse.db"
                    if backend == "sqlite"
                    else server.database("history")
                )
                spec = {"shape": shape, "url": url, "scale": args.history_scale}
                result = run_worker("history", spec)
            total = result["import_seconds"] + result["run_seconds"]
            events = sum(result["events"].values())
            print(
                f"  {shape:<26} {backend:<9} {result['plays']:>8,} "
                f"{result['calendar_days']:>6,} "
                f"{result['days_with_plays']:>6,} {result['import_seconds']:>6.1f}s "
                f"{result['planning_seconds']:>7.1f}s {result['run_seconds']:>6.1f}s "
                f"{total:>6.1f}s {events:>8,} {result['process_peak_rss'] / MIB:>5.0f} MiB"
            )
            rows.append({"shape": shape, "backend": backend, **result, "total_seconds": total})
            server.drop_all()
    for row in rows:
        stages = ", ".join(f"{s['stage']} {s['seconds']:.1f}s" for s in row["stages"])
        print(f"  {row['shape']} on {row['backend']}: {stages}")
    target = [r for r in rows if r["shape"] == next(iter(SHAPES))]
    if target and args.history_scale == 1.0:
        worst = max(r["total_seconds"] for r in target)
        print(
            f"  {target[0]['shape']}, import to dashboard <= {TARGET_HISTORY_SECONDS:.0f} s: "
            f"slowest {worst:.1f} s  {verdict(worst <= TARGET_HISTORY_SECONDS)}"
        )
    report["history"] = rows
