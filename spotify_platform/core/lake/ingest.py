"""Land Spotify data exports in the lake's raw layer, one file per export file and UTC day.

Used by `spotify-platform import-history` and by the runs the uploads sensor requests. Keys
are deterministic (a hash of account, file name and content, never the account name itself),
so importing the same file again overwrites what it landed before, and two different exports
never clobber each other: overlapping plays are removed later, in staging, by event id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from spotify_platform.core.lake.layout import raw_key
from spotify_platform.core.lake.store import LakeStore
from spotify_platform.core.sources.exports import (
    ExportFile,
    read_export,
    read_export_bytes,
    split_by_day,
)
from spotify_platform.core.sources.raw import encode_records

SOURCE = "export"
UPLOADS_PREFIX = "uploads/"
IMPORTED = "_imported"
REJECTED = "_rejected"


@dataclass
class ImportReport:
    """What an import landed; `errors` name the file and, for a bad record, its 0-based index."""

    files: list[str] = field(default_factory=list)
    failed_files: list[str] = field(default_factory=list)
    records: int = 0
    days: list[dt.date] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def first_day(self) -> dt.date | None:
        return self.days[0] if self.days else None

    @property
    def last_day(self) -> dt.date | None:
        return self.days[-1] if self.days else None


@dataclass
class UploadResult:
    """The fate of one object under `uploads/`: imported or rejected, and where it went."""

    key: str
    account: str | None
    status: str
    moved_to: str
    report: ImportReport
    reason: str | None = None


def export_file_name(export: ExportFile) -> str:
    """Stable raw file name of one export file: short sha256 of account, file name, content.

    Keys appear in the UI and in metadata, so they must not carry the account name; the
    country given to an import is left out on purpose, so re-importing with a corrected
    --country replaces the earlier landing instead of adding a second copy.
    """
    accounts = sorted({str(r["account_id"]) for r in export.records})
    material = "\x1f".join([*accounts, export.basename, export.sha256])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:20]


def land_exports(lake: LakeStore, exports: Iterable[ExportFile]) -> ImportReport:
    """Write each export file's records, split by UTC day; a failed file lands nothing."""
    report = ImportReport()
    days: set[dt.date] = set()
    for export in exports:
        report.files.append(export.name)
        report.errors.extend(export.errors)
        if export.failed:
            report.failed_files.append(export.name)
            continue
        name = export_file_name(export)
        for day, records in split_by_day(export.records).items():
            key = raw_key(day, SOURCE, name)
            lake.write_bytes(key, encode_records(records))
            report.keys.append(key)
            report.records += len(records)
            days.add(day)
    report.days = sorted(days)
    return report


def import_history(
    lake: LakeStore,
    paths: Iterable[Path | str],
    account: str | None = None,
    country: str | None = None,
) -> ImportReport:
    """Import export files, zips or unzipped folders into raw/listening_events, by UTC day."""
    lake.check()
    exports = [
        export for path in paths for export in read_export(Path(path), account, country)
    ]
    return land_exports(lake, exports)


@dataclass(frozen=True)
class Upload:
    """An object waiting under `uploads/`, as the listing shows it: nothing has been read."""

    key: str
    version: str
    prefix: str = UPLOADS_PREFIX

    @property
    def relative(self) -> str:
        return self.key[len(self.prefix) :]

    @property
    def file_name(self) -> str:
        """The file's own name: logs, tags and metadata name this, never the account folder."""
        return PurePosixPath(self.key).name

    @property
    def upload_id(self) -> str:
        """Stands for this version of the upload in run keys and run config: the key holds the
        account name, which must not reach the UI."""
        material = f"{self.key}\x1f{self.version}".encode()
        return hashlib.sha256(material).hexdigest()[:20]


def pending_uploads(lake: LakeStore, prefix: str = UPLOADS_PREFIX) -> list[Upload]:
    """Uploads not yet imported or rejected, from one listing of the prefix."""
    prefix = prefix if prefix.endswith("/") else f"{prefix}/"
    return [
        Upload(key, version, prefix)
        for key, version in sorted(lake.list_versions(prefix).items())
        if not key[len(prefix) :].startswith("_") and not key.endswith("/")
    ]


def import_upload(lake: LakeStore, upload: Upload) -> UploadResult:
    """Import one `uploads/<account>/<file>` and move it out of the way, so it runs once.

    An upload that yields records (or only empty history files) moves to `_imported/`, with a
    sibling `.errors.txt` when some records were bad; one of which nothing could be imported
    moves to `_rejected/` beside a `.reason.txt`. A crash before the move only means the next
    attempt imports it again, onto the same keys.
    """
    key, prefix, relative = upload.key, upload.prefix, upload.relative
    account, _, file = relative.partition("/")
    if not file:
        reason = f"{key}: uploads go to {prefix}<account>/<file>, so the account is known"
        return _reject(lake, key, f"{prefix}{REJECTED}/{relative}", None, reason)
    exports = read_export_bytes(PurePosixPath(file).name, lake.read_bytes(key), account, None)
    report = land_exports(lake, exports)
    usable = [e for e in exports if not e.failed]
    if not usable or (report.records == 0 and report.errors):
        reason = "\n".join(report.errors) or f"{file}: no Spotify listening history in it"
        return _reject(lake, key, f"{prefix}{REJECTED}/{account}/{file}", account, reason, report)
    target = f"{prefix}{IMPORTED}/{account}/{file}"
    if report.errors:
        lake.write_bytes(f"{target}.errors.txt", _text(report.errors))
    lake.move(key, target)
    return UploadResult(key, account, "imported", target, report)


def import_uploads(lake: LakeStore, prefix: str = UPLOADS_PREFIX) -> list[UploadResult]:
    """Import every pending upload in this process; the uploads sensor requests a run per
    upload instead, so each is logged and retried on its own."""
    return [import_upload(lake, upload) for upload in pending_uploads(lake, prefix)]


def _reject(
    lake: LakeStore,
    key: str,
    target: str,
    account: str | None,
    reason: str,
    report: ImportReport | None = None,
) -> UploadResult:
    lake.write_bytes(f"{target}.reason.txt", _text([reason]))
    lake.move(key, target)
    return UploadResult(key, account, "rejected", target, report or ImportReport(), reason)


def _text(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")
