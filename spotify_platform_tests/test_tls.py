"""MySQL over TLS against a private MariaDB with certificates of our own.

The server's certificate is issued by a throwaway CA for 127.0.0.1 (IP SAN), and its user
`spt_tls` is created `REQUIRE SSL`. Verification must use the CA the platform is given:
with another CA, or a host name the certificate does not name, the connection must fail.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from dagster import build_resources

from spotify_platform.core.warehouse.connection import WarehouseUnavailable
from spotify_platform.defs.resources import build_resources as platform_resources
from spotify_platform.defs.resources.warehouse import WarehouseResource
from spotify_platform_tests.private_mariadb import TLS_USER, PrivateMariaDB


def tls_status(warehouse: WarehouseResource) -> dict[str, str]:
    frame = warehouse.read_frame("SHOW SESSION STATUS LIKE 'Ssl_%'")
    return dict(zip(frame.iloc[:, 0], frame.iloc[:, 1], strict=True))


def test_tls_with_the_right_ca_verifies_and_encrypts(
    private_mariadb: PrivateMariaDB, private_database: str
) -> None:
    warehouse = WarehouseResource(
        url=private_mariadb.url(private_database, user=TLS_USER),
        ssl_ca=str(private_mariadb.pki.ca),
    )

    warehouse.check_connection()
    assert "fact_streams" in warehouse.init_schema()

    status = tls_status(warehouse)
    assert status["Ssl_version"].startswith("TLSv1."), status
    assert status["Ssl_cipher"], "the session is encrypted"
    assert warehouse.scalar("SELECT CURRENT_USER()").startswith(f"{TLS_USER}@")
    warehouse.engine.dispose()


def test_another_ca_fails_naming_the_host_not_the_password(
    private_mariadb: PrivateMariaDB, private_database: str
) -> None:
    url = private_mariadb.url(private_database, user=TLS_USER)
    warehouse = WarehouseResource(url=url, ssl_ca=str(private_mariadb.pki.other_ca))

    with pytest.raises(WarehouseUnavailable) as refused:
        warehouse.check_connection()

    message = str(refused.value)
    assert f"127.0.0.1:{private_mariadb.port}/{private_database}" in message
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert private_mariadb.tls_password not in message and private_mariadb.tls_password not in (
        repr(warehouse)
    )


def test_a_host_name_the_certificate_does_not_name_fails_unless_identity_is_waived(
    private_mariadb: PrivateMariaDB, private_database: str
) -> None:
    url = private_mariadb.url(private_database, user=TLS_USER, host="localhost")
    strict = WarehouseResource(url=url, ssl_ca=str(private_mariadb.pki.ca))

    with pytest.raises(WarehouseUnavailable, match="(?i)hostname mismatch"):
        strict.check_connection()

    # Identity checks can be waived (an RDS proxy behind another name); the CA still counts.
    lenient = WarehouseResource(
        url=url, ssl_ca=str(private_mariadb.pki.ca), ssl_verify_identity=False
    )
    lenient.check_connection()
    assert tls_status(lenient)["Ssl_cipher"]
    stranger = WarehouseResource(
        url=url, ssl_ca=str(private_mariadb.pki.other_ca), ssl_verify_identity=False
    )
    with pytest.raises(WarehouseUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        stranger.check_connection()
    lenient.engine.dispose()


def test_the_server_refuses_this_user_without_tls(
    private_mariadb: PrivateMariaDB, private_database: str
) -> None:
    """The user really is REQUIRE SSL, so the tests above prove the TLS path, not a fallback."""
    engine = sa.create_engine(
        private_mariadb.url(private_database, user=TLS_USER),
        connect_args={"ssl_disabled": True},
        poolclass=sa.NullPool,
    )
    with pytest.raises(sa.exc.OperationalError, match="Access denied"):
        engine.connect().close()


def test_warehouse_ssl_ca_from_the_environment(
    private_mariadb: PrivateMariaDB, private_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAREHOUSE_URL", private_mariadb.url(private_database, user=TLS_USER))
    monkeypatch.setenv("WAREHOUSE_SSL_CA", str(private_mariadb.pki.ca))

    with build_resources({"warehouse": platform_resources()["warehouse"]}) as resources:
        warehouse: WarehouseResource = resources.warehouse
        warehouse.check_connection()
        assert tls_status(warehouse)["Ssl_cipher"]
        warehouse.engine.dispose()
