from django.urls import path

from . import landing, views

app_name = "practitioners"

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("practitioners/<slug:slug>/", views.profile, name="profile"),
    path("practitioners/<slug:slug>/report/", views.report_listing, name="report"),
    path("practitioners/<slug:slug>/report/thanks/", views.report_thanks, name="report-thanks"),
    path("submit/", views.submit_listing, name="submit"),
    path("submit/thanks/", views.submit_thanks, name="submit-thanks"),
    path("conditions/", landing.condition_list, name="conditions"),
    path("conditions/<slug:slug>/", landing.condition_detail, name="condition"),
    path("techniques/<slug:slug>/", landing.technique_detail, name="technique"),
]
