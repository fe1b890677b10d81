"""Forms for claiming a listing and for the owner's dashboard: they only validate; the rules are
in ``curation/claims.py`` and ``curation/owners.py``."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from .curation import strip_control_characters
from .forms import CertificationClaimForm, HttpURLField, phone_validator
from .models import OwnerRequest, state_validator, validate_npi
from .practice import (
    ACCESSIBILITY_FIELDS,
    MAX_INTERVALS,
    PAYMENT_FIELDS,
    Language,
    NewPatients,
    Payer,
    Weekday,
    format_time,
)


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
        help_text="What patients who call you will hear (saving dates it today).",
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


# --- Languages, payment, a clinic's access and hours ---------------------------------------


class PracticeDetailsForm(forms.Form):
    """Languages and payment (saving dates both today: practice.PRACTITIONER_GROUPS)."""

    languages = forms.ModelMultipleChoiceField(
        queryset=Language.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Languages spoken at your practice",
    )
    payers = forms.ModelMultipleChoiceField(
        queryset=Payer.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Insurance accepted",
        help_text="Not on the list? Ask for a change below and we add it.",
    )
    self_pay = forms.BooleanField(required=False, label="Self-pay welcome")
    self_pay_min = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=100_000,
        label="A first visit from ($)",
        help_text="Whole dollars, typical self-pay first visit.",
    )
    self_pay_max = forms.IntegerField(
        required=False, min_value=0, max_value=100_000, label="A first visit up to ($)"
    )
    sliding_scale = forms.BooleanField(required=False, label="Sliding-scale fees")
    hsa_fsa = forms.BooleanField(required=False, label="HSA/FSA cards accepted")

    def clean(self):
        cleaned = super().clean()
        low, high = cleaned.get("self_pay_min"), cleaned.get("self_pay_max")
        if low is not None and high is not None and low > high:
            self.add_error("self_pay_max", "The upper price is below the lower one.")
        return cleaned

    def payment(self) -> dict[str, object]:
        return {name: self.cleaned_data[name] for name in PAYMENT_FIELDS}


DATE_INPUT_FORMATS = ["%Y-%m-%d", "%m/%d/%Y"]


class ClinicAccessForm(forms.Form):
    """A clinic's accessibility and temporary closure (practice.ClinicAccess)."""

    wheelchair_entrance = forms.BooleanField(required=False, label="Wheelchair-accessible entrance")
    accessible_restroom = forms.BooleanField(required=False, label="Accessible restroom")
    parking = forms.BooleanField(required=False, label="Parking on site")
    public_transit = forms.BooleanField(required=False, label="Near public transit")
    reopens_on = forms.DateField(
        required=False,
        label="Temporarily closed until",
        input_formats=DATE_INPUT_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="The day the clinic opens again (MM/DD/YYYY if your browser has no calendar). "
        'Until then your listing says "Temporarily closed until ..." and never "open". '
        "Empty: open as usual.",
    )

    def clean_reopens_on(self) -> dt.date | None:
        reopens = self.cleaned_data["reopens_on"]
        if reopens is not None and reopens <= timezone.localdate():
            raise forms.ValidationError(
                "That day has come already: leave the date empty if the clinic is open again."
            )
        return reopens

    def accessibility(self) -> dict[str, bool]:
        return {name: self.cleaned_data[name] for name in ACCESSIBILITY_FIELDS}


TIME_INPUT = forms.TimeInput(attrs={"type": "time", "step": 900}, format="%H:%M")


class OpeningIntervalForm(forms.Form):
    """One row of the hours editor: a day and an interval in the clinic's own time; a closing
    time at or before the opening time runs past midnight. An empty row is ignored."""

    weekday = forms.TypedChoiceField(
        label="Day",
        choices=[("", "(no day)"), *Weekday.choices],
        coerce=int,
        required=False,
        empty_value=None,
    )
    opens = forms.TimeField(label="Opens", required=False, widget=TIME_INPUT)
    closes = forms.TimeField(label="Closes", required=False, widget=TIME_INPUT)

    def clean(self):
        cleaned = super().clean()
        day, opens, closes = cleaned.get("weekday"), cleaned.get("opens"), cleaned.get("closes")
        if self.errors or cleaned.get("DELETE") or (day is None and not opens and not closes):
            return cleaned
        if day is None:
            self.add_error("weekday", "Choose the day these hours are for.")
        if opens is None:
            self.add_error("opens", "Give the opening time, like 08:00.")
        if closes is None:
            self.add_error("closes", "Give the closing time, like 18:00.")
        if opens is not None and opens == closes and opens != dt.time(0):
            self.add_error(
                "closes",
                f"It opens and closes at {format_time(opens)}; for a whole day use 0:00-0:00.",
            )
        return cleaned

    def interval(self) -> tuple[int, dt.time, dt.time] | None:
        data = self.cleaned_data
        if data.get("DELETE") or data.get("weekday") is None:
            return None
        return data["weekday"], data["opens"], data["closes"]


class BaseHoursFormSet(forms.BaseFormSet):
    def add_fields(self, form, index) -> None:
        super().add_fields(form, index)
        if "DELETE" in form.fields:
            form.fields["DELETE"].label = "Remove these hours"

    def hours(self) -> list[tuple[int, dt.time, dt.time]]:
        return [row for row in (f.interval() for f in self.forms) if row is not None]


HoursFormSet = forms.formset_factory(
    OpeningIntervalForm,
    formset=BaseHoursFormSet,
    extra=3,  # blank rows to fill in; without JavaScript, save to get three more
    can_delete=True,
    max_num=MAX_INTERVALS,
    validate_max=True,
    absolute_max=MAX_INTERVALS,
)
