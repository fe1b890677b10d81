"""/fhir/ and /hsds/ (included from directory/urls.py)."""

from django.urls import path

from . import fhir_views

# Named at the top level (not in an app namespace) so routers.REPLICA_VIEWS can list them.
fhir_patterns = [
    path("metadata", fhir_views.metadata, name="fhir-metadata"),
    path("<str:kind>", fhir_views.search, name="fhir-search"),
    path("<str:kind>/<str:resource_id>", fhir_views.read, name="fhir-read"),
]
