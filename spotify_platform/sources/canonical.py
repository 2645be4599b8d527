"""Raw records → canonical stream records (DESIGN §4), validated by the staging contract.

`stage_day` is the whole staging step for one day as a pure function: typing, derivation,
pseudonymisation, de-duplication and validation. Every raw record ends up exactly once as a
staged row, a duplicate, or a quarantined row with a reason naming the field.
"""

import datetime as dt
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.errors
import pyarrow as pa
import pyarrow.compute as pc

from spotify_platform.schemas import StagingStreams
from spotify_platform.sources.countries import UNKNOWN_COUNTRY, local_hour
from spotify_platform.sources.identity import event_ids, name_ids, pseudonymise
from spotify_platform.sources.platforms import normalise_platform
from spotify_platform.sources.raw import PERSONAL_FIELDS, RawBatch

STREAM_MIN_MS = 30_000
SKIP_REASONS = ("fwdbtn", "backbtn", "endplay")
STAGING_COLUMNS = list(StagingStreams.to_schema().columns)
_TRACK_URI = r"^spotify:track:([0-9A-Za-z]{22})$"


@dataclass
class StagedDay:
    """The outcome of staging one day: every raw record is in exactly one of the three."""

    day: dt.date
    streams: pd.DataFrame
    quarantine: pd.DataFrame
    raw_records: int = 0
    duplicates: int = 0
    files: list[str] = field(default_factory=list)
    unknown_fields: dict[str, list[str]] = field(default_factory=dict)
    missing_fields: dict[str, list[str]] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return len(self.quarantine)

    def reason_counts(self) -> dict[str, int]:
        if self.quarantine.empty:
            return {}
        counts = self.quarantine["reason"].value_counts()
        return {str(k): int(v) for k, v in counts.items()}


def _text(series: pd.Series) -> pd.Series:
    """Trimmed Arrow-backed strings; blanks, nulls and NaN become missing (never 'nan').

    Arrow strings keep the pandera checks and the Parquet write vectorised; values that are
    not strings (numbers in a malformed record) are turned into their text.
    """
    try:
        values = pa.array(series, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        values = pa.array(
            [None if _missing(v) else str(v) for v in series.tolist()], type=pa.string()
        )
    values = pc.utf8_trim_whitespace(values)
    values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([values])), index=series.index)


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


_FLAGS = {True: True, False: False, "true": True, "false": False}


def _flag(series: pd.Series) -> pd.Series:
    """Booleans as nullable; anything that is not a boolean (or its JSON text) is missing."""
    if isinstance(series.dtype, pd.BooleanDtype):
        return series
    return series.map(
        lambda v: (
            _FLAGS.get(v.lower() if isinstance(v, str) else v, pd.NA)
            if isinstance(v, bool | str)
            else pd.NA
        )
    ).astype("boolean")


def canonicalise(raw: pd.DataFrame, *, key: bytes, source: str, day: dt.date) -> pd.DataFrame:
    """Type and derive the canonical columns; adds `_reason` for records that cannot be typed."""
    n = len(raw)
    reasons = pd.Series([None] * n, index=raw.index, dtype=object)

    def reject(mask: pd.Series, reason: str) -> None:
        reasons.loc[mask & reasons.isna()] = reason

    ts_text = _text(raw["ts"])
    ended_at = pd.to_datetime(ts_text, utc=True, errors="coerce", format="ISO8601")
    reject(ts_text.isna(), "ts: missing")
    reject(ended_at.isna(), "ts: not an ISO 8601 timestamp")

    ms = pd.to_numeric(raw["ms_played"], errors="coerce")
    reject(raw["ms_played"].isna(), "ms_played: missing")
    reject(ms.isna() | (ms != np.floor(ms)), "ms_played: not a whole number")
    ms_played = ms.fillna(0).clip(-(2**62), 2**62).astype("int64")

    names = _text(raw["account_id"])
    reject(names.isna(), "account_id: missing")

    track_name = _text(raw["master_metadata_track_name"])
    artist_name = _text(raw["master_metadata_album_artist_name"])
    album_name = _text(raw["master_metadata_album_album_name"])
    track_uri = _text(raw["spotify_track_uri"])
    episode_uri = _text(raw["spotify_episode_uri"])
    audiobook_uri = _text(raw["audiobook_chapter_uri"])
    episode_name = _text(raw["episode_name"])
    show_name = _text(raw["episode_show_name"])
    book_title = _text(raw["audiobook_title"])
    chapter = _text(raw["audiobook_chapter_title"])

    is_track = track_uri.notna() | track_name.notna()
    is_episode = ~is_track & (episode_uri.notna() | episode_name.notna())
    is_book = ~is_track & ~is_episode & (audiobook_uri.notna() | chapter.notna())
    content_type = pd.Series(
        np.select([is_track, is_episode, is_book], ["track", "episode", "audiobook"], ""),
        index=raw.index,
        dtype=object,
    )
    reject(content_type == "", "content: no track, episode or audiobook fields")

    uri_ids = track_uri.str.extract(_TRACK_URI, expand=False)
    surrogate = name_ids(artist_name, track_name)
    track_id = uri_ids.where(uri_ids.notna(), surrogate).where(is_track, None)
    content_key = track_uri.where(
        track_uri.notna(),
        ("name:" + artist_name.fillna("") + "\x1f" + track_name.fillna("")).where(
            is_track,
            episode_uri.fillna(audiobook_uri).fillna(
                "name:"
                + show_name.fillna(book_title).fillna("")
                + "\x1f"
                + episode_name.fillna(chapter).fillna("")
            ),
        ),
    )

    country = _text(raw["conn_country"]).str.upper().fillna(UNKNOWN_COUNTRY)
    reason_end = _text(raw["reason_end"])
    skipped_flag = _flag(raw["skipped"]).fillna(False).astype(bool)
    skipped = skipped_flag | reason_end.isin(SKIP_REASONS).to_numpy()

    account_id = pseudonymise(names, key)
    ended = ended_at.fillna(pd.Timestamp("1970-01-01", tz="UTC"))
    started_at = ended - pd.to_timedelta(ms_played.clip(0, 10**12), unit="ms")
    frame = pd.DataFrame(
        {
            "event_id": event_ids(account_id.fillna(""), ended, content_key, ms_played),
            "account_id": account_id,
            "source": source,
            "ended_at": ended,
            "started_at": started_at,
            "ms_played": ms_played,
            "content_type": content_type,
            "track_id": track_id,
            "track_name": track_name.where(is_track, None),
            "artist_id": name_ids(artist_name.where(is_track, None)),
            "artist_name": artist_name.where(is_track, None),
            "album_name": album_name.where(is_track, None),
            "episode_name": episode_name.fillna(chapter).where(~is_track, None),
            "show_name": show_name.fillna(book_title).where(~is_track, None),
            "country": country,
            "platform": normalise_platform(raw["platform"]),
            "reason_start": _text(raw["reason_start"]),
            "reason_end": reason_end,
            "shuffle": _flag(raw["shuffle"]),
            "skipped": skipped.astype(bool),
            "offline": _flag(raw["offline"]),
            "incognito": _flag(raw["incognito_mode"]),
            "is_stream": ((content_type == "track") & (ms_played >= STREAM_MIN_MS)).astype(bool),
            "dt": pd.Timestamp(day),
            "utc_hour": started_at.dt.hour.astype("Int8"),
            "local_hour": local_hour(started_at, country).astype("Int8"),
            "_reason": reasons,
        },
        index=raw.index,
    )
    for name in (
        "event_id",
        "account_id",
        "source",
        "content_type",
        "track_id",
        "country",
        "platform",
    ):
        frame[name] = frame[name].astype("string[pyarrow]")
    return frame


def _contract_reasons(frame: pd.DataFrame) -> pd.Series:
    """Validate against the staging contract; one reason string per failing row."""
    try:
        StagingStreams.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        row_cases = cases[cases["index"].notna()]
        frame_cases = cases[cases["index"].isna()]
        if not frame_cases.empty:
            detail = "; ".join(
                f"{r.column}: {r.check}" for r in frame_cases.head(5).itertuples(index=False)
            )
            raise ValueError(f"staging frame does not match its contract: {detail}") from None
        labels = row_cases.apply(_describe_failure, axis=1)
        grouped = labels.groupby(row_cases["index"].astype("int64")).agg(
            lambda s: "; ".join(dict.fromkeys(s))
        )
        return grouped
    return pd.Series(dtype=object)


def _describe_failure(case: pd.Series) -> str:
    check = str(case["check"])
    if check.startswith("isin("):
        check = "isin(allowed values)"
    column = case["column"] if isinstance(case["column"], str) else case["schema_context"]
    value = case["failure_case"]
    shown = repr(value)[:80] if column not in ("account_id",) else "<pseudonym>"
    return f"{column}={shown} fails {check}"


def quarantine_records(
    raw: pd.DataFrame,
    rows: pd.Index,
    reasons: pd.Series,
    account_ids: pd.Series,
    source_file: str,
    day: dt.date,
) -> pd.DataFrame:
    """Rejected raw records, personal fields dropped and the account pseudonymised."""
    if len(rows) == 0:
        return pd.DataFrame({"dt": [], "source_file": [], "line": [], "reason": [], "record": []})
    subset = raw.loc[rows].drop(columns=[c for c in PERSONAL_FIELDS if c in raw.columns])
    subset = subset.assign(account_id=account_ids.loc[rows])
    lines = subset.pop("_line").astype("int64")
    records = [
        json.dumps({k: _jsonable(v) for k, v in rec.items()}, ensure_ascii=False, default=str)
        for rec in subset.to_dict("records")
    ]
    return pd.DataFrame(
        {
            "dt": pd.Timestamp(day),
            "source_file": source_file,
            "line": lines.to_numpy(),
            "reason": reasons.loc[rows].astype(str).to_numpy(),
            "record": records,
        }
    )


def _jsonable(value: object) -> object:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def stage_day(batches: dict[str, RawBatch], *, key: bytes, day: dt.date) -> StagedDay:
    """Stage every raw file of one day: canonical rows, duplicates removed, quarantine."""
    staged: list[pd.DataFrame] = []
    rejected: list[pd.DataFrame] = []
    raw_count = 0
    result = StagedDay(day=day, streams=pd.DataFrame(), quarantine=pd.DataFrame())
    for source_file, batch in sorted(batches.items()):
        raw = batch.records.reset_index(drop=True)
        raw_count += len(raw) + len(batch.bad_lines)
        if batch.unknown_fields:
            result.unknown_fields[source_file] = batch.unknown_fields
        if batch.missing_fields:
            result.missing_fields[source_file] = batch.missing_fields
        if batch.bad_lines:
            rejected.append(
                pd.DataFrame(
                    {
                        "dt": pd.Timestamp(day),
                        "source_file": source_file,
                        "line": [b[0] for b in batch.bad_lines],
                        "reason": [b[1] for b in batch.bad_lines],
                        "record": [b[2] for b in batch.bad_lines],
                    }
                )
            )
        if raw.empty:
            continue
        frame = canonicalise(raw, key=key, source=_source_of(source_file), day=day)
        frame["_file"] = source_file
        frame["_raw_row"] = np.arange(len(frame))
        typed_bad = frame["_reason"].notna()
        if typed_bad.any():
            rows = frame.index[typed_bad]
            rejected.append(
                quarantine_records(
                    raw, rows, frame["_reason"], frame["account_id"], source_file, day
                )
            )
        staged.append(frame[~typed_bad])
        result.files.append(source_file)

    candidates = pd.concat(staged, ignore_index=True) if staged else _empty_candidates(day)
    before = len(candidates)
    candidates = candidates.drop_duplicates("event_id", keep="first")
    result.duplicates = before - len(candidates)

    contract = _contract_reasons(candidates[STAGING_COLUMNS])
    if len(contract):
        bad_rows = candidates.loc[contract.index]
        for source_file, group in bad_rows.groupby("_file"):
            raw = batches[source_file].records.reset_index(drop=True)
            raw_rows = pd.Index(group["_raw_row"].to_numpy())
            reasons = pd.Series(contract.loc[group.index].to_numpy(), index=raw_rows)
            ids = pd.Series(group["account_id"].to_numpy(), index=raw_rows)
            rejected.append(quarantine_records(raw, raw_rows, reasons, ids, source_file, day))
        candidates = candidates.drop(index=contract.index)

    result.streams = candidates[STAGING_COLUMNS].sort_values("event_id", ignore_index=True)
    result.quarantine = (
        pd.concat(rejected, ignore_index=True)
        if rejected
        else quarantine_records(
            pd.DataFrame(),
            pd.Index([]),
            pd.Series(dtype=object),
            pd.Series(dtype=object),
            "",
            day,
        )
    )
    result.raw_records = raw_count
    return result


def _source_of(key: str) -> str:
    for part in key.split("/"):
        if part.startswith("source="):
            return part.removeprefix("source=")
    return "export"


def _empty_candidates(day: dt.date) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in STAGING_COLUMNS})
    frame = frame.astype(
        {
            "ended_at": "datetime64[ns, UTC]",
            "started_at": "datetime64[ns, UTC]",
            "ms_played": "int64",
            "shuffle": "boolean",
            "skipped": bool,
            "offline": "boolean",
            "incognito": "boolean",
            "is_stream": bool,
            "dt": "datetime64[ns]",
            "utc_hour": "Int8",
            "local_hour": "Int8",
        }
    )
    frame["_file"] = pd.Series(dtype=object)
    frame["_raw_row"] = pd.Series(dtype="int64")
    return frame
