"""Raw layer fed by the Web API: recently-played plays of connected accounts, fetched hourly.

The endpoint only reaches an account's 50 latest plays, so the fetch runs every hour from a
per-account cursor kept in the lake (`state/recently_played/<account id>.json`). Plays land by
UTC day under keys made of the account id and the first and last play, so a retry overwrites
instead of duplicating; the cursor is written only after the plays landed, so a crash between
the two re-fetches plays that staging then de-duplicates by event id.

Account names never reach keys, metadata or logs: an HMAC of the name under the identity key
(`account_hmac_id`, the first 16 hex chars of staging's pseudonymous `account_id`) stands in.
The raw records keep the name in `account_id`, like export imports, so staging pseudonymises
both alike.
"""

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Backoff,
    Config,
    Failure,
    FreshnessPolicy,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)
from pydantic import Field

from spotify_platform.core.lake.layout import RAW_ROOT, raw_key
from spotify_platform.core.sources.api_payloads import recently_played_records
from spotify_platform.core.sources.raw import encode_records
from spotify_platform.defs.resources.hmac_key import IdentityResource
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform.defs.resources.spotify_accounts import (
    SpotifyAccountsError,
    SpotifyAccountsResource,
)
from spotify_platform.defs.resources.spotify_web_api import (
    SpotifyApiError,
    SpotifyRateLimited,
    redact,
)

RECENTLY_PLAYED = AssetKey(["lake", "raw_recently_played"])
GAP_CHECK = "recently_played_gap"
PAGE_LIMIT = 50
SOURCE = "api"
STATE_PREFIX = "state/recently_played/"
DEFAULT_MAX_HOURS = 3.0
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_MS = dt.timedelta(milliseconds=1)


class RecentlyPlayedConfig(Config):
    max_hours_between_fetches: float = Field(
        default=DEFAULT_MAX_HOURS,
        description="The gap check warns when an account's fetches are further apart than this.",
    )


# -- pure helpers ------------------------------------------------------------------------------


def account_hmac_id(account: str, key: bytes) -> str:
    """A short, non-reversible id for an account name: keys, metadata and logs use this."""
    return hmac.new(key, account.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def state_key(account_id: str) -> str:
    return f"{STATE_PREFIX}{account_id}.json"


def played_at_ms(played_at: str) -> int:
    """`played_at` ("2026-03-01T12:34:56.789Z") as a ms epoch, the API's `after` cursor unit."""
    moment = dt.datetime.fromisoformat(played_at.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - _EPOCH) // _ONE_MS


def ms_to_datetime(ms: int) -> dt.datetime:
    return _EPOCH + ms * _ONE_MS


@dataclass(frozen=True)
class Cursor:
    """Where an account's last successful fetch left off."""

    last_played_at_ms: int | None = None
    last_fetch_at: dt.datetime | None = None

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "last_played_at_ms": self.last_played_at_ms,
                "last_fetch_at": self.last_fetch_at.isoformat() if self.last_fetch_at else None,
            }
        ).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> "Cursor":
        value = json.loads(data)
        fetched = value.get("last_fetch_at")
        return cls(
            last_played_at_ms=value.get("last_played_at_ms"),
            last_fetch_at=dt.datetime.fromisoformat(fetched) if fetched else None,
        )


@dataclass
class Fetch:
    """What one account's fetch returned, split into new plays and what the gap check needs."""

    plays: list[tuple[int, dict]] = field(default_factory=list)
    returned: int = 0
    oldest_returned_ms: int | None = None


def new_plays(items: Iterable[object], after_ms: int | None, account: str) -> Fetch:
    """Raw records of the items played after the cursor, oldest first, each (played_at ms).

    Items at or before the cursor are dropped here too: pagination links may reach past it.
    """
    fetch = Fetch()
    seen: set[tuple[int, str | None]] = set()
    for item in items:
        played_at = item.get("played_at") if isinstance(item, dict) else None
        if not isinstance(played_at, str):
            continue
        try:
            ms = played_at_ms(played_at)
        except ValueError:
            continue
        fetch.returned += 1
        if fetch.oldest_returned_ms is None or ms < fetch.oldest_returned_ms:
            fetch.oldest_returned_ms = ms
        if after_ms is not None and ms <= after_ms:
            continue
        for record in recently_played_records([item], account_id=account):
            uri = record["spotify_track_uri"] or record["spotify_episode_uri"]
            if (ms, uri) not in seen:
                seen.add((ms, uri))
                fetch.plays.append((ms, record))
    fetch.plays.sort(key=lambda play: play[0])
    return fetch


def plays_by_day(plays: list[tuple[int, dict]]) -> dict[dt.date, list[tuple[int, dict]]]:
    """Plays grouped by the UTC day of their `ts` (the partition staging reads them in)."""
    days: dict[dt.date, list[tuple[int, dict]]] = {}
    for ms, record in plays:
        days.setdefault(ms_to_datetime(ms).date(), []).append((ms, record))
    return days


def gap_reasons(
    previous: Cursor,
    fetch: Fetch | None,
    now: dt.datetime,
    max_hours: float,
) -> list[str]:
    """Why plays may have been missed for one account; empty when nothing suggests it.

    A full page that does not reach back to the previous cursor means the API's 50-play window
    moved past plays never fetched. Fetches further apart than `max_hours` (or none since then,
    when this one failed) risk the same for any account playing 50 tracks in that time.
    """
    reasons = []
    if (
        fetch is not None
        and previous.last_played_at_ms is not None
        and fetch.returned >= PAGE_LIMIT
        and fetch.oldest_returned_ms is not None
        and fetch.oldest_returned_ms > previous.last_played_at_ms
    ):
        reasons.append(
            f"full page of {fetch.returned} plays, the oldest after the previous cursor"
        )
    if previous.last_fetch_at is not None:
        hours = (now - previous.last_fetch_at).total_seconds() / 3600
        if hours > max_hours:
            when = "between fetches" if fetch is not None else "since the last successful fetch"
            reasons.append(f"{hours:.1f} h {when} (more than {max_hours:g} h)")
    return reasons


def scrub(message: str, account: str, account_id: str) -> str:
    """An error message with the account name replaced by its id and credentials redacted."""
    if account:
        message = message.replace(repr(account), account_id).replace(account, account_id)
    return redact(message)


def _transient(exc: Exception) -> bool:
    """Worth a step retry: the API was down (after the client's own retries), not a refusal."""
    status = getattr(exc, "status", None)
    return (status is not None and status >= 500) or "unreachable" in str(exc)


# -- asset -------------------------------------------------------------------------------------


@dataclass
class _Run:
    """What one materialization did, per account id."""

    counts: dict[str, int] = field(default_factory=dict)
    days: set[dt.date] = field(default_factory=set)
    files: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    transient: bool = False
    rate_limited: SpotifyRateLimited | None = None
    not_fetched: list[str] = field(default_factory=list)
    gaps: dict[str, list[str]] = field(default_factory=dict)

    @property
    def landed(self) -> int:
        return sum(self.counts.values())


@asset(
    key=RECENTLY_PLAYED,
    group_name="raw",
    kinds={"s3", "json"},
    freshness_policy=FreshnessPolicy.time_window(
        fail_window=dt.timedelta(hours=6), warn_window=dt.timedelta(hours=2)
    ),
    retry_policy=RetryPolicy(
        max_retries=3, delay=20, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
    ),
    check_specs=[
        AssetCheckSpec(
            GAP_CHECK,
            asset=RECENTLY_PLAYED,
            description=(
                "Warns when plays may have been missed: a full page of 50 that does not reach "
                "the previous cursor, or fetches further apart than the configured hours."
            ),
        )
    ],
    description=(
        "Recently-played plays of connected Spotify accounts, landed as raw listening events "
        "by UTC day (source=api), from a per-account cursor. Meant for an hourly schedule."
    ),
)
def raw_recently_played(
    context: AssetExecutionContext,
    config: RecentlyPlayedConfig,
    lake: LakeResource,
    spotify_accounts: SpotifyAccountsResource,
    identity: IdentityResource,
) -> Iterator[MaterializeResult | AssetCheckResult]:
    lake.check()
    key = identity.key()
    accounts = spotify_accounts.connected()
    ids = {name: account_hmac_id(name, key) for name in accounts}
    run = _Run()
    for position, name in enumerate(accounts):
        account_id = ids[name]
        previous = _read_cursor(lake, account_id)
        now = dt.datetime.now(dt.UTC)
        try:
            fetch = _fetch(spotify_accounts, name, previous)
        except SpotifyRateLimited as exc:
            run.rate_limited = exc
            run.not_fetched = [ids[n] for n in accounts[position:]]
            for rest in accounts[position:]:
                _note_gap(run, ids[rest], _read_cursor(lake, ids[rest]), None, now, config)
            break
        except (SpotifyApiError, SpotifyAccountsError) as exc:
            run.failures[account_id] = scrub(str(exc), name, account_id)
            run.transient = run.transient or _transient(exc)
            context.log.error(f"account {account_id}: {run.failures[account_id]}")
            _note_gap(run, account_id, previous, None, now, config)
            continue
        _land(lake, account_id, fetch, run)
        latest = fetch.plays[-1][0] if fetch.plays else previous.last_played_at_ms
        lake.write_bytes(state_key(account_id), Cursor(latest, now).to_json())
        _note_gap(run, account_id, previous, fetch, now, config)
        context.log.info(
            f"account {account_id}: {len(fetch.plays)} new plays "
            f"({fetch.returned} returned, cursor {previous.last_played_at_ms})"
        )

    check = _gap_result(run, config)
    if run.landed or not (run.failures or run.rate_limited):
        yield MaterializeResult(metadata=_metadata(lake, accounts, run), check_results=[check])
    else:
        yield check
    if run.rate_limited or run.failures:
        raise _failure(run, len(accounts))


def _read_cursor(lake: LakeResource, account_id: str) -> Cursor:
    key = state_key(account_id)
    return Cursor.from_json(lake.read_bytes(key)) if lake.exists(key) else Cursor()


def _fetch(accounts: SpotifyAccountsResource, name: str, previous: Cursor) -> Fetch:
    pages = accounts.client(name).fetch_pages(after=previous.last_played_at_ms, limit=PAGE_LIMIT)
    items = [item for page in pages for item in page.get("items") or []]
    return new_plays(items, previous.last_played_at_ms, name)


def _land(lake: LakeResource, account_id: str, fetch: Fetch, run: _Run) -> None:
    for day, plays in sorted(plays_by_day(fetch.plays).items()):
        key = raw_key(day, SOURCE, f"{account_id}-{plays[0][0]}-{plays[-1][0]}")
        lake.write_bytes(key, encode_records([record for _, record in plays]))
        run.files.append(key)
        run.days.add(day)
    run.counts[account_id] = len(fetch.plays)


def _note_gap(
    run: _Run,
    account_id: str,
    previous: Cursor,
    fetch: Fetch | None,
    now: dt.datetime,
    config: RecentlyPlayedConfig,
) -> None:
    reasons = gap_reasons(previous, fetch, now, config.max_hours_between_fetches)
    if reasons:
        run.gaps[account_id] = reasons


def _gap_result(run: _Run, config: RecentlyPlayedConfig) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=RECENTLY_PLAYED,
        check_name=GAP_CHECK,
        passed=not run.gaps,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "accounts": sorted(run.gaps),
            "reasons": MetadataValue.json(run.gaps),
            "max_hours_between_fetches": config.max_hours_between_fetches,
            "page_limit": PAGE_LIMIT,
        },
    )


def _metadata(lake: LakeResource, accounts: list[str], run: _Run) -> dict[str, object]:
    return {
        "accounts": len(accounts),
        "plays_landed": run.landed,
        "days_touched": sorted(day.isoformat() for day in run.days),
        "plays_by_account": MetadataValue.json(run.counts),
        "files": len(run.files),
        "failed_accounts": sorted(run.failures) + run.not_fetched,
        "dagster/uri": lake.uri(RAW_ROOT),
    }


def _failure(run: _Run, total: int) -> Failure:
    """One failure for the step; a long rate limit or a refused token is not retried."""
    parts = [f"account {account_id}: {message}" for account_id, message in run.failures.items()]
    if run.rate_limited is not None:
        parts.insert(
            0,
            f"{run.rate_limited}; {len(run.not_fetched)} of {total} accounts not fetched, "
            "try again after the wait",
        )
    elif run.failures:
        parts.insert(0, f"{len(run.failures)} of {total} accounts failed")
    return Failure(
        description="; ".join(parts),
        metadata={
            "failed_accounts": sorted(run.failures) + run.not_fetched,
            "plays_landed": run.landed,
            "days_touched": sorted(day.isoformat() for day in run.days),
        },
        allow_retries=run.rate_limited is None and run.transient,
    )

