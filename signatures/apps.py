from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class SignaturesConfig(AppConfig):
    name = "signatures"
    verbose_name = "Electronic signatures"

    def ready(self) -> None:
        # Each app that owns signed records says what its signatures sign in its `signing`
        # module (as the admin finds `admin` modules): this app imports none of them by name,
        # so the arrow of imports keeps pointing down.
        autodiscover_modules("signing")
