"""Benchmark sections for `manage.py benchmark_scale`: each measures one path beside its floor."""
