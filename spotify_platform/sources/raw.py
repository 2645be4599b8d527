"""The raw landing format: Spotify Extended Streaming History records plus `account_id`, as
gzip-compressed JSON lines. Reading is fast with pyarrow and falls back to a line-by-line
parser that keeps every bad line with its number, so one broken line never loses a file.
"""

import gzip
import io
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pajson

RAW_SCHEMA = pa.schema(
    [
        ("ts", pa.string()),
        ("platform", pa.string()),
        ("ms_played", pa.int64()),
        ("conn_country", pa.string()),
        ("ip_addr", pa.string()),
        ("master_metadata_track_name", pa.string()),
        ("master_metadata_album_artist_name", pa.string()),
        ("master_metadata_album_album_name", pa.string()),
        ("spotify_track_uri", pa.string()),
        ("episode_name", pa.string()),
        ("episode_show_name", pa.string()),
        ("spotify_episode_uri", pa.string()),
        ("audiobook_title", pa.string()),
        ("audiobook_uri", pa.string()),
        ("audiobook_chapter_uri", pa.string()),
        ("audiobook_chapter_title", pa.string()),
        ("reason_start", pa.string()),
        ("reason_end", pa.string()),
        ("shuffle", pa.bool_()),
        ("skipped", pa.bool_()),
        ("offline", pa.bool_()),
        ("offline_timestamp", pa.int64()),
        ("incognito_mode", pa.bool_()),
        ("account_id", pa.string()),
    ]
)
RAW_FIELDS = tuple(RAW_SCHEMA.names)
CORE_FIELDS = frozenset({"ts", "ms_played", "account_id"})
KNOWN_EXTRA_FIELDS = frozenset(
    {"username", "ip_addr_decrypted", "user_agent_decrypted", "episode_uri", "source"}
)
PERSONAL_FIELDS = ("username", "ip_addr", "ip_addr_decrypted", "user_agent_decrypted")
_PANDAS_TYPES = {pa.bool_(): pd.BooleanDtype(), pa.int64(): pd.Int64Dtype()}


@dataclass
class RawBatch:
    """Records read from one raw file. `records` has a 1-based `_line` column."""

    records: pd.DataFrame
    bad_lines: list[tuple[int, str, str]] = field(default_factory=list)
    unknown_fields: list[str] = field(default_factory=list)
    missing_fields: list[str] = field(default_factory=list)


def encode_jsonl_gz(frame: pd.DataFrame) -> bytes:
    """Serialise records as gzip JSON lines; missing values become JSON null."""
    text = frame.to_json(orient="records", lines=True, force_ascii=False, date_format="iso")
    return gzip.compress(text.encode("utf-8"), compresslevel=1)


def encode_records(records: list[dict]) -> bytes:
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return gzip.compress(lines.encode("utf-8"), compresslevel=5)


def decode(data: bytes) -> bytes:
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def parse_jsonl(data: bytes) -> RawBatch:
    """Parse raw JSON lines (gzip or plain) into records, keeping bad lines aside."""
    text = decode(data)
    line_numbers = _non_blank_line_numbers(text)
    try:
        table = pajson.read_json(
            io.BytesIO(text),
            parse_options=pajson.ParseOptions(
                explicit_schema=RAW_SCHEMA, unexpected_field_behavior="infer"
            ),
            read_options=pajson.ReadOptions(block_size=16 << 20),
        )
    except pa.ArrowInvalid:
        return _parse_slow(text)
    records = table.to_pandas(types_mapper=_PANDAS_TYPES.get)
    if len(records) != len(line_numbers):
        return _parse_slow(text)
    records["_line"] = line_numbers
    return _with_drift(RawBatch(records=records), seen=set(table.column_names), all_null=records)


def _non_blank_line_numbers(text: bytes) -> np.ndarray:
    lines = text.split(b"\n")
    return np.array([i + 1 for i, line in enumerate(lines) if line.strip()], dtype=np.int64)


def _parse_slow(text: bytes) -> RawBatch:
    rows: list[dict] = []
    bad: list[tuple[int, str, str]] = []
    for number, raw_line in enumerate(text.split(b"\n"), start=1):
        if not raw_line.strip():
            continue
        try:
            value = json.loads(raw_line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            text_line = raw_line.decode("utf-8", "replace")
            bad.append((number, f"line is not JSON: {exc}", text_line))
            continue
        if not isinstance(value, dict):
            bad.append((number, "line is not a JSON object", raw_line.decode("utf-8", "replace")))
            continue
        value["_line"] = number
        rows.append(value)
    frame = pd.DataFrame(rows)
    seen = {c for c in frame.columns if c != "_line"}
    for name in RAW_FIELDS:
        if name not in frame.columns:
            frame[name] = None
    frame = _coerce_slow_types(frame)
    return _with_drift(RawBatch(records=frame, bad_lines=bad), seen=seen, all_null=None)


def _coerce_slow_types(frame: pd.DataFrame) -> pd.DataFrame:
    """Leave values as parsed; typing happens in the canonical step, which reports bad types."""
    return frame.astype({name: object for name in RAW_FIELDS})


def _with_drift(batch: RawBatch, seen: set[str], all_null: pd.DataFrame | None) -> RawBatch:
    if all_null is not None:
        seen = {c for c in seen if c not in RAW_FIELDS or all_null[c].notna().any()}
    batch.unknown_fields = sorted(seen - set(RAW_FIELDS) - KNOWN_EXTRA_FIELDS - {"_line"})
    if len(batch.records):
        batch.missing_fields = sorted(CORE_FIELDS - seen)
    return batch
