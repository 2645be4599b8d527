"""Raw records → canonical stream records, validated by the staging contract.

`stage_day` is the whole staging step for one day as a pure function: typing, derivation,
pseudonymisation, de-duplication and validation. Every raw record ends up exactly once as a
staged row, a duplicate, or a quarantined row with a reason naming the field.
"""

import datetime as dt
import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.errors
import pyarrow as pa
import pyarrow.compute as pc

from spotify_platform.core.contracts.schemas import StagingStreams
from spotify_platform.core.memory import collect_cycles, return_free_memory
from spotify_platform.core.sources.countries import UNKNOWN_COUNTRY, local_hour
from spotify_platform.core.sources.identity import event_ids, name_ids, pseudonymise, text_order
from spotify_platform.core.sources.platforms import normalise_platform
from spotify_platform.core.sources.raw import PERSONAL_FIELDS, RawBatch, arrow_records

STREAM_MIN_MS = 30_000
STAGE_SLICE_ROWS = 125_000
STAGE_THREADS = 2
CONTRACT_SLICE_ROWS = 100_000
SKIP_REASONS = ("fwdbtn", "backbtn", "endplay")
STAGING_COLUMNS = list(StagingStreams.to_schema().columns)
_URI_PREFIX = "spotify:track:"
_TRACK_URI = r"^spotify:track:[0-9A-Za-z]{22}$"


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
    # The streams as Arrow, when staging had them so anyway (written as they are).
    table: pa.Table | None = None

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
    if not isinstance(values, pa.ChunkedArray):  # Arrow-backed input stays chunked
        values = pa.chunked_array([values])
    return pd.Series(pd.arrays.ArrowStringArray(values), index=series.index)


def _only(series: pd.Series, keep: pd.Series | np.ndarray) -> pd.Series:
    """Arrow strings where `keep`, missing elsewhere (`Series.where` without its slow path)."""
    mask = pa.array(np.asarray(keep, dtype=bool))
    return _series(
        pc.if_else(mask, _arrow(series), pa.scalar(None, pa.large_string())), series.index
    )


def _arrow(value: pd.Series | str) -> pa.Array | pa.Scalar:
    if isinstance(value, str):
        return pa.scalar(value, pa.large_string())
    values = pa.array(value.array)
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    return pc.cast(values, pa.large_string())


def _series(values: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(pc.cast(values, pa.large_string())), index=index)


def _coalesce(*values: pd.Series | str) -> pd.Series:
    """The first non-missing of aligned Arrow string columns (or a final default text)."""
    return _series(pc.coalesce(*(_arrow(v) for v in values)), values[0].index)


def _concat(*values: pd.Series | str) -> pd.Series:
    """Aligned texts joined end to end; missing where any part is missing."""
    index = next(v.index for v in values if isinstance(v, pd.Series))
    joined = pc.binary_join_element_wise(
        *(_arrow(v) for v in values), pa.scalar("", pa.large_string())
    )
    return _series(joined, index)


def _labels(codes: np.ndarray, labels: list[str | None], index: pd.Index) -> pd.Series:
    """Arrow strings `labels[code]` for each row (for columns with a handful of values)."""
    table = pa.array(labels, type=pa.large_string())
    return pd.Series(pd.arrays.ArrowStringArray(table.take(pa.array(codes))), index=index)


def _instants(text: pd.Series) -> pd.Series:
    """ISO 8601 text to UTC instants; unparseable text becomes NaT.

    Arrow's cast parses the export's `...Z` timestamps about ten times faster than pandas;
    text it does not take (no zone, no seconds, invalid) goes through pandas' ISO 8601 parser.
    """
    try:
        stamps = pc.cast(pa.array(text.array), pa.timestamp("ns", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    return stamps.to_pandas().astype("datetime64[ns, UTC]").set_axis(text.index)


def _platforms(raw: pd.Series) -> pd.Series:
    """`normalise_platform` once per distinct raw string, as Arrow strings."""
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    labels = normalise_platform(pd.Series([*uniques, None], dtype=object)).tolist()
    return _labels(np.where(codes < 0, len(uniques), codes), labels, raw.index)


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


def canonicalise(
    raw: pd.DataFrame,
    *,
    key: bytes,
    source: str | pd.Series,
    day: dt.date | pd.Series,
    pseudonyms: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Type and derive the canonical columns; adds `_reason` for records that cannot be typed.

    `source` and `day` are one value for all records, or one per record (several files of
    several days typed at once). `pseudonyms` is `pseudonymise`'s memo, shared by the slices
    of a day.
    """
    n = len(raw)
    reasons = pd.Series([None] * n, index=raw.index, dtype=object)

    def reject(mask: pd.Series, reason: str) -> None:
        reasons.loc[mask & reasons.isna()] = reason

    ts_text = _text(raw["ts"])
    ended_at = _instants(ts_text)
    reject(ts_text.isna(), "ts: missing")
    reject(ended_at.isna(), "ts: not an ISO 8601 timestamp")

    ms = pd.to_numeric(raw["ms_played"], errors="coerce")
    reject(raw["ms_played"].isna(), "ms_played: missing")
    if raw["ms_played"].dtype == object:  # JSON true/false would pass as 1 and 0 ms
        booleans = raw["ms_played"].map(lambda v: isinstance(v, bool)).astype(bool)
        reject(booleans, "ms_played: not a number")
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
    content_type = _labels(
        np.select([is_track, is_episode, is_book], [0, 1, 2], 3),
        ["track", "episode", "audiobook", ""],
        raw.index,
    )
    reject(content_type == "", "content: no track, episode or audiobook fields")

    uris = pa.array(track_uri.array)
    from_uri = pc.fill_null(pc.match_substring_regex(uris, _TRACK_URI), False)
    uri_ids = _only(
        _series(pc.utf8_slice_codeunits(uris, len(_URI_PREFIX)), raw.index),
        from_uri.to_numpy(zero_copy_only=False),
    )
    surrogate = name_ids(artist_name, track_name)
    track_id = _only(_coalesce(uri_ids, surrogate), is_track)
    track_key = _concat("name:", _coalesce(artist_name, ""), "\x1f", _coalesce(track_name, ""))
    other_key = _coalesce(
        episode_uri,
        audiobook_uri,
        _concat(
            "name:",
            _coalesce(show_name, book_title, ""),
            "\x1f",
            _coalesce(episode_name, chapter, ""),
        ),
    )
    content_key = _coalesce(
        track_uri,
        _series(
            pc.if_else(pa.array(is_track.to_numpy()), _arrow(track_key), _arrow(other_key)),
            raw.index,
        ),
    )

    country = _coalesce(_text(raw["conn_country"]).str.upper(), UNKNOWN_COUNTRY)
    reason_end = _text(raw["reason_end"])
    skipped_flag = _flag(raw["skipped"]).fillna(False).astype(bool)
    skipped = skipped_flag | reason_end.isin(SKIP_REASONS).to_numpy()

    account_id = pseudonymise(names, key, pseudonyms)
    ended = ended_at.fillna(pd.Timestamp("1970-01-01", tz="UTC"))
    started_at = ended - pd.to_timedelta(ms_played.clip(0, 10**12), unit="ms")
    frame = pd.DataFrame(
        {
            "event_id": event_ids(_coalesce(account_id, ""), ended, content_key, ms_played),
            "account_id": account_id,
            "source": source
            if isinstance(source, pd.Series)
            else _labels(np.zeros(n, dtype=np.int64), [source], raw.index),
            "ended_at": ended,
            "started_at": started_at,
            "ms_played": ms_played,
            "content_type": content_type,
            "track_id": track_id,
            "track_name": _only(track_name, is_track),
            "artist_id": name_ids(_only(artist_name, is_track)),
            "artist_name": _only(artist_name, is_track),
            "album_name": _only(album_name, is_track),
            "episode_name": _only(_coalesce(episode_name, chapter), ~is_track),
            "show_name": _only(_coalesce(show_name, book_title), ~is_track),
            "country": country,
            "platform": _platforms(raw["platform"]),
            "reason_start": _text(raw["reason_start"]),
            "reason_end": reason_end,
            "shuffle": _flag(raw["shuffle"]),
            "skipped": skipped.astype(bool),
            "offline": _flag(raw["offline"]),
            "incognito": _flag(raw["incognito_mode"]),
            "is_stream": ((content_type == "track") & (ms_played >= STREAM_MIN_MS)).astype(bool),
            "dt": day if isinstance(day, pd.Series) else pd.Timestamp(day),
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


# A file's rows are checked before the day's duplicates are dropped, so uniqueness of event_id
# is left out here: the day's de-duplication is what makes it hold.
SLICE_CONTRACT = StagingStreams.to_schema().update_column("event_id", unique=False)


def _contract_reasons(frame: pd.DataFrame) -> pd.Series:
    """Validate against the staging contract; one reason string per failing row."""
    try:
        SLICE_CONTRACT.validate(frame, lazy=True)
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


def _stage_file(
    source_file: str,
    batch: RawBatch,
    key: bytes,
    day: dt.date,
    pseudonyms: dict[str, str],
    staged: list[pd.DataFrame],
    rejected: list[pd.DataFrame],
    result: StagedDay,
) -> int:
    """Canonical rows of one raw file into `staged`, its bad lines and rows into `rejected`;
    returns the file's raw record count."""
    raw = _take_file(source_file, batch, day, rejected, result)
    source = _source_of(source_file)

    def stage_slice(start: int) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
        part = raw.iloc[start : start + STAGE_SLICE_ROWS]
        frame = canonicalise(part, key=key, source=source, day=day, pseudonyms=pseudonyms)
        bad: list[pd.DataFrame] = []
        typed_bad = frame["_reason"].notna()
        if typed_bad.any():
            rows = frame.index[typed_bad]
            reasons, ids = frame["_reason"], frame["account_id"]
            bad.append(quarantine_records(raw, rows, reasons, ids, source_file, day))
            frame = frame[~typed_bad]
        # Dropped, not carried: an all-null object column makes pandas' concat test
        # each of its values.
        frame = frame.drop(columns="_reason")
        # The contract runs here, while this file's raw records are at hand for the
        # quarantine, so they can go before the day's rows are joined and sorted.
        contract = [
            _contract_reasons(frame.iloc[first : first + CONTRACT_SLICE_ROWS][STAGING_COLUMNS])
            for first in range(0, len(frame), CONTRACT_SLICE_ROWS)
        ]
        failed = pd.concat(contract) if contract else pd.Series(dtype=object)
        if len(failed):
            ids = frame["account_id"]
            bad.append(quarantine_records(raw, failed.index, failed, ids, source_file, day))
            frame = frame.drop(index=failed.index)
        # The slice's intermediate columns are gone; what they used goes back before the
        # next slice, or the file's raw records, its canonical rows and the allocators'
        # leftovers add up to the day's peak.
        return_free_memory()
        return frame, bad

    # Slices bound the memory of the intermediate columns: a million-record file is typed
    # an eighth at a time, two slices at once (Arrow, numpy and hashing let go of the GIL),
    # and only the canonical columns are kept.
    starts = range(0, len(raw), STAGE_SLICE_ROWS)
    with ThreadPoolExecutor(STAGE_THREADS, thread_name_prefix="stage-slice") as pool:
        for frame, bad in pool.map(stage_slice, starts):
            staged.append(frame)
            rejected.extend(bad)
    return len(raw) + len(batch.bad_lines)


def _joined_records(parts: list[RawBatch]) -> pd.DataFrame:
    """The records of several files in one frame, in order. Files Arrow parsed are joined as
    Arrow and converted once (a conversion per file cost more than the parse of a small
    day); when one was not, or their extra fields' types clash, each is converted alone."""
    if all(batch.frame is None for batch in parts):
        try:
            table = pa.concat_tables([batch.table for batch in parts], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
        else:
            for batch in parts:
                batch.table = None
            return arrow_records(table)
    with warnings.catch_warnings():
        # Files without a field have it all null; how pandas types such a column in a
        # concat is changing, and canonicalise reads either typing the same.
        warnings.simplefilter("ignore", FutureWarning)
        return pd.concat([batch.records for batch in parts], ignore_index=True)


def _take_file(
    source_file: str,
    batch: RawBatch,
    day: dt.date,
    rejected: list[pd.DataFrame],
    result: StagedDay,
) -> pd.DataFrame:
    """Note a raw file in the day's result (`_note_file`); its records."""
    _note_file(source_file, batch, day, rejected, result)
    return batch.records.reset_index(drop=True)


def _note_file(
    source_file: str,
    batch: RawBatch,
    day: dt.date,
    rejected: list[pd.DataFrame],
    result: StagedDay,
) -> None:
    """Note a raw file's drift, its lines that were not JSON, and whether it had records."""
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
    if batch.rows:
        result.files.append(source_file)


def stage_days(
    batches_by_day: dict[dt.date, dict[str, RawBatch]], *, key: bytes
) -> dict[dt.date, StagedDay]:
    """Stage several small days at once, each with the outcome `stage_day` gives it.

    Typing and the contract cost a fixed time per call whatever the rows, which dominated days
    of a few dozen plays; here every file of every day is typed and checked in one call, and
    the days are parted again for de-duplication, which stays within a day. For days whose
    records together fit in memory comfortably.
    """
    results = {
        day: StagedDay(day=day, streams=pd.DataFrame(), quarantine=pd.DataFrame())
        for day in batches_by_day
    }
    rejected: dict[dt.date, list[pd.DataFrame]] = {day: [] for day in batches_by_day}
    parts: list[RawBatch] = []
    origins: list[tuple[str, dt.date]] = []
    for day, batches in batches_by_day.items():
        for source_file in sorted(batches):
            batch = batches[source_file]
            _note_file(source_file, batch, day, rejected[day], results[day])
            results[day].raw_records += batch.rows + len(batch.bad_lines)
            if batch.rows:
                parts.append(batch)
                origins.append((source_file, day))
    by_day: dict[dt.date, pd.DataFrame] = {}
    if parts:
        codes = np.repeat(np.arange(len(origins)), [batch.rows for batch in parts])
        raw = _joined_records(parts)
        del parts
        sources = _labels(codes, [_source_of(f) for f, _ in origins], raw.index)
        day_values = np.array([np.datetime64(d, "s") for _, d in origins])[codes]
        frame = canonicalise(
            raw, key=key, source=sources, day=pd.Series(day_values, index=raw.index)
        )
        reasons = frame.pop("_reason").copy()
        typed = reasons.isna()
        contract = [
            _contract_reasons(part[STAGING_COLUMNS])
            for part in (
                frame[typed].iloc[i : i + CONTRACT_SLICE_ROWS]
                for i in range(0, int(typed.sum()), CONTRACT_SLICE_ROWS)
            )
        ]
        if contract:
            failed = pd.concat(contract)
            reasons.loc[failed.index] = failed
        bad = reasons.notna()
        for code in np.unique(codes[bad.to_numpy()]):
            rows = frame.index[bad.to_numpy() & (codes == code)]
            source_file, day = origins[code]
            rejected[day].append(
                quarantine_records(raw, rows, reasons, frame["account_id"], source_file, day)
            )
        good = frame[~bad.to_numpy()][STAGING_COLUMNS]
        del frame, raw
        by_day = _split_days(good, results)
        del good
    for day, result in results.items():
        if day in by_day:
            result.streams, result.table, result.duplicates = by_day.pop(day)
            result.quarantine = _quarantine_of(rejected[day], day)
        else:
            _finish(result, [], rejected[day])
    return results


def _split_days(
    good: pd.DataFrame, results: dict[dt.date, StagedDay]
) -> dict[dt.date, tuple[pd.DataFrame, pa.Table, int]]:
    """Per day: its rows without duplicates in event id order (as `_finish` leaves them), the
    same rows as Arrow, and the duplicates removed. The rows of all days are de-duplicated,
    sorted and converted at once, and each day is a slice: the fixed cost of doing that per
    day was most of a history run's staging."""
    stamps, day_codes = np.unique(good["dt"].to_numpy(), return_inverse=True)
    ids = _arrow(good["event_id"])
    id_codes = pc.dictionary_encode(ids).indices.to_numpy(zero_copy_only=False)
    pairs = day_codes.astype(np.int64) * (int(id_codes.max(initial=0)) + 1) + id_codes
    keep = np.zeros(len(pairs), dtype=bool)
    keep[np.unique(pairs, return_index=True)[1]] = True
    rank = np.empty(len(ids), dtype=np.int64)
    rank[text_order(ids)] = np.arange(len(ids))
    order = np.lexsort((rank, day_codes))
    order = order[keep[order]]
    rows = pd.DataFrame(
        {name: good[name].array.take(order) for name in STAGING_COLUMNS}, copy=False
    )
    table = pa.Table.from_pandas(rows, preserve_index=False)
    bounds = np.searchsorted(day_codes[order], np.arange(len(stamps) + 1))
    repeated = np.bincount(day_codes[~keep], minlength=len(stamps))
    parts = {}
    for code, stamp in enumerate(stamps):
        day = pd.Timestamp(stamp).date()
        if day not in results:
            continue
        start, end = int(bounds[code]), int(bounds[code + 1])
        part = rows.iloc[start:end]
        part.index = pd.RangeIndex(end - start)  # as reset_index would, without its copy
        parts[day] = (part, table.slice(start, end - start), int(repeated[code]))
    return parts


def stage_day(batches: dict[str, RawBatch], *, key: bytes, day: dt.date) -> StagedDay:
    """Stage every raw file of one day: canonical rows, duplicates removed, quarantine.

    Consumes `batches`: once the quarantine has copied what it needs from the raw records
    they are released, so the day's sort does not hold them as well (0.45 GiB at 1M events).
    """
    staged: list[pd.DataFrame] = []
    rejected: list[pd.DataFrame] = []
    raw_count = 0
    pseudonyms: dict[str, str] = {}
    result = StagedDay(day=day, streams=pd.DataFrame(), quarantine=pd.DataFrame())
    for source_file in sorted(batches):
        records = _stage_file(
            source_file, batches.pop(source_file), key, day, pseudonyms, staged, rejected, result
        )
        raw_count += records
        return_free_memory()

    result.raw_records = raw_count
    return _finish(result, staged, rejected)


def _finish(
    result: StagedDay, staged: list[pd.DataFrame], rejected: list[pd.DataFrame]
) -> StagedDay:
    """The day's staged rows (duplicates out, in event id order) and its quarantine.

    Consumes `staged`, the day's canonical rows in parts: the sort below frees each column
    as it moves it, which only returns memory if nothing else holds the frame.
    """
    day = result.day
    if len(staged) == 1:
        candidates = staged[0].reset_index(drop=True)
    else:
        candidates = pd.concat(staged, ignore_index=True) if staged else _empty_candidates(day)
    staged.clear()
    repeated = _repeated(candidates["event_id"])
    result.duplicates = int(repeated.sum())
    if list(candidates.columns) != STAGING_COLUMNS:
        candidates = candidates[STAGING_COLUMNS]
    # pandas' `.str` accessors (pandera's string checks use them) keep Series in reference
    # cycles; collecting them here frees the day's intermediate columns before the sort
    # needs room, instead of whenever the collector next runs (often after the load).
    collect_cycles(len(candidates))
    result.streams = _sort_by_event_id(candidates, keep=~repeated)
    del candidates
    result.quarantine = _quarantine_of(rejected, day)
    return result


def _quarantine_of(rejected: list[pd.DataFrame], day: dt.date) -> pd.DataFrame:
    if rejected:
        return pd.concat(rejected, ignore_index=True)
    return quarantine_records(
        pd.DataFrame(), pd.Index([]), pd.Series(dtype=object), pd.Series(dtype=object), "", day
    )


def _sort_by_event_id(frame: pd.DataFrame, keep: np.ndarray | None = None) -> pd.DataFrame:
    """The rows in event id order (the warehouse's primary key order within a day, so the
    loader streams them as they are), leaving out those `keep` marks False (the day's
    duplicates) in the same pass. Columns move one at a time and the old one is let go, so
    only one is ever held twice: the caller must hold no other reference to the frame."""
    order = text_order(_arrow(frame["event_id"])) if len(frame) else np.zeros(0, np.int64)
    if keep is not None:
        order = order[keep[order]]
    if len(order) == len(frame) and bool((np.diff(order) == 1).all()):
        return frame.reset_index(drop=True)
    columns = {}
    for name in list(frame.columns):
        columns[name] = frame[name].array.take(order)
        del frame[name]
    return pd.DataFrame(columns, copy=False)


def _repeated(ids: pd.Series) -> np.ndarray:
    """True for each id seen earlier in the column (`duplicated(keep="first")` computed by
    Arrow's hashing: pandas would first turn a million Arrow strings into Python objects)."""
    if ids.empty:
        return np.zeros(0, dtype=bool)
    codes = pc.dictionary_encode(_arrow(ids)).indices.to_numpy(zero_copy_only=False)
    first = np.zeros(len(codes), dtype=bool)
    first[np.unique(codes, return_index=True)[1]] = True
    return ~first


def _source_of(key: str) -> str:
    for part in key.split("/"):
        if part.startswith("source="):
            return part.removeprefix("source=")
    return "export"


def _empty_candidates(day: dt.date) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="string[pyarrow]") for c in STAGING_COLUMNS})
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
    return frame
