"""spotify_platform: Spotify listening data to lake, warehouse and KPIs, as Dagster assets.

`core` is plain Python over pandas, Arrow and SQLAlchemy; `defs` is the Dagster layer on top of
it; `definitions.py` gathers the code location. docs/architecture.md walks through them.
"""
