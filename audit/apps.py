from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _install_chain(**kwargs: Any) -> None:
    from audit.chain import chain_install

    chain_install()


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit"

    def ready(self) -> None:
        # After every migrate: event tables of models tracked since get their chain trigger.
        post_migrate.connect(_install_chain, sender=self, dispatch_uid="audit_chain_install")
