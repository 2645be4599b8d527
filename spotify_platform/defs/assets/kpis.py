"""KPI layer: one warehouse table per KPI, keyed by day, all built in one step.

Each KPI is a query or a few over the aggregates and a little pandas: work that waits on the
server more than it computes. One step builds the selected KPIs on KPI_THREADS connections at
once and reports each as it is written, rather than a step each taking its turn (a process
each, where runs launched from the UI run steps apart).
"""

import datetime as dt
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    multi_asset,
)

from spotify_platform.defs.kpi_builds import KPIS, Built, Kpi
from spotify_platform.defs.kpi_checks import KPI_RULES, KpiRule
from spotify_platform.defs.partitions import (
    daily_partitions,
    day_range,
    days_of,
    run_summary,
)
from spotify_platform.defs.resources.warehouse import WAREHOUSE_POOL, WarehouseResource

# The KPIs read the aggregates, built beside fact_streams from the same staged days. The facts
# are among every KPI's deps all the same: a day whose facts fail their blocking
# reconciliation with staging builds no KPIs in that run.
FACT_STREAMS = AssetKey(["warehouse", "fact_streams"])


COMMON = {
    "group_name": "kpis",
    "kinds": {"mysql", "pandas"},
    "partitions_def": daily_partitions,
    "backfill_policy": BackfillPolicy.single_run(),
    "pool": WAREHOUSE_POOL,
}
# KPIs built at once by the KPI step (`KPI_THREADS`), each on a connection of its own; one
# at a time on SQLite, which has one writer.
KPI_THREADS = int(os.environ.get("KPI_THREADS", "2"))


def gated(*keys: AssetKey) -> list[AssetKey]:
    return [*keys, FACT_STREAMS]


@dataclass
class _Outcome:
    """A KPI built (or None where only its checks were selected), and its checks' results."""

    built: Built | None
    checks: list[AssetCheckResult]


def _build_and_check(
    kpi: Kpi,
    build: bool,
    rules: list[KpiRule],
    warehouse: WarehouseResource,
    days: list[dt.date] | None,
) -> _Outcome:
    built = kpi.build(warehouse, days) if build and days is not None else None
    return _Outcome(built, [rule.check(warehouse, days) for rule in rules])


def _checked_days(context: AssetExecutionContext) -> list[dt.date] | None:
    """The days of a run that selects checks only: its partition range's, which Dagster gives
    without a time window (no asset of the step is materialized); None outside any range."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return None
    keys = context.partition_key_range
    return day_range(dt.date.fromisoformat(keys.start), dt.date.fromisoformat(keys.end))


@multi_asset(
    name="warehouse_kpis",
    specs=[
        AssetSpec(
            kpi.key,
            deps=gated(*kpi.deps),
            description=kpi.description,
            group_name=COMMON["group_name"],
            kinds=COMMON["kinds"],
        )
        for kpi in KPIS
    ],
    check_specs=[rule.spec for rule in KPI_RULES],
    can_subset=True,
    partitions_def=COMMON["partitions_def"],
    backfill_policy=COMMON["backfill_policy"],
    pool=COMMON["pool"],
)
def warehouse_kpis(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> Iterator[MaterializeResult | AssetMaterialization | AssetCheckResult]:
    """The selected KPIs over the run's days, KPI_THREADS at a time, each reported as soon as
    it is written and followed by its checks (`KPI_RULES`); a check selected without its KPI
    reads what is stored. One that fails does not stop the others; the step then fails
    naming it. Checks run on their own, outside any partition, check every stored day."""
    days = days_of(context) if context.selected_asset_keys else _checked_days(context)
    checks = context.selected_asset_check_keys
    work = []
    for kpi in KPIS:
        rules = [r for r in KPI_RULES if r.table == kpi.table and r.spec.key in checks]
        if kpi.key in context.selected_asset_keys or rules:
            work.append((kpi, kpi.key in context.selected_asset_keys, rules))
    failed: dict[str, BaseException] = {}
    threads = max(1, KPI_THREADS) if warehouse.writes_side_by_side else 1
    with ThreadPoolExecutor(threads, thread_name_prefix="kpi") as pool:
        running = {
            pool.submit(_build_and_check, kpi, build, rules, warehouse, days): kpi
            for kpi, build, rules in work
        }
        for future in as_completed(running):
            kpi = running[future]
            error = future.exception()
            if error is not None:
                context.log.error(f"{kpi.table} failed: {error}")
                failed[kpi.table] = error
                continue
            outcome = future.result()
            if outcome.built is not None:
                built = outcome.built
                for day in built.later:
                    yield AssetMaterialization(
                        asset_key=kpi.key,
                        partition=day.isoformat(),
                        metadata={"reason": built.later_reason},
                    )
                yield run_summary(context, built.metadata, built.per_day, asset_key=kpi.key)
            yield from outcome.checks
    if len(failed) == 1:
        (error,) = failed.values()
        raise error
    if failed:
        raise Failure(
            description="KPIs failed: "
            + "; ".join(f"{table}: {error}" for table, error in failed.items()),
            metadata={"failed_kpis": sorted(failed)},
        )
