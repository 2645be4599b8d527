"""The bulk loader on real databases: LOAD DATA's text escapes every byte MySQL treats
specially and reads back as given, rows go in primary key order, and the executemany path
stores the same rows on SQLite and MariaDB, upserts included."""

import random

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.mysql import DATETIME

from spotify_platform.core.warehouse.loading import (
    in_key_order,
    insert_many,
    load_data,
    primary_key_order,
)

TEXTS = ["plain", "tab\there", "new\nline", "cr\rx", "back\\slash", "nul\x00x", None, "ünï ✓"]


def _table() -> sa.Table:
    return sa.Table(
        "loaded",
        sa.MetaData(),
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("label", sa.String(64)),
        sa.Column("note", sa.Text),
        sa.Column("day", sa.Date),
        sa.Column("at", sa.DateTime().with_variant(DATETIME(fsp=3), "mysql", "mariadb")),
        sa.Column("flag", sa.Boolean),
        sa.Column("share", sa.Float),
        sa.Column("count", sa.Integer),
    )


def _frame() -> pd.DataFrame:
    n = len(TEXTS)
    return pd.DataFrame(
        {
            "id": pd.Series([f"id-{i % 3}" for i in range(n)], dtype="string[pyarrow]"),
            "n": np.arange(n, 0, -1),
            "label": pd.Series(TEXTS, dtype="string[pyarrow]"),
            "note": pd.Series(list(reversed(TEXTS)), dtype=object),
            "day": pd.to_datetime([f"2026-03-0{1 + i % 5}" for i in range(n)]),
            "at": pd.to_datetime(
                [f"2026-03-02T10:00:0{i}.{i}25Z" for i in range(n)], format="ISO8601"
            ),
            "flag": pd.Series([True, False, None] * 2 + [True, False], dtype="boolean"),
            "share": [0.1, 1 / 3, None, 1e-300, -2.5, 123456.789, 0.0, 7.0],
            "count": pd.Series([1, None, 3, 4, 5, 6, 7, -8], dtype="Int64"),
        }
    )


def _expected(frame: pd.DataFrame) -> list[tuple]:
    def value(v):
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            return None
        if isinstance(v, pd.Timestamp):
            return v.tz_localize(None).to_pydatetime() if v.tzinfo else v.date()
        return v.item() if isinstance(v, np.generic) else v

    rows = [tuple(value(v) for v in row) for row in frame.astype(object).itertuples(index=False)]
    return sorted(rows, key=lambda r: (r[0], r[1]))


def _stored(engine: sa.Engine, table: sa.Table) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.id, table.c.n)).all()
    return [
        tuple(
            bool(v) if name == "flag" and v is not None else v
            for name, v in zip(table.c.keys(), r, strict=True)
        )
        for r in rows
    ]


@pytest.fixture
def mariadb(mysql_url) -> sa.Engine:
    engine = sa.create_engine(mysql_url, connect_args={"charset": "utf8mb4", "local_infile": True})
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "mariadb"])
def engine(request, tmp_path) -> sa.Engine:
    if request.param == "mariadb":
        return request.getfixturevalue("mariadb")
    return sa.create_engine(f"sqlite:///{tmp_path / 'loaded.db'}")


def test_load_data_escapes_text_and_reads_back_every_type_as_given(mariadb):
    table, frame = _table(), _frame()
    table.create(mariadb)
    with mariadb.begin() as conn:
        assert load_data(conn, table, frame) == len(frame)
    assert _stored(mariadb, table) == _expected(frame)


def test_load_data_with_replace_overwrites_rows_whose_key_exists(mariadb):
    table, frame = _table(), _frame()
    table.create(mariadb)
    with mariadb.begin() as conn:
        load_data(conn, table, frame)
    changed = frame.assign(label=pd.Series(["new\tlabel"] * len(frame), dtype="string[pyarrow]"))
    with mariadb.begin() as conn:
        assert load_data(conn, table, changed.iloc[::-1], replace=True) == len(frame)
    assert _stored(mariadb, table) == _expected(changed)


def test_primary_key_order_is_code_point_order_of_the_key_columns():
    table, frame = _table(), _frame()
    order = primary_key_order(frame, table)
    keys = list(zip(frame["id"], frame["n"], strict=True))
    assert [keys[i] for i in order] == sorted(keys)
    assert not in_key_order(frame, table)
    assert in_key_order(frame.iloc[order].reset_index(drop=True), table)

    ids = [f"{random.Random(i).getrandbits(64):016x}" for i in range(500)] + ["é", "Z", "a"]
    single = pd.DataFrame({"id": pd.Series(ids, dtype="string[pyarrow]"), "n": 1})
    order = primary_key_order(single, table)  # n does not vary: the text key alone sorts
    assert [ids[i] for i in order] == sorted(ids)
    assert primary_key_order(single.iloc[:1], table) is None


def test_executemany_stores_the_same_rows_and_upserts(engine):
    table, frame = _table(), _frame()
    table.create(engine)
    with engine.begin() as conn:
        assert insert_many(conn, table, frame) == len(frame)
        assert insert_many(conn, table, frame.iloc[:0]) == 0
    assert _stored(engine, table) == _expected(frame)

    changed = frame.assign(label="changed", count=pd.Series([0] * len(frame), dtype="Int64"))
    with engine.begin() as conn:
        insert_many(conn, table, changed, update=[])  # existing rows stay as they are
    assert _stored(engine, table) == _expected(frame)
    with engine.begin() as conn:
        insert_many(conn, table, changed, update=["label"])
    assert _stored(engine, table) == _expected(frame.assign(label="changed"))
    with pytest.raises(ValueError, match="lacks columns"):
        with engine.begin() as conn:
            insert_many(conn, table, frame.drop(columns="note"))
