"""Bulk loading of frames into warehouse tables, inside a transaction the caller owns.

Two paths: MySQL's `LOAD DATA LOCAL INFILE` from a tab-separated file (the fastest way into
InnoDB, several times `to_sql`), and DB-API `executemany` of plain tuples, which PyMySQL turns
into multi-row INSERTs kept under its statement size limit and SQLite runs natively.
Values are converted column by column with numpy and pyarrow, never row by row in Python.
"""

import errno
import os
import tempfile
import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from spotify_platform.core.sources.identity import text_order

EXECUTEMANY_CHUNK_ROWS = 50_000
# LOAD DATA text is made a slice at a time, and the server reads nothing new while the next
# slice is made: it lives on what the socket buffers hold (a few MB). A slice this size is
# made before they run dry; 100k-row slices left the server idle a third of a fact load.
TSV_CHUNK_ROWS = 25_000
LOAD_DATA_NULL = "\\N"
# Errors that mean "LOAD DATA LOCAL is not allowed here": server local_infile=OFF (3948),
# client refused (2068), old servers' "command not allowed" (1148), MariaDB (4166).
LOAD_DATA_REFUSED = (1148, 2068, 3948, 4166)


def _is(sql_type: sa.types.TypeEngine, kind: type | tuple[type, ...]) -> bool:
    return isinstance(sql_type, kind)


def _as_datetimes(series: pd.Series) -> pd.Series:
    """`pd.to_datetime`, skipped for columns that hold datetimes already: it would first
    turn thousands of their values into Timestamps to decide whether to cache, a good part
    of the time the text of a big load takes."""
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series):
        return series
    return pd.to_datetime(series)


def _datetime_text(series: pd.Series, unit: str, separator: str) -> np.ndarray:
    values = series
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        values = series.dt.tz_convert("UTC").dt.tz_localize(None)
    array = _as_datetimes(values).to_numpy(dtype="datetime64[ns]")
    text = np.datetime_as_string(array.astype(f"datetime64[{unit}]"), unit=unit)
    if separator != "T":
        text = np.char.replace(text, "T", separator)
    return text


def column_values(
    series: pd.Series, sql_type: sa.types.TypeEngine, dialect: str, typed: bool = False
) -> list:
    """One column as DB-API values: dates and times as ISO text, every missing value as None.

    `typed` gives date and datetime objects instead, for statements that SQLAlchemy binds.
    """
    missing = series.isna().to_numpy()
    if typed and _is(sql_type, (sa.Date, sa.DateTime)):
        values = _as_datetimes(series)
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        objects = values.dt.date if _is(sql_type, sa.Date) else values.dt.to_pydatetime()
        values = np.asarray(objects, dtype=object)
    elif _is(sql_type, sa.Date):
        array = _as_datetimes(series).to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
        values = np.datetime_as_string(array, unit="D").astype(object)
    elif _is(sql_type, sa.DateTime):
        unit = "us" if dialect == "sqlite" else "ms"
        values = _datetime_text(series, unit, " ").astype(object)
    elif _is(sql_type, sa.Float):
        values = pd.to_numeric(series).astype(float).to_numpy(dtype=object)
    else:
        values = series.to_numpy(dtype=object)
    if missing.any():
        values = values.copy()
        values[missing] = None
    return values.tolist()


def _names(frame: pd.DataFrame, table: sa.Table) -> list[str]:
    missing = [c.name for c in table.columns if c.name not in frame.columns]
    if missing:
        raise ValueError(f"{table.name}: frame lacks columns {missing}")
    return [c.name for c in table.columns]


def rows(
    frame: pd.DataFrame, table: sa.Table, dialect: str, typed: bool = False
) -> tuple[list[str], list[tuple]]:
    names = _names(frame, table)
    columns = [column_values(frame[n], table.c[n].type, dialect, typed) for n in names]
    return names, list(zip(*columns, strict=True))


def insert_many(
    conn: sa.Connection, table: sa.Table, frame: pd.DataFrame, update: list[str] | None = None
) -> int:
    """INSERT through DB-API executemany with plain tuples (no per-row SQLAlchemy work).

    With `update`, rows whose primary key exists have those columns overwritten instead (an
    upsert); an empty list keeps the existing rows as they are.
    """
    if frame.empty:
        return 0
    dialect = conn.dialect
    names = _names(frame, table)
    quote = dialect.identifier_preparer.quote
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    statement = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
        f"VALUES ({', '.join([marker] * len(names))})"
    )
    if update is not None:
        statement += _on_conflict(dialect.name, table, update)
    # Tuples are made one chunk at a time: a million rows of Python tuples at once would
    # double the memory the frame already takes.
    for start in range(0, len(frame), EXECUTEMANY_CHUNK_ROWS):
        _, values = rows(frame.iloc[start : start + EXECUTEMANY_CHUNK_ROWS], table, dialect.name)
        conn.exec_driver_sql(statement, values)
    return len(frame)


def _on_conflict(dialect: str, table: sa.Table, update: list[str]) -> str:
    """The upsert clause of each dialect. PyMySQL still packs the rows into multi-row
    statements with it, as its executemany recognises a trailing ON DUPLICATE KEY UPDATE."""
    keys = [c.name for c in table.primary_key.columns]
    if dialect == "sqlite":
        target = ", ".join(f'"{k}"' for k in keys)
        if not update:
            return f" ON CONFLICT ({target}) DO NOTHING"
        sets = ", ".join(f'"{c}" = excluded."{c}"' for c in update)
        return f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
    sets = ", ".join(f"`{c}` = VALUES(`{c}`)" for c in (update or keys[:1]))
    return f" ON DUPLICATE KEY UPDATE {sets}"


def _arrow(series: pd.Series) -> pa.Array:
    """A column's values as one Arrow array (zero-copy for Arrow-backed columns)."""
    values = pa.array(series.array if isinstance(series.dtype, pd.StringDtype) else series)
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _instants(series: pd.Series, unit: str) -> pa.Array:
    """Naive UTC datetimes (or dates) as an Arrow timestamp array of `unit`."""
    values = _as_datetimes(series)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return pa.array(values.to_numpy(dtype="datetime64[ns]").astype(f"datetime64[{unit}]"))


_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"), ("\x00", "\\0"))
_ESCAPED_BYTES = (b"\\", b"\t", b"\n", b"\r", b"\x00")


def _has_bytes(text: pa.Array, wanted: tuple[bytes, ...]) -> bool:
    """Whether any value of a string array holds one of `wanted` bytes: a memchr over its
    data buffer per byte, rather than a regex per value."""
    if len(text) == 0 or text.buffers()[2] is None:
        return False
    offsets = np.frombuffer(
        text.buffers()[1], dtype=np.int32, count=len(text) + 1, offset=text.offset * 4
    )
    data = memoryview(text.buffers()[2])[offsets[0] : offsets[-1]].tobytes()
    return any(byte in data for byte in wanted)


def _tsv_field(series: pd.Series, sql_type: sa.types.TypeEngine) -> pa.Array:
    """One column as LOAD DATA text: escaped per MySQL's rules, NULL as \\N.

    Everything is an Arrow kernel: Arrow's casts print dates as YYYY-MM-DD and millisecond
    timestamps as YYYY-MM-DD hh:mm:ss.fff, the forms MySQL reads back exactly.
    """
    if isinstance(series.dtype, pd.StringDtype) and not _is(sql_type, (sa.Date, sa.DateTime)):
        text = pc.cast(_arrow(series), pa.string())
        if _has_bytes(text, _ESCAPED_BYTES):
            for raw, escaped in _ESCAPES:
                text = pc.replace_substring(text, raw, escaped)
        return pc.fill_null(text, LOAD_DATA_NULL)
    missing = series.isna().to_numpy()
    if _is(sql_type, sa.Date):
        text = pc.cast(_instants(series, "D").cast(pa.date32()), pa.string())
    elif _is(sql_type, sa.DateTime):
        text = pc.cast(_instants(series, "ms"), pa.string())
    elif _is(sql_type, sa.Boolean):
        flags = pa.array(series.astype("boolean").fillna(False).to_numpy(dtype=bool))
        text = pc.if_else(flags, pa.scalar("1"), pa.scalar("0"))
    elif _is(sql_type, sa.Float):
        text = pa.array(np.char.mod("%.17g", pd.to_numeric(series).fillna(0).to_numpy(float)))
    elif _is(sql_type, sa.Integer):
        text = pc.cast(pa.array(pd.to_numeric(series).fillna(0).astype("int64")), pa.string())
    else:
        text = pa.array(series.astype(object).where(~missing, None), type=pa.string())
        if _has_bytes(text, _ESCAPED_BYTES):
            for raw, escaped in _ESCAPES:
                text = pc.replace_substring(text, raw, escaped)
    if missing.any():
        text = pc.if_else(pa.array(missing), pa.scalar(LOAD_DATA_NULL), text)
    return text


def primary_key_order(frame: pd.DataFrame, table: sa.Table) -> np.ndarray | None:
    """Row positions in the table's primary key order; None if no key column varies.

    InnoDB stores rows in primary key order: a file in that order loads several times faster
    than one in arbitrary order once the table outgrows the buffer pool. A single text key
    sorts with `text_order` (fast for the hex ids), the rest with Arrow's sort; text compares
    by code point, as utf8mb4_bin does.
    """
    keys = []
    for column in table.primary_key.columns:
        values = _arrow(frame[column.name])
        bounds = pc.min_max(values)
        if values.null_count or bounds["min"] != bounds["max"]:
            keys.append((column.name, values))
    if not keys:
        return None
    if len(keys) == 1 and (
        pa.types.is_string(keys[0][1].type) or pa.types.is_large_string(keys[0][1].type)
    ):
        return text_order(keys[0][1])
    order = pc.sort_indices(
        pa.table(dict(keys)), sort_keys=[(name, "ascending") for name, _ in keys]
    )
    return order.to_numpy()


def in_key_order(frame: pd.DataFrame, table: sa.Table) -> bool:
    """Whether the rows are in primary key order already, as staged days are: each row's key
    compared with the next one's, much cheaper than working out the order."""
    if len(frame) < 2:
        return True
    keys = [_arrow(frame[c.name]) for c in table.primary_key.columns]
    if any(key.null_count for key in keys):
        return False
    ordered = pa.scalar(True)
    for key in reversed(keys):
        this, following = key[:-1], key[1:]
        ordered = pc.or_(pc.less(this, following), pc.and_(pc.equal(this, following), ordered))
    return bool(pc.all(ordered).as_py())


def _write_buffer(handle, lines: pa.Array) -> None:
    """Write the values of a string array back to back, straight from its data buffer."""
    offsets = np.frombuffer(
        lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4
    )
    handle.write(memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]])


def _tsv_lines(part: pd.DataFrame, table: sa.Table, names: list[str]) -> pa.Array:
    fields = [_tsv_field(part[n], table.c[n].type) for n in names]
    line = pc.binary_join_element_wise(*fields, "\t")
    return pc.binary_join_element_wise(line, pa.scalar("\n"), "")


def load_data(
    conn: sa.Connection, table: sa.Table, frame: pd.DataFrame, replace: bool = False
) -> int:
    """LOAD DATA LOCAL INFILE of the frame as TSV in primary key order; part of the caller's
    transaction. With `replace`, a row whose key exists takes the place of the stored one.

    The text is made in row slices while the server loads it, through a named pipe: making
    it takes a quarter of a million-row load, which would otherwise come before the load
    instead of beside it. Where there are no named pipes it goes through a temporary file.

    The file is declared binary although its text is UTF-8 (Arrow strings): MariaDB then
    splits the lines without decoding them, and still checks each value against its utf8mb4
    column (a bad byte sequence gets the same warning). The same rows are stored, with less
    of the server's time, which is what limits a big load.
    """
    if frame.empty:
        return 0
    names = _names(frame, table)
    order = None if in_key_order(frame, table) else primary_key_order(frame, table)
    if order is not None and bool((np.diff(order) == 1).all()):
        order = None
    quote = conn.dialect.identifier_preparer.quote
    with tempfile.TemporaryDirectory(prefix=f"{table.name}.") as folder:
        path = os.path.join(folder, "rows.tsv")
        statement = (
            f"LOAD DATA LOCAL INFILE '{_sql_path(path)}' {'REPLACE ' if replace else ''}"
            f"INTO TABLE {quote(table.name)} "
            "CHARACTER SET binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' "
            f"LINES TERMINATED BY '\\n' ({', '.join(quote(n) for n in names)})"
        )

        def write(handle) -> None:
            _write_tsv(handle, frame, table, names, order)

        if not hasattr(os, "mkfifo"):
            with open(path, "wb") as handle:
                write(handle)
            loaded = conn.exec_driver_sql(statement).rowcount
        else:
            os.mkfifo(path, 0o600)
            writer = _PipeWriter(path, write)
            writer.start()
            try:
                loaded = conn.exec_driver_sql(statement).rowcount
            finally:
                writer.finish()
            if writer.error is not None:
                raise RuntimeError(f"{table.name}: writing rows for LOAD DATA failed") from (
                    writer.error
                )
    # A writer that stopped early ends the pipe like a short file: the count tells them apart
    # (a replaced row counts twice, as its delete and its insert).
    if not (len(frame) <= loaded <= (2 * len(frame) if replace else len(frame))):
        raise RuntimeError(f"{table.name}: LOAD DATA took {loaded} of {len(frame)} rows")
    return len(frame)


def _write_tsv(handle, frame: pd.DataFrame, table: sa.Table, names: list[str], order) -> None:
    """The frame as TSV lines in key order: slice by slice when it is in order already (only
    a slice's column texts exist at once), else through one take on all its lines."""
    slices = range(0, len(frame), TSV_CHUNK_ROWS)
    if order is None:
        for start in slices:
            part = frame.iloc[start : start + TSV_CHUNK_ROWS]
            _write_buffer(handle, _tsv_lines(part, table, names))
        return
    text = pa.chunked_array(
        [_tsv_lines(frame.iloc[start : start + TSV_CHUNK_ROWS], table, names) for start in slices],
        type=pa.string(),
    )
    for start in slices:
        for chunk in text.take(order[start : start + TSV_CHUNK_ROWS]).chunks:
            _write_buffer(handle, chunk)


class _PipeWriter(threading.Thread):
    """Writes the rows into the named pipe that the LOAD DATA statement reads.

    The pipe is opened without blocking, retried until the client opens its end: if the
    server refuses the statement first, nobody ever will, and `finish` ends the wait. A
    reader that goes away mid-stream closes its end, and the write fails instead of hanging.
    """

    def __init__(self, path: str, write) -> None:
        super().__init__(name=f"load-data-writer:{os.path.basename(path)}", daemon=True)
        self._path, self._write = path, write
        self._finished = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while True:
                try:
                    fd = os.open(self._path, os.O_WRONLY | os.O_NONBLOCK)
                    break
                except OSError as exc:
                    if exc.errno != errno.ENXIO:
                        raise
                    if self._finished.wait(0.002):
                        return
            os.set_blocking(fd, True)
            with os.fdopen(fd, "wb") as handle:
                self._write(handle)
        except BaseException as exc:  # handed to the loading thread
            self.error = exc

    def finish(self) -> None:
        self._finished.set()
        self.join()


def _sql_path(path: str) -> str:
    """A temp file path is ours, but quote it anyway: it goes into the statement as text."""
    if "'" in path or "\\" in path:
        raise ValueError(f"unexpected character in temporary path {path!r}")
    return path


def load_data_refused(error: sa.exc.DBAPIError) -> bool:
    code = error.orig.args[0] if error.orig is not None and error.orig.args else None
    return code in LOAD_DATA_REFUSED
