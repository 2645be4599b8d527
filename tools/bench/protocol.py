"""Workers: each measured path runs in a fresh interpreter of its own.

`run_worker` waits for the machine to settle (`settle`), then starts
`python -m tools.bench.protocol KIND SPEC OUT`; the worker runs the function WORKERS names
for KIND on the JSON spec and writes its result, with its own peak RSS and that of the
processes it started, as JSON to OUT. The worker imports nothing of the bench's
orchestration, so its peak is its path's.
"""

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.bench.measure import ChildPeaks, peak_rss
from tools.bench.settle import settle

# Named rather than imported, so that a worker imports only what its own path needs.
WORKERS = {
    "generate": "tools.bench.generate:generate_worker",
    "seed": "tools.bench.seed_path:seed_worker",
    "lean": "tools.bench.lean_path:lean_worker",
    "floor": "tools.bench.floor:floor_worker",
    "platform": "tools.bench.platform_path:platform_worker",
    "kpi": "tools.bench.kpi_timing:kpi_worker",
    "history": "tools.bench.history:history_worker",
    "stage": "tools.bench.spark:stage_worker",
}
REPOSITORY = Path(__file__).resolve().parents[2]


def run_worker(kind: str, spec: dict) -> dict:
    """Run one worker in a fresh interpreter, once the machine has settled, and return its
    result."""
    settled = settle()
    with tempfile.NamedTemporaryFile("w+", suffix=".json", delete=False) as handle:
        out = handle.name
    # The worker finds `tools` wherever the bench was started from.
    path = os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "tools.bench.protocol", kind, json.dumps(spec), out]
    started = time.time()
    process = subprocess.run(command, env={**os.environ, "PYTHONPATH": path})
    wall = time.time() - started
    try:
        if process.returncode != 0:
            raise RuntimeError(f"bench worker {kind} failed with exit code {process.returncode}")
        result = json.loads(Path(out).read_text())
    finally:
        Path(out).unlink(missing_ok=True)
    result["process_wall_seconds"] = wall
    result["settled"] = settled
    return result


def serve(kind: str, spec: str, out: str) -> None:
    """The worker's side: run the path, then report its result and peaks."""
    module, name = WORKERS[kind].split(":")
    work = getattr(importlib.import_module(module), name)
    with ChildPeaks() as children:
        result = work(json.loads(spec))
    result["own_peak_rss"] = peak_rss()
    result["children_peak_rss"] = children.peak
    # The tree's memory sampled at one instant (this process and its children together);
    # never less than this process's own high-water mark, which catches what sampling missed.
    result["process_peak_rss"] = max(result["own_peak_rss"], children.tree_peak)
    Path(out).write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    serve(*sys.argv[1:])
