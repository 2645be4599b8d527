"""Raw input that staging must clean: the same file twice, overlapping files, malformed lines."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from spotify_platform.core.lake.layout import (
    quarantine_key,
    raw_key,
    staging_stats_key,
)
from spotify_platform.core.sources.raw import encode_jsonl_gz
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform_tests import oracle
from spotify_platform_tests.harness import (
    make_resources,
    read_table,
    run_days,
    simulated_raw,
)
from spotify_platform_tests.support.records import play

DAY = dt.date(2026, 3, 2)


# -- the same file twice, overlapping files ----------------------------------------------------

def unique_plays(raw: pd.DataFrame) -> pd.DataFrame:
    """Raw records with duplicates (same account, end second, content, ms) dropped."""
    content = (
        raw["spotify_track_uri"]
        .fillna(raw["spotify_episode_uri"])
        .fillna(
            raw["master_metadata_album_artist_name"].fillna("")
            + "\x1f"
            + raw["master_metadata_track_name"].fillna("")
        )
    )
    second = pd.to_datetime(raw["ts"], utc=True).dt.floor("s").astype(str)
    key = pd.DataFrame(
        {"a": raw["account_id"], "t": second, "c": content, "m": raw["ms_played"].astype(str)}
    )
    return raw.loc[~key.duplicated()]


def test_a_file_landed_twice_and_overlapping_files_count_each_play_once(
    mysql_url: str, tmp_path: Path
) -> None:
    resources = make_resources(tmp_path, warehouse_url=mysql_url, accounts=40)
    lake: LakeResource = resources["lake"]
    simulated = simulated_raw(resources, DAY, DAY)
    newcomers = simulated.head(25).assign(account_id="late-joiner")
    overlapping = pd.concat([simulated.iloc[::2], newcomers], ignore_index=True)
    # The simulator lands its own file in the run; here the same file under a second key,
    # and a file sharing half its plays, landed from two sources.
    lake.write_bytes(raw_key(DAY, "export", "same-file-again"), encode_jsonl_gz(simulated))
    lake.write_bytes(raw_key(DAY, "export", "overlap"), encode_jsonl_gz(overlapping))
    lake.write_bytes(raw_key(DAY, "api", "overlap-again"), encode_jsonl_gz(overlapping))

    assert run_days(resources, DAY, DAY)

    landed = len(simulated) * 2 + len(overlapping) * 2
    expected = unique_plays(pd.concat([simulated, newcomers], ignore_index=True))
    stats = json.loads(lake.read_bytes(staging_stats_key(DAY)))
    facts = read_table(resources, "fact_streams")
    assert stats["raw_records"] == landed
    assert stats["quarantined_rows"] == 0
    assert len(facts) == stats["staged_rows"] == len(expected)
    assert stats["duplicates_removed"] == landed - len(expected)
    assert facts["event_id"].is_unique
    want = oracle.daily_streams(oracle.prepare(expected), pd.Timestamp(DAY))
    daily = read_table(resources, "kpi_daily_streams").set_index("dt").loc[pd.Timestamp(DAY)]
    assert (int(daily["plays"]), int(daily["streams"]), int(daily["listeners"])) == (
        want["plays"],
        want["streams"],
        want["listeners"],
    )
    assert daily["minutes_played"] == pytest.approx(want["minutes_played"])


# -- malformed raw lines -----------------------------------------------------------------------

def test_malformed_lines_are_quarantined_with_reasons_and_the_counts_reconcile(
    mysql_url: str, tmp_path: Path
) -> None:
    resources = make_resources(tmp_path, warehouse_url=mysql_url, accounts=40)
    lake: LakeResource = resources["lake"]
    noon = f"{DAY}T12:00:00Z"
    lines: list[tuple[str, str | None]] = [
        ("{this is not json", "line is not JSON"),
        ("[1, 2, 3]", "line is not a JSON object"),
        (json.dumps({k: v for k, v in play(noon).items() if k != "ts"}), "ts: missing"),
        (json.dumps(play(None)), "ts: missing"),
        (json.dumps(play(1772452800)), "ts: not an ISO 8601 timestamp"),
        (json.dumps(play("yesterday at noon")), "ts: not an ISO 8601 timestamp"),
        (json.dumps(play(noon, ms="abc")), "ms_played: not a whole number"),
        (json.dumps(play(noon, ms=12.5)), "ms_played: not a whole number"),
        (json.dumps(play(noon, ms=True)), "ms_played: not a number"),
        (json.dumps(play(noon, ms=False)), "ms_played: not a number"),
        (json.dumps(play(noon, ms={"value": 1})), "ms_played: not a whole number"),
        (
            json.dumps({k: v for k, v in play(noon).items() if k != "ms_played"}),
            "ms_played: missing",
        ),
        (json.dumps(play(noon, ms=-5)), "ms_played=-5 fails greater_than_or_equal_to(0)"),
        (json.dumps(play(noon, ms=10**12)), "fails less_than_or_equal_to(86400000)"),
        (json.dumps(play(noon, ms=2**70)), "fails less_than_or_equal_to(86400000)"),
        (json.dumps(play("2099-06-01T12:00:00Z")), "not_in_future"),
        (json.dumps(play("2041-03-02T12:00:00Z")), "not_in_future"),
        (json.dumps(play(noon, account_id=None)), "account_id: missing"),
        (json.dumps(play(noon, account="a", conn_country="XX")), "country='XX'"),
        (json.dumps(play(noon, account="good-1")), None),
        (json.dumps(play(f"{DAY}T13:00:00Z", account="good-2", shuffle="yes")), None),
    ]
    text = "\n".join(line for line, _ in lines) + "\n"
    key = raw_key(DAY, "export", "broken")
    lake.write_bytes(key, gzip.compress(text.encode()))

    assert run_days(resources, DAY, DAY), "the rest of the day still loads"

    quarantine = lake.read_parquet(quarantine_key(DAY))
    from_file = quarantine[quarantine["source_file"] == key].set_index("line")
    for number, (_, reason) in enumerate(lines, start=1):
        if reason is None:
            assert number not in from_file.index, from_file.loc[number, "reason"]
        else:
            assert reason in from_file.loc[number, "reason"], (number, from_file.loc[number])
    stats = json.loads(lake.read_bytes(staging_stats_key(DAY)))
    facts = read_table(resources, "fact_streams")
    simulated = len(simulated_raw(resources, DAY, DAY))
    assert stats["raw_records"] == simulated + len(lines)
    assert len(quarantine) == stats["quarantined_rows"] == sum(r is not None for _, r in lines)
    assert stats["raw_records"] == (
        stats["staged_rows"] + stats["quarantined_rows"] + stats["duplicates_removed"]
    )
    assert len(facts) == stats["staged_rows"]
    good = facts[facts["ended_at"].dt.strftime("%H:%M") == "13:00"]
    assert len(good) == 1 and pd.isna(good["shuffle"].iloc[0]), "a bad optional flag is NULL"
    assert not quarantine["record"].str.contains("192.0.2.").any(), "IPs never leave raw/"
