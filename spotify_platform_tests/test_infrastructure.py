"""The shared fixtures give what the warehouse and lake code rely on."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa

# Astral-plane characters (4 UTF-8 bytes) are what utf8mb3 would mangle; the accented letters
# and case pair check that utf8mb4_bin keeps distinct what a *_ci collation would merge.
TRACK_NAMES = ["🎵 Beyoncé — Halo 𝄞", "beyonce — halo"]

# Names handed out by the function-scoped fixtures, to check later that teardown removed them.
seen_databases: list[str] = []
seen_buckets: list[str] = []


def test_mysql_database_is_fresh_and_utf8mb4_bin(mysql_url: str) -> None:
    url = sa.make_url(mysql_url)
    assert url.database is not None and url.database.startswith("spt_test_")
    seen_databases.append(url.database)
    assert url.query["local_infile"] == "1"
    engine = sa.create_engine(mysql_url)
    try:
        with engine.connect() as conn:
            charset, collation = conn.execute(
                sa.text(
                    "SELECT default_character_set_name, default_collation_name"
                    " FROM information_schema.schemata WHERE schema_name = DATABASE()"
                )
            ).one()
            tables = conn.execute(sa.text("SHOW TABLES")).all()
    finally:
        engine.dispose()
    assert (charset, collation) == ("utf8mb4", "utf8mb4_bin")
    assert tables == []


def test_mysql_round_trips_emoji_byte_for_byte(mysql_url: str) -> None:
    seen_databases.append(str(sa.make_url(mysql_url).database))
    engine = sa.create_engine(mysql_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE tracks (id INT PRIMARY KEY, name VARCHAR(64))"))
            conn.execute(
                sa.text("INSERT INTO tracks VALUES (:id, :name)"),
                [{"id": i, "name": name} for i, name in enumerate(TRACK_NAMES)],
            )
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT name, HEX(name) FROM tracks ORDER BY id")).all()
            distinct = conn.execute(sa.text("SELECT COUNT(DISTINCT name) FROM tracks")).scalar()
    finally:
        engine.dispose()
    assert [name.encode("utf-8") for name, _ in rows] == [n.encode("utf-8") for n in TRACK_NAMES]
    assert [bytes.fromhex(stored) for _, stored in rows] == [n.encode() for n in TRACK_NAMES]
    assert distinct == len(TRACK_NAMES)


def test_mysql_url_allows_load_data_local_infile(mysql_url: str, tmp_path: Path) -> None:
    csv = tmp_path / "plays.tsv"
    csv.write_bytes("1\t🎧 first\n2\tsecond\n".encode())
    engine = sa.create_engine(mysql_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE plays (id INT, name VARCHAR(32))"))
            conn.execute(
                sa.text(
                    f"LOAD DATA LOCAL INFILE '{csv.as_posix()}' INTO TABLE plays"
                    " CHARACTER SET utf8mb4"
                )
            )
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, name FROM plays ORDER BY id")).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [(1, "🎧 first"), (2, "second")]


def test_mysql_database_is_dropped_afterwards(mysql_server_url: str) -> None:
    if not seen_databases:
        pytest.skip("no earlier test in this run recorded a database")
    engine = sa.create_engine(mysql_server_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            existing = set(conn.execute(sa.text("SHOW DATABASES")).scalars())
    finally:
        engine.dispose()
    assert existing.isdisjoint(seen_databases)


def test_s3_put_and_get_object(s3_endpoint: str, s3_bucket: str) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    assert s3.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0
    body = "🎵 raw/plays/2024-01-01.json".encode()
    s3.put_object(Bucket=s3_bucket, Key="raw/plays/dt=2024-01-01/part-0.json", Body=body)
    got = s3.get_object(Bucket=s3_bucket, Key="raw/plays/dt=2024-01-01/part-0.json")
    assert got["Body"].read() == body
    assert s3_endpoint.startswith("http://127.0.0.1:")


def test_s3_fixture_uses_fake_credentials(s3_endpoint: str) -> None:
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"
    credentials = boto3.Session().get_credentials()
    assert credentials is not None and credentials.access_key == "testing"


@pytest.mark.parametrize("attempt", [1, 2])
def test_s3_buckets_are_fresh_per_test(s3_endpoint: str, s3_bucket: str, attempt: int) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    assert s3.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0
    s3.put_object(Bucket=s3_bucket, Key="marker", Body=str(attempt).encode())
    names = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    assert s3_bucket in names
    assert names.isdisjoint(seen_buckets)
    seen_buckets.append(s3_bucket)
