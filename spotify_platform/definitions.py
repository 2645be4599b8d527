"""The code location: assembles assets, checks, jobs, schedules and resources. Nothing else."""

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from spotify_platform import checks
from spotify_platform.assets import kpis, raw, staging, warehouse
from spotify_platform.resources import build_resources
from spotify_platform.schedules import daily_pipeline_job, daily_schedule
from spotify_platform.sensors import uploads_sensor


def build_definitions(resources: dict[str, object] | None = None) -> Definitions:
    """Definitions bound to `resources` (tests, CLI) or to the environment's (the default)."""
    return Definitions(
        assets=load_assets_from_modules([raw, staging, warehouse, kpis]),
        asset_checks=load_asset_checks_from_modules([checks]),
        jobs=[daily_pipeline_job],
        schedules=[daily_schedule],
        sensors=[uploads_sensor],
        resources=resources if resources is not None else build_resources(),
    )


defs = build_definitions()
