"""Thin pages for practitioners: claiming a listing (``/practitioners/<slug>/claim/``) and the
owner's dashboard (``/my-listing/``).

Every POST here is rate limited per account and per address (``CLAIM_RATE_LIMIT``); the rules
are in ``curation/claims.py``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from . import practice, ratelimit
from .curation import ClinicSubmission, claims, owners, reminders
from .forms import ClinicForm
from .models import (
    CertificationEvidence,
    ListingClaim,
    Location,
    OwnerRequest,
    Practitioner,
    PractitionerCertification,
)
from .owner_forms import (
    ChangeRequestForm,
    ClaimCodeForm,
    ClinicAccessForm,
    DisputeForm,
    HideRequestForm,
    HoursFormSet,
    LicenceClaimForm,
    ListingDetailsForm,
    OwnerCertificationForm,
    PracticeDetailsForm,
)

CLAIM_SCOPE = "claims"


def _too_many(request: HttpRequest) -> HttpResponse | None:
    if request.method != "POST":
        return None
    if not ratelimit.over_limit(
        request,
        scope=CLAIM_SCOPE,
        limit=settings.CLAIM_RATE_LIMIT,
        window=settings.CLAIM_RATE_WINDOW_SECONDS,
    ):
        return None
    minutes = max(1, settings.CLAIM_RATE_WINDOW_SECONDS // 60)
    response = render(request, "429.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(settings.CLAIM_RATE_WINDOW_SECONDS)
    return response


@login_required
@require_http_methods(["GET", "POST"])
def claim(request: HttpRequest, slug: str) -> HttpResponse:
    practitioner = get_object_or_404(Practitioner.objects.published(), slug=slug)
    limited = _too_many(request)
    if limited is not None:
        return limited
    action = request.POST.get("action", "") if request.method == "POST" else ""
    licence_form = LicenceClaimForm(request.POST if action == "licence" else None)
    dispute_form = DisputeForm(request.POST if action == "dispute" else None)
    problem = ""
    status = 200
    try:
        if action == "send_code":
            claims.start_email_claim(practitioner=practitioner, claimant=request.user)
            return redirect("practitioners:claim-code", slug=slug)
        if action == "licence":
            if licence_form.is_valid():
                claims.claim_by_licence(
                    practitioner=practitioner, claimant=request.user, **licence_form.cleaned_data
                )
                messages.success(request, "Thank you: staff will check your claim and e-mail you.")
                return redirect("practitioners:claim", slug=slug)
            status = 400
        elif action == "dispute":
            if dispute_form.is_valid():
                claims.dispute_claim(
                    practitioner=practitioner,
                    claimant=request.user,
                    message=dispute_form.cleaned_data["message"],
                )
                messages.success(request, "Thank you: staff will look into it and e-mail you.")
                return redirect("practitioners:claim", slug=slug)
            status = 400
        elif request.method == "POST":
            problem, status = "Choose how you want to prove the listing is yours.", 400
    except claims.ClaimRefused as refused:
        problem, status = refused.message, 400
    context = {
        "practitioner": practitioner,
        "owner": practitioner.claimed_by_id == request.user.pk,
        "owned_by_other": practitioner.claimed_by_id not in (None, request.user.pk),
        "open_claim": claims.open_claim_for(practitioner=practitioner, claimant=request.user),
        "masked_email": claims.mask_email(practitioner.email) if practitioner.email else "",
        "licence_form": licence_form,
        "dispute_form": dispute_form,
        "problem": problem,
    }
    return render(request, "claims/claim.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def claim_code(request: HttpRequest, slug: str) -> HttpResponse:
    practitioner = get_object_or_404(Practitioner.objects.published(), slug=slug)
    limited = _too_many(request)
    if limited is not None:
        return limited
    pending = ListingClaim.objects.filter(
        practitioner=practitioner,
        claimant_id=request.user.pk,
        method=ListingClaim.Method.EMAIL_CODE,
        status=ListingClaim.Status.AWAITING_CODE,
    ).first()
    if pending is None:
        messages.info(request, "No code is waiting for this listing: ask for one here.")
        return redirect("practitioners:claim", slug=slug)
    form = ClaimCodeForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            outcome = claims.confirm_claim_code(
                claim=pending, claimant=request.user, code=form.cleaned_data["code"]
            )
            if outcome.claimed:
                messages.success(request, outcome.message)
                return redirect("practitioners:my-listing")
            form.add_error("code", outcome.message)
    context = {
        "practitioner": practitioner,
        "form": form,
        "masked_email": claims.mask_email(pending.code_sent_to),
        "minutes": settings.CLAIM_CODE_TIMEOUT_MINUTES,
    }
    return render(request, "claims/claim_code.html", context, status=status)


# --- The owner's dashboard --------------------------------------------------------------------


def owned_listing(request: HttpRequest) -> Practitioner | None:
    """The listing the signed-in account owns. Every dashboard URL finds it from the session,
    never from an id in the request, so no one can reach another owner's listing."""
    return Practitioner.objects.filter(claimed_by_id=request.user.pk).first()


def _listing_or_404(request: HttpRequest) -> Practitioner:
    practitioner = owned_listing(request)
    if practitioner is None:
        raise Http404("Your account does not own a listing.")
    return practitioner


def _with_hours_text(location: Location) -> Location:
    location.hours_text = practice.format_hours(location.opening_hours.all())
    return location


def _dashboard(request: HttpRequest, practitioner: Practitioner, status: int = 200, **forms):
    records = (
        PractitionerCertification.objects.filter(practitioner=practitioner)
        .select_related("certification", "certification__parent")
        .order_by("certification__name")
    )
    evidence = CertificationEvidence.objects.filter(practitioner=practitioner).select_related(
        "certification"
    )
    context = {
        "practitioner": practitioner,
        "details_form": forms.get("details_form")
        or ListingDetailsForm(
            initial={name: getattr(practitioner, name) for name in owners.OWNED_FIELDS}
        ),
        "certification_form": forms.get("certification_form") or OwnerCertificationForm(),
        "change_form": forms.get("change_form") or ChangeRequestForm(),
        "hide_form": forms.get("hide_form") or HideRequestForm(),
        "practice_form": forms.get("practice_form")
        or PracticeDetailsForm(
            initial={
                "languages": list(practitioner.languages.values_list("pk", flat=True)),
                "payers": list(practitioner.payers.values_list("pk", flat=True)),
                **{name: getattr(practitioner, name) for name in practice.PAYMENT_FIELDS},
            }
        ),
        "locations": [
            _with_hours_text(location)
            for location in Location.objects.filter(practitioner=practitioner)
            .order_by("pk")
            .prefetch_related(
                Prefetch("opening_hours", queryset=practice.OpeningHours.objects.order_by())
            )
        ],
        "records": list(records),
        "rejected_evidence": [e for e in evidence if e.status == e.Status.REJECTED],
        "pending_record_ids": {e.record_id for e in evidence if e.status == e.Status.PENDING},
        "open_requests": list(
            OwnerRequest.objects.filter(practitioner=practitioner, status=OwnerRequest.Status.OPEN)
        ),
        "problem": forms.get("problem", ""),
    }
    return render(request, "claims/my_listing.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def my_listing(request: HttpRequest) -> HttpResponse:
    practitioner = owned_listing(request)
    if practitioner is None:
        if request.method == "POST":
            raise Http404("Your account does not own a listing.")
        return render(request, "claims/no_listing.html")
    if request.method == "POST":
        form = ListingDetailsForm(request.POST)
        if not form.is_valid():
            return _dashboard(request, practitioner, status=400, details_form=form)
        changed = owners.update_listing(
            practitioner=practitioner, owner=request.user, changes=form.cleaned_data
        )
        messages.success(
            request,
            "Saved: your listing shows it now."
            if changed
            else "Nothing changed; your new-patient status shows as confirmed this month.",
        )
        return redirect("practitioners:my-listing")
    return _dashboard(request, practitioner)


@login_required
@require_POST
def confirm_accurate(request: HttpRequest) -> HttpResponse:
    practitioner = _listing_or_404(request)
    owners.confirm_listing(practitioner=practitioner, owner=request.user)
    messages.success(request, "Thank you: your listing shows it was confirmed this month.")
    return redirect("practitioners:my-listing")


@login_required
@require_POST
def practice_details(request: HttpRequest) -> HttpResponse:
    """Languages and payment, from the dashboard's form: live at once, dated today."""
    practitioner = _listing_or_404(request)
    form = PracticeDetailsForm(request.POST)
    if not form.is_valid():
        return _dashboard(request, practitioner, status=400, practice_form=form)
    try:
        changed = owners.update_practice(
            practitioner=practitioner,
            owner=request.user,
            languages=list(form.cleaned_data["languages"]),
            payers=list(form.cleaned_data["payers"]),
            payment=form.payment(),
        )
    except practice.PracticeRefused as refused:
        form.add_error(refused.field, refused.message)
        return _dashboard(request, practitioner, status=400, practice_form=form)
    messages.success(
        request,
        "Saved: your listing shows it now, confirmed this month."
        if changed
        else "Nothing changed; your languages and payment show as confirmed this month.",
    )
    return redirect("practitioners:my-listing")


@login_required
@require_POST
def practice_confirm(request: HttpRequest) -> HttpResponse:
    """ "Still right": the listing's new-patient status, languages and payment are dated today,
    unchanged."""
    practitioner = _listing_or_404(request)
    owners.confirm_practice(practitioner=practitioner, owner=request.user)
    messages.success(
        request,
        "Thank you: your new-patient status, languages and payment show as confirmed this month.",
    )
    return redirect("practitioners:my-listing")


def _hours_initial(location: Location) -> list[dict]:
    return [
        {"weekday": h.weekday, "opens": h.opens, "closes": h.closes}
        for h in location.opening_hours.order_by("weekday", "opens")
    ]


@login_required
@require_http_methods(["GET", "POST"])
def clinic_practice(request: HttpRequest, location_id: int) -> HttpResponse:
    """A clinic's opening hours, temporary closure and accessibility (one form, no JavaScript
    needed: three blank rows of hours each time; save to get three more)."""
    practitioner = _listing_or_404(request)
    location = get_object_or_404(Location, pk=location_id, practitioner=practitioner)
    posted = request.POST if request.method == "POST" else None
    access_form = ClinicAccessForm(
        posted,
        initial={
            "reopens_on": location.reopens_on,
            **{name: getattr(location, name) for name in practice.ACCESSIBILITY_FIELDS},
        },
    )
    hours_formset = HoursFormSet(posted, initial=_hours_initial(location), prefix="hours")
    status = 200
    problem = ""
    if posted is not None:
        status = 400
        if access_form.is_valid() and hours_formset.is_valid():
            try:
                changed = owners.update_clinic_practice(
                    practitioner=practitioner,
                    owner=request.user,
                    location_id=location.pk,
                    accessibility=access_form.accessibility(),
                    hours=hours_formset.hours(),
                    reopens_on=access_form.cleaned_data["reopens_on"],
                )
            except owners.NotYours as missing:
                raise Http404("No such clinic on your listing.") from missing
            except practice.PracticeRefused as refused:
                problem = refused.message
            else:
                messages.success(
                    request,
                    "Saved: your listing shows the hours and access now, confirmed this month."
                    if changed
                    else "Nothing changed; the hours and access show as confirmed this month.",
                )
                return redirect("practitioners:my-listing")
        problem = problem or "Some of this needs correcting: see the messages by the fields."
    context = {
        "practitioner": practitioner,
        "location": location,
        "access_form": access_form,
        "hours_formset": hours_formset,
        "problem": problem,
    }
    return render(request, "claims/clinic_practice.html", context, status=status)


@login_required
@require_POST
def clinic_practice_confirm(request: HttpRequest, location_id: int) -> HttpResponse:
    practitioner = _listing_or_404(request)
    try:
        owners.confirm_practice(
            practitioner=practitioner, owner=request.user, location_id=location_id
        )
    except owners.NotYours as missing:
        raise Http404("No such clinic on your listing.") from missing
    messages.success(
        request, "Thank you: the clinic's hours and access show as confirmed this month."
    )
    return redirect("practitioners:my-listing")


def _clinic_submission(form: ClinicForm) -> ClinicSubmission:
    return ClinicSubmission(**{name: form.cleaned_data.get(name, "") for name in CLINIC_FIELDS})


CLINIC_FIELDS = ("name", "address_line1", "address_line2", "city", "state", "postal_code", "phone")


@login_required
@require_http_methods(["GET", "POST"])
def clinic_add(request: HttpRequest) -> HttpResponse:
    practitioner = _listing_or_404(request)
    form = ClinicForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        owners.add_clinic(
            practitioner=practitioner, owner=request.user, clinic=_clinic_submission(form)
        )
        messages.success(
            request, "Clinic added. It shows at its ZIP code area until its address is placed."
        )
        return redirect("practitioners:my-listing")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "claims/clinic_form.html",
        {"practitioner": practitioner, "form": form, "location": None},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def clinic_edit(request: HttpRequest, location_id: int) -> HttpResponse:
    practitioner = _listing_or_404(request)
    location = get_object_or_404(Location, pk=location_id, practitioner=practitioner)
    initial = {name: getattr(location, name) for name in CLINIC_FIELDS}
    form = ClinicForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            owners.move_clinic(
                practitioner=practitioner,
                owner=request.user,
                location_id=location.pk,
                clinic=_clinic_submission(form),
            )
        except owners.NotYours as missing:
            raise Http404("No such clinic on your listing.") from missing
        messages.success(request, "Clinic saved.")
        return redirect("practitioners:my-listing")
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "claims/clinic_form.html",
        {"practitioner": practitioner, "form": form, "location": location},
        status=status,
    )


@login_required
@require_POST
def clinic_close(request: HttpRequest, location_id: int) -> HttpResponse:
    practitioner = _listing_or_404(request)
    try:
        owners.close_clinic(practitioner=practitioner, owner=request.user, location_id=location_id)
    except owners.NotYours as missing:
        raise Http404("No such clinic on your listing.") from missing
    except owners.OwnerRefused as refused:
        return _dashboard(request, practitioner, status=400, problem=refused.message)
    messages.success(request, "Clinic closed: it no longer shows on your listing.")
    return redirect("practitioners:my-listing")


@login_required
@require_POST
def certification_add(request: HttpRequest) -> HttpResponse:
    practitioner = _listing_or_404(request)
    form = OwnerCertificationForm(request.POST, request.FILES)
    if not form.is_valid():
        return _dashboard(request, practitioner, status=400, certification_form=form)
    uploaded = form.cleaned_data["evidence"]
    # Never more than the limit (and one byte, to know it was over) is read into memory.
    content = uploaded.read(settings.EVIDENCE_MAX_BYTES + 1)
    try:
        owners.add_certification(
            practitioner=practitioner,
            owner=request.user,
            certification=form.cleaned_data["certification"],
            upload=owners.Upload(name=uploaded.name, size=uploaded.size, content=content),
            credential_number=form.cleaned_data["credential_number"],
            earned_on=form.cleaned_data["earned_on"],
            expires_on=form.cleaned_data["expires_on"],
        )
    except owners.OwnerRefused as refused:
        form.add_error("evidence", refused.message)
        return _dashboard(request, practitioner, status=400, certification_form=form)
    messages.success(
        request, "Certification added. It shows as self-reported until our staff check it."
    )
    return redirect("practitioners:my-listing")


@login_required
@require_POST
def request_change(request: HttpRequest) -> HttpResponse:
    practitioner = _listing_or_404(request)
    form = ChangeRequestForm(request.POST)
    if not form.is_valid():
        return _dashboard(request, practitioner, status=400, change_form=form)
    owners.request_change(practitioner=practitioner, owner=request.user, **form.cleaned_data)
    messages.success(request, "Request sent: staff will check it and e-mail you.")
    return redirect("practitioners:my-listing")


@login_required
@require_POST
def request_hide(request: HttpRequest) -> HttpResponse:
    practitioner = _listing_or_404(request)
    form = HideRequestForm(request.POST)
    if not form.is_valid():
        return _dashboard(request, practitioner, status=400, hide_form=form)
    owners.request_hide(practitioner=practitioner, owner=request.user, **form.cleaned_data)
    messages.success(
        request,
        "Request sent. Registry listings are public information, so staff decide; they will "
        "e-mail you.",
    )
    return redirect("practitioners:my-listing")


# --- The 90-day reminder's link ---------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def confirm_link(request: HttpRequest, token: str) -> HttpResponse:
    """The signed link from the 90-day e-mail: no sign-in. The GET only shows the button, so a
    mail scanner that opens every link confirms nothing; the POST confirms."""
    try:
        if request.method == "POST":
            practitioner = reminders.confirm_by_link(token=token)
            return render(
                request,
                "claims/confirm_link.html",
                {"practitioner": practitioner, "confirmed": True},
            )
        reminder = reminders.reminder_for_link(token)
    except reminders.LinkRefused as refused:
        return render(request, "claims/confirm_link.html", {"problem": refused.message}, status=400)
    response = render(
        request,
        "claims/confirm_link.html",
        {"practitioner": reminder.practitioner, "token": token},
    )
    response["X-Robots-Tag"] = "noindex"
    return response
