"""Running Spark in tests: whether Java is there, and one small local session per module.

Without Java the Spark tests skip on a developer machine and fail under CI (``CI=true``), as
the MariaDB tests do: CI installs Java, so a skip there would hide a broken engine.
"""

import importlib.util
import os
import shutil
import sys

import pytest


def _missing(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; under CI=true the Spark tests must run, not skip")
    pytest.skip(message)


def require_spark() -> None:
    """Java and pyspark, or a skip (a failure under CI) saying which is missing."""
    if not shutil.which("java"):
        _missing("Java 17 is not installed (`java` not on PATH): the Spark engine cannot start")
    if importlib.util.find_spec("pyspark") is None:
        _missing("pyspark is not installed (pip install -e '.[spark]')")


def local_session():
    """A `local[2]` session small enough for the test machine; the caller stops it."""
    require_spark()
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        SparkSession.builder.master("local[2]")
        .appName("spotify-platform-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.driver.memory", "1g")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.log.level", "WARN")
        .getOrCreate()
    )
