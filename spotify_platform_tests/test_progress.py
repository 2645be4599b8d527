"""`spotify-platform run` on a terminal: a bar per long step, redrawn in place, whose figures
are the run's own."""

import datetime as dt
import os
import pty
import re
import subprocess
import sys

from spotify_platform.core.warehouse.store import Warehouse

LAST = dt.date(2026, 5, 30)
FIRST = LAST - dt.timedelta(days=4)


def test_the_cli_draws_a_bar_on_a_terminal(tmp_path):
    env = {
        **os.environ,
        "LAKE_URL": f"file://{tmp_path}/lake",
        "WAREHOUSE_URL": f"sqlite:///{tmp_path}/warehouse.db",
        "DAGSTER_HOME": str(tmp_path / "home"),
        "SIMULATOR_ACCOUNTS": "40",
        "SIMULATOR_EPOCH": "2026-01-01",
        "COLUMNS": "160",
    }
    leader, follower = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "spotify_platform.cli", "run", "--from", str(FIRST)]
        + ["--to", str(LAST)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    )
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    out = child.communicate(timeout=600)[0]
    os.close(leader)
    assert child.returncode == 0, out + screen.decode()[-3000:]
    text = screen.decode()
    warehouse = Warehouse(f"sqlite:///{tmp_path}/warehouse.db")
    loaded = int(warehouse.read_frame("SELECT COUNT(*) AS n FROM fact_streams").iloc[0, 0])
    # Every redraw of a step starts at the line's beginning; its last says all days are done.
    draws = [d.strip() for d in re.split(r"[\r\n]+", text) if re.match(r"fact_streams +\[", d)]
    assert draws, text
    assert re.fullmatch(
        rf"fact_streams\s+\[#{{24}}\] 5/5 days  {loaded:,} plays  \d+:\d\d elapsed", draws[-1]
    ), draws[-1]
    # Drawn in place: a carriage return alone (the terminal turns each newline into \r\n).
    assert re.search(r"\r(?!\n)fact_streams ", text), text
