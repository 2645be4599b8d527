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


def latest_first(table: pa.Table, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(order, rank) of the table's plays: `order` lists row positions latest play first, ties
    by `names` in code point order; `rank` is each row's place in it.

    A group's least rank (a hash aggregate's "min") is its latest play, and `order` at that
    rank its row: one sort for every group at once.
    """
    keys = [("ended_at", "descending"), *((name, "ascending") for name in names)]
    order = pc.sort_indices(table.select(["ended_at", *names]), sort_keys=keys).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return order, rank


def latest_plays(plays: pd.DataFrame, keys: list[str], names: list[str]) -> pd.DataFrame:
    """The row of each `keys` group's latest play; a missing key is dropped once grouped,
    from one row per group rather than from every play."""
    table = pa.Table.from_pandas(plays[[*keys, "ended_at", *names]], preserve_index=False)
    order, rank = latest_first(table, names)
    grouped = (
        table.select(keys)
        .append_column("_rank", pa.array(rank))
        .group_by(keys, use_threads=False)
        .aggregate([("_rank", "min")])
    )
    winners = np.sort(order[grouped["_rank_min"].to_numpy()])
    return plays.iloc[winners].dropna(subset=keys).reset_index(drop=True)


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
