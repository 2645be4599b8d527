"""The daily dashboard (`reports/dashboard/` in the lake) as one self-contained HTML page.

plotly.js is embedded once and a Content-Security-Policy forbids every request, so the file
opens the same from S3, a mail attachment or an offline laptop, and leaks nothing about who
opened it. The markup is in `templates/`, rendered by jinja2 with autoescaping: every name from
the data is escaped text.
"""

from __future__ import annotations

import datetime as dt
import html

import jinja2
import plotly.offline
from markupsafe import Markup

from spotify_platform.core.dashboard.cards import Figures, daily_cards, history_cards
from spotify_platform.core.dashboard.charts import FONT
from spotify_platform.core.dashboard.data import DashboardData, history_days, value_at
from spotify_platform.core.dashboard.insights import insight_sentences, insights
from spotify_platform.core.dashboard.tiles import headline_tiles

# The page may run its own inline code and nothing else: no fetch, no font, no image from afar.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:"
)


@jinja2.pass_eval_context
def _escaped(context: jinja2.nodes.EvalContext, value: object) -> object:
    """Autoescaping as `html.escape` writes it (&quot; and &#x27;, where markupsafe writes &#34;
    and &#39;): a browser reads both alike, and names keep the bytes they have in pages written
    before the template and in the tests, which compare with `html.escape`."""
    if not context.autoescape or hasattr(value, "__html__"):
        return value
    return Markup(html.escape(str(value), quote=True))


ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("spotify_platform.core.dashboard", "templates"),
    # The style sheet goes into <style>, where no entity is decoded: escaped, its quoted font
    # names would break.
    autoescape=jinja2.select_autoescape(
        enabled_extensions=("html",), disabled_extensions=("css",), default=True
    ),
    finalize=_escaped,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


def render_dashboard(data: DashboardData, day: dt.date) -> str:
    """The dashboard of `day` as one self-contained HTML page (UTF-8 text).

    Every name from the data is HTML-escaped text; plotly.js is embedded once, only if a chart
    is drawn, and nothing is loaded from anywhere else.
    """
    if day != data.day:
        raise ValueError(f"data is for {data.day}, not {day}")
    iso = day.isoformat()
    days_of_history = history_days(data)
    figures = Figures()
    cards = daily_cards(data, days_of_history, figures)
    if data.history is not None:
        cards += history_cards(data.history, figures)
    banner = ""
    streams_today = value_at(data.daily_streams, "streams", day)
    if streams_today is None:
        banner = f"No KPIs for {iso}: the pipeline has not processed this day."
    elif streams_today == 0:
        banner = f"No streams on {iso}."
    return ENVIRONMENT.get_template("dashboard.html").render(
        day=iso,
        csp=CSP,
        font=FONT,
        plotly_js=Markup(plotly.offline.get_plotlyjs()) if figures.count else None,
        banner=banner,
        tiles=headline_tiles(data, days_of_history),
        sentences=insight_sentences(insights(data)),
        cards=cards,
    )
