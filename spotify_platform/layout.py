"""Lake keys (DESIGN §3): the same layout on S3 and in the local lake folder."""

import datetime as dt


def raw_prefix(day: dt.date) -> str:
    return f"raw/listening_events/dt={day.isoformat()}/"


def raw_key(day: dt.date, source: str, name: str) -> str:
    return f"{raw_prefix(day)}source={source}/{name}.jsonl.gz"


def staging_key(day: dt.date) -> str:
    return f"staging/streams/dt={day.isoformat()}/streams.parquet"


def quarantine_key(day: dt.date) -> str:
    return f"quarantine/streams/dt={day.isoformat()}/rejected.parquet"


def dashboard_key(day: dt.date) -> str:
    return f"reports/dashboard/dt={day.isoformat()}/index.html"


def api_raw_key(endpoint: str, day: dt.date, name: str) -> str:
    return f"raw/spotify_api/{endpoint}/dt={day.isoformat()}/{name}.json"


def staging_stats_key(day: dt.date) -> str:
    return f"staging/streams/dt={day.isoformat()}/_stats.json"
