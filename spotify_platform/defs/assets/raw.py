"""Raw layer: listening events as received, one folder per UTC day and source."""

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from spotify_platform.core.lake.layout import raw_key, raw_prefix
from spotify_platform.core.sources.raw import encode_jsonl_gz
from spotify_platform.defs.assets.api import RECENTLY_PLAYED
from spotify_platform.defs.assets.uploads import UPLOADS
from spotify_platform.defs.partitions import daily_partitions, days_of, run_summary
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform.defs.resources.simulated_listening import SimulatorResource


@asset(
    key=["lake", "raw_listening_events"],
    group_name="raw",
    kinds={"s3", "json"},
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    # Lineage only: uploads and recently-played fetches write their plays under this asset's
    # prefix, so they come before it (and staging) in the graph; nothing is loaded from them.
    deps=[UPLOADS, RECENTLY_PLAYED],
    description=(
        "Listening events of the day as landed: simulator output when it is switched on, "
        "Spotify export imports and recently-played fetches. Immutable; personal data stays here."
    ),
)
def raw_listening_events(
    context: AssetExecutionContext, lake: LakeResource, simulator: SimulatorResource
) -> MaterializeResult:
    lake.check()
    simulated = 0
    files: list[str] = []
    per_day: dict[str, dict[str, object]] = {}
    for day in days_of(context):
        events = 0
        if simulator.enabled:
            events = len(rows := simulator.day(day))
            lake.write_bytes(raw_key(day, "simulator", "events"), encode_jsonl_gz(rows))
            simulated += events
        found = lake.list_keys(raw_prefix(day))
        files.extend(found)
        per_day[day.isoformat()] = {"files": len(found), "simulated_events": events}
        if found:
            per_day[day.isoformat()]["dagster/uri"] = lake.uri(raw_prefix(day))
    context.log.info(f"{len(files)} raw files, {simulated} simulated events")
    return run_summary(
        context,
        {
            "files_in_run": len(files),
            "lake_prefix": MetadataValue.path(lake.uri("raw/listening_events/")),
            "sources": sorted(
                {k.split("source=")[1].split("/")[0] for k in files if "source=" in k}
            ),
        },
        per_day,
    )
