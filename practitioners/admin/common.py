"""Small pieces every admin page uses: the map link, the one-line-of-text action page, and
what happens after staff save a clinic."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html

from .. import geocoding, tasks
from ..models import (
    Location,
)
from ..search.results import CLINIC_ADDRESS_FIELDS

# Changing any of these makes the clinic's pin doubtful (the address a result row shows).
ADDRESS_FIELDS = set(CLINIC_ADDRESS_FIELDS)


def osm_link(latitude: float | None, longitude: float | None) -> str:
    if latitude is None or longitude is None:
        return "-"
    lat, lon = f"{latitude:.6f}", f"{longitude:.6f}"
    return format_html(
        '<a href="https://www.openstreetmap.org/?mlat={}&amp;mlon={}#map=17/{}/{}" '
        'target="_blank" rel="noopener">Check the pin on OpenStreetMap ({}, {})</a>',
        lat,
        lon,
        lat,
        lon,
        lat,
        lon,
    )


def save_location_form(request: HttpRequest, form: forms.ModelForm, location: Location) -> None:
    """After staff saved a clinic: coordinates typed by hand become a manual pin; anything else
    goes to the geocoding task (which does nothing when the address did not change), once the
    admin's transaction has committed, so the save answers at once and a slow provider holds no
    lock and loses no edit. Meanwhile a new address sits at its ZIP centroid (the form did it)."""
    typed = {"latitude", "longitude"} & set(form.changed_data)
    latitude, longitude = form.cleaned_data.get("latitude"), form.cleaned_data.get("longitude")
    if typed and latitude is not None and longitude is not None:
        geocoding.set_manual_position(location=location, latitude=latitude, longitude=longitude)
    elif geocoding.needs_geocode(
        location,
        address=geocoding.normalised_address(location),
        provider=geocoding.current_provider(),
    ):
        tasks.geocode_after_commit(location_ids=[location.pk])


def regeocode(model_admin: admin.ModelAdmin, request: HttpRequest, locations: QuerySet) -> None:
    """The re-geocode actions: forced geocoding as a task, so the page answers at once."""
    ids = list(locations.values_list("pk", flat=True))
    done = tasks.summary_of(tasks.geocode_in_background(location_ids=ids, force=True))
    if done is not None:
        model_admin.message_user(request, f"Re-geocoded {len(ids)} clinic(s).")
    else:
        model_admin.message_user(
            request,
            f"Re-geocoding {len(ids)} clinic(s) in the background; each clinic's geocode status "
            "shows when it is done.",
        )


def ask_for_text(
    request: HttpRequest,
    queryset: QuerySet,
    *,
    action: str,
    title: str,
    label: str,
    help_text: str,
    submit: str,
    initial: str = "",
) -> TemplateResponse:
    """The intermediate page of an action that needs one line of text (a reason, a source)."""
    return TemplateResponse(
        request,
        "admin/practitioners/action_text.html",
        {
            **admin.site.each_context(request),
            "title": title,
            "objects": queryset[:50],
            "count": queryset.count(),
            "selected": queryset.values_list("pk", flat=True),
            "action": action,
            "label": label,
            "help_text": help_text,
            "submit": submit,
            "initial": initial,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": queryset.model._meta,
        },
    )
