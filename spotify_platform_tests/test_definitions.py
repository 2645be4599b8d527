"""The code location loads and exposes what the UI and the schedule need."""

from dagster import AssetKey, BackfillPolicy

from spotify_platform.definitions import defs


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
