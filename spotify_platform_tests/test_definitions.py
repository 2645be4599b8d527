"""The code location loads and exposes what the UI and the schedule need."""

import datetime as dt

import sqlalchemy as sa
from dagster import AssetKey, BackfillPolicy, TableSchema

from spotify_platform.core.lake.layout import staging_key
from spotify_platform.definitions import defs
from spotify_platform.defs.resources.warehouse import WarehouseResource
from spotify_platform_tests.harness import make_resources, run_days


def test_assets_are_keyed_by_where_they_live_and_grouped_by_layer():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    for name in (
        "lake/raw_listening_events",
        "lake/staging_streams",
        "lake/quarantined_streams",
        "warehouse/fact_streams",
        "warehouse/dim_tracks",
        "warehouse/dim_artists",
        "warehouse/dim_accounts",
        "warehouse/agg_account_daily",
        "warehouse/kpi_daily_streams",
        "warehouse/kpi_active_users",
        "warehouse/kpi_top_artists",
        "warehouse/kpi_top_tracks",
    ):
        assert name in keys
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert {"raw", "staging", "warehouse", "kpis"} <= groups


def test_every_partitioned_asset_backfills_in_a_single_run():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.partitions_def is not None:
            assert node.backfill_policy is not None, key
            assert node.backfill_policy == BackfillPolicy.single_run(), key


def test_daily_job_and_schedule():
    job = defs.resolve_job_def("daily_pipeline")
    assert job.partitions_def is not None
    schedule = defs.resolve_schedule_def("daily_pipeline_schedule")
    assert schedule.job_name == "daily_pipeline"
    assert (
        AssetKey(["warehouse", "fact_streams"]) in defs.resolve_asset_graph().get_all_asset_keys()
    )


def test_uploads_and_recently_played_come_before_staging_in_the_lineage():
    graph = defs.resolve_asset_graph()
    staging = AssetKey(["lake", "staging_streams"])
    ancestors, todo = set(), [staging]
    while todo:
        for parent in graph.get(todo.pop()).parent_keys:
            if parent not in ancestors:
                ancestors.add(parent)
                todo.append(parent)
    fetched = AssetKey(["lake", "raw_recently_played"])
    uploaded = AssetKey(["lake", "export_uploads"])
    assert {fetched, uploaded} <= ancestors
    daily = defs.resolve_job_def("daily_pipeline").asset_layer.executable_asset_keys
    assert staging in daily and not {fetched, uploaded} & daily, "the daily run fetches nothing"


def test_sensors_and_the_jobs_they_request():
    targets = {
        name: defs.resolve_sensor_def(name).job_name
        for name in ("uploads_sensor", "imported_days_sensor")
    }
    assert targets == {"uploads_sensor": "import_upload", "imported_days_sensor": "daily_pipeline"}
    assert defs.resolve_sensor_def("freshness_checks_sensor").asset_selection is not None


def test_asset_pages_show_the_columns_of_the_table_the_warehouse_holds(tmp_path):
    """Column schema and table name of every warehouse table asset, against the columns of the
    table as created in a real (SQLite) warehouse; descriptions for every column."""
    warehouse = WarehouseResource(url=f"sqlite:///{tmp_path}/wh.db")
    warehouse.init_schema()
    inspector = sa.inspect(warehouse.engine)
    stored = set(inspector.get_table_names())
    graph = defs.resolve_asset_graph()
    tables = 0
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners, key
        assert "dagster/code_references" in node.metadata, key
        if key.path[0] != "warehouse" or key.path[-1] not in stored:
            continue
        tables += 1
        assert node.metadata["dagster/table_name"] == key.path[-1]
        schema = _schema(node.metadata["dagster/column_schema"])
        columns = [c["name"] for c in inspector.get_columns(key.path[-1])]
        assert [c.name for c in schema.columns] == columns, key
        assert all(c.description for c in schema.columns), key
    assert tables >= 20
    staging = _schema(
        graph.get(AssetKey(["lake", "staging_streams"])).metadata["dagster/column_schema"]
    )
    assert [c.name for c in staging.columns] == _staged_columns(tmp_path)


def _schema(value) -> TableSchema:
    """A column schema as given in the definitions, or as Dagster wraps it."""
    return value if isinstance(value, TableSchema) else value.schema


def _staged_columns(tmp_path) -> list[str]:
    """The columns of a staged day's Parquet file, as staging writes it."""
    resources = make_resources(tmp_path / "run", accounts=5)
    day = dt.date(2026, 3, 2)
    assert run_days(resources, day, day)
    return resources["lake"].read_arrow(staging_key(day)).column_names
