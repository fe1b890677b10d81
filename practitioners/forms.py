"""The public forms: "List your practice" and "Report a problem with this listing".

Every field has a length limit, the bio is plain text (the profile escapes it), the website must be
http or https, and a honeypot field that people never see catches simple bots. The forms only
validate and build the dataclasses :mod:`practitioners.curation` writes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django import forms
from django.core.validators import RegexValidator, URLValidator
from django.forms import BaseFormSet, formset_factory
from django.utils import timezone

from .curation import (
    CertificationClaim,
    ClinicSubmission,
    ListingSubmission,
    strip_control_characters,
)
from .models import Certification, ListingReport, Profession, validate_npi
from .search import geo

HONEYPOT_FIELD = "company_url"
MAX_CLINICS = 5
MAX_CERTIFICATIONS = 10

http_url_validator = URLValidator(
    schemes=["http", "https"], message="Enter a web address starting with http:// or https://."
)
phone_validator = RegexValidator(
    r"^[0-9 ()+.\-xX/]*$", "Enter a phone number using digits, spaces and ( ) - + . only."
)


class HttpURLField(forms.URLField):
    """A web address people can safely click: http or https only (no javascript:, data:...)."""

    default_validators = [http_url_validator]
    default_error_messages = {"invalid": http_url_validator.message}


class HoneypotMixin(forms.Form):
    """A field hidden from people (and from screen readers); a bot that fills it in is treated
    as if its post succeeded, and nothing is saved."""

    company_url = forms.CharField(
        required=False,
        max_length=200,
        label="Leave this field empty",
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )

    def is_spam(self) -> bool:
        return bool(self.data.get(self.add_prefix(HONEYPOT_FIELD), "").strip())


class SubmissionForm(HoneypotMixin):
    name = forms.CharField(max_length=200, label="Full name")
    credentials = forms.CharField(
        max_length=100, required=False, help_text='For example "DC, CCSP".'
    )
    profession = forms.ModelChoiceField(queryset=Profession.objects.all(), empty_label="Choose…")
    npi = forms.CharField(
        label="NPI (optional)",
        max_length=10,
        required=False,
        validators=[validate_npi],
        help_text="Your 10-digit National Provider Identifier, if you have one.",
    )
    phone = forms.CharField(max_length=30, required=False, validators=[phone_validator])
    email = forms.EmailField(max_length=254, required=False)
    website = HttpURLField(max_length=300, required=False, assume_scheme="https")
    bio = forms.CharField(
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Plain text, up to 5,000 characters. HTML is shown exactly as typed.",
    )
    accepting_new_patients = forms.BooleanField(required=False, initial=True)
    telehealth = forms.BooleanField(required=False, label="Offers telehealth")

    def clean_bio(self) -> str:
        return strip_control_characters(self.cleaned_data["bio"])

    def clean_npi(self) -> str:
        return self.cleaned_data["npi"].strip()


class ClinicForm(forms.Form):
    block_name = "clinic"
    name = forms.CharField(max_length=200, required=False, label="Clinic name")
    address_line1 = forms.CharField(max_length=200, label="Street address")
    address_line2 = forms.CharField(max_length=200, required=False, label="Suite, floor")
    city = forms.CharField(max_length=100)
    state = forms.CharField(
        max_length=2,
        min_length=2,
        help_text="Two letters, like TN.",
        widget=forms.TextInput(attrs={"size": 3, "autocapitalize": "characters"}),
    )
    postal_code = forms.CharField(max_length=10, label="ZIP code")
    phone = forms.CharField(
        max_length=30, required=False, label="Clinic phone", validators=[phone_validator]
    )

    def clean_state(self) -> str:
        state = self.cleaned_data["state"].strip().upper()
        if not (state.isascii() and state.isalpha() and len(state) == 2):
            raise forms.ValidationError("Enter a two-letter state code, like TN.")
        return state

    def clean_postal_code(self) -> str:
        zip5 = geo.normalise_zip(self.cleaned_data["postal_code"])
        if zip5 is None:
            raise forms.ValidationError("Enter a 5-digit ZIP code (or ZIP+4), like 38117.")
        return zip5


class CertificationClaimForm(forms.Form):
    block_name = "certification"
    certification = forms.ModelChoiceField(
        queryset=Certification.objects.select_related("parent"), empty_label="Choose…"
    )
    credential_number = forms.CharField(max_length=60, required=False)
    earned_on = forms.DateField(
        required=False,
        label="Earned on",
        # The browser's date picker sends YYYY-MM-DD; where there is no picker people type
        # the date the way the hint shows.
        input_formats=["%Y-%m-%d", "%m/%d/%Y"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Use the calendar, or type the date as MM/DD/YYYY.",
    )

    def clean_earned_on(self) -> dt.date | None:
        earned_on = self.cleaned_data["earned_on"]
        if earned_on and earned_on > timezone.localdate():
            raise forms.ValidationError("This date is in the future.")
        return earned_on


class BlockFormSet(BaseFormSet):
    """A formset of blocks people add one at a time. An unbound one never has "initial" forms:
    blocks carried over from a post (see ``ListingSubmissionForms``) stay optional like new
    ones."""

    def initial_form_count(self) -> int:
        return super().initial_form_count() if self.is_bound else 0

    def with_blocks(self, count: int) -> BlockFormSet:
        """Show ``count`` blocks (within the limits), the first ones filled from ``initial``."""
        count = max(self.min_num, min(count, self.max_num))
        self.extra = count - self.min_num
        return self


ClinicFormSet = formset_factory(
    ClinicForm,
    formset=BlockFormSet,
    extra=0,
    min_num=1,
    validate_min=True,
    max_num=MAX_CLINICS,
    validate_max=True,
)
CertificationFormSet = formset_factory(
    CertificationClaimForm,
    formset=BlockFormSet,
    extra=1,
    max_num=MAX_CERTIFICATIONS,
    validate_max=True,
)


@dataclass
class ErrorLink:
    """One line of the error summary: the field's id (the link target), its label, the error."""

    field_id: str
    label: str
    message: str


class ListingSubmissionForms:
    """The submission form and its two formsets (clinics, certifications), validated together.

    A post whose ``add`` button was pressed ("Add another clinic" without JavaScript) is not a
    submission: the same forms come back unbound, filled with what was typed, with one more
    block, and no errors shown."""

    ADD_BUTTONS = {"clinic": "clinics", "certification": "certifications"}

    def __init__(self, data=None) -> None:
        self.adding = data is not None and data.get("add") in self.ADD_BUTTONS
        if self.adding:
            self._carry_over(data)
            return
        self.form = SubmissionForm(data)
        self.clinics = ClinicFormSet(data, prefix="clinic")
        self.certifications = CertificationFormSet(data, prefix="cert")

    def _carry_over(self, data) -> None:
        self.form = SubmissionForm(initial=self._values(data, SubmissionForm, ""))
        blocks = {}
        for prefix, formset_class in (("clinic", ClinicFormSet), ("cert", CertificationFormSet)):
            count = self._posted_count(data, prefix, formset_class.max_num)
            rows = [self._values(data, formset_class.form, f"{prefix}-{i}-") for i in range(count)]
            blocks[prefix] = (formset_class(initial=rows, prefix=prefix), count)
        added = data.get("add")
        self.clinics = blocks["clinic"][0].with_blocks(blocks["clinic"][1] + (added == "clinic"))
        self.certifications = blocks["cert"][0].with_blocks(
            blocks["cert"][1] + (added == "certification")
        )

    @staticmethod
    def _posted_count(data, prefix: str, most: int) -> int:
        raw = data.get(f"{prefix}-TOTAL_FORMS", "")
        return min(int(raw), most) if raw.isascii() and raw.isdigit() else 0

    @staticmethod
    def _values(data, form_class: type[forms.Form], prefix: str) -> dict:
        values = {}
        for name, field in form_class.base_fields.items():
            key = prefix + name
            if isinstance(field, forms.BooleanField):
                values[name] = key in data
            elif key in data:
                values[name] = data.get(key)
        return values

    def is_spam(self) -> bool:
        return self.form.is_bound and self.form.is_spam()

    def is_valid(self) -> bool:
        if self.adding:
            return False
        # Validate all three so every error is shown at once.
        results = [self.form.is_valid(), self.clinics.is_valid(), self.certifications.is_valid()]
        return all(results)

    def error_links(self) -> list[ErrorLink]:
        """Every error of the three, in page order, each linking to its field."""
        if not self.form.is_bound:
            return []
        links = [
            ErrorLink(self.form[name].id_for_label, self.form[name].label, message)
            for name, messages in self.form.errors.items()
            if name in self.form.fields
            for message in messages
        ]
        for title, formset in (("Clinic", self.clinics), ("Certification", self.certifications)):
            for message in formset.non_form_errors():
                links.append(ErrorLink(f"{formset.prefix}-blocks", f"{title}s", message))
            for number, block in enumerate(formset.forms, start=1):
                for name, messages in block.errors.items():
                    if name not in block.fields:
                        continue
                    label = f"{title} {number}: {block[name].label}"
                    links += [ErrorLink(block[name].id_for_label, label, m) for m in messages]
        return links

    def to_submission(self) -> ListingSubmission:
        data = self.form.cleaned_data
        clinics = [
            ClinicSubmission(**{k: v for k, v in form.cleaned_data.items()})
            for form in self.clinics.forms
            if form.cleaned_data
        ]
        claims = [
            CertificationClaim(**form.cleaned_data)
            for form in self.certifications.forms
            if form.cleaned_data
        ]
        return ListingSubmission(
            name=data["name"],
            credentials=data["credentials"],
            profession=data["profession"],
            npi=data["npi"],
            phone=data["phone"],
            email=data["email"],
            website=data["website"],
            bio=data["bio"],
            accepting_new_patients=data["accepting_new_patients"],
            telehealth=data["telehealth"],
            clinics=clinics,
            certifications=claims,
        )


class ReportForm(HoneypotMixin):
    kind = forms.ChoiceField(
        choices=ListingReport.Kind.choices,
        widget=forms.RadioSelect,
        label="What is wrong?",
    )
    details = forms.CharField(
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Plain text, up to 2,000 characters.",
    )
    contact_email = forms.EmailField(
        max_length=254, required=False, label="Your email (optional, never published)"
    )

    def clean_details(self) -> str:
        return strip_control_characters(self.cleaned_data["details"])

    def cleaned_data_for_report(self) -> dict[str, str]:
        return {
            "kind": self.cleaned_data["kind"],
            "details": self.cleaned_data["details"],
            "contact_email": self.cleaned_data["contact_email"],
        }
