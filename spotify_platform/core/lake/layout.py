"""Lake keys: the same layout on S3 and in the local lake folder."""

import datetime as dt

RAW_ROOT = "raw/listening_events/"
STAGING_ROOT = "staging/streams/"
QUARANTINE_ROOT = "quarantine/streams/"
# Per-day aggregate tables the Spark engine builds, in parts (`aggregate_part_key`).
AGGREGATES_ROOT = "aggregates/"


def raw_prefix(day: dt.date) -> str:
    return f"{RAW_ROOT}dt={day.isoformat()}/"


def raw_key(day: dt.date, source: str, name: str) -> str:
    return f"{raw_prefix(day)}source={source}/{name}.jsonl.gz"


def staging_key(day: dt.date) -> str:
    return f"{STAGING_ROOT}dt={day.isoformat()}/streams.parquet"


def quarantine_key(day: dt.date) -> str:
    return f"{QUARANTINE_ROOT}dt={day.isoformat()}/rejected.parquet"


def dashboard_key(day: dt.date) -> str:
    return f"reports/dashboard/dt={day.isoformat()}/index.html"


def api_raw_key(endpoint: str, day: dt.date, name: str) -> str:
    return f"raw/spotify_api/{endpoint}/dt={day.isoformat()}/{name}.json"


def staging_stats_key(day: dt.date) -> str:
    return f"{STAGING_ROOT}dt={day.isoformat()}/_stats.json"


def aggregate_prefix(table: str, day: dt.date) -> str:
    return f"{AGGREGATES_ROOT}{table}/dt={day.isoformat()}/"


def aggregate_part_key(table: str, day: dt.date, part: int) -> str:
    """One part of a day's aggregate rows: the rows of the split keys one Spark task held."""
    return f"{aggregate_prefix(table, day)}part-{part:05d}.parquet"


def aggregate_done_key(table: str, day: dt.date) -> str:
    """Written once all of a day's parts of `table` are: the day's aggregate is whole."""
    return f"{aggregate_prefix(table, day)}_SUCCESS"
