from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from practitioners import api, health, landing, sitemaps
from practitioners.admin_site import StaffAdminSite
from practitioners.feeds.urls import fhir_patterns, hsds_patterns

# The admin asks for a second factor when settings.ADMIN_REQUIRE_OTP says so (django-otp).
admin.site.__class__ = StaffAdminSite

urlpatterns = [
    path("", include("practitioners.urls")),
    path("accounts/", include("allauth.urls")),
    path("api/practitioners/", api.PractitionerList.as_view(), name="api-practitioners"),
    path("api/conditions/", api.ConditionSuggestions.as_view(), name="api-conditions"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("fhir/", include(fhir_patterns)),
    path("hsds/", include(hsds_patterns)),
    path("robots.txt", sitemaps.robots_txt, name="robots"),
    path("sitemap.xml", sitemaps.sitemap_xml, name="sitemap"),
    path("sitemap-<slug:section>.xml", sitemaps.sitemap_section, name="sitemap-section"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path(f"{settings.ADMIN_URL}/", admin.site.urls),
    # Place pages last: /<state>/<city>/ must never shadow a page of the site.
    re_path(r"^(?P<state>[A-Za-z]{2})/(?P<city>[A-Za-z0-9-]+)/$", landing.place, name="place"),
    re_path(
        r"^(?P<state>[A-Za-z]{2})/(?P<city>[A-Za-z0-9-]+)/(?P<technique>[A-Za-z0-9-]+)/$",
        landing.place,
        name="place-technique",
    ),
]

# An unreachable database met outside a view still answers 503, not 500.
handler500 = "practitioners.health.server_error"
