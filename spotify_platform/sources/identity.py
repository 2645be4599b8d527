"""Identifiers derived from content: pseudonymous accounts, event ids, surrogate ids.

All are deterministic so that the same play, loaded twice or from two overlapping exports,
gets the same id, and the same account name always maps to the same pseudonym under one key.
"""

import hashlib
import hmac

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
    joined = SEPARATOR.join("" if p is None else str(p).casefold().strip() for p in parts)
    return "~" + hashlib.blake2b(joined.encode("utf-8"), digest_size=11).hexdigest()[:21]


def name_ids(*columns: pd.Series) -> pd.Series:
    """Vectorised `name_id` over aligned columns; rows with any null part stay null."""
    frame = pd.concat(columns, axis=1)
    valid = frame.notna().all(axis=1)
    result = pd.Series(pd.NA, index=frame.index, dtype=object)
    if valid.any():
        keys = pd.Series(list(zip(*(frame.loc[valid, c] for c in frame.columns), strict=True)))
        unique_keys = keys.unique()
        mapping = {k: name_id(*k) for k in unique_keys}
        result.loc[valid] = keys.map(mapping).to_numpy()
    return result


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
