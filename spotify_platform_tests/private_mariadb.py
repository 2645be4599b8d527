"""A throwaway MariaDB server of the tests' own: TLS, small packets, users of our choosing.

The shared server on 127.0.0.1:3306 must not get global settings or users changed under other
people's feet, so the cases that need them (TLS with a private CA, a small
`max_allowed_packet`, a password-protected login) start their own `mariadbd` on a free port
with a temporary data directory, and stop it afterwards.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pymysql
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MAX_ALLOWED_PACKET = 256 * 1024
APP_USER = "spt_app"
TLS_USER = "spt_tls"
SBIN = ("/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin")


def find_binary(name: str) -> str | None:
    """A MariaDB binary on PATH or in the sbin folders where packages put the server."""
    found = shutil.which(name)
    if found:
        return found
    for folder in SBIN:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


@dataclass(frozen=True)
class Pki:
    """PEM files: the CA that signed the server, the server's pair, and an unrelated CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    other_ca: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_pki(folder: Path, host: str = "127.0.0.1") -> Pki:
    """A CA, a server certificate for `host` (CN and IP SAN) signed by it, and a stranger CA."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca("spotify_platform test CA")
    _, other_cert = _ca("spotify_platform unrelated CA")
    server_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(
        ca=folder / "ca.pem",
        server_cert=folder / "server-cert.pem",
        server_key=folder / "server-key.pem",
        other_ca=folder / "other-ca.pem",
    )
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.other_ca.write_bytes(other_cert.public_bytes(serialization.Encoding.PEM))
    pki.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, pki.server_key)
    return pki


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateMariaDB:
    """One `mariadbd` with TLS and a small `max_allowed_packet`, root over its unix socket."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.datadir = folder / "data"
        self.socket = folder / "mariadb.sock"
        self.port = free_port()
        self.pki = make_pki(folder / "pki")
        self.app_password = "app-pw-" + os.urandom(8).hex()
        self.tls_password = "tls-pw-" + os.urandom(8).hex()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        install = find_binary("mariadb-install-db") or find_binary("mysql_install_db")
        server = find_binary("mariadbd") or find_binary("mysqld")
        if not install or not server:
            raise FileNotFoundError("mariadbd / mariadb-install-db not found")
        user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run(
            [
                install,
                "--no-defaults",
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
                *user,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        with open(self.folder / "mariadbd.err", "wb") as log:
            self.process = self._spawn(server, user, log)
        self._wait_ready()
        self._create_users()

    def _spawn(self, server: str, user: list[str], log: IO[bytes]) -> subprocess.Popen:
        return subprocess.Popen(
            [
                server,
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--socket={self.socket}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--pid-file={self.folder / 'mariadbd.pid'}",
                "--skip-name-resolve",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_bin",
                f"--max-allowed-packet={MAX_ALLOWED_PACKET}",
                "--local-infile=1",
                f"--ssl-ca={self.pki.ca}",
                f"--ssl-cert={self.pki.server_cert}",
                f"--ssl-key={self.pki.server_key}",
                # Throwaway data: durability settings only slow the tests down.
                "--innodb-buffer-pool-size=1G",
                "--innodb-log-file-size=512M",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--skip-log-bin",
                *user,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def _wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            try:
                self.admin().close()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.2)
        log = (self.folder / "mariadbd.err").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"private mariadbd did not start:\n{log}")

    def admin(self, database: str | None = None) -> pymysql.Connection:
        """root over the unix socket (root has no TCP login on this server)."""
        return pymysql.connect(
            unix_socket=str(self.socket),
            user="root",
            database=database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=5,
        )

    def _create_users(self) -> None:
        with self.admin() as conn, conn.cursor() as cursor:
            cursor.execute(
                f"CREATE USER '{APP_USER}'@'127.0.0.1' IDENTIFIED BY %s", (self.app_password,)
            )
            cursor.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{APP_USER}'@'127.0.0.1'")
            cursor.execute(
                f"CREATE USER '{TLS_USER}'@'%%' IDENTIFIED BY %s REQUIRE SSL",
                (self.tls_password,),
            )
            cursor.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{TLS_USER}'@'%'")

    def create_database(self, name: str) -> None:
        with self.admin() as conn, conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")

    def drop_database(self, name: str) -> None:
        with self.admin() as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> "
                "CONNECTION_ID()",
                (name,),
            )
            for (session_id,) in cursor.fetchall():
                try:
                    cursor.execute(f"KILL {int(session_id)}")
                except pymysql.err.OperationalError:
                    pass  # it ended between the listing and the KILL
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")

    def url(self, database: str, user: str = APP_USER, host: str = "127.0.0.1") -> str:
        password = self.app_password if user == APP_USER else self.tls_password
        return f"mysql+pymysql://{user}:{password}@{host}:{self.port}/{database}"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
