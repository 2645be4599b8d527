"""Staging layer: canonical, validated, de-duplicated streams, and the quarantine beside it.

The staging itself is the core's (`core/staging/lake_days.py`), or the Spark job's
(`defs/engine.py`, `PROCESSING_ENGINE=spark`); this module declares the assets and turns each
day's stats into metadata and check results, the same for both engines.
"""

import os

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from spotify_platform.core.lake.layout import quarantine_key, staging_key
from spotify_platform.core.staging.lake_io import no_raw_stats
from spotify_platform.defs.engine import stage_range
from spotify_platform.defs.partitions import add_day_metadata, daily_partitions, days_of
from spotify_platform.defs.progress import step_log
from spotify_platform.defs.resources.hmac_key import IdentityResource
from spotify_platform.defs.resources.lake import LakeResource

RAW = AssetKey(["lake", "raw_listening_events"])
STAGING = AssetKey(["lake", "staging_streams"])
QUARANTINE = AssetKey(["lake", "quarantined_streams"])
QUARANTINE_WARN_SHARE = float(os.environ.get("QUARANTINE_WARN_SHARE", "0.01"))
QUARANTINE_FAIL_SHARE = float(os.environ.get("QUARANTINE_FAIL_SHARE", "0.10"))


@multi_asset(
    specs=[
        AssetSpec(
            STAGING,
            deps=[RAW],
            group_name="staging",
            kinds={"s3", "parquet", "pandas"},
            description="Canonical stream records that passed the staging contract.",
        ),
        AssetSpec(
            QUARANTINE,
            deps=[RAW],
            group_name="staging",
            kinds={"s3", "parquet"},
            description="Raw records that failed parsing or the contract, with the reason.",
        ),
    ],
    check_specs=[
        AssetCheckSpec(
            "quarantine_share",
            asset=STAGING,
            blocking=True,
            description=(
                f"Warns when more than {QUARANTINE_WARN_SHARE:.0%} of a day's raw records are "
                f"quarantined; fails (blocking) past {QUARANTINE_FAIL_SHARE:.0%}."
            ),
        ),
        AssetCheckSpec(
            "contract",
            asset=STAGING,
            description="Rows rejected by the pandera staging contract, by column and check.",
        ),
        AssetCheckSpec(
            "schema_drift",
            asset=STAGING,
            description="Raw fields the parsers do not know, or expected fields that are absent.",
        ),
    ],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
)
def staging_streams(context: AssetExecutionContext, lake: LakeResource, identity: IdentityResource):
    all_days = days_of(context)
    landed = stage_range(context, lake, identity.key(), all_days, log=step_log(context))
    by_day = {day.isoformat(): landed.get(day) or no_raw_stats(day) for day in all_days}
    totals = {
        name: sum(s[name] for s in by_day.values())
        for name in ("raw_records", "staged_rows", "quarantined_rows", "duplicates_removed")
    }
    reasons: dict[str, int] = {}
    for stats in by_day.values():
        for reason, n in stats["reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + n
    top = sorted(reasons.items(), key=lambda kv: -kv[1])[:10]
    reason_md = "| reason | rows |\n|---|---|\n" + "\n".join(f"| {r} | {n} |" for r, n in top)

    staged, rejected = {}, {}
    for day in all_days:
        key, stats = day.isoformat(), by_day[day.isoformat()]
        uri = lake.uri(staging_key(day)) if day in landed else None
        staged[key] = _day_metadata(stats, uri)
        rejected[key] = {"dagster/partition_row_count": stats["quarantined_rows"]}
        if day in landed:
            rejected[key]["dagster/uri"] = lake.uri(quarantine_key(day))
    add_day_metadata(context, staged, STAGING)
    quarantined = {
        "reasons": MetadataValue.md(reason_md if top else "none"),
        "quarantined_rows_in_run": totals["quarantined_rows"],
    }
    add_day_metadata(context, rejected, QUARANTINE, quarantined)
    if len(by_day) > 1:
        context.log.info(", ".join(f"{n:,} {name.replace('_', ' ')}" for name, n in totals.items()))
    yield MaterializeResult(asset_key=STAGING)
    yield MaterializeResult(asset_key=QUARANTINE)
    yield quarantine_share_result(by_day)
    yield contract_result(by_day, top)
    yield drift_result(by_day)


def _day_metadata(stats: dict, uri: str | None) -> dict:
    """A day's own figures on its own materialization (returned for a range, metadata would
    be copied onto every day of it), and where its file is when it has one."""
    figures = {
        "dagster/partition_row_count": stats["staged_rows"],
        "raw_records": stats["raw_records"],
        "quarantined_rows": stats["quarantined_rows"],
        "duplicates_removed": stats["duplicates_removed"],
    }
    return figures if uri is None else {**figures, "dagster/uri": uri}


def quarantine_share_result(by_day: dict[str, dict]) -> AssetCheckResult:
    shares = {
        day: (s["quarantined_rows"] / s["raw_records"]) if s["raw_records"] else 0.0
        for day, s in by_day.items()
    }
    worst_day, worst = max(shares.items(), key=lambda kv: kv[1])
    severity = (
        AssetCheckSeverity.ERROR if worst > QUARANTINE_FAIL_SHARE else AssetCheckSeverity.WARN
    )
    return AssetCheckResult(
        asset_key=STAGING,
        check_name="quarantine_share",
        passed=worst <= QUARANTINE_WARN_SHARE,
        severity=severity,
        metadata={
            "worst_day": worst_day,
            "worst_share": float(worst),
            "warn_above": QUARANTINE_WARN_SHARE,
            "fail_above": QUARANTINE_FAIL_SHARE,
            "share_by_day": MetadataValue.json({d: round(v, 6) for d, v in shares.items()}),
        },
    )


def contract_result(by_day: dict[str, dict], top: list[tuple[str, int]]) -> AssetCheckResult:
    contract = {r: n for r, n in top if " fails " in r}
    failing = sum(n for s in by_day.values() for r, n in s["reasons"].items() if " fails " in r)
    return AssetCheckResult(
        asset_key=STAGING,
        check_name="contract",
        passed=failing == 0,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "failing_rows": failing,
            "sample": MetadataValue.md(
                "| column and check | rows |\n|---|---|\n"
                + "\n".join(f"| {r} | {n} |" for r, n in contract.items())
                if contract
                else "no failures"
            ),
        },
    )


def drift_result(by_day: dict[str, dict]) -> AssetCheckResult:
    unknown = sorted(
        {f for s in by_day.values() for fs in s["unknown_fields"].values() for f in fs}
    )
    missing = sorted(
        {f for s in by_day.values() for fs in s["missing_fields"].values() for f in fs}
    )
    return AssetCheckResult(
        asset_key=STAGING,
        check_name="schema_drift",
        passed=not unknown and not missing,
        severity=AssetCheckSeverity.WARN,
        metadata={"unknown_fields": unknown, "missing_fields": missing},
    )
