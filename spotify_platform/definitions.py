"""The code location: assembles assets, checks, jobs, schedules, sensors, resources; no logic."""

from dagster import Definitions, load_assets_from_modules

from spotify_platform.assets import api, kpis, raw, reports, staging, uploads, warehouse
from spotify_platform.checks import ALL_CHECKS
from spotify_platform.resources import build_resources
from spotify_platform.schedules import daily_pipeline_job, daily_schedule
from spotify_platform.sensors import freshness_sensor, imported_days_sensor, uploads_sensor


def build_definitions(resources: dict[str, object] | None = None) -> Definitions:
    """Definitions bound to `resources` (tests, CLI) or to the environment's (the default)."""
    return Definitions(
        assets=load_assets_from_modules([raw, api, uploads, staging, warehouse, kpis, reports]),
        asset_checks=ALL_CHECKS,
        jobs=[daily_pipeline_job, uploads.import_upload_job, api.recently_played_job],
        schedules=[daily_schedule, api.recently_played_schedule],
        sensors=[uploads_sensor, imported_days_sensor, freshness_sensor],
        resources=resources if resources is not None else build_resources(),
    )


defs = build_definitions()
