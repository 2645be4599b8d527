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

TARGET_DAY_SPEEDUP = 5.0
TARGET_LOAD_ROWS_PER_S = 100_000
TARGET_PEAK_RSS = 1.5 * GIB
TARGET_BACKFILL_SPEEDUP = 3.0
TARGET_KPI_SECONDS = 2.0
TARGET_HISTORY_SECONDS = 60.0
QUIET_INSTANCE = {"telemetry": {"enabled": False}}
