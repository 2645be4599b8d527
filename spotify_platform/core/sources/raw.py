"""The raw landing format: Spotify Extended Streaming History records plus `account_id`, as
gzip-compressed JSON lines. Reading is fast with pyarrow and falls back to a line-by-line
parser that keeps every bad line with its number, so one broken line never loses a file.
"""

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
from isal import igzip, isal_zlib

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
# Text stays in Arrow memory (no Python str per value): a day of a million records takes a
# third of the memory and staging's string kernels work on it without conversion.
_PANDAS_TYPES = {
    pa.bool_(): pd.BooleanDtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.string(): pd.StringDtype("pyarrow"),
    pa.large_string(): pd.StringDtype("pyarrow"),
}
# Read as large_string, the layout pandas' Arrow strings use: conversion is then zero-copy.
_READ_SCHEMA = pa.schema(
    [f.with_type(pa.large_string()) if f.type == pa.string() else f for f in RAW_SCHEMA]
)
_BLANK_LINE_MARKERS = (b"\n\n", b"\n ", b"\n\t", b"\n\r", b"\n\x0b", b"\n\x0c")
JSON_SLICE_ROWS = 200_000
GZIP_SLICE_BYTES = 1 << 20
# Bytes that bytes.strip() removes: a text starting with one of them may start blank.
_WHITESPACE_BYTES = b" \t\r\n\x0b\x0c"


@dataclass
class RawBatch:
    """Records read from one raw file. `records` has a 1-based `_line` column.

    A file Arrow parsed keeps its records as Arrow (`table`) until they are first asked for
    as a frame: the files of many small days are joined as Arrow and converted once."""

    frame: pd.DataFrame | None = None
    bad_lines: list[tuple[int, str, str]] = field(default_factory=list)
    unknown_fields: list[str] = field(default_factory=list)
    missing_fields: list[str] = field(default_factory=list)
    table: pa.Table | None = None

    @property
    def records(self) -> pd.DataFrame:
        if self.frame is None:
            self.frame = arrow_records(self.table)
            self.table = None
        return self.frame

    @property
    def rows(self) -> int:
        return len(self.frame) if self.frame is not None else self.table.num_rows


def arrow_records(table: pa.Table) -> pd.DataFrame:
    """Records parsed by Arrow as the frame the canonical step takes."""
    lines = table.column("_line").to_numpy()
    frame = table.drop_columns(["_line"]).to_pandas(
        types_mapper=_PANDAS_TYPES.get, self_destruct=True
    )
    frame["_line"] = lines
    return frame


def encode_jsonl_gz(frame: pd.DataFrame) -> bytes:
    """Serialise records as gzip JSON lines; missing values become JSON null.

    Frames of text, integer and boolean columns (the simulator's) are written by Arrow string
    kernels in slices, about 20x faster than `DataFrame.to_json` and without the whole text
    in memory at once; any other frame goes through pandas.
    """
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    parts = []
    for start in range(0, max(len(frame), 1), JSON_SLICE_ROWS):
        text = json_lines(frame.iloc[start : start + JSON_SLICE_ROWS])
        if text is None:
            text = frame.to_json(
                orient="records", lines=True, force_ascii=False, date_format="iso"
            ).encode("utf-8")
            return gzip.compress(text, compresslevel=1)
        parts.append(compressor.compress(text))
    parts.append(compressor.flush())
    return b"".join(parts)


def json_lines(frame: pd.DataFrame) -> bytes | None:
    """JSON lines of a frame of text, integer and boolean columns; None for other frames."""
    if frame.empty:
        return None
    pieces: list[pa.Array | pa.Scalar] = []
    for position, (name, series) in enumerate(frame.items()):
        value = _json_values(series)
        if value is None:
            return None
        key = json.dumps(str(name), ensure_ascii=False) + ":"
        pieces += [pa.scalar(("{" if position == 0 else ",") + key), value]
    pieces.append(pa.scalar("}\n"))
    lines = pc.binary_join_element_wise(*pieces, "")
    return _concatenated(lines)


def _concatenated(lines: pa.Array | pa.ChunkedArray) -> bytes:
    """The values of a string array back to back: its data buffer between the end offsets."""
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    offsets = np.frombuffer(
        lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4
    )
    return memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]].tobytes()


def _json_values(series: pd.Series) -> pa.Array | None:
    """One column as JSON value text, null as `null`; None when the type is not handled."""
    try:
        values = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_null(values.type):
        return pa.array(["null"] * len(values), type=pa.string())
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        text = values
        special = pc.fill_null(pc.match_substring_regex(values, '[\\x00-\\x1f"\\\\]'), False)
        if pc.any(special).as_py():
            rows = np.flatnonzero(special.to_numpy(zero_copy_only=False))
            exact = [json.dumps(v, ensure_ascii=False)[1:-1] for v in values.take(rows).to_pylist()]
            text = pc.replace_with_mask(values, special, pa.array(exact, type=values.type))
        text = pc.binary_join_element_wise(pa.scalar('"'), text, pa.scalar('"'), "")
    elif pa.types.is_integer(values.type):
        text = pc.cast(values, pa.string())
    elif pa.types.is_boolean(values.type):
        text = pc.if_else(values, pa.scalar("true"), pa.scalar("false"))
    else:
        return None
    return pc.fill_null(text, "null")


def encode_records(records: list[dict]) -> bytes:
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return gzip.compress(lines.encode("utf-8"), compresslevel=5)


def decode(data: bytes) -> bytes:
    return igzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


# The same bytes as a lookup table by byte value, for numpy: a line starting with one of them
# may be blank.
_IS_WHITESPACE = np.zeros(256, dtype=bool)
_IS_WHITESPACE[list(_WHITESPACE_BYTES)] = True


def count_records(data: bytes, slice_bytes: int = 8 << 20) -> int:
    """Lines holding anything but whitespace, in a raw file (gzip or plain).

    Counted slice by slice, apart from the parser, so a check can hold the parser to it
    without the whole text (or a million line objects) in memory. Where no line starts with
    whitespace every line counts, and numpy finds the newlines (much faster than splitting
    lines); otherwise each line is looked at.
    """
    counted = _count_unindented_lines(_text_slices(data, slice_bytes))
    return counted if counted is not None else _count_non_blank_lines(data, slice_bytes)


def _text_slices(data: bytes, slice_bytes: int) -> Iterator[bytes]:
    """A raw file's text slice by slice: a gzip file inflated member after member."""
    if data[:2] != b"\x1f\x8b":
        for start in range(0, len(data), slice_bytes):
            yield data[start : start + slice_bytes]
        return
    compressed = memoryview(data)
    while len(compressed):
        inflate = isal_zlib.decompressobj(wbits=31)
        position = 0
        while not inflate.eof:
            if position >= len(compressed):
                raise EOFError("gzip stream ends before its end marker")
            yield inflate.decompress(compressed[position : position + GZIP_SLICE_BYTES])
            position += GZIP_SLICE_BYTES
        compressed = memoryview(inflate.unused_data + bytes(compressed[position:]))


def _count_unindented_lines(slices: Iterator[bytes]) -> int | None:
    """The number of lines, or None as soon as a line starts with whitespace."""
    count, after_newline = 0, True
    for chunk in slices:
        if not chunk:
            continue
        text = np.frombuffer(chunk, dtype=np.uint8)
        newlines = np.flatnonzero(text == 10)
        starts = newlines + 1
        starts = starts[starts < len(text)]
        if (after_newline and _IS_WHITESPACE[text[0]]) or _IS_WHITESPACE[text[starts]].any():
            return None
        count += len(newlines)
        after_newline = text[-1] == 10
    return count + (0 if after_newline else 1)


def _count_non_blank_lines(data: bytes, slice_bytes: int) -> int:
    stream = _GzipLines(data) if data[:2] == b"\x1f\x8b" else io.BytesIO(data)
    count, tail = 0, b""
    while chunk := stream.read(slice_bytes):
        lines = (tail + chunk).split(b"\n")
        tail = lines.pop()
        count += sum(1 for line in lines if line.strip())
    return count + (1 if tail.strip() else 0)


def parse_jsonl(data: bytes) -> RawBatch:
    """Parse raw JSON lines (gzip or plain) into records, keeping bad lines aside.

    Gzip files are decompressed in slices while Arrow parses them (the two overlap, and the
    whole text is never in memory). Rows are numbered from a newline count when there are as
    many rows as lines; a file with blank lines is read again whole to number its lines, and
    one with a bad line is parsed line by line, so every line keeps its number.
    """
    if data[:2] == b"\x1f\x8b":
        stream = _GzipLines(data)
        try:
            batch = _parse_arrow(stream, stream.line_numbers)
        except (OSError, EOFError, isal_zlib.error, pa.ArrowException):
            batch = None  # read whole below, which reports a broken file as before
        if batch is not None:
            return batch
    text = decode(data)
    batch = _parse_arrow(io.BytesIO(text), lambda rows: _text_line_numbers(text, rows))
    return batch if batch is not None else _parse_slow(text)


def text_blocks(source: bytes | BinaryIO, block_bytes: int) -> Iterator[tuple[int, bytes, int]]:
    """A raw file's text (gzip or plain) in blocks of whole lines, about `block_bytes` each,
    with the number of each block's first line and its count of lines: a big file is read
    without its whole text (or, from a file object, its whole compressed bytes) in memory.

    A block is joined once from the slices inflated (a line longer than a block makes a
    longer block)."""
    head = source[:2] if isinstance(source, bytes) else source.peek(2)[:2]
    if head == b"\x1f\x8b":
        chunks = _GzipLines(source).chunks()
    else:
        stream = io.BytesIO(source) if isinstance(source, bytes) else source
        chunks = iter(lambda: stream.read(GZIP_SLICE_BYTES), b"")
    first_line, pending, size = 1, [], 0
    for chunk in chunks:
        view, start = memoryview(chunk), 0
        while size + len(chunk) - start >= block_bytes:
            full = max(start, start + block_bytes - size)
            cut = chunk.rfind(b"\n", start, full) + 1 or chunk.find(b"\n", full) + 1
            if not cut:
                break
            block = b"".join([*pending, view[start:cut]])
            pending, size, start = [], 0, cut
            newlines = block.count(b"\n")
            yield first_line, block, newlines
            first_line += newlines
        if start < len(chunk):
            pending.append(view[start:])
            size += len(chunk) - start
    if block := b"".join(pending):
        newlines = block.count(b"\n")
        yield first_line, block, newlines + (0 if block.endswith(b"\n") else 1)


def parse_block(text: bytes | memoryview, first_line: int, lines: int) -> RawBatch:
    """A block of `text_blocks` parsed as `parse_jsonl` parses a file, lines numbered from
    `first_line`: by Arrow where the text lies (no copy), or line by line when a line is bad
    or blank. `lines` is its line count."""

    def numbers(rows: int) -> np.ndarray:
        numbered = _numbered(rows, lines)
        return numbered if numbered is not None else _non_blank_line_numbers(bytes(text))

    batch = _parse_arrow(pa.BufferReader(pa.py_buffer(text)), numbers)
    batch = batch if batch is not None else _parse_slow(bytes(text))
    if first_line > 1:
        if batch.table is not None:
            lines = pc.add(batch.table.column("_line"), first_line - 1)
            batch.table = batch.table.set_column(batch.table.num_columns - 1, "_line", lines)
        else:
            batch.frame["_line"] += first_line - 1
        batch.bad_lines = [(n + first_line - 1, *rest) for n, *rest in batch.bad_lines]
    return batch


def _parse_arrow(source, line_numbers) -> RawBatch | None:
    """Arrow's reader over a file-like source; None when its rows cannot be numbered.

    `line_numbers(rows)` gives the line number of each row, or None.
    """
    try:
        table = pajson.read_json(
            source,
            parse_options=pajson.ParseOptions(
                explicit_schema=_READ_SCHEMA, unexpected_field_behavior="infer"
            ),
            read_options=pajson.ReadOptions(block_size=16 << 20),
        )
    except pa.ArrowInvalid:
        return None
    numbers = line_numbers(table.num_rows)
    if numbers is None or len(numbers) != table.num_rows:
        return None
    # Fields with a value somewhere, counted on Arrow's null counts (a pandas pass per column
    # cost more than the parse of a day with a few dozen plays).
    seen = {
        name
        for name in table.column_names
        if name not in RAW_FIELDS or table.column(name).null_count < table.num_rows
    }
    table = table.append_column("_line", pa.array(numbers, pa.int64()))
    return _with_drift(RawBatch(table=table), seen=seen | {"_line"}, all_null=None)


class _GzipLines(io.RawIOBase):
    """A gzip file read as a stream of its text, counting lines on the way.

    Inflated by ISA-L (python-isal), several times as fast as zlib. Staging hardly gains
    (Arrow's parse is the slower half of the two that overlap); the reconciliation's recount,
    which only inflates, does.

    Once the stream is read, `line_numbers(rows)` is 1..rows when every line made a row,
    else None (a blank line: the caller numbers lines from the whole text). Concatenated
    gzip members are read on.
    """

    def __init__(self, data: bytes | BinaryIO) -> None:
        # A file object (a lake object opened for reading) is inflated as it is read, so a
        # big raw file is never held whole, compressed or not.
        self._source = io.BytesIO(data) if isinstance(data, bytes) else data
        self._inflate = isal_zlib.decompressobj(wbits=31)
        self._pending = b""
        self._offset = 0
        self._newlines = 0
        self._last = b"\n"
        self._done = False
        self._counting = True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        # The reader asks for less than a slice inflates to: hand it out from an offset, since
        # cutting the rest off as a new bytes object would copy it on every call.
        while self._offset >= len(self._pending) and not self._done:
            self._pending, self._offset = self._inflate_slice(), 0
        size = min(len(buffer), len(self._pending) - self._offset)
        buffer[:size] = memoryview(self._pending)[self._offset : self._offset + size]
        self._offset += size
        return size

    def _inflate_slice(self) -> bytes:
        if self._inflate.eof:
            rest = self._inflate.unused_data or self._source.read(GZIP_SLICE_BYTES)
            self._inflate = isal_zlib.decompressobj(wbits=31)
            if not rest:
                self._done = True
                return b""
            chunk = self._inflate.decompress(rest)
        elif compressed := self._source.read(GZIP_SLICE_BYTES):
            chunk = self._inflate.decompress(compressed)
        else:
            chunk = self._inflate.flush()
            if not self._inflate.eof:
                raise EOFError("gzip stream ends before its end marker")
            self._done = not self._inflate.unused_data
        self._observe(chunk)
        return chunk

    def chunks(self) -> Iterator[bytes]:
        """The text slice by slice as inflated, uncounted and without `read`'s copies."""
        self._counting = False
        while not self._done:
            if chunk := self._inflate_slice():
                yield chunk

    def _observe(self, chunk: bytes) -> None:
        if not chunk or not self._counting:
            return
        self._newlines += chunk.count(b"\n")
        self._last = chunk[-1:]

    def line_numbers(self, rows: int) -> np.ndarray | None:
        return _numbered(rows, self._newlines + (0 if self._last == b"\n" else 1))


def _text_line_numbers(text: bytes, rows: int) -> np.ndarray:
    numbers = _numbered(rows, _line_count(text))
    return numbers if numbers is not None else _non_blank_line_numbers(text)


def _line_count(text: bytes) -> int:
    return text.count(b"\n") + (1 if text and not text.endswith(b"\n") else 0)


def _numbered(rows: int, lines: int) -> np.ndarray | None:
    """Line numbers 1..rows when each of the lines made one row (so none was blank)."""
    return np.arange(1, rows + 1, dtype=np.int64) if rows == lines else None


def _non_blank_line_numbers(text: bytes) -> np.ndarray:
    """1-based numbers of the lines that are not blank.

    Files without blank lines (nearly all) are numbered from a newline count; only files with
    a line that is empty or starts with whitespace are split line by line.
    """
    if text[:1] and text[:1] in _WHITESPACE_BYTES or any(m in text for m in _BLANK_LINE_MARKERS):
        lines = text.split(b"\n")
        return np.array([i + 1 for i, line in enumerate(lines) if line.strip()], dtype=np.int64)
    count = text.count(b"\n") + (1 if text and not text.endswith(b"\n") else 0)
    return np.arange(1, count + 1, dtype=np.int64)


def _parse_slow(text: bytes) -> RawBatch:
    """Every line parsed alone, bad ones kept aside with their numbers.

    Values stay as parsed (object columns: an integer is not turned into a float because
    another record lacks the field), and a raw field counts as seen where it has a value, as
    on Arrow's path: a line reads the same whichever parser read it, which lets a big file be
    read in blocks that take different paths.
    """
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
    frame = pd.DataFrame(rows, dtype=object)
    seen = {c for c in frame.columns if c != "_line"}
    for name in RAW_FIELDS:
        if name not in frame.columns:
            frame[name] = pd.Series(None, index=frame.index, dtype=object)
    if rows:
        frame["_line"] = frame["_line"].astype("int64")
    return _with_drift(RawBatch(frame=frame, bad_lines=bad), seen=seen, all_null=frame)


def _with_drift(batch: RawBatch, seen: set[str], all_null: pd.DataFrame | None) -> RawBatch:
    if all_null is not None:
        seen = {c for c in seen if c not in RAW_FIELDS or all_null[c].notna().any()}
    batch.unknown_fields = sorted(seen - set(RAW_FIELDS) - KNOWN_EXTRA_FIELDS - {"_line"})
    if batch.rows:
        batch.missing_fields = sorted(CORE_FIELDS - seen)
    return batch
