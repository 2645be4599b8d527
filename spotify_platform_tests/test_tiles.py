"""The headline tiles: values and changes against the previous day, week and month, and churn
only once its 60-day window lies inside the history."""

import datetime as dt

from spotify_platform.core.dashboard.page import render_dashboard
from spotify_platform_tests.dashboard_frames import DAY, ago, daily_rows, data_for, section, tiles


def test_churn_shows_an_empty_state_until_sixty_days_of_history():
    churn = [
        {"dt": ago(i), "base_accounts": 0, "churned_accounts": 0, "churn_rate": None}
        for i in range(10)
    ]
    page = render_dashboard(data_for(daily_streams=daily_rows(10), churn=churn), DAY)
    assert "Churn needs 60 days of history; 10 days so far." in section(page, "churn")
    assert 'id="chart-churn"' not in page
    assert tiles(page)["churn"] == ("n/a", "n/a vs 30 days earlier")


def test_churn_chart_and_tile_once_the_window_is_full():
    churn = [
        {"dt": ago(i), "base_accounts": 100, "churned_accounts": 10, "churn_rate": 0.10}
        for i in range(31)
    ]
    churn[0].update(churned_accounts=15, churn_rate=0.15)
    young = data_for(
        daily_streams=daily_rows(31), churn=churn, first_stream_day=DAY - dt.timedelta(days=74)
    )
    page = render_dashboard(young, DAY)
    assert 'id="chart-churn"' in page
    # 75 days of history: D-30 has only 45 days behind it, too few for its own churn window.
    assert tiles(page)["churn"] == ("15.0%", "n/a vs 30 days earlier")
    old = data_for(
        daily_streams=daily_rows(31), churn=churn, first_stream_day=DAY - dt.timedelta(days=400)
    )
    assert tiles(render_dashboard(old, DAY))["churn"] == ("15.0%", "+5.0 pp vs 30 days earlier")


def test_tiles_compare_with_the_previous_day_week_and_month():
    daily = daily_rows(2)
    daily[0].update(streams=1100, listeners=44, minutes_played=1234.4)
    daily[1].update(streams=1000, listeners=40, minutes_played=1000.0)
    users = [
        {"dt": ago(0), "dau": 44, "wau": 150, "mau": 176, "stickiness": 0.25},
        {"dt": ago(1), "dau": 40, "wau": 149, "mau": 200, "stickiness": 0.20},
        {"dt": ago(7), "dau": 30, "wau": 200, "mau": 190, "stickiness": 0.15},
    ]
    got = tiles(render_dashboard(data_for(daily_streams=daily, active_users=users), DAY))
    assert got["streams"] == ("1,100", "+10.0% vs prev. day")
    assert got["listeners"] == ("44", "+10.0% vs prev. day")
    assert got["minutes"] == ("1,234", "+23.4% vs prev. day")
    assert got["dau"] == ("44", "+10.0% vs prev. day")
    assert got["wau"] == ("150", "-25.0% vs 7 days earlier")
    assert got["mau"] == ("176", "n/a vs 30 days earlier")
    assert got["stickiness"] == ("25.0%", "+5.0 pp vs prev. day")
