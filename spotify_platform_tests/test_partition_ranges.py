"""Ranges of daily partitions: two overlapping backfills at once, and the warehouse lost in the
middle of a range.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from spotify_platform.core.lake.layout import (
    staging_key,
)
from spotify_platform.core.warehouse.connection import redact
from spotify_platform.defs.resources.warehouse import WarehouseResource
from spotify_platform_tests.harness import (
    EPOCH,
    SEED,
    make_resources,
    read_table,
    run_days,
    table_checksums,
)
from spotify_platform_tests.support.mariadb import (
    temporary_database,
)

DAY = dt.date(2026, 3, 2)
HMAC_KEY = "test-key-not-secret"  # the key make_resources gives the identity resource


RANGE_FIRST = dt.date(2026, 4, 6)
RANGE_LAST = dt.date(2026, 4, 11)
RANGE_ACCOUNTS = 20


@pytest.fixture(scope="module")
def clean_range(mysql_server_url: str, tmp_path_factory) -> dict[str, tuple]:
    """Checksums of every table after one clean run of the range, on its own database."""
    with temporary_database(mysql_server_url) as url:
        resources = make_resources(
            tmp_path_factory.mktemp("clean"), warehouse_url=url, accounts=RANGE_ACCOUNTS
        )
        assert run_days(resources, RANGE_FIRST, RANGE_LAST)
        sums = table_checksums(resources)
        resources["warehouse"].engine.dispose()
    assert sums["fact_streams"][0] > 0
    return sums


def test_two_overlapping_backfills_at_once_end_like_one_clean_run(
    clean_range: dict, mysql_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "WAREHOUSE_URL": mysql_url,
        "LAKE_URL": f"file://{tmp_path}/lake",
        "SIMULATOR_ACCOUNTS": str(RANGE_ACCOUNTS),
        "SIMULATOR_SEED": str(SEED),
        "SIMULATOR_EPOCH": EPOCH,
        "ACCOUNT_HMAC_KEY": HMAC_KEY,
    }
    for name in ("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET", "PARTITIONS_START"):
        env.pop(name, None)
    middle = RANGE_FIRST + dt.timedelta(days=3)
    ranges = [(RANGE_FIRST, middle), (middle - dt.timedelta(days=1), RANGE_LAST)]
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "spotify_platform.cli", "run", "--from", str(a), "--to", str(b)],
            env={**env, "DAGSTER_HOME": str(tmp_path / f"home-{i}")},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, (a, b) in enumerate(ranges)
    ]
    for child in children:
        out, err = child.communicate(timeout=600)
        assert child.returncode == 0, (out + err)[-4000:]
    resources = make_resources(tmp_path, warehouse_url=mysql_url)
    assert table_checksums(resources) == clean_range
    resources["warehouse"].engine.dispose()


class CuttableProxy:
    """A TCP relay to MariaDB; `cut()` drops every connection and refuses new ones, as a
    network failure between the platform and its warehouse would."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.target)
            except OSError:
                return
            with self.lock:
                if not self.open:
                    client.close()
                    upstream.close()
                    return
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        with self.lock:
            self.open = False
            for end in [self.listener, *self.sockets]:
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()


def test_losing_the_warehouse_mid_range_fails_clearly_and_a_rerun_finishes(
    clean_range: dict,
    mysql_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    target = sa.make_url(mysql_url)
    proxy = CuttableProxy(target.host or "127.0.0.1", target.port or 3306)
    through_proxy = target.set(port=proxy.port).render_as_string(hide_password=False)
    resources = make_resources(tmp_path, warehouse_url=through_proxy, accounts=RANGE_ACCOUNTS)
    # One day per transaction, so the cut falls between two loaded days.
    resources["warehouse"] = WarehouseResource(url=through_proxy, batch_rows=1)
    loaded: list[dt.date] = []
    replace_days = WarehouseResource.replace_days_in_parts

    def replace_then_cut(
        self: WarehouseResource,
        table: str,
        days: list[dt.date],
        parts: Callable[[], Iterator[pd.DataFrame]],
    ) -> int:
        rows = replace_days(self, table, days, parts)
        if table == "fact_streams":
            loaded.extend(days)
            if len(loaded) == 2:
                proxy.cut()
        return rows

    monkeypatch.setattr(WarehouseResource, "replace_days_in_parts", replace_then_cut)
    try:
        assert not run_days(resources, RANGE_FIRST, RANGE_LAST)
    finally:
        proxy.cut()
        monkeypatch.setattr(WarehouseResource, "replace_days_in_parts", replace_days)
    error = capsys.readouterr().err
    assert f"warehouse {redact(through_proxy)} is unreachable while loading fact_streams" in error
    assert "2 of 6 days were loaded before 2026-04-08 failed and stay loaded" in error
    assert "Run the same range again to finish" in error

    direct = make_resources(tmp_path, warehouse_url=mysql_url, accounts=RANGE_ACCOUNTS)
    warehouse: WarehouseResource = direct["warehouse"]
    counts = warehouse.read_frame("SELECT dt, COUNT(*) AS n FROM fact_streams GROUP BY dt")
    assert (
        [d.date() for d in pd.to_datetime(counts["dt"])]
        == loaded
        == [
            RANGE_FIRST,
            RANGE_FIRST + dt.timedelta(days=1),
        ]
    )
    for day, n in zip(loaded, counts["n"], strict=True):
        assert int(n) == len(direct["lake"].read_parquet(staging_key(day))), "whole days"
    assert read_table(direct, "kpi_daily_streams").empty, "nothing downstream ran on half"

    assert run_days(direct, RANGE_FIRST, RANGE_LAST)
    assert table_checksums(direct) == clean_range
    warehouse.engine.dispose()
