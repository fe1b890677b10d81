"""Merging two listings of the same practitioner, previewing the result first, and undoing it.

``plan_merge`` says what a merge would do without writing anything (the admin shows it before
staff confirm); ``merge_practitioners`` does exactly that and records a :class:`ListingMerge`
holding everything it changed or removed; ``undo_merge`` puts it all back.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from django.core import serializers
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from ..models import (
    ListingMerge,
    ListingReport,
    Location,
    Practitioner,
    PractitionerCertification,
)
from .duplicates import forget_duplicates_count
from .services import User, _with_history_user

# Fields of the removed listing that fill the kept listing's blanks.
MERGE_FILL_FIELDS = [
    "credentials",
    "profession",
    "bio",
    "phone",
    "website",
    "email",
    "npi",
    "external_id",
    "source_updated_on",
]
# What a certificate of the removed listing can complete on the kept listing's record.
RECORD_FILL_FIELDS = ["credential_number", "earned_on", "expires_on", "verification_source"]


class MergeRefused(Exception):
    """The merge or its undo cannot be done; the message says why."""


@dataclass
class RecordCompletion:
    kept: PractitionerCertification
    changes: dict[str, tuple[object, object]]  # field -> (kept's value, value after the merge)


@dataclass
class MergePlan:
    keep: Practitioner
    remove: Practitioner
    filled: dict[str, object] = field(default_factory=dict)  # blank on keep, taken from remove
    clinics_moved: list[Location] = field(default_factory=list)
    clinics_dropped: list[Location] = field(default_factory=list)  # same address as one of keep's
    records_moved: list[PractitionerCertification] = field(default_factory=list)
    records_completed: list[RecordCompletion] = field(default_factory=list)
    records_dropped: list[PractitionerCertification] = field(default_factory=list)
    reports_moved: int = 0

    def merged_value(self, name: str) -> object:
        """What the kept listing's field holds after the merge."""
        return self.filled.get(name, getattr(self.keep, name))


def plan_merge(*, keep: Practitioner, remove: Practitioner) -> MergePlan:
    """What merging ``remove`` into ``keep`` would do. Writes nothing."""
    if keep.pk == remove.pk:
        raise MergeRefused("Choose two different listings to merge.")
    plan = MergePlan(keep=keep, remove=remove)
    plan.filled = {
        name: getattr(remove, name)
        for name in MERGE_FILL_FIELDS
        if not getattr(keep, name) and getattr(remove, name)
    }
    kept_addresses = {loc.clinic_key for loc in Location.objects.filter(practitioner=keep)}
    for location in Location.objects.filter(practitioner=remove).order_by("pk"):
        key = location.clinic_key
        if key in kept_addresses:
            plan.clinics_dropped.append(location)
        else:
            kept_addresses.add(key)
            plan.clinics_moved.append(location)
    kept_records = {
        record.certification_id: record
        for record in PractitionerCertification.objects.filter(practitioner=keep)
    }
    removed_records = PractitionerCertification.objects.filter(practitioner=remove).select_related(
        "certification"
    )
    for record in removed_records.order_by("pk"):
        mine = kept_records.get(record.certification_id)
        if mine is None:
            plan.records_moved.append(record)
            continue
        plan.records_dropped.append(record)
        changes: dict[str, tuple[object, object]] = {}
        for name in RECORD_FILL_FIELDS:
            if not getattr(mine, name) and getattr(record, name):
                changes[name] = (getattr(mine, name), getattr(record, name))
        if record.verified_on and (
            mine.verified_on is None or record.verified_on > mine.verified_on
        ):
            changes["verified_on"] = (mine.verified_on, record.verified_on)
            changes["verified_by_id"] = (mine.verified_by_id, record.verified_by_id)
            source = record.verification_source or mine.verification_source
            if source != mine.verification_source:
                changes["verification_source"] = (mine.verification_source, source)
        if changes:
            plan.records_completed.append(RecordCompletion(mine, changes))
    plan.reports_moved = ListingReport.objects.filter(practitioner=remove).count()
    return plan


def _serialized(objects) -> list[dict]:
    return serializers.serialize("python", objects)


@transaction.atomic
def merge_practitioners(
    *, keep: Practitioner, remove: Practitioner, user: User | None = None
) -> Practitioner:
    """Fold ``remove`` into ``keep`` as :func:`plan_merge` describes: its clinics (unless ``keep``
    has the same address), its certificates (the more complete record wins), its reports, and
    any field ``keep`` left blank. ``remove`` is then deleted; the merge is recorded so that it
    can be undone, and both changes stay in the history."""
    if keep.pk == remove.pk:
        raise MergeRefused("Choose two different listings to merge.")
    keep = Practitioner.objects.select_for_update().get(pk=keep.pk)
    remove = Practitioner.objects.select_for_update().get(pk=remove.pk)
    plan = plan_merge(keep=keep, remove=remove)
    reason = f"Moved from merged listing #{remove.pk}"
    snapshot = {
        "removed": _serialized([remove]),
        "clinics_dropped": _serialized(plan.clinics_dropped),
        "records_dropped": _serialized(plan.records_dropped),
        "clinics_moved": [location.pk for location in plan.clinics_moved],
        "records_moved": [record.pk for record in plan.records_moved],
        "records_completed": {
            str(completion.kept.pk): {name: old for name, (old, _) in completion.changes.items()}
            for completion in plan.records_completed
        },
        "reports_moved": list(
            ListingReport.objects.filter(practitioner=remove).values_list("pk", flat=True)
        ),
        "filled": {name: getattr(keep, _attname(name)) for name in plan.filled},
    }
    for location in plan.clinics_moved:
        location.practitioner = keep
        _with_history_user(location, user, reason)
        location.save()
    for record in plan.records_moved:
        record.practitioner = keep
        _with_history_user(record, user, reason)
        record.save()
    for completion in plan.records_completed:
        for name, (_, new) in completion.changes.items():
            setattr(completion.kept, name, new)
        _with_history_user(completion.kept, user, f"Completed from merged listing #{remove.pk}")
        completion.kept.save()
    ListingReport.objects.filter(practitioner=remove).update(practitioner=keep)
    removed_id, removed_label = remove.pk, f"#{remove.pk} {remove.name}"
    _with_history_user(remove, user, f"Merged into #{keep.pk}")
    remove.delete()  # first, so the unique NPI / external id can move to ``keep``
    for name, value in plan.filled.items():
        setattr(keep, name, value)
    _with_history_user(keep, user, f"Merged duplicate {removed_label}"[:100])
    keep.save()
    ListingMerge.objects.create(
        kept=keep,
        removed_id=removed_id,
        removed_name=remove.name,
        snapshot=_json_safe(snapshot),
        merged_by=user if user is not None and user.is_authenticated else None,
    )
    # Now, and again once committed: a count computed in between would be stale.
    forget_duplicates_count()
    transaction.on_commit(forget_duplicates_count)
    return keep


class _ExactEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder, but times keep their microseconds (an undo restores them exactly)."""

    def default(self, o: object) -> object:
        if isinstance(o, dt.datetime):
            return o.isoformat()
        return super().default(o)


def _json_safe(value):
    """Dates and decimals as text, so the snapshot fits a JSONField."""
    return json.loads(json.dumps(value, cls=_ExactEncoder))


@transaction.atomic
def undo_merge(*, merge: ListingMerge, user: User | None = None) -> Practitioner:
    """Put back the listing a merge removed, with its clinics, certificates and reports, and
    return the kept listing's blanks and certificates to what they were. Refused when done
    already or when the removed listing's NPI, external id or slug now belongs to another
    listing."""
    merge = ListingMerge.objects.select_for_update().get(pk=merge.pk)
    if merge.is_undone:
        raise MergeRefused("This merge was undone already.")
    snapshot = merge.snapshot
    keep = Practitioner.objects.select_for_update().get(pk=merge.kept_id)
    removed = next(serializers.deserialize("python", snapshot["removed"]))
    if Practitioner.objects.filter(pk=merge.removed_id).exists():
        raise MergeRefused(f"A listing #{merge.removed_id} exists again; nothing to restore.")
    reason = f"Merge with #{merge.removed_id} undone"
    # The kept listing gives back what the merge filled in, where it still holds that value.
    restored_fields = []
    for name, old in snapshot["filled"].items():
        attname = _attname(name)
        merged = removed.object.__dict__.get(attname)
        if getattr(keep, attname) == merged:
            setattr(keep, attname, old if old is not None else _blank(name))
            restored_fields.append(name)
    if restored_fields:
        _with_history_user(keep, user, reason)
        keep.save()
    for unique in ("npi", "external_id", "slug"):
        value = getattr(removed.object, unique)
        if value and Practitioner.objects.filter(**{unique: value}).exists():
            label = Practitioner._meta.get_field(unique).verbose_name
            raise MergeRefused(f"Cannot undo: another listing now has the {label} {value}.")
    _restore(removed.object, user, reason)
    for location_pk in snapshot["clinics_moved"]:
        location = Location.objects.filter(pk=location_pk, practitioner=keep).first()
        if location is not None:
            location.practitioner_id = merge.removed_id
            _with_history_user(location, user, reason)
            location.save()
    for record_pk in snapshot["records_moved"]:
        record = PractitionerCertification.objects.filter(pk=record_pk, practitioner=keep).first()
        if record is not None:
            record.practitioner_id = merge.removed_id
            _with_history_user(record, user, reason)
            record.save()
    for record_pk, old_values in snapshot["records_completed"].items():
        record = PractitionerCertification.objects.filter(pk=record_pk, practitioner=keep).first()
        if record is None:
            continue
        for name, old in old_values.items():
            record_field = PractitionerCertification._meta.get_field(name.removesuffix("_id"))
            setattr(record, name, record_field.to_python(old) if old is not None else None)
        _with_history_user(record, user, reason)
        record.save()
    for restored in serializers.deserialize("python", snapshot["clinics_dropped"]):
        _restore(restored.object, user, reason)
    for restored in serializers.deserialize("python", snapshot["records_dropped"]):
        _restore(restored.object, user, reason)
    ListingReport.objects.filter(pk__in=snapshot["reports_moved"], practitioner=keep).update(
        practitioner_id=merge.removed_id
    )
    merge.undone_at = timezone.now()
    merge.undone_by = user if user is not None and user.is_authenticated else None
    merge.save(update_fields=["undone_at", "undone_by"])
    # Now, and again once committed: a count computed in between would be stale.
    forget_duplicates_count()
    transaction.on_commit(forget_duplicates_count)
    return Practitioner.objects.get(pk=merge.removed_id)


def _attname(name: str) -> str:
    return Practitioner._meta.get_field(name).attname


def _restore(instance, user: User | None, reason: str) -> None:
    """Insert a removed row again under its old id, with a history entry saying why. A plain
    save, not a raw one, so the history records it; its creation time is put back after."""
    created_at = getattr(instance, "created_at", None)
    _with_history_user(instance, user, reason)
    instance.save(force_insert=True)
    if created_at is not None:
        type(instance).objects.filter(pk=instance.pk).update(created_at=created_at)


def _blank(name: str) -> object:
    model_field = Practitioner._meta.get_field(name)
    return None if model_field.null else ""
