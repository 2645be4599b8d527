"""docs/ is the reference: every table, column and view is defined there, its links resolve, and
nothing in the repository points at documents outside it."""

import re
import subprocess
from pathlib import Path

from spotify_platform.core.contracts.tables import TABLES, VIEWS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _text(*names: str) -> str:
    return "\n".join((DOCS / name).read_text() for name in names)


def test_every_table_and_column_is_defined_in_the_docs() -> None:
    reference = _text("kpis.md", "warehouse.md")
    missing = []
    for name, table in TABLES.items():
        if f"`{name}`" not in reference and f"## {name}" not in reference:
            missing.append(name)
        section = reference
        if name.startswith("kpi_") and f"## {name}" in reference:
            section = reference.split(f"## {name}", 1)[1].split("\n## ", 1)[0]
        missing += [f"{name}.{c.name}" for c in table.columns if f"`{c.name}`" not in section]
    assert missing == []


def test_every_bi_view_is_described() -> None:
    reference = _text("warehouse.md")
    assert [v for v in VIEWS if f"`{v}`" not in reference] == []


def test_links_between_the_docs_resolve() -> None:
    broken = []
    for page in sorted(DOCS.glob("*.md")):
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text()):
            if not (page.parent / target).is_file():
                broken.append(f"{page.name} -> {target}")
    assert broken == []


def test_nothing_in_the_repository_cites_documents_outside_it() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    pattern = re.compile(r"DESIGN(\.md| ?§)|FIELD_NOTES|\.\./shared/")
    citing = [
        name
        for name in files
        if name != "spotify_platform_tests/test_docs.py"
        and (ROOT / name).is_file()
        and pattern.search((ROOT / name).read_text(errors="ignore"))
    ]
    assert citing == []


def test_every_asset_names_the_docs_section_that_defines_it() -> None:
    from spotify_platform.definitions import defs

    pages = {}
    for spec in defs.resolve_all_asset_specs():
        target = str(spec.metadata["definition"])
        page, _, anchor = target.partition("#")
        text = (ROOT / page).read_text()
        headings = {
            re.sub(r"[^a-z0-9_ -]", "", line.lstrip("# ").lower()).replace(" ", "-")
            for line in text.splitlines()
            if line.startswith("#")
        }
        pages[spec.key.to_user_string()] = not anchor or anchor in headings
    assert len(pages) > 20
    assert [key for key, found in pages.items() if not found] == []


def test_the_tests_the_readme_names_exist_where_it_says() -> None:
    defined = {}
    for path in (ROOT / "spotify_platform_tests").rglob("test_*.py"):
        for name in re.findall(r"^def (test_\w+)", path.read_text(), re.M):
            defined.setdefault(path.name, set()).add(name)
    readme = (ROOT / "README.md").read_text()
    named = re.findall(r"`(test_\w+\.py)(?:::(test_\w+))?`", readme)
    assert len(named) > 20
    wrong = [
        f"{file}::{test}" if test else file
        for file, test in named
        if file not in defined or (test and test not in defined[file])
    ]
    assert wrong == []


def test_the_code_map_names_every_module_of_the_core() -> None:
    text = _text("architecture.md")
    core = ROOT / "spotify_platform" / "core"
    modules = [
        path.name
        for path in core.rglob("*.py")
        if path.name != "__init__.py" and "migrations" not in path.parts
    ]
    assert len(modules) > 30
    assert [name for name in modules if name not in text] == []
