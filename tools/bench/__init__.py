"""`make bench`: the platform's day, scaling, backfill and KPI figures against the lean path,
the seed-style baseline and the floor; and a day staged by the Spark engine against the pandas
engine (`spark`).

Every measured path runs in a worker process of its own (`protocol`) on the same simulated
input and the same MariaDB server, started once the machine has settled from the one before
(`settle`). Each worker reports its own peak RSS, read from the
kernel's high-water mark, and a sampler thread attributes RSS to stages (`measure`). The
platform path (`platform_path`) is the real code: the Dagster job run by
`spotify_platform.defs.runs.run_range` with the resources of the code location. Against it:

- the lean path (`lean_path`), the target of issue 19: `read_json(lines=True)` per raw file,
  `concat`, rows with a track name, a stream flag, `to_sql(chunksize=10000)` into a keyless
  TEXT table and the headline KPIs in pandas; its streams must be the platform's;
- the seed-style baseline (`seed_path`): the same reader, the platform's clean redone in
  pandas, `to_sql` into the keyed `fact_streams` and every KPI table, as the portfolio
  pipeline this platform grew from did it;
- the floor (`floor`): the bare Arrow parse of the raw files and the bare `LOAD DATA` of the
  day's sorted fact rows, what no path can go below.

    python -m tools.bench                      # all sections, default sizes
    python -m tools.bench --only day --events 1000000
    python -m tools.bench --only scaling --scaling 1e6,3e6,1e7
    python -m tools.bench --full               # the backfill with 1M events a day
    python -m tools.bench --only spark --spark-sizes 1e6,1e7   # pandas engine vs Spark

Results print as tables and land as JSON in `.bench/` (one file per run plus `latest.json`).
"""
