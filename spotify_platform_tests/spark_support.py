"""Running Spark in tests: whether Java is there, and one small local session per module.

Without Java the Spark tests skip on a developer machine and fail under CI (``CI=true``), as
the MariaDB tests do: CI installs Java, so a skip there would hide a broken engine.
"""

import os
import shutil
import sys

import pytest


def require_java() -> None:
    if shutil.which("java"):
        return
    message = "Java 17 is not installed (`java` not on PATH): the Spark engine cannot start"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; under CI=true the Spark tests must run, not skip")
    pytest.skip(message)


def local_session():
    """A `local[2]` session small enough for the test machine; the caller stops it."""
    require_java()
    pyspark_sql = pytest.importorskip("pyspark.sql")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        pyspark_sql.SparkSession.builder.master("local[2]")
        .appName("spotify-platform-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.driver.memory", "1g")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.log.level", "WARN")
        .getOrCreate()
    )
