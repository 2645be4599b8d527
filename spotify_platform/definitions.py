"""The code location: assembles assets, checks, jobs, schedules, sensors, resources; no logic."""

from dagster import (
    Definitions,
    load_assets_from_modules,
    map_asset_specs,
    with_source_code_references,
)

from spotify_platform.defs import automation
from spotify_platform.defs.assets import (
    api,
    dimensions,
    facts,
    kpis,
    raw,
    reports,
    staging,
    uploads,
)
from spotify_platform.defs.checks import ALL_CHECKS
from spotify_platform.defs.metadata import describe
from spotify_platform.defs.resources import build_resources


def build_definitions(resources: dict[str, object] | None = None) -> Definitions:
    """Definitions bound to `resources` (tests, CLI) or to the environment's (the default)."""
    return Definitions(
        assets=with_source_code_references(
            map_asset_specs(
                describe,
                load_assets_from_modules(
                    [raw, api, uploads, staging, facts, dimensions, kpis, reports]
                ),
            )
        ),
        asset_checks=ALL_CHECKS,
        jobs=automation.JOBS,
        schedules=automation.SCHEDULES,
        sensors=automation.SENSORS,
        resources=resources if resources is not None else build_resources(),
    )


defs = build_definitions()
