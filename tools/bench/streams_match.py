"""Whether the platform's streams are the lean path's: the same (end second, ms played, track,
artist) tuples, as many times each, compared by count and an order-independent digest.

The two paths do not key rows alike: the lean path keeps every raw row with a track name, the
platform removes duplicate events (same account, end, content and ms played) and quarantines
malformed records. Where the tuples differ, the difference is listed, with the lean path's
streams that repeat a raw event and the platform's own staging figures for the day, which
say what it removed and why; and the lean streams are compared again with each repeated
event once.
"""

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

STREAM_TUPLE = (
    "DATE_FORMAT(ended_at, '%Y-%m-%d %H:%i:%s') AS ended_at, ms_played, "
    "COALESCE(track_name, '~') AS track_name, COALESCE(artist_name, '~') AS artist_name"
)
EXAMPLES = 5


def _query(url: str, sql: str) -> pd.DataFrame:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text(sql), conn)
    engine.dispose()
    return frame


def stream_tuples(table: str, distinct_events: bool = False) -> str:
    """The query of a table's stream tuples; with `distinct_events`, a raw event repeated
    (same account, end, track and ms played, what the platform's event id hashes) once."""
    source = f"`{table}` WHERE is_stream"
    if distinct_events:
        source = (
            "(SELECT DISTINCT account_id, ended_at, track_uri, ms_played, track_name, "
            f"artist_name FROM `{table}` WHERE is_stream) AS events"
        )
    return f"SELECT {STREAM_TUPLE} FROM {source}"


def stream_digest(url: str, tuples: str) -> dict:
    """Count and CRC32 sum of the stream tuples: equal for the same multiset."""
    row = _query(
        url,
        "SELECT COUNT(*) AS n, SUM(CRC32(CONCAT_WS('|', ended_at, ms_played, track_name, "
        f"artist_name))) AS digest FROM ({tuples}) AS t",
    ).iloc[0]
    return {"rows": int(row["n"]), "digest": int(row["digest"] or 0)}


def stream_difference(lean_url: str, platform_url: str) -> dict:
    """The tuples one side has more often than the other, counted, with a few examples."""
    keys = ["ended_at", "ms_played", "track_name", "artist_name"]
    counts = []
    for url, table, side in (
        (lean_url, "listening_events", "lean"),
        (platform_url, "fact_streams", "platform"),
    ):
        frame = _query(url, stream_tuples(table))
        counts.append(frame.groupby(keys).size().rename(side))
    both = pd.concat(counts, axis=1).fillna(0).astype("int64")
    extra = both["lean"] - both["platform"]
    examples = both[extra != 0].head(EXAMPLES).reset_index()
    return {
        "only_lean": int(extra.clip(lower=0).sum()),
        "only_platform": int((-extra).clip(lower=0).sum()),
        "examples": examples.astype(str).to_dict("records"),
    }


def staging_stats(lake: Path, day: dt.date) -> dict:
    """What the platform's staging reported for the day: duplicates removed, quarantined."""
    from spotify_platform.core.lake.layout import staging_stats_key

    path = lake / staging_stats_key(day)
    if not path.exists():
        return {}
    stats = json.loads(path.read_text())
    return {k: stats.get(k) for k in ("raw_records", "duplicates_removed", "quarantined_rows")} | {
        "reasons": stats.get("reasons")
    }


def compare_streams(lean_url: str, platform_url: str, lake: Path, day: dt.date) -> dict:
    """The lean path's streams against the platform's: identical, or the exact difference."""
    lean = stream_digest(lean_url, stream_tuples("listening_events"))
    lean_events = stream_digest(lean_url, stream_tuples("listening_events", distinct_events=True))
    platform = stream_digest(platform_url, stream_tuples("fact_streams"))
    result = {
        "lean": lean,
        "lean_distinct_events": lean_events,
        "platform": platform,
        "identical": lean == platform,
        "repeated_stream_events": lean["rows"] - lean_events["rows"],
        "identical_with_repeats_once": lean_events == platform,
        "staging": staging_stats(lake, day),
    }
    if not result["identical"]:
        result["difference"] = stream_difference(lean_url, platform_url)
    return result
