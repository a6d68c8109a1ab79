"""The project's WSGI application with one change: its URLs are demo/bench/bare_urls.py, a view
that does nothing. Served by gunicorn with the same settings as traceability.wsgi, it is the
floor a recorded treatment is measured against (demo/bench/recording.py)."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "traceability.settings")
application = get_wsgi_application()
settings.ROOT_URLCONF = "demo.bench.bare_urls"
