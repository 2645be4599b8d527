"""The Spark engine (`PROCESSING_ENGINE=spark`): the job Dagster starts through Pipes, its
driver and what its tasks run. Imports pyspark; never Dagster (only `dagster_pipes`)."""
