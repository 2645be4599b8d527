"""Arrow-backed text columns: the small kernels staging builds its canonical columns from.

Text stays in Arrow memory (`string[pyarrow]`), so the string work below runs as Arrow
compute kernels rather than once per value in Python.
"""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def is_missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def text(series: pd.Series) -> pd.Series:
    """Trimmed Arrow-backed strings; blanks, nulls and NaN become missing (never 'nan').

    Arrow strings keep the pandera checks and the Parquet write vectorised; values that are
    not strings (numbers in a malformed record) are turned into their text.
    """
    try:
        values = pa.array(series, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        values = pa.array(
            [None if is_missing(v) else str(v) for v in series.tolist()], type=pa.string()
        )
    values = pc.utf8_trim_whitespace(values)
    values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    if not isinstance(values, pa.ChunkedArray):  # Arrow-backed input stays chunked
        values = pa.chunked_array([values])
    return pd.Series(pd.arrays.ArrowStringArray(values), index=series.index)


def large_strings(value: pd.Series | str) -> pa.Array | pa.Scalar:
    """A text column as one Arrow `large_string` array (a text as a scalar of that type)."""
    if isinstance(value, str):
        return pa.scalar(value, pa.large_string())
    values = pa.array(value.array)
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    return pc.cast(values, pa.large_string())


def string_series(values: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(pc.cast(values, pa.large_string())), index=index)


def only_where(series: pd.Series, keep: pd.Series | np.ndarray) -> pd.Series:
    """Arrow strings where `keep`, missing elsewhere (`Series.where` without its slow path)."""
    mask = pa.array(np.asarray(keep, dtype=bool))
    return string_series(
        pc.if_else(mask, large_strings(series), pa.scalar(None, pa.large_string())), series.index
    )


def coalesce(*values: pd.Series | str) -> pd.Series:
    """The first non-missing of aligned Arrow string columns (or a final default text)."""
    return string_series(pc.coalesce(*(large_strings(v) for v in values)), values[0].index)


def joined(*values: pd.Series | str) -> pd.Series:
    """Aligned texts joined end to end; missing where any part is missing."""
    index = next(v.index for v in values if isinstance(v, pd.Series))
    parts = (large_strings(v) for v in values)
    return string_series(
        pc.binary_join_element_wise(*parts, pa.scalar("", pa.large_string())), index
    )


def labelled(codes: np.ndarray, labels: list[str | None], index: pd.Index) -> pd.Series:
    """Arrow strings `labels[code]` for each row (for columns with a handful of values)."""
    table = pa.array(labels, type=pa.large_string())
    return pd.Series(pd.arrays.ArrowStringArray(table.take(pa.array(codes))), index=index)
