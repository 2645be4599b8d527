"""Spotify data exports → raw landing records. Pure: no Dagster, no lake.

People download their history in several shapes that changed over the years: the extended
history (`Streaming_History_Audio_*.json`, `Streaming_History_Video_*.json`, the older
`endsong_*.json` with `username` and decrypted IP / user agent) and the short account-data
history (`StreamingHistory_music_N.json`, `StreamingHistory_podcast_N.json`,
`StreamingHistoryN.json`), as loose files, `.json.gz`, an unzipped folder or Spotify's zip.
Files get renamed, so the shape is read from the records' keys. Bad input never raises: each
file reports its errors (naming the file and the 0-based record index) and keeps its good
records, unless the file as a whole cannot be read.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import math
import re
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from spotify_platform.core.sources.countries import KNOWN_COUNTRIES
from spotify_platform.core.sources.raw import RAW_FIELDS

EXTENDED = "extended"
LEGACY_MUSIC = "legacy_music"
LEGACY_PODCAST = "legacy_podcast"
EMPTY = "empty"
UNREADABLE = "unreadable"
UNKNOWN = "unknown"
HISTORY_SHAPES = (EXTENDED, LEGACY_MUSIC, LEGACY_PODCAST)

MAX_ERRORS_PER_FILE = 50
SECONDS_LIMIT = 1e11  # offline_timestamp below this is in seconds (1e11 ms is March 1973)
HISTORY_NAME = re.compile(r"streaming_?history|endsong|endvideo", re.IGNORECASE)
EXPORT_SUFFIXES = (".json", ".gz")

_EXTENDED_KEYS = frozenset(RAW_FIELDS) - {"account_id"} | {
    "username", "ip_addr_decrypted", "user_agent_decrypted", "episode_uri",
}
_LEGACY_TIME_KEYS = frozenset({"endTime", "msPlayed"})
_LEGACY_KEYS = frozenset({"artistName", "trackName", "podcastName", "episodeName"})
_LEGACY_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")


@dataclass
class ExportFile:
    """One history file of an export, as raw records; `errors` name the file and record."""

    name: str
    shape: str
    records: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    basename: str = ""
    sha256: str = ""
    bad_records: int = 0
    unlisted_errors: int = 0

    @property
    def failed(self) -> bool:
        """True when the file as a whole could not be used: nothing of it may be landed."""
        return self.shape in (UNREADABLE, UNKNOWN)

    def add_error(self, message: str, *, dropped: bool = True) -> None:
        """Record a problem; only the first ones are listed so a broken export cannot flood."""
        self.bad_records += int(dropped)
        if len(self.errors) < MAX_ERRORS_PER_FILE:
            self.errors.append(f"{self.name}: {message}")
        else:
            self.unlisted_errors += 1


def read_export(path: Path, account: str | None, country: str | None) -> list[ExportFile]:
    """Every history file in `path`: a JSON / .json.gz file, a zip as downloaded, or a folder."""
    path = Path(path)
    account, country = _checked_account(account), _checked_country(country)
    if path.is_dir():
        members = [
            (f"{path.name}/{p.relative_to(path).as_posix()}", p.read_bytes)
            for p in sorted(path.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        ]
        return _resolve_accounts(*_read_members(members, country), account)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [_failed(str(path), UNREADABLE, f"cannot be read ({exc.strerror or exc})")]
    return read_export_bytes(path.name, data, account, country)


def read_export_bytes(
    name: str, data: bytes, account: str | None, country: str | None
) -> list[ExportFile]:
    """Like `read_export` for content already in memory (an upload read from the lake)."""
    account, country = _checked_account(account), _checked_country(country)
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        return _read_zip(name, data, account, country)
    return _resolve_accounts([parse_export_file(name, data, country)], set(), account)


def parse_export_file(name: str, data: bytes, country: str | None = None) -> ExportFile:
    """Parse one history file; `account_id` is the record's `username` or None until resolved."""
    basename = PurePosixPath(name.rpartition(":")[2]).name
    result = ExportFile(name=name, shape=UNREADABLE, basename=basename)
    try:
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        result.errors.append(f"{name}: not a readable gzip file ({exc})")
        return result
    result.sha256 = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        result.errors.append(f"{name}: not UTF-8 text (byte {exc.start}); not JSON")
        return result
    items = _json_items(result, text)
    if items is None:
        return result
    if not items:
        result.shape = EMPTY if not result.errors else UNREADABLE
        return result
    shapes = [_record_shape(item) for item in items]
    known = Counter(s for s in shapes if s in HISTORY_SHAPES)
    if not known:
        result.shape = UNKNOWN
        result.errors.append(f"{name}: not a listening history file ({_describe(items)})")
        return result
    result.shape = known.most_common(1)[0][0]
    for index, (item, shape) in enumerate(zip(items, shapes, strict=True)):
        record = _to_raw(result, index, item, shape, country)
        if record is not None:
            result.records.append(record)
    if result.unlisted_errors:
        result.errors.append(f"{name}: {result.unlisted_errors} more errors not listed")
    return result


def split_by_day(records: list[dict]) -> dict[dt.date, list[dict]]:
    """Records grouped by the UTC date of `ts` (the partition they belong to), days in order."""
    days: dict[dt.date, list[dict]] = {}
    for record in records:
        ended = parse_ts(record["ts"])
        if ended is None:
            raise ValueError(f"record has no valid ts: {record['ts']!r}")
        days.setdefault(ended.date(), []).append(record)
    return dict(sorted(days.items()))


def parse_ts(value: object) -> dt.datetime | None:
    """An ISO 8601 instant as aware UTC; a value without offset is UTC, as Spotify's `ts` is."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _checked_account(account: str | None) -> str | None:
    if account is None:
        return None
    if not isinstance(account, str) or not account.strip():
        raise ValueError("account must be a non-empty name")
    return account.strip()


def _checked_country(country: str | None) -> str | None:
    if country is None:
        return None
    code = country.strip().upper()
    if code not in KNOWN_COUNTRIES:
        raise ValueError(f"country must be an ISO 3166-1 alpha-2 code, got {country!r}")
    return code


def _failed(name: str, shape: str, problem: str) -> ExportFile:
    basename = PurePosixPath(name).name
    return ExportFile(name=name, shape=shape, errors=[f"{name}: {problem}"], basename=basename)


def _json_items(result: ExportFile, text: str) -> list | None:
    """The top-level array; a broken or truncated one keeps the records before the break."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if not text.lstrip().startswith("["):
            result.errors.append(f"{result.name}: not JSON ({exc.msg} at line {exc.lineno})")
            return None
        return _salvage(result, text)
    if not isinstance(value, list):
        kind = type(value).__name__ if not isinstance(value, dict) else "a single object"
        result.errors.append(f"{result.name}: not a JSON array of records (found {kind})")
        return None
    return value


def _salvage(result: ExportFile, text: str) -> list:
    """Decode the array element by element, stopping at the first element that is not whole."""
    decoder = json.JSONDecoder()
    items: list = []
    pos = _skip_space(text, text.index("[") + 1)
    if text.startswith("]", pos):
        return items
    problem = ""
    while pos < len(text):
        try:
            item, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            problem = f" ({exc.msg})"
            break
        items.append(item)
        pos = _skip_space(text, pos)
        if text.startswith("]", pos):
            return items
        if not text.startswith(",", pos):
            break
        pos = _skip_space(text, pos + 1)
    kind = "invalid JSON" if text.rstrip().endswith("]") else "truncated JSON array"
    result.errors.append(
        f"{result.name}: record {len(items)}: {kind}{problem}; kept the {len(items)} complete "
        "record(s) before it, the rest of the file could not be read"
    )
    return items


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _record_shape(item: object) -> str:
    if not isinstance(item, dict):
        return UNKNOWN
    keys = item.keys()
    if ("ts" in keys or "ms_played" in keys) and len(_EXTENDED_KEYS & keys) >= 2:
        return EXTENDED
    if _LEGACY_TIME_KEYS & keys and _LEGACY_KEYS & keys:
        podcast = "podcastName" in keys or "episodeName" in keys
        return LEGACY_PODCAST if podcast else LEGACY_MUSIC
    return UNKNOWN


def _describe(items: list) -> str:
    objects = [i for i in items if isinstance(i, dict)]
    if not objects:
        kinds = sorted({type(i).__name__ for i in items})
        return f"a JSON array of {', '.join(kinds)}, not of objects"
    keys = sorted({k for obj in objects[:100] for k in obj})
    shown = ", ".join(keys[:10]) + (", ..." if len(keys) > 10 else "")
    return f"unknown record shape with keys: {shown or 'none'}"


def _to_raw(
    result: ExportFile, index: int, item: object, shape: str, country: str | None
) -> dict | None:
    if not isinstance(item, dict):
        result.add_error(f"record {index}: not a JSON object")
        return None
    if shape == EXTENDED:
        return _from_extended(result, index, item)
    if shape in (LEGACY_MUSIC, LEGACY_PODCAST):
        return _from_legacy(result, index, item, shape, country)
    result.add_error(f"record {index}: not a listening record ({_describe([item])})")
    return None


def _from_extended(result: ExportFile, index: int, item: dict) -> dict | None:
    if parse_ts(item.get("ts")) is None:
        result.add_error(f"record {index}: ts {_shown(item.get('ts'))} is not an ISO 8601 time")
        return None
    ms_played = _whole_ms(result, index, item, "ms_played")
    if ms_played is None:
        return None
    record = {name: item.get(name) for name in RAW_FIELDS}
    record["ms_played"] = ms_played
    record["offline_timestamp"] = _offline_ms(result, index, item.get("offline_timestamp"))
    username = item.get("username")
    record["account_id"] = (username.strip() or None) if isinstance(username, str) else None
    record.update((k, v) for k, v in item.items() if k not in record)
    return record


def _from_legacy(
    result: ExportFile, index: int, item: dict, shape: str, country: str | None
) -> dict | None:
    ended = _legacy_time(item.get("endTime"))
    if ended is None:
        result.add_error(
            f"record {index}: endTime {_shown(item.get('endTime'))} is not 'YYYY-MM-DD HH:MM'"
        )
        return None
    ms_played = _whole_ms(result, index, item, "msPlayed")
    if ms_played is None:
        return None
    record = dict.fromkeys(RAW_FIELDS)
    record["ts"] = ended.strftime("%Y-%m-%dT%H:%M:%SZ")
    record["ms_played"] = ms_played
    record["conn_country"] = country
    if shape == LEGACY_PODCAST:
        record["episode_show_name"] = item.get("podcastName")
        record["episode_name"] = item.get("episodeName")
    else:
        record["master_metadata_album_artist_name"] = item.get("artistName")
        record["master_metadata_track_name"] = item.get("trackName")
    return record


def _legacy_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    for pattern in _LEGACY_FORMATS:
        try:
            return dt.datetime.strptime(value.strip(), pattern)
        except ValueError:
            continue
    return None


def _whole_ms(result: ExportFile, index: int, item: dict, key: str) -> int | None:
    value = item.get(key)
    if value is None:
        result.add_error(f"record {index}: {key} is missing")
        return None
    number = _whole_number(value)
    if number is None or number < 0:
        result.add_error(f"record {index}: {key} {_shown(value)} is not a whole number >= 0")
        return None
    return number


def _whole_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _offline_ms(result: ExportFile, index: int, value: object) -> int | None:
    """Exports give `offline_timestamp` in seconds or milliseconds; raw holds milliseconds."""
    if value is None:
        return None
    number = value if isinstance(value, float) and math.isfinite(value) else _whole_number(value)
    if number is None:
        result.add_error(
            f"record {index}: offline_timestamp {_shown(value)} is not a number; landed as null",
            dropped=False,
        )
        return None
    return int(number * 1000) if abs(number) < SECONDS_LIMIT else int(number)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _read_zip(name: str, data: bytes, account: str | None, country: str | None) -> list[ExportFile]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        return [_failed(name, UNREADABLE, f"not a readable zip archive ({exc})")]
    with archive:
        members = [
            (f"{name}:{info.filename}", _zip_reader(archive, info))
            for info in archive.infolist()
            if not info.is_dir()
        ]
        return _resolve_accounts(*_read_members(members, country), account)


def _zip_reader(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    return lambda: archive.read(info)


def _read_members(
    members: list[tuple[str, Callable[[], bytes]]], country: str | None
) -> tuple[list[ExportFile], set[str]]:
    """History files among an archive's or folder's files; other account data is skipped.

    A file named like history is always reported; any other JSON file counts only when its
    records have a history shape (renamed files), so Userdata.json or Playlist1.json are ignored.
    """
    files: list[ExportFile] = []
    usernames: set[str] = set()
    for member, read in members:
        path = PurePosixPath(member.rpartition(":")[2])
        if path.name.startswith(".") or "__MACOSX" in path.parts:
            continue
        if not path.name.lower().endswith(EXPORT_SUFFIXES):
            continue
        named_history = bool(HISTORY_NAME.search(path.name))
        try:
            data = read()
        except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, NotImplementedError) as exc:
            if named_history:
                files.append(_failed(member, UNREADABLE, f"cannot be read ({exc})"))
            continue
        if path.name.lower() == "userdata.json":
            usernames.update(_userdata_username(data))
            continue
        parsed = parse_export_file(member, data, country)
        if named_history or parsed.shape in HISTORY_SHAPES:
            files.append(parsed)
    return files, usernames


def _userdata_username(data: bytes) -> set[str]:
    try:
        value = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return set()
    username = value.get("username") if isinstance(value, dict) else None
    return {username.strip()} if isinstance(username, str) and username.strip() else set()


def _resolve_accounts(
    files: list[ExportFile], userdata_names: set[str], account: str | None
) -> list[ExportFile]:
    """The account named by the caller wins; else the export's own `username`, when unique.

    Legacy files carry no username; in an archive they take the one username found beside
    them (extended records or Userdata.json). Without any, the file cannot be attributed and
    fails as a whole, asking for --account.
    """
    if account is not None:
        for parsed in files:
            for record in parsed.records:
                record["account_id"] = account
        return files
    found = {r["account_id"] for f in files for r in f.records if r["account_id"] is not None}
    found |= userdata_names
    fallback = next(iter(found)) if len(found) == 1 else None
    for parsed in files:
        if not any(r["account_id"] is None for r in parsed.records):
            continue
        if fallback is None:
            reason = "no username" if not found else f"{len(found)} different usernames"
            parsed.records = []
            parsed.shape = UNREADABLE
            parsed.errors.append(
                f"{parsed.name}: the export has {reason} to attribute its plays to; "
                "pass --account NAME"
            )
            continue
        for record in parsed.records:
            if record["account_id"] is None:
                record["account_id"] = fallback
    return files
