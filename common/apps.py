from django.apps import AppConfig
from django.core.signals import request_finished


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Common"

    def ready(self) -> None:
        from common import request_id

        request_finished.connect(request_id.request_finished, dispatch_uid="common.request_id")
