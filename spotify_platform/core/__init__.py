"""The platform's pure core: parsers, contracts, KPI maths and the dashboard, without Dagster.

Nothing under `core` imports `dagster` or `spotify_platform.defs`; a test holds it to that.
"""
