"""/fhir/ and /hsds/ (included from directory/urls.py)."""

from django.urls import path

from . import fhir_views, hsds_views

# Named at the top level (not in an app namespace) so routers.REPLICA_VIEWS can list them.
fhir_patterns = [
    path("metadata", fhir_views.metadata, name="fhir-metadata"),
    path("<str:kind>", fhir_views.search, name="fhir-search"),
    path("<str:kind>/<str:resource_id>", fhir_views.read, name="fhir-read"),
]

hsds_patterns = [
    path("", hsds_views.index, name="hsds-index"),
    path("organizations", hsds_views.organizations, name="hsds-organizations"),
    path("organizations/<str:hsds_id>", hsds_views.organization, name="hsds-organization"),
    path("services", hsds_views.services, name="hsds-services"),
    path("services/<str:hsds_id>", hsds_views.service, name="hsds-service"),
    path("locations", hsds_views.locations, name="hsds-locations"),
    path("locations/<str:hsds_id>", hsds_views.location, name="hsds-location"),
]
