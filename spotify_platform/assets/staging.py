"""Staging layer: canonical, validated, de-duplicated streams, and the quarantine beside it."""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from spotify_platform.layout import quarantine_key, raw_prefix, staging_key
from spotify_platform.partitions import daily_partitions, days_of
from spotify_platform.resources.identity import IdentityResource
from spotify_platform.resources.lake import LakeResource
from spotify_platform.sources.canonical import stage_day
from spotify_platform.sources.raw import parse_jsonl

RAW = AssetKey(["lake", "raw_listening_events"])
STAGING = AssetKey(["lake", "staging_streams"])
QUARANTINE = AssetKey(["lake", "quarantined_streams"])


def _parse(lake: LakeResource, key: str):
    try:
        return parse_jsonl(lake.read_bytes(key))
    except (OSError, EOFError, ValueError) as exc:
        raise RuntimeError(f"raw file {lake.uri(key)} is unreadable as a whole: {exc}") from exc


@multi_asset(
    specs=[
        AssetSpec(
            STAGING,
            deps=[RAW],
            group_name="staging",
            kinds={"s3", "parquet", "pandas"},
            description="Canonical stream records (DESIGN §4) that passed the staging contract.",
        ),
        AssetSpec(
            QUARANTINE,
            deps=[RAW],
            group_name="staging",
            kinds={"s3", "parquet"},
            description="Raw records that failed parsing or the contract, with the reason.",
        ),
    ],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
)
def staging_streams(context: AssetExecutionContext, lake: LakeResource, identity: IdentityResource):
    key = identity.key()
    totals = {"raw": 0, "staged": 0, "quarantined": 0, "duplicates": 0}
    reasons: dict[str, int] = {}
    drift: dict[str, list[str]] = {}
    for day in days_of(context):
        batches = {k: _parse(lake, k) for k in lake.list_keys(raw_prefix(day))}
        staged = stage_day(batches, key=key, day=day)
        lake.write_parquet(staging_key(day), staged.streams)
        lake.write_parquet(quarantine_key(day), staged.quarantine)
        totals["raw"] += staged.raw_records
        totals["staged"] += len(staged.streams)
        totals["quarantined"] += staged.rejected
        totals["duplicates"] += staged.duplicates
        for reason, n in staged.reason_counts().items():
            reasons[reason] = reasons.get(reason, 0) + n
        for name, fields in staged.unknown_fields.items():
            drift[name] = fields
        context.log.info(
            f"{day}: {staged.raw_records} raw, {len(staged.streams)} staged, "
            f"{staged.rejected} quarantined, {staged.duplicates} duplicates"
        )
    top_reasons = sorted(reasons.items(), key=lambda kv: -kv[1])[:10]
    reason_table = "\n".join(f"| {r} | {n} |" for r, n in top_reasons)
    yield MaterializeResult(
        asset_key=STAGING,
        metadata={
            "raw_records": totals["raw"],
            "staged_rows": totals["staged"],
            "duplicates_removed": totals["duplicates"],
            "quarantined_rows": totals["quarantined"],
            "unknown_raw_fields": MetadataValue.json(drift),
        },
    )
    yield MaterializeResult(
        asset_key=QUARANTINE,
        metadata={
            "quarantined_rows": totals["quarantined"],
            "reasons": MetadataValue.md(
                "| reason | rows |\n|---|---|\n" + reason_table if reason_table else "none"
            ),
        },
    )
