"""Frames read back from the warehouse, typed as their table's contract expects."""

import pandas as pd
import sqlalchemy as sa

from spotify_platform.core.contracts.tables import TABLES


def typed_frame(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Coerce a frame read from SQL (SQLite returns dates as text) to the table's contract."""
    out = frame.copy()
    for column in TABLES[table].columns:
        if column.name not in out.columns:
            continue
        kind = column.type
        if isinstance(kind, sa.Date):
            out[column.name] = pd.to_datetime(out[column.name])
        elif isinstance(kind, sa.DateTime):
            out[column.name] = pd.to_datetime(out[column.name], utc=True)
        elif isinstance(kind, sa.Boolean):
            out[column.name] = out[column.name].astype("boolean")
        elif isinstance(kind, sa.Float):
            out[column.name] = pd.to_numeric(out[column.name]).astype(float)
    return out
