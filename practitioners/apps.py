from django.apps import AppConfig


class PractitionersConfig(AppConfig):
    name = "practitioners"
    verbose_name = "Practitioner directory"
    default_auto_field = "django.db.models.BigAutoField"
