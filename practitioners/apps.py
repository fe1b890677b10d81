from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate, pre_migrate


def _search_columns_ready(connection) -> bool:
    from .search import index as search_index

    if search_index.LOCATION not in connection.introspection.table_names():
        return False
    with connection.cursor() as cursor:
        columns = {
            column.name
            for column in connection.introspection.get_table_description(
                cursor, search_index.LOCATION
            )
        }
    return columns.issuperset(search_index.COPIED)


def _drop_sqlite_triggers(sender, using: str = "default", **kwargs) -> None:
    from .search import index as search_index

    search_index.drop_sqlite_triggers(connections[using])


def _install_triggers(sender, using: str = "default", plan=None, **kwargs) -> None:
    from .search import index as search_index

    connection = connections[using]
    if not _search_columns_ready(connection):
        return
    search_index.install_triggers(connection)
    if connection.vendor == "sqlite" and plan:
        # Migrations ran without the triggers (see pre_migrate): catch up on what they wrote.
        search_index.recompute_all(connection)


class PractitionersConfig(AppConfig):
    name = "practitioners"
    verbose_name = "Practitioner directory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the production system checks)

        pre_migrate.connect(_drop_sqlite_triggers, sender=self)
        post_migrate.connect(_install_triggers, sender=self)
