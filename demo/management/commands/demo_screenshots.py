"""Take the README's screenshots of the clinic pages on the demo data, in Debian's Chromium.

    python3 dev.py run                        # in one terminal: the demo on :8000
    .venv/bin/python manage.py demo_screenshots --out docs/screenshots

Each demo user is signed in by a session made here (no password is needed or changed), then the
home page, the chair screen with a scanned vial and a lot's trace graph are saved as PNG at a
tablet's 1024x768. Playwright is a development dependency: it is imported only when this runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from demo.data import USERS
from lots.models import Lot, LotStatus
from providers.models import Role
from treatments.models import Patient


def _session_for(user: Any) -> str:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return str(session.session_key)


class Command(BaseCommand):
    help = "Save screenshots of the home page, the chair screen and a lot's trace graph."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--base-url", default=settings.SITE_URL.rstrip("/"))
        parser.add_argument("--out", default="docs/screenshots")

    def handle(self, *args: Any, base_url: str, out: str, **options: Any) -> None:
        from playwright.sync_api import sync_playwright

        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            raise CommandError("Chromium not found: apt-get install chromium")
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        users = {role: username for role, username, *_ in USERS}
        user_model = get_user_model()
        clinician = user_model.objects.get(username=users[Role.CLINICIAN])
        quality = user_model.objects.get(username=users[Role.QUALITY_MANAGER])
        patient = Patient.objects.filter(clinic__memberships__user=clinician).first()
        lot = (
            Lot.objects.annotate(uses=Count("treatment_lines"))
            .filter(status=LotStatus.RELEASED, product__gtin__isnull=False)
            .order_by("-uses", "lot_number")
            .select_related("product")
            .first()
        )
        if patient is None or lot is None:
            raise CommandError("No demo data: run `manage.py seed_demo` first")
        scan = f"(01){lot.product.gtin}(17){lot.expires_on:%y%m%d}(10){lot.lot_number}"
        host = base_url.split("://", 1)[-1].split("/", 1)[0].split(":")[0]

        # Sessions first: Django refuses database work while Playwright's event loop runs.
        shots = [
            ("home", _session_for(clinician), "/", None),
            ("chair", _session_for(clinician), f"/treatments/new/?patient={patient.pk}", scan),
            ("lot-trace", _session_for(quality), f"/lots/{lot.pk}/", None),
        ]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                for name, session, path, action in shots:
                    context = browser.new_context(
                        viewport={"width": 1024, "height": 768}, locale="en-US"
                    )
                    context.add_cookies(
                        [
                            {
                                "name": "sessionid",
                                "value": session,
                                "domain": host,
                                "path": "/",
                            }
                        ]
                    )
                    page = context.new_page()
                    page.goto(base_url + path)
                    if action is not None:
                        field = page.get_by_label("Scan", exact=False).first
                        field.fill(action)
                        field.press("Enter")
                        page.wait_for_timeout(800)
                    if name == "lot-trace" and page.locator("svg.graph").count():
                        page.locator("svg.graph").first.scroll_into_view_if_needed()
                    target = folder / f"{name}.png"
                    page.screenshot(path=str(target), full_page=name != "lot-trace")
                    if name == "lot-trace" and page.locator("svg.graph").count():
                        page.locator("svg.graph").first.screenshot(path=str(target))
                    context.close()
                    self.stdout.write(f"saved {target}")
            finally:
                browser.close()
