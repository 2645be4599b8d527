"""Running a warehouse transaction again after a transient failure: a deadlock, a lock wait
timeout or a lost connection, after which the server has rolled the work back."""

import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Literal, TypeVar

import sqlalchemy as sa

from spotify_platform.core.warehouse.connection import WarehouseContention, WarehouseUnavailable

# MySQL/MariaDB errors after which InnoDB has rolled the statement or transaction back and the
# same transaction may simply run again: deadlock (1213), lock wait timeout (1205).
LOCK_ERRORS = frozenset({1205, 1213})
# The connection is gone: cannot connect (2002, 2003), server gone away (2006), lost during a
# query (2013) or the handshake (2055), killed (1927), server shutting down (1053).
CONNECTION_ERRORS = frozenset({1053, 1927, 2002, 2003, 2006, 2013, 2055})
LOCK_ATTEMPTS = 6
CONNECTION_ATTEMPTS = 3
RETRY_BASE_S = 0.25
RETRY_MAX_S = 5.0

logger = logging.getLogger(__name__)
T = TypeVar("T")


def retrying(display_url: str, what: str, work: Callable[[], T]) -> T:
    """Run `work` (one whole transaction or read), again after a transient failure.

    Deadlocks and lock wait timeouts are retried up to LOCK_ATTEMPTS times, a lost
    connection up to CONNECTION_ATTEMPTS times, with jittered exponential backoff; then
    the failure is raised naming the warehouse (`display_url`, never its password).
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return work()
        except sa.exc.DBAPIError as exc:
            kind = failure_kind(exc)
            if kind is None:
                raise
            limit = LOCK_ATTEMPTS if kind == "lock" else CONNECTION_ATTEMPTS
            detail = _detail(exc)
            if attempt >= limit:
                if kind == "connection":
                    raise WarehouseUnavailable(
                        f"warehouse {display_url} is unreachable while {what} "
                        f"({attempt} attempts): {detail}"
                    ) from None
                raise WarehouseContention(
                    f"warehouse {display_url}: {what} kept failing on locks "
                    f"({attempt} attempts): {detail}"
                ) from None
            delay = min(RETRY_MAX_S, RETRY_BASE_S * 2 ** (attempt - 1))
            delay *= random.uniform(0.5, 1.5)
            logger.warning(
                "warehouse %s: %s failed (%s), retrying in %.2f s (attempt %d of %d)",
                display_url,
                what,
                detail,
                delay,
                attempt + 1,
                limit,
            )
            time.sleep(delay)


def failure_kind(exc: sa.exc.DBAPIError) -> Literal["lock", "connection"] | None:
    """'lock' or 'connection' for failures after which the transaction may run again."""
    codes = {_code(error) for error in _driver_errors(exc)}
    if codes & LOCK_ERRORS:
        return "lock"
    if codes & CONNECTION_ERRORS or exc.connection_invalidated:
        return "connection"
    if isinstance(exc, sa.exc.InterfaceError) and type(exc.orig).__module__.startswith("pymysql"):
        return "connection"  # PyMySQL's "(0, '')": the socket closed under it
    return None


def _driver_errors(exc: BaseException) -> Iterator[BaseException]:
    """The driver errors in an exception's chain, and in those it was raised while handling.

    A failure can surface as a later one: a deadlock inside a savepoint as the failed
    ROLLBACK TO SAVEPOINT after it, a socket that broke as PyMySQL's bare "(0, '')".
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield getattr(current, "orig", None) or current
        current = current.__cause__ or current.__context__


def _code(error: BaseException) -> int | None:
    args = getattr(error, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _detail(exc: sa.exc.DBAPIError) -> str:
    """First line of the most telling driver error in the chain (one with a real code)."""
    for error in _driver_errors(exc):
        if _code(error):
            return str(error).strip().splitlines()[0]
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
