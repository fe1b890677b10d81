"""Thin pages for practitioners: claiming a listing (``/practitioners/<slug>/claim/``).

Every POST here is rate limited per account and per address (``CLAIM_RATE_LIMIT``); the rules
are in ``curation/claims.py``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from . import ratelimit
from .curation import claims
from .models import ListingClaim, Practitioner
from .owner_forms import ClaimCodeForm, DisputeForm, LicenceClaimForm

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


@login_required
@require_http_methods(["GET"])
def my_listing(request: HttpRequest) -> HttpResponse:
    practitioner = owned_listing(request)
    if practitioner is None:
        return render(request, "claims/no_listing.html")
    return render(request, "claims/my_listing.html", {"practitioner": practitioner})
