"""What every part of the bench agrees on: the simulated input, the targets, the units."""

import datetime as dt
from pathlib import Path

BENCH_DIR = Path(".bench")
DAY = dt.date(2026, 3, 10)
SEED = 7
HMAC_KEY = "bench-key-not-secret"
DEFAULT_MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306/"
MIB = 1024 * 1024
GIB = 1024 * MIB

# Raw to every KPI, check and the dashboard, against the lean path (issue 19) and the seed-style
# baseline; ratios from one run.
TARGET_LEAN_SPEEDUP = 3.0
GOAL_LEAN_SPEEDUP = 5.0
TARGET_SEED_SPEEDUP = 5.0
TARGET_LOAD_ROWS_PER_S = 100_000
# Peak RSS flat in the size of the day: a 10M-event day within it, and the time per event at
# the largest size within this factor of the smallest's.
TARGET_PEAK_RSS = 2 * GIB
TARGET_LINEAR_FACTOR = 1.25
TARGET_BACKFILL_SPEEDUP = 3.0
TARGET_KPI_SECONDS = 2.0
TARGET_HISTORY_SECONDS = 60.0
QUIET_INSTANCE = {"telemetry": {"enabled": False}}
