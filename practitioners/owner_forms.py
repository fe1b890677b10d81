"""Forms for claiming a listing and for the owner's dashboard: they only validate; the rules are
in ``curation/claims.py`` and ``curation/owners.py``."""

from __future__ import annotations

from django import forms

from .curation import strip_control_characters
from .forms import CertificationClaimForm, HttpURLField, phone_validator
from .models import OwnerRequest, state_validator, validate_npi
from .practice import NewPatients


class UpperCaseField(forms.CharField):
    """ "tn" is TN: upper-cased before the validators see it."""

    def to_python(self, value):
        return super().to_python(value).upper()


class LicenceClaimForm(forms.Form):
    npi = forms.CharField(
        label="The listing's NPI",
        max_length=10,
        validators=[validate_npi],
        help_text="Your 10-digit National Provider Identifier.",
    )
    licence_number = forms.CharField(label="Licence number", max_length=40)
    licence_state = UpperCaseField(
        label="Licence state",
        max_length=2,
        validators=[state_validator],
        help_text="Two letters, like TN.",
    )
    message = forms.CharField(
        label="Anything staff should know (optional)",
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class DisputeForm(forms.Form):
    message = forms.CharField(
        label="Why this listing is yours",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Staff read this and may contact you; the listing does not change hands "
        "until they decide.",
    )


class ClaimCodeForm(forms.Form):
    code = forms.CharField(
        label="The code from the e-mail",
        max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class ListingDetailsForm(forms.Form):
    """What the owner changes themselves (curation/owners.py OWNED_FIELDS)."""

    bio = forms.CharField(
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Plain text, up to 5,000 characters.",
    )
    website = HttpURLField(max_length=300, required=False, assume_scheme="https")
    phone = forms.CharField(max_length=30, required=False, validators=[phone_validator])
    email = forms.EmailField(
        label="E-mail shown to patients",
        max_length=254,
        required=False,
        help_text="Also where we send a code if someone claims this listing.",
    )
    new_patients = forms.ChoiceField(
        label="New patients",
        choices=NewPatients.choices,
        help_text="What patients who call you will hear (saving a change dates it today).",
    )
    telehealth = forms.BooleanField(required=False, label="Offers telehealth")

    def clean_bio(self) -> str:
        return strip_control_characters(self.cleaned_data["bio"])


class OwnerCertificationForm(CertificationClaimForm):
    expires_on = forms.DateField(
        required=False,
        label="Expires on (if it does)",
        input_formats=["%Y-%m-%d", "%m/%d/%Y"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Use the calendar, or type the date as MM/DD/YYYY.",
    )
    evidence = forms.FileField(
        label="Your certificate (PDF, JPEG or PNG, up to 5 MB)",
        allow_empty_file=True,  # the service says "the file is empty" in its own words
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png"}),
    )

    def clean(self):
        cleaned = super().clean()
        earned, expires = cleaned.get("earned_on"), cleaned.get("expires_on")
        if earned and expires and expires < earned:
            self.add_error("expires_on", "The expiry date is before the date it was earned.")
        return cleaned


class ChangeRequestForm(forms.Form):
    field = forms.ChoiceField(label="What should change", choices=OwnerRequest.Field.choices)
    value = forms.CharField(label="What it should be", max_length=300)
    note = forms.CharField(
        label="Anything staff should know (optional)",
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class HideRequestForm(forms.Form):
    note = forms.CharField(
        label="Why (optional)",
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
