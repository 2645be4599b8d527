"""`python -m spotify_platform.core.warehouse.migrations "what changed"`: write the next revision.

Alembic's autogenerate compares the tables built from the pandera contracts with a scratch
SQLite warehouse at the current head and writes the difference as `versions/NNNN_*.py`.
Read it before committing: autogenerate does not see renames or data moves, and views are
written by hand (`replace_views` with their new text).
"""

import logging
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from spotify_platform.core.warehouse.migrations import config, head, upgrade


def main(argv: list[str]) -> int:
    message = " ".join(argv).strip()
    if not message:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)  # noqa: T201
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory() as scratch:
        engine = sa.create_engine(f"sqlite:///{Path(scratch) / 'head.db'}")
        with engine.begin() as conn:
            upgrade(conn)
            command.revision(
                config(conn), message, autogenerate=True, rev_id=f"{int(head()) + 1:04d}"
            )
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
