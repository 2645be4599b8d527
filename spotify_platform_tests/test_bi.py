"""BI access: the bi_* views and a read-only MySQL user that can read them and nothing else."""

import datetime as dt
import secrets

import pytest
import sqlalchemy as sa

from spotify_platform import cli
from spotify_platform.core.contracts.tables import VIEWS
from spotify_platform_tests.harness import make_resources, run_days

DAY = dt.date(2026, 8, 3)


def test_init_warehouse_creates_a_reader_that_can_only_select(
    tmp_path, mysql_url, mysql_server_url, monkeypatch
):
    resources = make_resources(tmp_path, warehouse_url=mysql_url, accounts=30)
    assert run_days(resources, DAY, DAY)
    user = f"bi_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    monkeypatch.setenv("WAREHOUSE_URL", mysql_url)
    monkeypatch.setenv("BI_READONLY_USER", user)
    monkeypatch.setenv("BI_READONLY_PASSWORD", password)
    admin = sa.create_engine(mysql_server_url, poolclass=sa.NullPool)
    try:
        assert cli.main(["init-warehouse"]) == 0
        url = sa.make_url(mysql_url).set(username=user, password=password)
        reader = sa.create_engine(url, poolclass=sa.NullPool)
        with reader.connect() as conn:
            for view in VIEWS:
                conn.execute(sa.text(f"SELECT * FROM {view} LIMIT 1"))
            rows = conn.execute(sa.text("SELECT COUNT(*) FROM bi_daily_overview")).scalar()
            assert rows == 1
            with pytest.raises(sa.exc.DBAPIError):
                conn.execute(sa.text("SELECT COUNT(*) FROM fact_streams"))
            with pytest.raises(sa.exc.DBAPIError):
                conn.execute(sa.text("DELETE FROM kpi_daily_streams"))
        reader.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'%'"))
        admin.dispose()


def test_views_join_names_not_ids(tmp_path):
    resources = make_resources(tmp_path, accounts=30)
    assert run_days(resources, DAY, DAY)
    top = resources["warehouse"].read_frame("SELECT * FROM bi_top_tracks")
    assert {"track_name", "artist_name", "album_name"} <= set(top.columns)
    assert top["album_name"].notna().all()
    streams = resources["warehouse"].read_frame("SELECT * FROM bi_streams LIMIT 5")
    assert "account_id" not in streams.columns
