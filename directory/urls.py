from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from practitioners import api, health
from practitioners.admin_site import StaffAdminSite

# The admin asks for a second factor when settings.ADMIN_REQUIRE_OTP says so (django-otp).
admin.site.__class__ = StaffAdminSite

urlpatterns = [
    path("", include("practitioners.urls")),
    path("accounts/", include("allauth.urls")),
    path("api/practitioners/", api.PractitionerList.as_view(), name="api-practitioners"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path(f"{settings.ADMIN_URL}/", admin.site.urls),
]

# An unreachable database met outside a view still answers 503, not 500.
handler500 = "practitioners.health.server_error"
