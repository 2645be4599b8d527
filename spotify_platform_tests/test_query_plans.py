"""KPI queries read their day (or window) through keys, never the whole fact table: checked
with MariaDB's EXPLAIN on a warehouse holding many days."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from spotify_platform.core.contracts.tables import TABLES
from spotify_platform.core.kpis import aggregates, lifecycle
from spotify_platform.core.kpis import measures as kpis
from spotify_platform.defs.resources.warehouse import WarehouseResource
from spotify_platform_tests.harness import as_before_alembic, synthetic_facts
from spotify_platform_tests.support.aggregates import AGGREGATE_BUILDS

DAYS = 90
ROWS_PER_DAY = 400
LAST = dt.date(2026, 6, 30)
FACT_TABLES = (
    "fact_streams",
    "agg_account_daily",
    "agg_artist_daily",
    "agg_track_daily",
    "agg_account_hourly",
    "agg_account_segment_daily",
    "agg_account_sessions",
)
ALIASES = {
    "f": "fact_streams",
    "g": "agg_artist_daily",
    "earlier": "agg_account_daily",
    "seg": "agg_account_segment_daily",
}


@pytest.fixture
def many_days(mysql_url: str) -> WarehouseResource:
    warehouse = WarehouseResource(url=mysql_url)
    warehouse.init_schema()
    for offset in range(DAYS):
        day = LAST - dt.timedelta(days=offset)
        facts = synthetic_facts(ROWS_PER_DAY, day, seed=offset)
        warehouse.replace_days("fact_streams", [day], facts)
        for table, build in AGGREGATE_BUILDS.items():
            warehouse.replace_days(table, [day], build(facts))
    warehouse.read_frame(f"ANALYZE TABLE {', '.join(FACT_TABLES)}")
    return warehouse


def _plan(warehouse: WarehouseResource, statement: sa.TextClause) -> list[dict]:
    with warehouse.engine.connect() as conn:
        compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
        return [dict(row) for row in conn.exec_driver_sql(f"EXPLAIN {compiled}").mappings()]


def test_every_kpi_query_ranges_over_keys_not_the_whole_table(many_days) -> None:
    queries = {**kpis.queries_for_day(LAST), **lifecycle.queries_for_day(LAST)}
    assert set(queries) == {name for name in TABLES if name.startswith("kpi_")}
    # Widest window each query reads, in days: the rows MariaDB expects to read stay within it.
    # Growth accounting reads the previous month and this one; sessions the day before and the
    # two after (runs of a day start on the day before at the earliest).
    window_days = {
        "kpi_active_users": 30,
        "kpi_churn": 60,
        "kpi_growth_accounting": 62,
        "kpi_listeners_at_risk": 28,
        "kpi_sessions": 4,
    }
    sample = synthetic_facts(ROWS_PER_DAY, LAST)
    per_day = {"fact_streams": ROWS_PER_DAY}
    per_day.update({table: len(build(sample)) for table, build in AGGREGATE_BUILDS.items()})
    for name, statement in queries.items():
        steps = [
            {**step, "table": ALIASES.get(step["table"], step["table"])}
            for step in _plan(many_days, statement)
        ]
        steps = [step for step in steps if step["table"] in FACT_TABLES]
        assert steps, name
        if name == "kpi_retention":
            continue  # cohorts span all history by definition: the one query that reads it all
        for step in steps:
            assert step["type"] in ("range", "ref"), (name, step)
            assert step["key"], (name, step)
            bound = 2 * window_days.get(name, 1) * per_day[step["table"]]
            assert int(step["rows"]) <= bound, (name, step, bound)


def test_fact_streams_is_keyed_by_day_first(mysql_url: str) -> None:
    warehouse = WarehouseResource(url=mysql_url)
    warehouse.init_schema()
    key = sa.inspect(warehouse.engine).get_pk_constraint("fact_streams")["constrained_columns"]
    assert key == ["dt", "event_id"]
    day = dt.date(2026, 3, 1)
    warehouse.replace_days("fact_streams", [day], synthetic_facts(300, day))
    plan = _plan(
        warehouse,
        kpis.query("SELECT COUNT(*) FROM fact_streams WHERE dt = :d", d=day),
    )
    assert plan[0]["key"] == "PRIMARY", plan


def test_adopting_an_old_warehouse_moves_its_event_first_key_to_day_first(mysql_url) -> None:
    warehouse = WarehouseResource(url=mysql_url)
    warehouse.init_schema()
    day = dt.date(2026, 3, 2)
    facts = synthetic_facts(500, day, seed=3)
    warehouse.replace_days("fact_streams", [day], facts)
    with warehouse.engine.begin() as conn:
        conn.execute(
            sa.text("ALTER TABLE fact_streams DROP PRIMARY KEY, ADD PRIMARY KEY (event_id, dt)")
        )
    as_before_alembic(warehouse)

    WarehouseResource(url=mysql_url).ensure_schema()

    migrated = WarehouseResource(url=mysql_url)
    key = sa.inspect(migrated.engine).get_pk_constraint("fact_streams")["constrained_columns"]
    assert key == ["dt", "event_id"]
    kept = migrated.read_frame("SELECT event_id, ms_played FROM fact_streams ORDER BY event_id")
    expected = facts[["event_id", "ms_played"]].sort_values("event_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, expected, check_dtype=False)


@pytest.mark.parametrize("backend", ["mariadb", "sqlite"])
def test_adopting_an_old_warehouse_adds_and_fills_a_missing_column(
    backend, mysql_url, tmp_path
) -> None:
    url = mysql_url if backend == "mariadb" else f"sqlite:///{tmp_path / 'w.db'}"
    warehouse = WarehouseResource(url=url)
    warehouse.init_schema()
    day = dt.date(2026, 3, 3)
    rows = aggregates.account_daily(synthetic_facts(400, day, seed=5))
    rows.loc[rows.index[:3], ["streams", "streamed"]] = [0, False]
    warehouse.replace_days("agg_account_daily", [day], rows)
    with warehouse.engine.begin() as conn:
        conn.execute(
            sa.text(
                "DROP INDEX ix_agg_account_daily_account_id_streamed_dt"
                + ("" if backend == "sqlite" else " ON agg_account_daily")
            )
        )
        conn.execute(sa.text("ALTER TABLE agg_account_daily DROP COLUMN streamed"))
    as_before_alembic(warehouse)

    WarehouseResource(url=url).ensure_schema()

    migrated = WarehouseResource(url=url)
    kept = migrated.read_frame(
        "SELECT account_id, streams, streamed FROM agg_account_daily ORDER BY account_id"
    )
    assert len(kept) == len(rows)
    assert (kept["streamed"].astype(bool) == (kept["streams"] > 0)).all()
    assert (~kept["streamed"].astype(bool)).sum() >= 3
    indexes = {i["name"] for i in sa.inspect(migrated.engine).get_indexes("agg_account_daily")}
    assert "ix_agg_account_daily_account_id_streamed_dt" in indexes
