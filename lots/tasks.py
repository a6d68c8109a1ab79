"""Scheduled checks on lots and certificates."""

from __future__ import annotations

from celery import shared_task

from recalls.expiry import expiry_watch as expiry_watch_run


@shared_task(name="lots.expiry_watch", soft_time_limit=240, time_limit=300)
def expiry_watch() -> dict[str, int]:
    """Beat, daily: warn clinics of stock expiring within 90/60/30 days and the quality managers
    of manufacturer certificates expiring within 60 days, each warning once per threshold."""
    report = expiry_watch_run()
    return {
        "stock_warnings": report.stock_warnings,
        "certificate_warnings": report.certificate_warnings,
        "unsent": len(report.unsent),
    }
