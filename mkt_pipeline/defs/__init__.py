"""Everything Dagster: assets, checks, jobs, schedules, sensors, resources and partitions."""
