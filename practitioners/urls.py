from django.urls import path

from . import views

app_name = "practitioners"

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("practitioners/<slug:slug>/", views.profile, name="profile"),
    path("practitioners/<slug:slug>/report/", views.report_listing, name="report"),
    path("practitioners/<slug:slug>/report/thanks/", views.report_thanks, name="report-thanks"),
    path("submit/", views.submit_listing, name="submit"),
    path("submit/thanks/", views.submit_thanks, name="submit-thanks"),
]
