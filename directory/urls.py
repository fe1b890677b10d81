from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from practitioners import api, views

urlpatterns = [
    path("", include("practitioners.urls")),
    path("api/practitioners/", api.PractitionerList.as_view(), name="api-practitioners"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
