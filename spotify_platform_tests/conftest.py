"""Shared fixtures: throwaway MariaDB and Postgres databases and a moto S3 endpoint per test.

MariaDB tests skip on a developer machine without a server but fail under CI (``CI=true``), so
a broken CI service can never turn the warehouse tests into silent skips.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import boto3
import pytest
import sqlalchemy as sa
from dagster import DagsterInstance
from moto.server import ThreadedMotoServer

from spotify_platform.defs.event_storage import ensure_instance_settings
from spotify_platform_tests.private_mariadb import PrivateMariaDB, find_binary
from spotify_platform_tests.support.mariadb import admin_engine, temporary_database
from spotify_platform_tests.support.web_api import FakeSpotify

DEFAULT_MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306/?charset=utf8mb4"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Real credentials or profiles in the environment must not leak into, or override, the fakes.
STRAY_AWS_ENV = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def mysql_server_url() -> str:
    """Admin URL of the MariaDB server (env ``TEST_MYSQL_URL`` overrides the default)."""
    url = os.environ.get("TEST_MYSQL_URL", DEFAULT_MYSQL_URL)
    engine = admin_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        shown = sa.make_url(url).render_as_string(hide_password=True)
        message = f"MariaDB at {shown} is not usable: {exc.orig!r}"
        if _in_ci():
            pytest.fail(f"{message}; under CI=true the MariaDB tests must run, not skip")
        pytest.skip(message)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def mysql_url(mysql_server_url: str) -> Iterator[str]:
    """URL of a fresh utf8mb4_bin database that exists for this test only."""
    with temporary_database(mysql_server_url) as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Endpoint URL of an in-process moto S3 server, with fake AWS credentials in the env."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in FAKE_AWS_ENV.items():
            patch.setenv(key, value)
        for key in STRAY_AWS_ENV:
            patch.delenv(key, raising=False)
        # Port 0 lets the OS pick a free port at bind time, so parallel runs cannot collide.
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Iterator[str]:
    """Name of an empty bucket on the moto endpoint, emptied and deleted after the test."""
    name = f"spt-test-{secrets.token_hex(6)}"
    s3 = boto3.resource("s3", endpoint_url=s3_endpoint)
    bucket = s3.Bucket(name)
    bucket.create()
    try:
        yield name
    finally:
        bucket.object_versions.delete()
        bucket.delete()


@pytest.fixture(scope="session")
def private_mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateMariaDB]:
    """A MariaDB server of the tests' own (TLS, small max_allowed_packet, password logins).

    Skips only where `mariadbd` is not installed and CI is not "true".
    """
    missing = [n for n in ("mariadbd", "mariadb-install-db") if not find_binary(n)]
    if missing and not (find_binary("mysqld") and find_binary("mysql_install_db")):
        message = f"{', '.join(missing)} not installed (apt-get install mariadb-server)"
        if _in_ci():
            pytest.fail(f"{message}; under CI=true the private-server tests must run")
        pytest.skip(message)
    server = PrivateMariaDB(tmp_path_factory.mktemp("mariadb"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_database(private_mariadb: PrivateMariaDB) -> Iterator[str]:
    """Name of a fresh database on the private server, dropped after the test."""
    name = f"spt_test_{secrets.token_hex(6)}"
    private_mariadb.create_database(name)
    try:
        yield name
    finally:
        private_mariadb.drop_database(name)


@pytest.fixture
def project_instance(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterInstance]:
    """An instance with the project's own settings (its batching event log), as `make dev`."""
    home = str(tmp_path / "home")
    monkeypatch.setenv("DAGSTER_HOME", home)
    ensure_instance_settings(home)
    with DagsterInstance.get() as instance:
        assert type(instance.event_log_storage).__name__ == "BatchingSqliteEventLogStorage"
        yield instance


@pytest.fixture
def postgres_database() -> Iterator[sa.URL]:
    """A fresh `spt_test_*` Postgres database for the instance's storage, dropped after."""
    server = sa.make_url(os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    admin = sa.create_engine(
        server.set(drivername="postgresql+psycopg2"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.NullPool,
    )
    name = f"spt_test_{secrets.token_hex(6)}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        if _in_ci():
            pytest.fail(f"PostgreSQL at {server.host}:{server.port} is not usable: {exc.orig!r}")
        pytest.skip(f"PostgreSQL at {server.host}:{server.port} is not usable")
    try:
        yield server.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def spotify(httpserver, tmp_path, monkeypatch) -> Iterator[FakeSpotify]:
    """A fake Spotify; the working directory is a fresh folder so a stray `.cache` shows."""
    monkeypatch.chdir(tmp_path)
    fake = FakeSpotify(httpserver)
    yield fake
    assert not list(tmp_path.glob(".cache*")), "spotipy wrote a token cache file"
