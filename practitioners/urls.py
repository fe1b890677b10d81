from django.urls import path

from . import views

app_name = "practitioners"

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("practitioners/<slug:slug>/", views.profile, name="profile"),
]
