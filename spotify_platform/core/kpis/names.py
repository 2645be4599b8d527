"""Which spelling an artist or track is shown under (README "Names and identities").

An artist's id hashes its name stripped and case-folded, and so does a legacy track's, so one
identity arrives in several spellings. Each is shown under the name of its latest play: the
latest `ended_at`, ties to the least names in code point order. Pure functions over Arrow and
pandas: the aggregates pick a day's name per row, the dimensions the latest name ever seen.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

SEEN_AT = "name_seen_at"


def group_codes(table: pa.Table, keys: Sequence[str]) -> np.ndarray:
    """A dense int64 code per row for its `keys` (a missing key is a value of its own)."""
    codes = np.zeros(len(table), dtype=np.int64)
    for key in keys:
        encoded = pc.dictionary_encode(table[key].combine_chunks())
        size = len(encoded.dictionary) + 1
        indices = pc.fill_null(encoded.indices, size - 1).to_numpy().astype(np.int64)
        codes = codes * size + indices
    return pc.dictionary_encode(pa.array(codes)).indices.to_numpy().astype(np.int64)


def latest_rows(table: pa.Table, groups: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The row position of each group's latest play: the latest `ended_at` (an arg-max per
    group), ties to the least `names` in code point order (a sort of the plays at their
    group's latest end, mostly one a group)."""
    ended = pc.cast(table["ended_at"].combine_chunks(), pa.int64()).to_numpy()
    latest = np.full(int(groups.max(initial=-1)) + 1, np.iinfo(np.int64).min)
    np.maximum.at(latest, groups, ended)
    candidates = np.flatnonzero(ended == latest[groups])
    tied = (
        table.select(list(names))
        .take(candidates)
        .append_column("_group", pa.array(groups[candidates]))
    )
    keys = [("_group", "ascending"), *((name, "ascending") for name in names)]
    order = pc.sort_indices(tied, sort_keys=keys).to_numpy()
    ordered = groups[candidates][order]
    first = np.concatenate(([True], ordered[1:] != ordered[:-1]))[: len(ordered)]
    return candidates[order[first]]


def latest_plays(plays: pd.DataFrame, keys: list[str], names: list[str]) -> pd.DataFrame:
    """The row of each `keys` group's latest play; a missing key is dropped once grouped,
    from one row per group rather than from every play."""
    table = pa.Table.from_pandas(plays[[*keys, "ended_at", *names]], preserve_index=False)
    rows = latest_rows(table, group_codes(table, keys), names)
    return plays.iloc[np.sort(rows)].dropna(subset=keys).reset_index(drop=True)


def _before(left: pd.DataFrame, right: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Row-wise: does `left` come before `right` comparing `columns` in turn, as text in code
    point order?"""
    less = pd.Series(False, index=left.index)
    tied = pd.Series(True, index=left.index)
    for column in columns:
        a = left[column].astype("string[pyarrow]")
        b = right[column].astype("string[pyarrow]")
        less |= tied & (a < b).fillna(False).astype(bool)
        tied &= (a == b).fillna(False).astype(bool)
    return less


def renamed(
    stored: pd.DataFrame, seen: pd.DataFrame, key: str, names: list[str], also: Sequence[str] = ()
) -> pd.DataFrame:
    """The `stored` dimension rows that `seen` latest plays rename, with their new names.

    A seen play replaces a row's `names` (and the `also` columns that come with them) when it
    ended after the play the row was named from (`name_seen_at`; a row without one is
    replaced by any play), or at the same millisecond under names that come first in code
    point order. So the row ends up named by the latest play of all the days loaded, whatever
    order they were loaded in; a day loaded again changes nothing.
    """
    columns = [*names, *also]
    pairs = stored.merge(seen[[key, *columns, SEEN_AT]], on=key, suffixes=("", "_seen"))
    seen_at = pairs[f"{SEEN_AT}_seen"]
    stored_at = pairs[SEEN_AT]
    candidate = pairs[[f"{n}_seen" for n in names]].set_axis(names, axis=1)
    newer = (
        stored_at.isna()
        | (seen_at > stored_at).fillna(False).astype(bool)
        | ((seen_at == stored_at).fillna(False).astype(bool) & _before(candidate, pairs, names))
    )
    update = pairs[newer].copy()
    for column in [*columns, SEEN_AT]:
        update[column] = update.pop(f"{column}_seen")
    return update[list(stored.columns)].reset_index(drop=True)


def seen_at(ended_at: pd.Series) -> pd.Series:
    """`name_seen_at` values: the play's end in UTC to the millisecond, as MySQL keeps it, so
    a day loaded again compares equal to what it stored."""
    return pd.to_datetime(ended_at, utc=True).dt.floor("ms").astype("datetime64[ns, UTC]")
