"""Forms for claiming a listing and for the owner's dashboard: they only validate; the rules are
in ``curation/claims.py`` and ``curation/owners.py``."""

from __future__ import annotations

from django import forms

from .models import state_validator, validate_npi


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
