from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate


def _reinstall_search_triggers(sender, using: str = "default", **kwargs) -> None:
    # SQLite drops a table's triggers when a later migration rebuilds the table; put them back.
    from . import search_index

    connection = connections[using]
    if search_index.LOCATION not in connection.introspection.table_names():
        return
    with connection.cursor() as cursor:
        columns = {
            column.name
            for column in connection.introspection.get_table_description(
                cursor, search_index.LOCATION
            )
        }
    if columns.issuperset(search_index.COPIED):
        search_index.install_triggers(connection)


class PractitionersConfig(AppConfig):
    name = "practitioners"
    verbose_name = "Practitioner directory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_reinstall_search_triggers, sender=self)
