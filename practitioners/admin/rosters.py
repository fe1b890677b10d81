"""The roster review queue: a doubtful roster row beside its candidates, and the listings that
dropped off a newer roster. Staff accept one candidate or none; the decision is recorded by
:func:`practitioners.ingest.roster.decide_review`, the same rule a re-run of the file keeps."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from ..ingest.roster import decide_review
from ..models import RosterReview

NONE_OF_THEM = "none"


class RosterDecisionForm(forms.ModelForm):
    decision = forms.ChoiceField(
        required=False,
        widget=forms.RadioSelect,
        help_text="Accept the listing this roster row is, or say it is none of them.",
    )

    class Meta:
        model = RosterReview
        fields: list[str] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        review = self.instance
        choices = [("", "Decide later")]
        choices += [
            (str(c["practitioner_id"]), f"{c['name']} (score {c['score']:.2f})")
            for c in review.candidates
        ]
        choices.append((NONE_OF_THEM, "None of them"))
        self.fields["decision"].choices = choices

    def clean(self):
        cleaned = super().clean()
        review = self.instance
        if cleaned.get("decision") and review.status != RosterReview.Status.OPEN:
            raise forms.ValidationError("This row was already decided.")
        return cleaned


@admin.register(RosterReview)
class RosterReviewAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "status", "best_candidate", "roster", "decided_by"]
    list_filter = ["status", "kind", "roster"]
    list_select_related = ["roster", "decided_by"]
    search_fields = ["row", "candidates"]
    form = RosterDecisionForm
    readonly_fields = [
        "roster",
        "kind",
        "line",
        "roster_row",
        "side_by_side",
        "status",
        "practitioner",
        "decided_by",
        "decided_at",
    ]
    actions = ["accept_best", "reject_all"]

    def get_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if (
            obj is not None
            and obj.kind == RosterReview.Kind.DOUBTFUL
            and obj.status == RosterReview.Status.OPEN
        ):
            fields.append("decision")
        return fields

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="Roster row")
    def roster_row(self, review: RosterReview):
        return format_html_join(", ", "{}: {}", review.row.items())

    @admin.display(description="Candidates (best first) and the evidence for each")
    def side_by_side(self, review: RosterReview):
        if not review.candidates:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    c["name"],
                    "; ".join(c.get("places", [])),
                    f"{c['score']:.2f}",
                    "; ".join(c["evidence"]),
                )
                for c in review.candidates
            ),
        )
        return format_html(
            "<table><thead><tr><th>Listing</th><th>Clinics</th><th>Score</th><th>Evidence</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Best candidate")
    def best_candidate(self, review: RosterReview) -> str:
        if not review.candidates:
            return "-"
        best = review.candidates[0]
        return f"{best['name']} ({best['score']:.2f})"

    def save_model(self, request, obj, form, change):
        decision = form.cleaned_data.get("decision")
        if not decision:
            return
        try:
            decide_review(
                review=obj,
                practitioner_id=None if decision == NONE_OF_THEM else int(decision),
                user=request.user,
            )
        except ValueError as error:
            self.message_user(request, str(error), level=messages.ERROR)

    def _decide(self, request, queryset, *, best: bool) -> None:
        done, refused = 0, []
        for review in queryset.filter(
            kind=RosterReview.Kind.DOUBTFUL, status=RosterReview.Status.OPEN
        ):
            choice = review.candidates[0]["practitioner_id"] if best and review.candidates else None
            try:
                decide_review(review=review, practitioner_id=choice, user=request.user)
                done += 1
            except ValueError as error:
                refused.append(f"line {review.line}: {error}")
        self.message_user(request, f"Decided {done} row(s).")
        if refused:
            self.message_user(request, "Not decided: " + "; ".join(refused), level=messages.WARNING)

    @admin.action(
        description="Accept the best candidate of each selected row", permissions=["change"]
    )
    def accept_best(self, request, queryset):
        self._decide(request, queryset, best=True)

    @admin.action(
        description="None of them: the selected rows match no listing", permissions=["change"]
    )
    def reject_all(self, request, queryset):
        self._decide(request, queryset, best=False)
