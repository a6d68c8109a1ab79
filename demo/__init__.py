"""Demo data and benchmarks: above every domain app, imported by none."""
