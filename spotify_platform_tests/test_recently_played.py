"""Recently-played ingestion for connected accounts, against a local Web-API-like server.

The server (`support.web_api.FakeWebApi`) knows several accounts by refresh token, serves each
account's plays newest first and, like Spotify, only reaches the 50 latest of them. The lake is
a folder in tmp_path; assets run through `dagster.materialize`.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import secrets
import time

import pytest
from dagster import (
    AssetCheckSeverity,
    DagsterInstance,
    Definitions,
    materialize,
    serialize_value,
)

from spotify_platform.core.sources.raw import RAW_FIELDS
from spotify_platform.defs.assets.api import (
    GAP_CHECK,
    account_hmac_id,
    raw_recently_played,
    state_key,
)
from spotify_platform.defs.automation import recently_played_job, recently_played_schedule
from spotify_platform.defs.resources.hmac_key import IdentityResource
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform.defs.resources.spotify_accounts import (
    SpotifyAccountsResource,
)
from spotify_platform_tests.support.web_api import (
    ALICE,
    BASIC,
    BOB,
    CLIENT_SECRET,
    TOKENS,
    FakeWebApi,
    ms,
    only,
)

HMAC_KEY = "test-hmac-key-" + secrets.token_hex(8)
# Late evening UTC, so a few plays at four-minute steps cross midnight into the next day.
START = dt.datetime(2026, 3, 1, 23, 50, 0, 123_000, tzinfo=dt.UTC)


@pytest.fixture
def api(httpserver, tmp_path, monkeypatch) -> FakeWebApi:
    monkeypatch.chdir(tmp_path)  # a stray `.cache` or `.data` would land here
    return FakeWebApi(httpserver)


@pytest.fixture
def lake(tmp_path) -> LakeResource:
    return LakeResource(url=f"file://{tmp_path / 'lake'}")


def run(api: FakeWebApi, lake: LakeResource, instance: DagsterInstance | None = None, **kw):
    config = kw.pop("config", None)
    return materialize(
        [raw_recently_played],
        resources={
            "lake": lake,
            "spotify_accounts": kw.pop("accounts", None) or api.accounts(),
            "identity": IdentityResource(hmac_key=HMAC_KEY),
        },
        run_config={"ops": {"lake__raw_recently_played": {"config": config}}} if config else None,
        instance=instance,
        raise_on_error=False,
    )


def aid(account: str) -> str:
    return account_hmac_id(account, HMAC_KEY.encode())


def landed(lake: LakeResource) -> dict[str, list[dict]]:
    """Records in each raw file the asset wrote, by key."""
    return {
        key: [json.loads(line) for line in gzip.decompress(lake.read_bytes(key)).splitlines()]
        for key in lake.list_keys("raw/listening_events/")
    }


def cursor(lake: LakeResource, account: str) -> dict:
    return json.loads(lake.read_bytes(state_key(aid(account))))


def metadata(result) -> dict:
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def gap_check(result):
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == GAP_CHECK]
    return evaluation


def failure_text(result) -> str:
    (event,) = result.get_step_failure_events()
    data = event.step_failure_data
    description = data.user_failure_data.description if data.user_failure_data else ""
    return f"{data.error.message}\n{description}"


# -- fetching and landing ----------------------------------------------------------------------


def test_first_fetch_lands_records_by_day_and_writes_the_cursor(api, lake) -> None:
    moments = [START + dt.timedelta(minutes=4 * i) for i in range(5)]  # 23:50 .. 00:06
    api.play(ALICE, moments)

    result = run(api, lake, accounts=api.accounts(refresh_tokens_json=json.dumps(only(ALICE))))

    assert result.success
    files = landed(lake)
    day1 = f"raw/listening_events/dt=2026-03-01/source=api/{aid(ALICE)}-"
    day2 = f"raw/listening_events/dt=2026-03-02/source=api/{aid(ALICE)}-"
    assert sorted(files) == [
        f"{day1}{ms(moments[0])}-{ms(moments[2])}.jsonl.gz",
        f"{day2}{ms(moments[3])}-{ms(moments[4])}.jsonl.gz",
    ]
    records = [r for rs in files.values() for r in rs]
    assert [r["ts"] for r in records] == [m.strftime("%Y-%m-%dT%H:%M:%SZ") for m in moments]
    assert all(set(r) == set(RAW_FIELDS) for r in records)
    # Raw keeps the name, as export imports do, so staging pseudonymises both alike.
    assert {r["account_id"] for r in records} == {ALICE}
    state = cursor(lake, ALICE)
    assert state["last_played_at_ms"] == ms(moments[-1])
    fetched = dt.datetime.fromisoformat(state["last_fetch_at"])
    assert abs((dt.datetime.now(dt.UTC) - fetched).total_seconds()) < 60
    assert api.recent_queries() == [{"limit": "50"}], "a first fetch has no cursor"
    meta = metadata(result)
    assert meta["accounts"] == 1 and meta["plays_landed"] == 5 and meta["files"] == 2
    assert meta["days_touched"] == ["2026-03-01", "2026-03-02"]
    assert meta["plays_by_account"] == {aid(ALICE): 5}
    assert meta["failed_accounts"] == []
    assert gap_check(result).passed


def test_second_fetch_asks_after_the_cursor_and_lands_only_new_plays(api, lake) -> None:
    accounts = api.accounts(refresh_tokens_json=json.dumps(only(ALICE)))
    first = [START - dt.timedelta(hours=2, minutes=4 * i) for i in range(3)]
    api.play(ALICE, first)
    assert run(api, lake, accounts=accounts).success
    newer = [START - dt.timedelta(minutes=30 + 4 * i) for i in range(2)]
    api.play(ALICE, newer)

    result = run(api, lake, accounts=accounts)

    assert result.success
    assert api.recent_queries()[-1] == {"limit": "50", "after": str(ms(max(first)))}
    files = landed(lake)
    assert len(files) == 2
    all_ts = sorted(r["ts"] for rs in files.values() for r in rs)
    assert len(all_ts) == len(set(all_ts)) == 5, "nothing fetched twice"
    assert metadata(result)["plays_landed"] == 2
    assert metadata(result)["days_touched"] == ["2026-03-01"]
    assert cursor(lake, ALICE)["last_played_at_ms"] == ms(max(newer))
    assert gap_check(result).passed

    third = run(api, lake, accounts=accounts)

    assert third.success and metadata(third)["plays_landed"] == 0
    assert metadata(third)["days_touched"] == []
    assert len(landed(lake)) == 2
    assert cursor(lake, ALICE)["last_played_at_ms"] == ms(max(newer)), "an empty fetch keeps it"


def test_a_rerun_before_the_cursor_is_written_overwrites_instead_of_duplicating(api, lake) -> None:
    accounts = api.accounts(refresh_tokens_json=json.dumps(only(ALICE)))
    api.play(ALICE, [START - dt.timedelta(minutes=4 * i) for i in range(4)])
    assert run(api, lake, accounts=accounts).success
    first_files = landed(lake)
    lake.delete(state_key(aid(ALICE)))  # as if the run died between landing and the cursor

    assert run(api, lake, accounts=accounts).success

    assert landed(lake) == first_files


def test_plays_at_or_before_the_cursor_are_dropped_whatever_the_server_returns(api, lake) -> None:
    accounts = api.accounts(refresh_tokens_json=json.dumps(only(ALICE)))
    api.play(ALICE, [START - dt.timedelta(hours=1, minutes=4 * i) for i in range(3)])
    assert run(api, lake, accounts=accounts).success
    api.play(ALICE, [START])
    api.ignore_after = True  # as a pagination link reaching past the cursor would

    result = run(api, lake, accounts=accounts)

    assert metadata(result)["plays_landed"] == 1
    all_ts = [r["ts"] for rs in landed(lake).values() for r in rs]
    assert len(all_ts) == len(set(all_ts)) == 4
    assert gap_check(result).passed


# -- the gap check -----------------------------------------------------------------------------


def test_a_full_page_after_an_old_cursor_warns(api, lake) -> None:
    accounts = api.accounts(refresh_tokens_json=json.dumps(only(ALICE)))
    api.play(ALICE, [START - dt.timedelta(days=1, minutes=4 * i) for i in range(3)])
    assert gap_check(run(api, lake, accounts=accounts)).passed
    old_cursor = cursor(lake, ALICE)["last_played_at_ms"]
    # 60 plays since: the API's window of 50 no longer reaches the cursor.
    api.play(ALICE, [START - dt.timedelta(minutes=3 * i) for i in range(60)])

    result = run(api, lake, accounts=accounts)

    assert result.success, "a gap warns, it does not fail the fetch"
    assert api.recent_queries()[-1]["after"] == str(old_cursor)
    check = gap_check(result)
    assert not check.passed
    assert check.severity == AssetCheckSeverity.WARN
    assert check.metadata["accounts"].value == [aid(ALICE)]
    assert "full page of 50" in json.dumps(check.metadata["reasons"].value)
    assert metadata(result)["plays_landed"] == 50


def test_a_full_page_that_reaches_the_cursor_does_not_warn(api, lake) -> None:
    accounts = api.accounts(refresh_tokens_json=json.dumps(only(ALICE)))
    api.play(ALICE, [START - dt.timedelta(hours=5, minutes=4 * i) for i in range(10)])
    assert run(api, lake, accounts=accounts).success
    api.play(ALICE, [START - dt.timedelta(minutes=3 * i) for i in range(45)])

    result = run(api, lake, accounts=accounts)

    assert gap_check(result).passed, "45 new plays fit in the window: nothing was missed"
    assert metadata(result)["plays_landed"] == 45


def test_fetches_too_far_apart_warn_with_a_configurable_limit(api, lake) -> None:
    accounts = api.accounts(refresh_tokens_json=json.dumps(only(ALICE)))
    api.play(ALICE, [START])
    assert run(api, lake, accounts=accounts).success
    state = cursor(lake, ALICE)
    four_hours_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=4)
    stale = json.dumps({**state, "last_fetch_at": four_hours_ago.isoformat()}).encode()
    lake.write_bytes(state_key(aid(ALICE)), stale)

    relaxed = run(api, lake, accounts=accounts, config={"max_hours_between_fetches": 5})
    lake.write_bytes(state_key(aid(ALICE)), stale)
    default = run(api, lake, accounts=accounts)

    assert gap_check(relaxed).passed
    check = gap_check(default)
    assert not check.passed and check.metadata["accounts"].value == [aid(ALICE)]
    assert "4.0 h between fetches (more than 3 h)" in json.dumps(check.metadata["reasons"].value)


# -- failures ----------------------------------------------------------------------------------


def test_a_revoked_account_fails_the_step_by_id_while_the_other_lands(api, lake) -> None:
    api.play(ALICE, [START - dt.timedelta(minutes=4 * i) for i in range(3)])
    api.play(BOB, [START - dt.timedelta(minutes=5 * i) for i in range(2)])
    api.revoked.add(TOKENS[BOB])

    result = run(api, lake)

    assert not result.success
    text = failure_text(result)
    assert f"account {aid(BOB)}" in text and "invalid_grant" in text, text
    assert "1 of 2 accounts failed" in text
    assert aid(ALICE) not in text and BOB not in text and TOKENS[BOB] not in text
    assert len(result.get_step_failure_events()) == 1
    assert result.retry_attempts_for_node("lake__raw_recently_played") == 0, "not retried"
    files = landed(lake)
    assert len(files) == 1 and all(aid(ALICE) in key for key in files)
    assert len(next(iter(files.values()))) == 3
    assert lake.exists(state_key(aid(ALICE)))
    assert not lake.exists(state_key(aid(BOB))), "no cursor for an account that was not fetched"
    meta = metadata(result)
    assert meta["plays_by_account"] == {aid(ALICE): 3}
    assert meta["failed_accounts"] == [aid(BOB)]


def test_a_day_long_rate_limit_fails_at_once_with_the_wait(api, lake) -> None:
    api.play(ALICE, [START])
    api.retry_after = "86400"

    started = time.monotonic()
    result = run(api, lake)
    elapsed = time.monotonic() - started

    assert not result.success
    assert elapsed < 20, f"took {elapsed:.1f} s"
    text = failure_text(result)
    assert "retry after 86400 s" in text, text
    assert "2 of 2 accounts not fetched" in text
    assert len(api.recent_queries()) == 1, "neither slept through nor retried by the policy"
    assert result.retry_attempts_for_node("lake__raw_recently_played") == 0
    assert not result.get_asset_materialization_events(), "nothing landed, nothing materialized"
    assert lake.list_keys("") == []


# -- secrets and account names -----------------------------------------------------------------


def test_no_account_name_or_token_in_metadata_logs_or_keys(
    api, lake, tmp_path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture
) -> None:
    """Python logging (caplog), Dagster's event log and console, and lake keys are all clean."""
    caplog.set_level(logging.DEBUG)
    api.play(ALICE, [START - dt.timedelta(minutes=4 * i) for i in range(3)])
    api.play(BOB, [START])
    api.revoked.add(TOKENS[BOB])
    instance = DagsterInstance.ephemeral()

    failed = run(api, lake, instance=instance)
    api.revoked.clear()
    succeeded = run(api, lake, instance=instance)
    api.retry_after = "86400"
    limited = run(api, lake, instance=instance)

    assert not failed.success and succeeded.success and not limited.success
    events = instance.all_logs(failed.run_id) + instance.all_logs(succeeded.run_id)
    events += instance.all_logs(limited.run_id)
    event_text = "\n".join(serialize_value(e) for e in events)
    console = capfd.readouterr().err
    logs = caplog.text + console
    assert aid(BOB) in event_text, "the failing account is reported, so the search is real"
    assert f"account {aid(ALICE)}: 3 new plays" in event_text
    assert f"account {aid(BOB)}" in console, "Dagster's console log was captured"
    assert "recently-played" in caplog.text, "spotipy/werkzeug records were captured"
    keys = lake.list_keys("")
    assert any(aid(BOB) in key for key in keys)
    for secret in (ALICE, BOB, *TOKENS.values(), CLIENT_SECRET, BASIC, HMAC_KEY):
        assert secret not in event_text
        assert secret not in logs
        assert secret not in "\n".join(keys)
    assert ALICE.split("@")[0] not in event_text + logs
    assert not list(tmp_path.glob(".cache*")), "spotipy wrote a token cache file"


# -- wiring ------------------------------------------------------------------------------------


def test_job_and_schedule_run_the_asset_and_its_check_hourly(lake) -> None:
    defs = Definitions(
        assets=[raw_recently_played],
        jobs=[recently_played_job],
        schedules=[recently_played_schedule],
        resources={
            "lake": lake,
            "spotify_accounts": SpotifyAccountsResource(),
            "identity": IdentityResource(hmac_key=HMAC_KEY),
        },
    )
    job = defs.resolve_job_def("recently_played")
    assert job.asset_layer.executable_asset_keys == {raw_recently_played.key}
    assert {c.name for c in job.asset_layer.asset_graph.asset_check_keys} == {GAP_CHECK}
    schedule = defs.resolve_schedule_def("recently_played_schedule")
    assert schedule.cron_schedule == "7 * * * *"
    assert schedule.default_status.value == "STOPPED"
    assert schedule.execution_timezone == "UTC"
    assert raw_recently_played.partitions_def is None
    policy = raw_recently_played.op.retry_policy
    assert (policy.max_retries, policy.delay) == (3, 20)

    result = job.execute_in_process(raise_on_error=False)

    assert result.success, "no connected accounts is a quiet, successful run"
    assert gap_check(result).passed
