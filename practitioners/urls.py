from django.urls import path

from . import landing, owner_views, views

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
    path("my-listing/confirm/", owner_views.confirm_accurate, name="my-listing-confirm"),
    path("my-listing/confirm/<str:token>/", owner_views.confirm_link, name="confirm-link"),
    path("my-listing/practice/", owner_views.practice_details, name="my-practice"),
    path("my-listing/practice/confirm/", owner_views.practice_confirm, name="my-practice-confirm"),
    path("my-listing/clinics/add/", owner_views.clinic_add, name="my-clinic-add"),
    path(
        "my-listing/clinics/<int:location_id>/hours/",
        owner_views.clinic_practice,
        name="my-clinic-hours",
    ),
    path(
        "my-listing/clinics/<int:location_id>/hours/confirm/",
        owner_views.clinic_practice_confirm,
        name="my-clinic-hours-confirm",
    ),
    path("my-listing/clinics/<int:location_id>/", owner_views.clinic_edit, name="my-clinic"),
    path(
        "my-listing/clinics/<int:location_id>/close/",
        owner_views.clinic_close,
        name="my-clinic-close",
    ),
    path(
        "my-listing/certifications/add/",
        owner_views.certification_add,
        name="my-certification-add",
    ),
    path("my-listing/requests/change/", owner_views.request_change, name="my-request-change"),
    path("my-listing/requests/hide/", owner_views.request_hide, name="my-request-hide"),
    path("submit/", views.submit_listing, name="submit"),
    path("submit/thanks/", views.submit_thanks, name="submit-thanks"),
    path("conditions/", landing.condition_list, name="conditions"),
    path("conditions/<slug:slug>/", landing.condition_detail, name="condition"),
    path("techniques/<slug:slug>/", landing.technique_detail, name="technique"),
]
