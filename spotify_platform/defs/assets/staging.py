"""Staging layer: canonical, validated, de-duplicated streams, and the quarantine beside it."""

import collections
import datetime as dt
import json
import os
import pickle
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
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

from spotify_platform.core.lake.layout import (
    QUARANTINE_ROOT,
    RAW_ROOT,
    STAGING_ROOT,
    quarantine_key,
    raw_prefix,
    staging_key,
    staging_stats_key,
)
from spotify_platform.core.lake.store import parquet_bytes
from spotify_platform.core.memory import release_memory
from spotify_platform.core.sources.raw import RawBatch, parse_jsonl
from spotify_platform.core.staging.canonical import StagedDay, stage_day, stage_days
from spotify_platform.defs.partitions import daily_partitions, days_of
from spotify_platform.defs.resources.hmac_key import IdentityResource
from spotify_platform.defs.resources.lake import LakeResource

RAW = AssetKey(["lake", "raw_listening_events"])
STAGING = AssetKey(["lake", "staging_streams"])
QUARANTINE = AssetKey(["lake", "quarantined_streams"])
QUARANTINE_WARN_SHARE = float(os.environ.get("QUARANTINE_WARN_SHARE", "0.01"))
QUARANTINE_FAIL_SHARE = float(os.environ.get("QUARANTINE_FAIL_SHARE", "0.10"))
# A single run of several days whose raw files are this small (gzip bytes, about 170k plays
# each) stages them side by side. Bigger days go one at a time, as two at once would double
# the peak memory.
SIDE_BY_SIDE_BYTES = 16 << 20
# Days up to this much raw gzip (about 10k plays) are staged together, GROUP_BYTES at a time:
# typing and validating a few dozen plays costs about what a few thousand do.
SMALL_DAY_BYTES = 1 << 20
GROUP_BYTES = 8 << 20
STAGING_THREADS = 2
# With this much raw data in all, helper processes stage days beside the step's own process:
# typing and validation hold the GIL most of the time, so threads gained little (30 days of
# 30k plays on 2 cores: 14.0 s one after the other, 11.6 s in two threads, 10.0-10.7 s with
# one helper). Below it, a helper's start (about 2 s of imports) would cost more than it saves.
HELPER_MIN_BYTES = 24 << 20
STAGING_HELPERS = max(1, min(3, (os.cpu_count() or 2) - 1))


def _parse(lake: LakeResource, key: str) -> RawBatch:
    try:
        return parse_jsonl(lake.read_bytes(key))
    except (OSError, EOFError, ValueError) as exc:
        raise RuntimeError(f"raw file {lake.uri(key)} is unreadable as a whole: {exc}") from exc


def _clear_staged(lake: LakeResource, days: list[dt.date]) -> None:
    """Days without raw files have no staged files: any left from an earlier run go, so a
    reader never takes them for the day's rows."""
    for root in (STAGING_ROOT, QUARANTINE_ROOT):
        for keys in lake.keys_by_day(root, days).values():
            for key in keys:
                lake.delete(key)


def _stats(staged: StagedDay) -> dict:
    return {
        "raw_records": staged.raw_records,
        "staged_rows": len(staged.streams),
        "quarantined_rows": staged.rejected,
        "duplicates_removed": staged.duplicates,
        "files": staged.files,
        "reasons": staged.reason_counts(),
        "unknown_fields": staged.unknown_fields,
        "missing_fields": staged.missing_fields,
    }


def _land(lake: LakeResource, key: bytes, day: dt.date, raw_keys: list[str] | None = None) -> dict:
    """Stage one day: its canonical rows and its quarantine into the lake; the day's stats."""
    keys = lake.list_keys(raw_prefix(day)) if raw_keys is None else raw_keys
    batches = {k: _parse(lake, k) for k in keys}
    stats = _write(lake, day, stage_day(batches, key=key, day=day))
    del batches
    release_memory(stats["raw_records"])
    return stats


def _write(lake: LakeResource, day: dt.date, staged: StagedDay) -> dict:
    """A staged day's rows, quarantine and stats into the lake; the stats."""
    lake.write_parquet(staging_key(day), staged.streams if staged.table is None else staged.table)
    _write_quarantine(lake, day, staged.quarantine)
    stats = _stats(staged)
    lake.write_bytes(staging_stats_key(day), json.dumps(stats).encode())
    return stats


# Parquet files of empty quarantines by column types: most days of a history have nothing in
# quarantine, and encoding the same empty file for each of thousands cost more than its write.
_EMPTY_QUARANTINE: dict[tuple, bytes] = {}


def _write_quarantine(lake: LakeResource, day: dt.date, frame: pd.DataFrame) -> None:
    if len(frame):
        lake.write_parquet(quarantine_key(day), frame)
        return
    signature = tuple((name, str(dtype)) for name, dtype in frame.dtypes.items())
    if signature not in _EMPTY_QUARANTINE:
        _EMPTY_QUARANTINE[signature] = parquet_bytes(frame)
    lake.write_bytes(quarantine_key(day), _EMPTY_QUARANTINE[signature])


def _small_day_groups(days: list[dt.date], sizes: dict[dt.date, int]) -> list[list[dt.date]]:
    """Runs of consecutive small days, each run at most GROUP_BYTES of raw gzip."""
    groups: list[list[dt.date]] = []
    current: list[dt.date] = []
    weight = 0
    for day in days:
        if sizes[day] > SMALL_DAY_BYTES:
            continue
        if current and weight + sizes[day] > GROUP_BYTES:
            groups.append(current)
            current, weight = [], 0
        current.append(day)
        weight += sizes[day]
    if current:
        groups.append(current)
    return groups


def _land_days(
    lake: LakeResource, key: bytes, days: list[dt.date], raw: dict[dt.date, dict[str, int]]
) -> dict[dt.date, dict]:
    """Stage small days in one pass (`stage_days`), writing each day's files as `_land` does."""
    batches = {day: {k: _parse(lake, k) for k in raw[day]} for day in days}
    staged = stage_days(batches, key=key)
    del batches
    return {day: _write(lake, day, staged.pop(day)) for day in days}


def _land_big_days(
    lake: LakeResource,
    key: bytes,
    days: list[dt.date],
    raw: dict[dt.date, dict[str, int]],
    sizes: dict[dt.date, int],
) -> list[dict]:
    """Days too big to stage together: side by side when they are small enough, in helper
    processes when there is enough of them, else one after another."""
    if len(days) < 2:
        return [_land(lake, key, day, list(raw[day])) for day in days]
    if max(sizes[d] for d in days) > SIDE_BY_SIDE_BYTES:
        return [_land(lake, key, day, list(raw[day])) for day in days]
    if sum(sizes[d] for d in days) >= HELPER_MIN_BYTES:
        return _land_with_helpers(lake, key, days)
    with ThreadPoolExecutor(STAGING_THREADS, thread_name_prefix="staging") as pool:
        return list(pool.map(lambda day: _land(lake, key, day, list(raw[day])), days))


def _so_far(landed: dict[dt.date, dict], days: int, started: float) -> str:
    """The step's progress after a group: days staged of those with raw files, and its rate."""
    records = sum(stats["raw_records"] for stats in landed.values())
    elapsed = max(time.monotonic() - started, 1e-9)
    return (
        f"; {len(landed):,} of {days:,} days with raw files, {records:,} records in "
        f"{elapsed:.1f} s ({records / elapsed:,.0f} plays/s)"
    )


def _group_line(days: list[dt.date], stats: dict[dt.date, dict]) -> str:
    span = f"{days[0]}" if len(days) == 1 else f"{days[0]}..{days[-1]} ({len(days)} days)"
    total = {
        name: sum(s[name] for s in stats.values())
        for name in ("raw_records", "staged_rows", "quarantined_rows", "duplicates_removed")
    }
    return (
        f"{span}: {total['raw_records']} raw, {total['staged_rows']} staged, "
        f"{total['quarantined_rows']} quarantined, {total['duplicates_removed']} duplicates"
    )


class _Helper:
    """A helper process (`staging_helper`) that stages the days this process sends it."""

    def __init__(self, config: dict, key: bytes) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "spotify_platform.defs.assets.staging_helper"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            self._send((config, key))
        except OSError:
            pass  # it ended at once: the first day sent to it reports how

    def _send(self, message: object) -> None:
        self.process.stdin.write(pickle.dumps(message))
        self.process.stdin.flush()

    def stage(self, day: dt.date) -> dict:
        try:
            self._send(day)
            status, value = pickle.load(self.process.stdout)
        except (EOFError, OSError, pickle.UnpicklingError):
            code = self.process.poll()
            raise RuntimeError(
                f"the helper process staging {day} ended (exit code {code}; out of memory?): "
                "materialize the days again, or fewer at a time"
            ) from None
        if status == "error":
            raise value
        return value

    def close(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            self.process.stdout.close()


def _land_with_helpers(lake: LakeResource, key: bytes, days: list[dt.date]) -> list[dict]:
    """Stage the days here and in helper processes at once.

    The helpers take days from the front, this process from the back, until none is left; a
    failure anywhere stops every side after its current day and is raised here.
    """
    config = {"url": lake.url, "s3_endpoint_url": lake.s3_endpoint_url}
    config["region_name"] = lake.region_name
    left = collections.deque(enumerate(days))
    results: dict[int, dict] = {}
    errors: list[BaseException] = []

    def serve(helper: _Helper) -> None:
        while not errors:
            try:
                i, day = left.popleft()
            except IndexError:
                return
            try:
                results[i] = helper.stage(day)
            except BaseException as exc:
                errors.append(exc)

    helpers: list[_Helper] = []
    threads: list[threading.Thread] = []
    try:
        for _ in range(min(STAGING_HELPERS, len(days) // 4 or 1)):
            helpers.append(_Helper(config, key))
            threads.append(threading.Thread(target=serve, args=(helpers[-1],), daemon=True))
            threads[-1].start()
        while not errors:
            try:
                i, day = left.pop()
            except IndexError:
                break
            results[i] = _land(lake, key, day)
    except BaseException as exc:
        errors.append(exc)
    finally:
        for thread in threads:
            thread.join()
        for helper in helpers:
            helper.close()
    if errors:
        raise errors[0]
    return [results[i] for i in range(len(days))]


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
    key = identity.key()
    all_days = days_of(context)
    raw = lake.keys_by_day(RAW_ROOT, all_days)
    days = [day for day in all_days if day in raw]
    _clear_staged(lake, [day for day in all_days if day not in raw])

    sizes = {day: sum(raw[day].values()) for day in days}
    landed: dict[dt.date, dict] = {}
    started = time.monotonic()
    for group in _small_day_groups(days, sizes):
        group_stats = _land_days(lake, key, group, raw)
        landed.update(group_stats)
        context.log.info(_group_line(group, group_stats) + _so_far(landed, len(days), started))
    big = [day for day in days if day not in landed]
    for day, stats in zip(big, _land_big_days(lake, key, big, raw, sizes), strict=True):
        landed[day] = stats
        context.log.info(_group_line([day], {day: stats}) + _so_far(landed, len(days), started))
    by_day = {
        day.isoformat(): landed.get(day) or _stats(StagedDay(day, pd.DataFrame(), pd.DataFrame()))
        for day in all_days
    }
    if len(days) < len(all_days):
        context.log.info(f"{len(all_days) - len(days)} days without raw files: nothing staged")
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

    for day in all_days:
        uri = lake.uri(staging_key(day)) if day in landed else None
        context.add_asset_metadata(
            _day_metadata(by_day[day.isoformat()], uri),
            asset_key=STAGING,
            partition_key=day.isoformat(),
        )
    if len(by_day) > 1:
        context.log.info(", ".join(f"{n:,} {name.replace('_', ' ')}" for name, n in totals.items()))
    yield MaterializeResult(asset_key=STAGING)
    yield MaterializeResult(
        asset_key=QUARANTINE,
        metadata={
            "quarantined_rows": totals["quarantined_rows"],
            "reasons": MetadataValue.md(reason_md if top else "none"),
        },
    )
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
