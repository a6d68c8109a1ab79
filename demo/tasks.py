"""Tasks of the benchmark: the floor that recall notice delivery is measured against."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="demo.bench_noop")
def bench_noop() -> None:
    """Nothing: what one task costs the broker and the worker alone, with the project's Celery
    settings (late acknowledgement, prefetch of one)."""
