"""The layers hold: the core never reaches into Dagster, no module borrows another's private
names, and no module outgrows what a reader takes in at once."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import spotify_platform
from spotify_platform_tests.spark_support import require_spark

PACKAGE = Path(spotify_platform.__file__).parent
LINE_LIMIT = 500
# The simulator is a model of listening behaviour, one cohesive generator.
LONG_ALLOWED = {"core/sources/simulator.py"}


def _modules(folder: Path) -> list[str]:
    names = []
    for path in sorted(folder.rglob("*.py")):
        # Alembic's environment and the revision generator run only under Alembic.
        if "versions" in path.parts or path.name in ("env.py", "__main__.py"):
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _dagster_loaded_by(modules: list[str], allowed: str = "") -> list[str]:
    """The Dagster modules (and modules of the Dagster layer) that importing `modules` in a
    fresh interpreter loads, `allowed` aside."""
    probe = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m != " + repr(allowed) + " and ("
        "m.split('.')[0] == 'dagster' or m.startswith('dagster_')"
        " or m.startswith('spotify_platform.defs')))))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(loaded.splitlines()[-1])


def test_the_core_imports_neither_dagster_nor_the_dagster_layer() -> None:
    core = _modules(PACKAGE / "core")
    assert len(core) > 20
    assert _dagster_loaded_by(core) == []


def test_no_module_imports_a_private_name_of_another() -> None:
    borrowed = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "spotify_platform"
            ):
                borrowed += [
                    f"{path.relative_to(PACKAGE)}: {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_")
                ]
    assert borrowed == []


def test_modules_stay_small() -> None:
    long = {
        str(path.relative_to(PACKAGE)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if "versions" not in path.parts
        and (lines := len(path.read_text().splitlines())) > LINE_LIMIT
        and str(path.relative_to(PACKAGE)) not in LONG_ALLOWED
    }
    assert long == {}


def test_dagsters_internals_are_imported_by_the_event_storage_alone() -> None:
    """Dagster offers no public base for an event log storage; every other use of Dagster
    goes through its public API (the README says why, and what it saves)."""
    private = set()
    for path in sorted([*PACKAGE.rglob("*.py"), *(PACKAGE.parent / "tools").rglob("*.py")]):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            if any(name.startswith("dagster._") for name in names):
                private.add(str(path.relative_to(PACKAGE.parent)))
    assert private == {"spotify_platform/defs/event_storage.py"}


def test_the_spark_job_reaches_dagster_through_pipes_alone() -> None:
    """The Spark job runs where Dagster is not installed (EMR Serverless, Glue): it may use
    `dagster_pipes` to report back, never Dagster or the Dagster layer; and the core, which
    the pandas engine runs, never needs pyspark."""
    require_spark()  # its modules import pyspark
    spark = _modules(PACKAGE / "spark")
    assert "spotify_platform.spark.job" in spark
    assert _dagster_loaded_by(spark, allowed="dagster_pipes") == []
    for path in sorted((PACKAGE / "core").rglob("*.py")):
        assert "pyspark" not in path.read_text(), path
