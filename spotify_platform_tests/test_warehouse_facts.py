"""fact_streams and the aggregates share one step: each can still be materialized alone, and
a day built either way holds the same rows."""

import datetime as dt

import pytest
import sqlalchemy as sa
from dagster import AssetKey, AssetSelection, DagsterInstance, load_assets_from_modules, materialize

from spotify_platform.defs.assets import facts, raw, staging
from spotify_platform_tests.harness import make_resources, run_days

DAY = dt.date(2026, 7, 6)
ASSETS = load_assets_from_modules([raw, staging, facts])
TAGS = {
    "dagster/asset_partition_range_start": DAY.isoformat(),
    "dagster/asset_partition_range_end": DAY.isoformat(),
}


def _rows(warehouse, table: str) -> list[tuple]:
    with warehouse.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}")))


@pytest.mark.parametrize("alone", ["agg_track_daily", "fact_streams"])
def test_one_asset_of_the_step_is_rebuilt_alone(alone, tmp_path, mysql_url):
    resources = make_resources(tmp_path, warehouse_url=mysql_url, accounts=60)
    assert run_days(resources, DAY, DAY, instance=DagsterInstance.ephemeral())
    warehouse = resources["warehouse"]
    other = "fact_streams" if alone != "fact_streams" else "agg_track_daily"
    before = {t: _rows(warehouse, t) for t in (alone, other)}
    assert before[alone] and before[other]
    with warehouse.engine.begin() as conn:
        for table in (alone, other):
            conn.execute(sa.text(f"DELETE FROM {table} LIMIT 1"))

    instance = DagsterInstance.ephemeral()
    result = materialize(
        ASSETS,
        resources=resources,
        selection=AssetSelection.assets(AssetKey(["warehouse", alone])),
        instance=instance,
        tags=TAGS,
    )
    assert result.success
    assert _rows(warehouse, alone) == before[alone]
    assert len(_rows(warehouse, other)) == len(before[other]) - 1, "the other is left alone"
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {AssetKey(["warehouse", alone])}
