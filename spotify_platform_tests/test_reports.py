"""The dashboard asset end to end and the page it writes in a real browser.

Expected values are recomputed from `fact_streams` and the raw warehouse tables, never by
calling the code under test."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import plotly.offline
import pytest
from dagster import (
    DagsterInstance,
    Definitions,
    define_asset_job,
    materialize,
)

from spotify_platform.core.lake.layout import dashboard_key
from spotify_platform.defs.assets.reports import KPI_TABLES, dashboard, days_to_render
from spotify_platform.defs.partitions import daily_partitions, range_tags
from spotify_platform.defs.resources.lake import LakeResource
from spotify_platform_tests.dashboard_frames import DAY, section, tiles
from spotify_platform_tests.harness import make_resources, run_days

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_short_ranges_render_every_day_long_ones_the_last():
    week = [DAY - dt.timedelta(days=i) for i in range(6, -1, -1)]
    assert days_to_render(week) == week
    assert days_to_render([DAY - dt.timedelta(days=7), *week]) == [DAY]
    assert days_to_render([DAY]) == [DAY]


def test_the_asset_depends_on_every_kpi_table():
    spec = dashboard.specs_by_key[dashboard.key]
    assert dashboard.key.path == ["lake", "dashboard"]
    assert {dep.asset_key.path[1] for dep in spec.deps} == set(KPI_TABLES)
    assert len(KPI_TABLES) == 13
    assert dashboard.partitions_def == daily_partitions
    assert spec.group_name == "reports"


# --- end to end --------------------------------------------------------------------------------

FIRST = dt.date(2026, 3, 1)
LAST = dt.date(2026, 3, 15)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict:
    resources = make_resources(tmp_path_factory.mktemp("reports"))
    assert run_days(resources, FIRST, LAST)
    return resources


@pytest.fixture(scope="module")
def dashboard_run(pipeline):
    result = materialize(
        [dashboard],
        resources=pipeline,
        partition_key=LAST.isoformat(),
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    return result


def _expected(resources: dict, day: dt.date) -> dict:
    """Headline numbers and insights recomputed from fact_streams and dim_artists."""
    warehouse = resources["warehouse"]
    facts = warehouse.read_table("fact_streams")
    facts["day"] = facts["dt"].dt.date
    streams = facts[facts["is_stream"].astype(bool)]

    def accounts(first: dt.date, last: dt.date) -> int:
        window = streams[(streams["day"] >= first) & (streams["day"] <= last)]
        return window["account_id"].nunique()

    def days(n: int) -> dt.date:
        return day - dt.timedelta(days=n)

    today = streams[streams["day"] == day]
    hours = today.groupby(today["local_hour"].astype(int)).size()
    bands = {s: sum(int(hours.get((s + i) % 24, 0)) for i in range(3)) for s in range(24)}
    best = max(bands.values())
    start = min(s for s, n in bands.items() if n == best)

    genres = warehouse.read_table("dim_artists")[["artist_id", "primary_genre"]]
    genre_of = today.merge(genres, on="artist_id", how="left")["primary_genre"].fillna("unknown")
    counts = genre_of[genre_of != "unknown"].value_counts()
    leading = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]

    top = warehouse.read_table("kpi_top_artists")
    top["day"] = top["dt"].dt.date
    recent = top[(top["day"] > days(7)) & (top["day"] <= day)]
    before = top[(top["day"] > days(14)) & (top["day"] <= days(7))]
    growth = {
        name: int(recent.loc[recent["artist_name"] == name, "streams"].sum())
        - int(before.loc[before["artist_name"] == name, "streams"].sum())
        for name in set(recent["artist_name"])
    }
    grower = min(growth, key=lambda name: (-growth[name], name))

    artist_counts = today.groupby("artist_name").size()
    top10 = sorted(artist_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    return {
        "streams": len(today),
        "streams_before": int((streams["day"] == days(1)).sum()),
        "listeners": today["account_id"].nunique(),
        "minutes": facts.loc[facts["day"] == day, "ms_played"].sum() / 60000,
        "wau": accounts(days(6), day),
        "wau_before": accounts(days(13), days(7)),
        "mau": accounts(days(29), day),
        "dau_before": accounts(days(1), days(1)),
        "mau_before": accounts(days(30), days(1)),
        "peak_band": f"{start:02d}:00–{(start + 3) % 24:02d}:00 local",
        "peak_streams": best,
        "leading": [name for name, _ in leading],
        "leading_share": sum(n for _, n in leading) / len(today),
        "grower": grower,
        "growth": growth[grower],
        "top10": [name for name, _ in top10],
    }


def test_the_asset_writes_the_dashboard_with_the_warehouse_numbers(pipeline, dashboard_run):
    lake = pipeline["lake"]
    key = dashboard_key(LAST)
    assert lake.exists(key)
    page = lake.read_bytes(key).decode("utf-8")
    want = _expected(pipeline, LAST)

    got = tiles(page)
    assert got["streams"][0] == f"{want['streams']:,}"
    change = (want["streams"] - want["streams_before"]) / want["streams_before"]
    assert got["streams"][1] == f"{change:+.1%} vs prev. day"
    assert got["listeners"][0] == f"{want['listeners']:,}"
    assert got["dau"][0] == f"{want['listeners']:,}"
    assert got["minutes"][0] == f"{want['minutes']:,.0f}"
    assert got["wau"] == (
        f"{want['wau']:,}",
        f"{(want['wau'] - want['wau_before']) / want['wau_before']:+.1%} vs 7 days earlier",
    )
    assert got["mau"] == (f"{want['mau']:,}", "n/a vs 30 days earlier")
    stickiness = want["listeners"] / want["mau"]
    stickiness_before = want["dau_before"] / want["mau_before"]
    assert got["stickiness"] == (
        f"{stickiness:.1%}",
        f"{(stickiness - stickiness_before) * 100:+.1f} pp vs prev. day",
    )
    assert got["churn"] == ("n/a", "n/a vs 30 days earlier")
    assert "Churn needs 60 days of history; 15 days so far." in page

    names = re.findall(
        r'<td class="artist_name"><bdi>(.*?)</bdi></td>', section(page, "top-artists")
    )
    assert names == [html.escape(name) for name in want["top10"]]

    assert f"Listening peaks at {want['peak_band']} time" in page
    assert f"{want['peak_streams']:,} streams" in page
    genres = [html.escape(g) for g in want["leading"]]
    assert (
        f"The leading genres are {genres[0]}, {genres[1]} and {genres[2]}, together "
        f"{want['leading_share']:.1%} of streams." in page
    )
    assert (
        f"Fastest-growing artist of the week: {html.escape(want['grower'])}, "
        f"{want['growth']:+,} streams" in page
    )
    # Ten charts (churn is an empty state), plotly.js embedded once, one script per chart.
    assert page.count('class="plotly-graph-div"') == 10
    assert page.count("<script") == 11
    assert page.count(plotly.offline.get_plotlyjs()[:40]) == 1


def test_the_asset_reports_path_size_and_insights(pipeline, dashboard_run):
    lake = pipeline["lake"]
    key = dashboard_key(LAST)
    metadata = dashboard_run.asset_materializations_for_node(dashboard.op.name)[0].metadata
    want = _expected(pipeline, LAST)
    assert metadata["path"].value == lake.uri(key)
    assert metadata["size_bytes"].value == len(lake.read_bytes(key))
    assert metadata["peak_local_hour_band"].value == want["peak_band"]
    assert metadata["leading_genres"].value == ", ".join(want["leading"])
    assert metadata["leading_genres_share"].value == pytest.approx(want["leading_share"])
    assert metadata["fastest_growing_artist"].value == want["grower"]
    assert metadata["fastest_growing_increase"].value == want["growth"]
    assert metadata["history_days"].value == 15
    assert metadata["insights"].value.count("\n- ") == 5


def _run_range(resources: dict, first: dt.date, last: dt.date) -> None:
    job = define_asset_job("dashboards", selection=[dashboard.key])
    defs = Definitions(assets=[dashboard], jobs=[job], resources=resources)
    result = defs.resolve_job_def("dashboards").execute_in_process(
        instance=DagsterInstance.ephemeral(),
        tags=range_tags(first, last),
    )
    assert result.success


def test_a_range_run_renders_each_day_of_a_week_and_only_the_last_of_longer(pipeline, tmp_path):
    lake = LakeResource(url=f"file://{tmp_path}/lake")
    resources = {**pipeline, "lake": lake}
    _run_range(resources, LAST - dt.timedelta(days=2), LAST)
    assert lake.list_keys("reports/") == [
        dashboard_key(LAST - dt.timedelta(days=i)) for i in (2, 1, 0)
    ]
    lake.delete_prefix("reports/")
    _run_range(resources, FIRST, FIRST + dt.timedelta(days=7))
    assert lake.list_keys("reports/") == [dashboard_key(FIRST + dt.timedelta(days=7))]


# --- in a real browser -------------------------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--virtual-time-budget=20000",
    "--enable-logging=stderr",
    "--v=0",
    # Hermetic: nothing resolves, so even the browser's own background calls stay local.
    "--host-resolver-rules=MAP * ~NOTFOUND",
]

# Injected before anything else on the page: records errors, CSP violations and every request
# the page made, on the <html> element where --dump-dom shows them.
PROBE = """<script>(function(){
var found=[],root=document.documentElement;
function note(kind,text){found.push(kind+': '+text);root.setAttribute('data-probe',
  JSON.stringify(found));}
root.setAttribute('data-probe','[]');
window.addEventListener('error',function(e){note('error',e.message||
  String(e.target&&(e.target.src||e.target.href)));},true);
window.addEventListener('unhandledrejection',function(e){note('rejection',String(e.reason));});
document.addEventListener('securitypolicyviolation',function(e){note('csp',e.blockedURI+' '+
  e.violatedDirective);});
var original=console.error;console.error=function(){note('console.error',
  Array.prototype.join.call(arguments,' '));return original.apply(console,arguments);};
window.addEventListener('load',function(){setTimeout(function(){
  performance.getEntriesByType('resource').forEach(function(r){
    if(!/^(data|blob|file):/.test(r.name)){note('request',r.name);}});
  root.setAttribute('data-probe-done','1');},500);});
})();</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    message = "no chromium on PATH (apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; under CI=true the browser test must run, not skip")
    pytest.skip(message)


def _network_off() -> list[str]:
    """`unshare --net` where the system allows it: the browser then runs with no network at
    all (only a downed loopback), not merely without DNS."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--net", "true"], capture_output=True).returncode == 0:
        return [unshare, "--net", "--"]
    return []


def _browse(chromium: str, page: Path, profile: Path, *extra: str) -> tuple[str, str]:
    done = subprocess.run(
        [
            *_network_off(),
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def _probe(dom: str) -> list[str]:
    opening = re.search(r"<html[^>]*>", dom)
    assert opening and 'data-probe-done="1"' in opening.group(0), "the page never finished loading"
    found = re.search(r'data-probe="([^"]*)"', opening.group(0))
    return json.loads(html.unescape(found.group(1)))


def _console_problems(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if ":CONSOLE" in line
        and any(word in line.lower() for word in ("uncaught", "error", "refused", "failed"))
    ]


class _Charts(HTMLParser):
    """Per plotly div of a rendered DOM: whether an <svg class="main-svg"> was drawn inside it."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str | None] = []
        self.drawn: dict[str, bool] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        if tag == "svg" and "main-svg" in classes:
            for chart in self.stack:
                if chart is not None:
                    self.drawn[chart] = True
        if tag in self.VOID:
            return
        chart = None
        if tag == "div" and "plotly-graph-div" in classes:
            chart = values.get("id") or f"chart-{len(self.drawn)}"
            self.drawn.setdefault(chart, False)
        self.stack.append(chart)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self.stack:
            self.stack.pop()


class _Fetches(HTMLParser):
    """Every URL in a page's markup that a browser would load by itself."""

    ATTRIBUTES = {"src", "href", "srcset", "data", "poster", "action", "background"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_style = tag == "style"
        for name, value in attrs:
            if value and (name in self.ATTRIBUTES and (tag != "a" or name != "href")):
                self.urls.append(value)
            if name == "style" and value and "url(" in value:
                self.urls.append(value)

    def handle_data(self, data: str) -> None:
        if self.in_style and ("url(" in data or "@import" in data):
            self.urls.append(data)

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False


def test_browser_probe_catches_errors_and_requests(tmp_path):
    """The detectors below must see a broken page, or their silence means nothing."""
    chromium = _chromium()
    bad = tmp_path / "bad.html"
    bad.write_text(
        f"<!DOCTYPE html><html><head>{PROBE}</head><body>"
        '<img src="https://example.com/pixel.png">'
        "<script>null.boom</script></body></html>",
        encoding="utf-8",
    )
    dom, stderr = _browse(chromium, bad, tmp_path / "profile", "--dump-dom")
    found = _probe(dom)
    assert any(f.startswith("error: ") and "boom" in f for f in found), found
    assert any("example.com" in f for f in found), found
    assert _console_problems(stderr)


def test_the_dashboard_draws_in_a_browser_without_errors_or_requests(
    pipeline, dashboard_run, tmp_path
):
    chromium = _chromium()
    lake = pipeline["lake"]
    source = Path(lake.uri(dashboard_key(LAST)))
    page = source.read_text(encoding="utf-8")

    fetches = _Fetches()
    fetches.feed(page)
    assert fetches.urls == []
    assert '<meta http-equiv="Content-Security-Policy"' in page

    probed = tmp_path / "probed.html"
    probed.write_text(
        page.replace('<meta charset="utf-8">', f'<meta charset="utf-8">{PROBE}', 1),
        encoding="utf-8",
    )
    dom, stderr = _browse(chromium, probed, tmp_path / "profile", "--dump-dom")
    assert _probe(dom) == []
    assert _console_problems(stderr) == []
    charts = _Charts()
    charts.feed(dom)
    assert len(charts.drawn) == page.count('class="plotly-graph-div"') == 10
    assert all(charts.drawn.values()), charts.drawn

    artifacts = REPO_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "dashboard.png"
    shot.unlink(missing_ok=True)
    _browse(
        chromium, source, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,3000"
    )
    image = shot.read_bytes()
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(image[16:20], "big"), int.from_bytes(image[20:24], "big")
    assert (width, height) == (1400, 3000)
    assert len(image) > 50_000  # a blank page is a few kilobytes


def test_the_dashboard_reads_the_warehouse_on_mariadb(mysql_url, tmp_path):
    """MySQL returns dates and numbers as other Python types than SQLite: the page must not care."""
    resources = make_resources(tmp_path, warehouse_url=mysql_url)
    last = FIRST + dt.timedelta(days=2)
    assert run_days(resources, FIRST, last)
    result = materialize(
        [dashboard],
        resources=resources,
        partition_key=last.isoformat(),
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    page = resources["lake"].read_bytes(dashboard_key(last)).decode("utf-8")
    want = _expected(resources, last)
    assert tiles(page)["streams"][0] == f"{want['streams']:,}"
    assert tiles(page)["wau"][0] == f"{want['wau']:,}"
    assert "Churn needs 60 days of history; 3 days so far." in page
    assert page.count('class="plotly-graph-div"') == 10
