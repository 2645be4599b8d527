"""The KPI tables' invariants: checked by the KPI step (`warehouse_kpis`) right after each
table is written, as that step's check specs, or alone when only they are selected.

Each checks the run's days (or, given none, every day the table holds) and passes only if
every day passes; the metadata names the days that did not.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from dagster import AssetCheckResult, AssetCheckSpec, AssetKey, MetadataValue

from spotify_platform.core.contracts.tables import TABLES
from spotify_platform.core.kpis.lifecycle import next_period
from spotify_platform.defs.checks import SHARE_TOLERANCE, days_result
from spotify_platform.defs.resources.warehouse import WarehouseResource


def _key(*parts: str) -> AssetKey:
    return AssetKey(list(parts))


@dataclass(frozen=True)
class KpiRule:
    """An invariant of a KPI table, checked by the KPI step right after the table is written
    (`warehouse_kpis`, whose check specs these are), or alone when only it is selected."""

    table: str
    name: str
    description: str
    evaluate: Callable[[WarehouseResource, list[dt.date] | None], AssetCheckResult]
    blocking: bool = False

    @property
    def spec(self) -> AssetCheckSpec:
        return AssetCheckSpec(
            self.name,
            asset=_key("warehouse", self.table),
            description=self.description,
            blocking=self.blocking,
        )

    def check(self, warehouse: WarehouseResource, days: list[dt.date] | None) -> AssetCheckResult:
        result = self.evaluate(warehouse, days)
        return AssetCheckResult(
            passed=result.passed,
            asset_key=_key("warehouse", self.table),
            check_name=self.name,
            metadata=result.metadata,
            severity=result.severity,
        )


def _kpi_rows(
    warehouse: WarehouseResource, table: str, days: list[dt.date] | None
) -> tuple[list, pd.DataFrame]:
    """The days checked and their rows: the run's days, or (None: a check run on its own,
    outside any partition) every day the table holds."""
    t = TABLES[table]
    statement = (
        sa.select(t) if days is None else sa.select(t).where(t.c.dt.between(days[0], days[-1]))
    )
    frame = warehouse.read_frame(statement)
    frame["dt"] = pd.to_datetime(frame["dt"]).dt.date.astype(str)
    return (sorted(set(frame["dt"])) if days is None else days), frame


def active_users_ordered(
    warehouse: WarehouseResource, days: list[dt.date] | None
) -> AssetCheckResult:
    days, frame = _kpi_rows(warehouse, "kpi_active_users", days)
    bad = frame[
        (frame["dau"] > frame["wau"])
        | (frame["wau"] > frame["mau"])
        | (frame["stickiness"].astype(float) > 1)
        | (frame["stickiness"].astype(float) < 0)
    ]
    return days_result({r.dt: [int(r.dau), int(r.wau), int(r.mau)] for r in bad.itertuples()}, days)


RATE_COLUMNS = {
    "kpi_daily_streams": "skip_rate",
    "kpi_churn": "churn_rate",
}


def _rate_rule(table: str, column: str) -> KpiRule:
    def evaluate(warehouse: WarehouseResource, days: list[dt.date] | None) -> AssetCheckResult:
        days, frame = _kpi_rows(warehouse, table, days)
        values = pd.to_numeric(frame[column])
        bad = frame[(values < 0) | (values > 1)]
        return days_result({r.dt: float(getattr(r, column)) for r in bad.itertuples()}, days)

    return KpiRule(
        table, f"{column}_in_unit_interval", f"{column} is NULL or within [0, 1].", evaluate
    )


def _share_rule(table: str) -> KpiRule:
    def evaluate(warehouse: WarehouseResource, days: list[dt.date] | None) -> AssetCheckResult:
        days, frame = _kpi_rows(warehouse, table, days)
        sums = frame.groupby("dt")["share"].sum()
        out_of_range = set(frame.loc[(frame["share"] < 0) | (frame["share"] > 1), "dt"])
        failures = {
            day: float(total)
            for day, total in sums.items()
            if abs(total - 1) > SHARE_TOLERANCE or day in out_of_range
        }
        return days_result(failures, days)

    return KpiRule(
        table, "shares_sum_to_one", "Each day's shares are in [0, 1] and add up to 1.", evaluate
    )


def _top_list_rule(table: str) -> KpiRule:
    def evaluate(warehouse: WarehouseResource, days: list[dt.date] | None) -> AssetCheckResult:
        days, frame = _kpi_rows(warehouse, table, days)
        failures = {}
        for day, rows in frame.groupby("dt"):
            ordered = rows.sort_values(["rank", "streams"], ascending=[True, False])
            ranks = ordered["rank"].astype(int).tolist()
            dense = ranks[0] == 1 and all(
                b - a in (0, 1) for a, b in zip(ranks, ranks[1:], strict=False)
            )
            by_streams = ordered["streams"].astype(int).tolist()
            falling = all(a >= b for a, b in zip(by_streams, by_streams[1:], strict=False))
            if len(rows) > 50 or not dense or not falling:
                failures[day] = {"rows": len(rows), "ranks": ranks[:60]}
        return days_result(failures, days)

    return KpiRule(
        table,
        "dense_ranks_at_most_50",
        "At most 50 rows a day; ranks dense from 1 and falling with streams.",
        evaluate,
    )


def retention_week_zero_is_one(
    warehouse: WarehouseResource, days: list[dt.date] | None
) -> AssetCheckResult:
    """The whole triangle, whatever the days: the KPI is recomputed whole."""
    frame = warehouse.read_table("kpi_retention")
    week0 = frame[frame["week_offset"] == 0]
    bad = week0[(week0["retention_rate"] - 1).abs() > SHARE_TOLERANCE]
    out_of_range = frame[(frame["retention_rate"] < 0) | (frame["retention_rate"] > 1)]
    return AssetCheckResult(
        passed=bad.empty and out_of_range.empty,
        metadata={
            "cohorts": len(week0),
            "cohorts_not_one_at_week_0": [str(c.date()) for c in bad["cohort_week"]],
            "rates_out_of_range": len(out_of_range),
        },
    )


def growth_accounting_identities(
    warehouse: WarehouseResource, days: list[dt.date] | None
) -> AssetCheckResult:
    """Every period stored, whatever the days: a run recomputes its periods and later ones."""
    frame = warehouse.read_table("kpi_growth_accounting").sort_values(["period", "period_start"])
    failures: dict[str, object] = {}
    for kind, rows in frame.groupby("period"):
        previous_active, previous_start = 0, None
        for row in rows.itertuples():
            start = row.period_start.date()
            expected_start = next_period(kind, previous_start) if previous_start else None
            churned = int(row.churned)
            ratio = (row.new + row.resurrected) / churned if churned else None
            ratio_ok = (
                pd.isna(row.quick_ratio)
                if ratio is None
                else abs(float(row.quick_ratio) - ratio) <= SHARE_TOLERANCE * max(ratio, 1)
            )
            if (
                row.active != row.new + row.retained + row.resurrected
                or previous_active != row.retained + churned
                or (expected_start is not None and start != expected_start)
                or not ratio_ok
            ):
                failures[f"{kind} {start}"] = [
                    int(row.active),
                    int(row.new),
                    int(row.retained),
                    int(row.resurrected),
                    churned,
                    previous_active,
                ]
            previous_active, previous_start = int(row.active), start
    return AssetCheckResult(
        passed=not failures,
        metadata={
            "periods": len(frame),
            "failing_periods": MetadataValue.json(failures),
            "columns": "active, new, retained, resurrected, churned, previous active",
        },
    )


def listeners_at_risk_within_active(
    warehouse: WarehouseResource, days: list[dt.date] | None
) -> AssetCheckResult:
    days, frame = _kpi_rows(warehouse, "kpi_listeners_at_risk", days)
    share = frame["at_risk"] / frame["active_28d"]
    bad = frame[
        (frame["at_risk"] < 0)
        | (frame["at_risk"] > frame["active_28d"])
        | ((frame["at_risk_share"].astype(float) - share).abs() > SHARE_TOLERANCE)
    ]
    return days_result(
        {
            f"{r.dt} {r.country} {r.platform}": [int(r.active_28d), int(r.at_risk)]
            for r in bad.itertuples()
        },
        days,
    )


def sessions_consistent(
    warehouse: WarehouseResource, days: list[dt.date] | None
) -> AssetCheckResult:
    days, frame = _kpi_rows(warehouse, "kpi_sessions", days)
    failures = {}
    for row in frame.itertuples():
        average = pd.to_numeric(row.avg_session_minutes)
        if row.sessions == 0:
            ok = row.listeners == 0 and pd.isna(average) and pd.isna(row.median_session_minutes)
        else:
            ok = (
                0 < row.listeners <= row.sessions
                and float(row.avg_plays_per_session) >= 1
                and abs(float(average) * row.sessions - float(row.minutes))
                <= SHARE_TOLERANCE * max(float(row.minutes), 1)
            )
        if not ok:
            failures[row.dt] = [int(row.sessions), int(row.listeners), float(row.minutes)]
    return days_result(failures, days)


KPI_RULES = [
    KpiRule(
        "kpi_active_users",
        "active_users_ordered",
        "DAU <= WAU <= MAU and stickiness in [0, 1].",
        active_users_ordered,
        blocking=True,
    ),
    *(_rate_rule(table, column) for table, column in RATE_COLUMNS.items()),
    *(_share_rule(t) for t in ("kpi_genre_share", "kpi_platform_mix")),
    *(_top_list_rule(t) for t in ("kpi_top_artists", "kpi_top_tracks")),
    KpiRule(
        "kpi_retention",
        "retention_week_zero_is_one",
        "Week 0 retention is 1 for every cohort; rates within [0, 1].",
        retention_week_zero_is_one,
        blocking=True,
    ),
    KpiRule(
        "kpi_growth_accounting",
        "growth_accounting_identities",
        "Each period: active = new + retained + resurrected, the previous period's active = "
        "retained + churned, and the quick ratio is (new + resurrected) / churned; periods "
        "follow each other without a gap.",
        growth_accounting_identities,
        blocking=True,
    ),
    KpiRule(
        "kpi_listeners_at_risk",
        "listeners_at_risk_within_active",
        "0 <= at_risk <= active_28d and at_risk_share = at_risk / active_28d.",
        listeners_at_risk_within_active,
    ),
    KpiRule(
        "kpi_sessions",
        "sessions_consistent",
        "listeners <= sessions, at least one play per session, averages NULL exactly on days "
        "without sessions and equal to minutes / sessions otherwise.",
        sessions_consistent,
    ),
]
