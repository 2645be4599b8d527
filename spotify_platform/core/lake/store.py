"""The lake: an S3 bucket/prefix in production, a local folder as the embedded default.

Both backends share one key layout (`layout.py`). Writes are atomic for readers: a local file is
written beside its target and renamed into place; an S3 PUT or multipart upload only becomes
visible once complete.
"""

import datetime as dt
import hashlib
import io
import os
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_LAKE_URL = "file://.data/lake"
PARQUET_ROW_GROUP_ROWS = 131_072
ZSTD_FROM_ROWS = 10_000
# Columns of staged rows whose values are nearly all distinct. A dictionary of one fills its
# page and falls back to plain encoding anyway; trying costs the write its hashing and every
# read the decoding of the part that was encoded (a 1M-play day's file: written in 0.73 s
# instead of 0.82 s, read in 0.21 s instead of 0.59 s, 3% smaller).
PLAIN_COLUMNS = frozenset({"event_id", "ended_at", "started_at", "ms_played"})
# Up to this many days are listed one by one; more, a year at a time.
DAY_LISTINGS_UP_TO = 7


class LakeUnavailable(RuntimeError):
    """The lake could not be reached; the message names the bucket or folder."""


class LakeStore:
    """Object storage behind `LAKE_URL`: bytes and Parquet frames by key.

    The methods need `url`, `s3_endpoint_url`, `region_name` and a `_client` slot (None until
    the first S3 call): `Lake` gives them from its arguments, and the Dagster layer's
    `LakeResource` from its configuration, so both share one implementation.
    """

    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3://")

    @property
    def bucket(self) -> str:
        return urlparse(self.url).netloc

    @property
    def prefix(self) -> str:
        path = urlparse(self.url).path.strip("/")
        return f"{path}/" if path else ""

    @property
    def root(self) -> Path:
        parsed = urlparse(self.url)
        if parsed.scheme not in ("file", ""):
            raise LakeUnavailable(f"LAKE_URL must be file://PATH or s3://BUCKET/PREFIX: {self.url}")
        return Path(parsed.netloc + parsed.path if parsed.scheme == "file" else self.url).absolute()

    def _s3(self):
        if self._client is None:
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.s3_endpoint_url,
                region_name=self.region_name,
                config=Config(retries={"max_attempts": 3}),
            )
        return self._client

    def uri(self, key: str) -> str:
        if self.is_s3:
            return f"s3://{self.bucket}/{self.prefix}{key}"
        return str(self.root / key)

    def check(self) -> None:
        """Fail at once, naming the bucket or folder, when the lake cannot be used."""
        if self.is_s3:
            try:
                self._s3().head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "error")
                raise LakeUnavailable(
                    f"lake bucket {self.bucket!r} is not usable ({code}): check that it exists "
                    "and that the credentials may read and write it"
                ) from None
            except BotoCoreError as exc:
                raise LakeUnavailable(
                    f"lake bucket {self.bucket!r} is unreachable: {exc}"
                ) from None
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LakeUnavailable(f"lake folder {self.root} is not writable: {exc}") from None

    def write_bytes(self, key: str, data: bytes) -> None:
        if self.is_s3:
            self._s3().upload_fileobj(io.BytesIO(data), self.bucket, self.prefix + key)
            return
        with self.written_file(key) as path:
            path.write_bytes(data)

    def read_bytes(self, key: str) -> bytes:
        if self.is_s3:
            buffer = io.BytesIO()
            self._s3().download_fileobj(self.bucket, self.prefix + key, buffer)
            return buffer.getvalue()
        return (self.root / key).read_bytes()

    def open(self, key: str) -> io.BufferedReader:
        """An object opened for reading as a stream (S3: its body as it downloads), for
        files too big to hold whole."""
        if self.is_s3:
            body = self._s3().get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
            return io.BufferedReader(_Body(body), buffer_size=1 << 20)
        return open(self.root / key, "rb")

    @contextmanager
    def written_file(self, key: str, scratch: Path | None = None) -> Iterator[Path]:
        """A local path to write the object of `key` to, put in place when the block ends
        without error (never seen half written): locally a file beside the target, renamed;
        on S3 a file in `scratch` (the system's temporary folder by default), uploaded."""
        if self.is_s3:
            folder = scratch or Path(tempfile.gettempdir())
            path = folder / f"upload-{uuid.uuid4().hex}"
            try:
                yield path
                self._s3().upload_file(str(path), self.bucket, self.prefix + key)
            finally:
                path.unlink(missing_ok=True)
            return
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        os.close(fd)
        try:
            yield Path(tmp)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def size(self, key: str) -> int:
        """Bytes stored under a key."""
        if self.is_s3:
            head = self._s3().head_object(Bucket=self.bucket, Key=self.prefix + key)
            return int(head["ContentLength"])
        return (self.root / key).stat().st_size

    def exists(self, key: str) -> bool:
        if self.is_s3:
            try:
                self._s3().head_object(Bucket=self.bucket, Key=self.prefix + key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise
            return True
        return (self.root / key).is_file()

    def list_keys(self, prefix: str) -> list[str]:
        """Keys under a prefix, sorted, relative to the lake root; temporary files excluded."""
        return sorted(self.list_sizes(prefix))

    def list_sizes(self, prefix: str) -> dict[str, int]:
        """Keys under a prefix with their sizes in bytes, from the listing alone."""
        if self.is_s3:
            sizes: dict[str, int] = {}
            paginator = self._s3().get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for obj in page.get("Contents", []):
                    sizes[obj["Key"][len(self.prefix) :]] = int(obj["Size"])
            return sizes
        return dict(self._local_sizes(prefix))

    def list_versions(self, prefix: str) -> dict[str, str]:
        """Keys under a prefix with a tag that changes when the object is replaced, from the
        listing alone: the S3 ETag; locally size, modification time and inode (a write here
        renames a new file into place, so even a rewrite within the clock's tick differs)."""
        if self.is_s3:
            versions: dict[str, str] = {}
            paginator = self._s3().get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for obj in page.get("Contents", []):
                    versions[obj["Key"][len(self.prefix) :]] = obj["ETag"].strip('"')
            return versions
        versions = {}
        for key, _ in self._local_sizes(prefix):
            stat = (self.root / key).stat()
            versions[key] = f"{stat.st_size}-{stat.st_mtime_ns}-{stat.st_ino}"
        return versions

    def keys_by_day(self, root: str, days: list[dt.date]) -> dict[dt.date, dict[str, int]]:
        """Keys (with their sizes) under `root + "dt=YYYY-MM-DD/"` for each of `days` that
        has any.

        A long range is listed a year at a time rather than a day at a time, so asking about
        ten years of mostly empty days costs a few listings, and what is listed is what the
        range holds: other years of the lake are never read.
        """
        wanted = set(days)
        prefixes = (
            [f"{root}dt={day.isoformat()}/" for day in sorted(wanted)]
            if len(wanted) <= DAY_LISTINGS_UP_TO
            else [f"{root}dt={year}-" for year in sorted({day.year for day in wanted})]
        )
        found: dict[dt.date, dict[str, int]] = {}
        for prefix in prefixes:
            for key, size in sorted(self.list_sizes(prefix).items()):
                folder = key[len(root) :].partition("/")[0]
                try:
                    day = dt.date.fromisoformat(folder.removeprefix("dt="))
                except ValueError:
                    continue
                if day in wanted:
                    found.setdefault(day, {})[key] = size
        return found

    def _local_sizes(self, prefix: str) -> Iterator[tuple[str, int]]:
        """Files under a key prefix, walking only the folders that can hold them: an empty
        day's prefix names a folder that does not exist and costs one `stat`, whatever the
        lake holds beside it."""
        folder_key, _, stem = prefix.rpartition("/")
        folder = self.root / folder_key
        try:
            entries = [e for e in os.scandir(folder) if e.name.startswith(stem)]
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            key = f"{folder_key}/{entry.name}" if folder_key else entry.name
            if entry.is_dir():
                yield from self._local_sizes(f"{key}/")
            elif entry.is_file():
                yield key, entry.stat().st_size

    def delete(self, key: str) -> None:
        if self.is_s3:
            self._s3().delete_object(Bucket=self.bucket, Key=self.prefix + key)
            return
        (self.root / key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list_keys(prefix)
        for key in keys:
            self.delete(key)
        if not self.is_s3 and (self.root / prefix).is_dir():
            shutil.rmtree(self.root / prefix, ignore_errors=True)
        return len(keys)

    def move(self, source: str, target: str) -> None:
        if self.is_s3:
            self._s3().copy_object(
                Bucket=self.bucket,
                Key=self.prefix + target,
                CopySource={"Bucket": self.bucket, "Key": self.prefix + source},
            )
            self.delete(source)
            return
        destination = self.root / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.root / source, destination)

    def write_parquet(self, key: str, frame: pd.DataFrame | pa.Table) -> int:
        """Write a frame (or its Arrow table) as Parquet; returns the object's size in bytes."""
        data = parquet_bytes(frame)
        self.write_bytes(key, data)
        if isinstance(frame, pa.Table):
            _DECODED.put(data, frame)
        return len(data)

    def read_parquet(
        self, key: str, columns: list[str] | None = None, arrow_strings: bool = False
    ) -> pd.DataFrame:
        """A Parquet object as a frame; `arrow_strings` keeps text in Arrow memory (no Python
        str per value), which is how the warehouse loader wants a million-row day."""
        table = self.read_arrow(key, columns)
        return arrow_frame(table, arrow_strings, consume=not may_share_buffers(table))

    def read_arrow(self, key: str, columns: list[str] | None = None) -> pa.Table:
        """A Parquet object as an Arrow table.

        Read as one file, not as a dataset (`pq.read_table`), whose set-up costs twice the
        read of a day with a few dozen plays, and a history run reads thousands of those."""
        data = self.read_bytes(key)
        table = _DECODED.get(data)
        if table is None:
            table = pq.ParquetFile(pa.BufferReader(data)).read()
            _DECODED.put(data, table)
        return table if columns is None else table.select(columns)

    @contextmanager
    def parquet_file(
        self, key: str, read_dictionary: list[str] | None = None
    ) -> Iterator[pq.ParquetFile]:
        """A Parquet object opened for reading part by part (its footer, row groups, columns);
        `read_dictionary` columns come dictionary-encoded, as they are stored.

        A local file is read in place; an S3 object is first copied to a temporary file, so
        a big day is never held in memory whole, only the parts read from it.
        """
        if not self.is_s3:
            with pq.ParquetFile(self.root / key, read_dictionary=read_dictionary) as handle:
                yield handle
            return
        with tempfile.TemporaryFile() as copy:
            self._s3().download_fileobj(self.bucket, self.prefix + key, copy)
            copy.seek(0)
            with pq.ParquetFile(copy, read_dictionary=read_dictionary) as handle:
                yield handle

    def temp_key(self, key: str) -> str:
        """A sibling key for staging a write that is moved into place when complete."""
        folder, _, name = key.rpartition("/")
        return f"{folder}/_tmp/{uuid.uuid4().hex}-{name}" if folder else f"_tmp/{name}"


class Lake(LakeStore):
    """The lake outside Dagster: tools, scripts and the core's own tests."""

    def __init__(
        self,
        url: str = DEFAULT_LAKE_URL,
        s3_endpoint_url: str | None = None,
        region_name: str | None = None,
    ) -> None:
        self.url, self.s3_endpoint_url, self.region_name = url, s3_endpoint_url, region_name
        self._client: object | None = None


class _Body(io.RawIOBase):
    """An S3 object's streaming body as a raw stream, so it can be buffered and peeked."""

    def __init__(self, body) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


class _DecodedParquet:
    """Small Parquet objects decoded once per process, found again by their content.

    The steps of a run over years of history read each of thousands of small staged days in
    turn, and decoding was most of what they did. Keyed by a hash of the bytes just read, so a
    rewritten object can never be served stale; large objects are not kept.
    """

    MAX_OBJECT_BYTES = 1 << 20
    MAX_TABLE_BYTES = 256 << 20

    def __init__(self) -> None:
        self._tables: OrderedDict[bytes, pa.Table] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def get(self, data: bytes) -> pa.Table | None:
        if len(data) > self.MAX_OBJECT_BYTES:
            return None
        digest = hashlib.blake2b(data, digest_size=16).digest()
        with self._lock:
            table = self._tables.get(digest)
            if table is not None:
                self._tables.move_to_end(digest)
            return table

    def put(self, data: bytes, table: pa.Table) -> None:
        if len(data) > self.MAX_OBJECT_BYTES or not may_share_buffers(table):
            return
        digest = hashlib.blake2b(data, digest_size=16).digest()
        with self._lock:
            if digest in self._tables:
                return
            self._tables[digest] = table
            self._held += table.nbytes
            while self._held > self.MAX_TABLE_BYTES:
                _, evicted = self._tables.popitem(last=False)
                self._held -= evicted.nbytes


_DECODED = _DecodedParquet()


def parquet_bytes(frame: pd.DataFrame | pa.Table) -> bytes:
    """A frame (or its Arrow table) as a Parquet file.

    Row groups of PARQUET_ROW_GROUP_ROWS rather than one per file: Arrow decodes groups in
    parallel, in smaller buffers. zstd for all but small tables: on a day of a few dozen plays
    it saves little of the file and costs most of the write, which thousands of such days in a
    history add up.
    """
    buffer = io.BytesIO()
    table = (
        frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    )
    codec = "zstd" if table.num_rows >= ZSTD_FROM_ROWS else "snappy"
    pq.write_table(
        table,
        buffer,
        compression=codec,
        row_group_size=PARQUET_ROW_GROUP_ROWS,
        use_dictionary=dictionary_columns(table.schema),
    )
    return buffer.getvalue()


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns worth a dictionary in Parquet: all but PLAIN_COLUMNS."""
    return [name for name in schema.names if name not in PLAIN_COLUMNS]


def may_share_buffers(table: pa.Table) -> bool:
    """Whether `table` may hold buffers of a table kept by `read_arrow` (those are small)."""
    return table.nbytes <= _DecodedParquet.MAX_TABLE_BYTES // 8


def arrow_frame(
    table: pa.Table, arrow_strings: bool = False, consume: bool = False
) -> pd.DataFrame:
    """An Arrow table as a frame, text kept in Arrow memory when `arrow_strings`.

    `consume` frees the table's buffers as they are converted (a big day is then never held
    twice); only for a table whose buffers nothing else holds, see `may_share_buffers`."""
    if not arrow_strings:
        return table.to_pandas()
    text = pd.StringDtype("pyarrow")
    mapping = {pa.string(): text, pa.large_string(): text}
    return table.to_pandas(types_mapper=mapping.get, self_destruct=consume)
