"""The bench's input: simulated days landed in a lake folder as raw JSON lines files."""

import datetime as dt
import json
import math
import time
from pathlib import Path

from tools.bench.protocol import run_worker
from tools.bench.settings import SEED

# A simulated file of this many events takes about 4 GiB to build; bigger days are landed as
# several files, each from a simulator of its own seed over the same listeners (as if each
# listened on several devices).
EVENTS_PER_FILE = 3_500_000


def simulator_key(day: dt.date) -> str:
    """Where the simulator's raw file of a day lies in the lake."""
    from spotify_platform.core.lake.layout import raw_key

    return raw_key(day, "simulator", "events")


def generate_worker(spec: dict) -> dict:
    """Simulate the days and land them through the lake store: one raw file per day, or
    several for a day of more than EVENTS_PER_FILE events."""
    from spotify_platform.core.lake.layout import raw_key
    from spotify_platform.core.lake.store import Lake
    from spotify_platform.core.sources.raw import encode_jsonl_gz
    from spotify_platform.core.sources.simulator import ListeningSimulator

    first = dt.date.fromisoformat(spec["first"])
    files = math.ceil(spec["events"] / EVENTS_PER_FILE)
    accounts = ListeningSimulator.accounts_for(spec["events"] // files)
    simulators = [
        ListeningSimulator(accounts=accounts, seed=SEED + i, epoch=first - dt.timedelta(days=35))
        for i in range(files)
    ]
    lake = Lake(url=f"file://{Path(spec['lake']).absolute()}")
    counts = {}
    for d in range(spec["days"]):
        day = first + dt.timedelta(days=d)
        counts[day.isoformat()] = 0
        for i, simulator in enumerate(simulators):
            events = simulator.day(day)
            key = simulator_key(day) if files == 1 else raw_key(day, "simulator", f"events-{i}")
            lake.write_bytes(key, encode_jsonl_gz(events))
            counts[day.isoformat()] += len(events)
            del events
    return {"accounts": accounts, "events_by_day": counts}


def landed(lake: Path, first: dt.date, days: int, events: int) -> dict:
    """Raw input for the days, generated once and reused by later bench runs."""
    marker = lake / f"_generated_{first}_{days}_{events}.json"
    if marker.exists():
        return json.loads(marker.read_text())
    started = time.time()
    info = run_worker(
        "generate", {"lake": str(lake), "first": first.isoformat(), "days": days, "events": events}
    )
    info["seconds"] = time.time() - started
    lake.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(info))
    return info
