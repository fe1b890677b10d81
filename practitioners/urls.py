from django.urls import path

from . import owner_views, views

app_name = "practitioners"

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("practitioners/<slug:slug>/", views.profile, name="profile"),
    path("practitioners/<slug:slug>/report/", views.report_listing, name="report"),
    path("practitioners/<slug:slug>/report/thanks/", views.report_thanks, name="report-thanks"),
    path("practitioners/<slug:slug>/claim/", owner_views.claim, name="claim"),
    path("practitioners/<slug:slug>/claim/code/", owner_views.claim_code, name="claim-code"),
    path("my-listing/", owner_views.my_listing, name="my-listing"),
    path("submit/", views.submit_listing, name="submit"),
    path("submit/thanks/", views.submit_thanks, name="submit-thanks"),
]
