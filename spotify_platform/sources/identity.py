"""Identifiers derived from content: pseudonymous accounts, event ids, surrogate ids.

All are deterministic so that the same play, loaded twice or from two overlapping exports,
gets the same id, and the same account name always maps to the same pseudonym under one key.
"""

import hashlib
import hmac

import numpy as np
import pandas as pd

SEPARATOR = "\x1f"
EPOCH = pd.Timestamp(0)
ONE_SECOND = pd.Timedelta(seconds=1)


def pseudonymise(names: pd.Series, key: bytes) -> pd.Series:
    """Keyed HMAC-SHA256 of each account name, 32 hex chars; null stays null."""
    uniques = names.dropna().unique()
    mapping = {
        name: hmac.new(key, str(name).encode("utf-8"), hashlib.sha256).hexdigest()[:32]
        for name in uniques
    }
    return names.map(mapping)


def name_id(*parts: str | None) -> str:
    """'~' + 21 hex chars of a hash of names: never a valid base62 Spotify id."""
    joined = SEPARATOR.join("" if p is None else str(p).strip() for p in parts)
    return _joined_id(joined)


def _joined_id(joined: str) -> str:
    digest = hashlib.blake2b(joined.casefold().encode("utf-8"), digest_size=11).hexdigest()
    return "~" + digest[:21]


def name_ids(*columns: pd.Series) -> pd.Series:
    """Vectorised `name_id` over aligned columns; rows with any null part stay null.

    Names are joined with Arrow string kernels and hashed once per distinct value.
    """
    parts = [c.astype("string[pyarrow]").str.strip() for c in columns]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + SEPARATOR + part
    codes, uniques = pd.factorize(joined, use_na_sentinel=True)
    ids = np.array([_joined_id(u) for u in uniques] + [None], dtype=object)
    return pd.Series(ids[codes], index=columns[0].index, dtype="string[pyarrow]")


def event_ids(
    account_ids: pd.Series, ended_at: pd.Series, content_keys: pd.Series, ms_played: pd.Series
) -> pd.Series:
    """One id per real play: hash of pseudonymous account, end second, content and duration."""
    instants = (ended_at.dt.tz_convert("UTC").dt.tz_localize(None) - EPOCH) // ONE_SECOND
    joined = (
        account_ids.astype(str)
        + SEPARATOR
        + instants.astype(str)
        + SEPARATOR
        + content_keys.astype(str)
        + SEPARATOR
        + ms_played.astype(str)
    )
    digests = [
        hashlib.blake2b(value.encode("utf-8"), digest_size=16).hexdigest()
        for value in joined.tolist()
    ]
    return pd.Series(digests, index=account_ids.index, dtype=object)
