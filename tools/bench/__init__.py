"""`make bench`: the platform's day, backfill and KPI figures against the seed-style path.

Every measured path runs in a worker process of its own (`protocol`) on the same simulated
input and the same MariaDB server. Each worker reports its own peak RSS, read from the
kernel's high-water mark, and a sampler thread attributes RSS to stages (`measure`). The
platform path (`platform_path`) is the real code: the Dagster job run by
`spotify_platform.defs.runs.run_range` with the resources of the code location; the
seed-style path (`seed_path`) is `read_json(lines=True)` with pandas' default engine, a pandas
clean, `to_sql(chunksize=10000)` and KPIs in pandas, as the portfolio pipeline this platform
grew from did it.

    python -m tools.bench                      # all sections, default sizes
    python -m tools.bench --only day --events 1000000
    python -m tools.bench --full               # the backfill with 1M events a day

Results print as tables and land as JSON in `.bench/` (one file per run plus `latest.json`).
"""
