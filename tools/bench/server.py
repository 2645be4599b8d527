"""The bench's own databases (`spt_bench_*`) on the MariaDB server: made, compared, dropped."""

import secrets
from typing import Any

import sqlalchemy as sa

from spotify_platform.core.contracts.tables import TABLES


class Server:
    """Creates and drops the bench's own databases (`spt_bench_*`) on the MariaDB server."""

    def __init__(self, url: str, keep: bool) -> None:
        self.url = sa.make_url(url)
        self.keep = keep
        self.engine = sa.create_engine(self.url, poolclass=sa.NullPool)
        self.created: list[str] = []
        self.made: list[str] = []

    def database(self, purpose: str) -> str:
        name = f"spt_bench_{purpose}_{secrets.token_hex(3)}"
        with self.engine.connect() as conn:
            conn.execute(
                sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            )
        self.created.append(name)
        self.made.append(name)
        query = {**self.url.query, "charset": "utf8mb4", "local_infile": "1"}
        return self.url.set(database=name, query=query).render_as_string(hide_password=False)

    def checksum(self, db_url: str) -> dict[str, Any]:
        """Order-independent digest of fact_streams: the same rows give the same figures."""
        columns = ", ".join(f"COALESCE(`{c.name}`, '~')" for c in TABLES["fact_streams"].columns)
        engine = sa.create_engine(db_url, poolclass=sa.NullPool)
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT COUNT(*) AS n, SUM(ms_played) AS ms, "
                    f"SUM(CRC32(CONCAT_WS('|', {columns}))) AS digest FROM fact_streams"
                )
            ).one()
        engine.dispose()
        return {"rows": int(row.n), "ms_played": int(row.ms or 0), "digest": int(row.digest or 0)}

    def drop_all(self) -> None:
        if self.keep:
            return
        with self.engine.connect() as conn:
            for name in self.created:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        self.created.clear()
