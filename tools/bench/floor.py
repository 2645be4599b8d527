"""The floor under any path of a day: the bare Arrow parse of its raw files and the bare
`LOAD DATA` of its sorted fact rows, each timed alone, so the platform's time reads as a
multiple of what the parse and the server cannot go below.

The rows to load are the platform run's own `fact_streams`, dumped to a TSV file in primary
key order before the worker starts (`dump_fact_streams`): the worker times only the parse and
the statement, into an empty `fact_streams` of the platform's schema, sent as the platform
sends it (local infile, a binary character set, the key's order).
"""

import datetime as dt
import time
from pathlib import Path

import sqlalchemy as sa

from tools.bench.measure import RssSampler, Stages

DUMP_BATCH_ROWS = 50_000


def _field(column: sa.Column) -> str:
    """One column as LOAD DATA text, escaped by the server: NULL as \\N, the escapes MySQL
    reads back (backslash, tab, newline, carriage return)."""
    value = f"CAST(`{column.name}` AS CHAR)"
    for raw, escaped in (
        ("\\\\", "\\\\\\\\"),
        ("\\t", "\\\\t"),
        ("\\n", "\\\\n"),
        ("\\r", "\\\\r"),
    ):
        value = f"REPLACE({value}, '{raw}', '{escaped}')"
    return f"IFNULL({value}, '\\\\N')"


def dump_fact_streams(url: str, path: Path) -> dict:
    """The database's fact_streams as a TSV file in primary key order; its row count."""
    from spotify_platform.core.contracts.tables import TABLES

    table = TABLES["fact_streams"]
    keys = ", ".join(f"`{c.name}`" for c in table.primary_key.columns)
    fields = ", '\\t', ".join(_field(c) for c in table.columns)
    started = time.time()
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    rows = 0
    with engine.connect() as conn, open(path, "wb") as handle:
        result = conn.execution_options(stream_results=True).exec_driver_sql(
            f"SELECT CONCAT({fields}) FROM fact_streams ORDER BY {keys}"
        )
        while batch := result.fetchmany(DUMP_BATCH_ROWS):
            handle.write("".join(f"{line}\n" for (line,) in batch).encode("utf-8"))
            rows += len(batch)
    engine.dispose()
    return {"rows": rows, "bytes": path.stat().st_size, "seconds": time.time() - started}


def floor_worker(spec: dict) -> dict:
    """The bare parse of the day's raw files, then the bare LOAD DATA of its sorted rows."""
    import pyarrow.json as pj

    from spotify_platform.core.contracts.tables import TABLES
    from spotify_platform.defs.resources.warehouse import WarehouseResource
    from tools.bench.lean_path import raw_files

    day = dt.date.fromisoformat(spec["day"])
    files = raw_files(Path(spec["lake"]), day)
    warehouse = WarehouseResource(url=spec["url"])
    warehouse.init_schema()
    names = ", ".join(f"`{c.name}`" for c in TABLES["fact_streams"].columns)
    statement = (
        f"LOAD DATA LOCAL INFILE '{spec['tsv']}' INTO TABLE fact_streams "
        "CHARACTER SET binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' "
        f"LINES TERMINATED BY '\\n' ({names})"
    )
    with RssSampler() as sampler:
        stage = Stages(sampler)
        with stage("Arrow parse of the raw files (pyarrow.json)") as s:
            s["rows"] = sum(pj.read_json(path).num_rows for path in files)
        with warehouse.engine.connect() as conn:
            with stage("LOAD DATA of the sorted fact_streams rows") as s:
                s["rows"] = conn.exec_driver_sql(statement).rowcount
                conn.commit()
    warehouse.engine.dispose()
    parse, load = stage.rows
    return {
        "stages": stage.rows,
        "seconds": parse["seconds"] + load["seconds"],
        "parse_seconds": parse["seconds"],
        "load_seconds": load["seconds"],
        "parsed_rows": parse["rows"],
        "loaded_rows": load["rows"],
    }
