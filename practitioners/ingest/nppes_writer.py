"""Writing the NPI registry's rows as listings: create, update what the registry owns, suspend
a deactivated NPI, and sync the secondary practice locations. The rules that make a monthly
re-run safe are in ``nppes``'s docstring; each is kept here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from array import array

from django.db.models import QuerySet
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from ..geocoding import place_at_zip_centroid
from ..models import Location, Practitioner, Profession, same_clinic_key, unique_listing_slugs
from .bulk import forget_queries
from .nppes_reader import (
    BATCH_SIZE,
    GEOCODE_FIELDS,
    LOCATION_FIELDS,
    PRACTICE_KEY,
    SECONDARY_PREFIX,
    NppesReport,
    Row,
    Skip,
)


def secondary_key(address_line1: str, postal_code: str) -> str:
    street, zip5 = same_clinic_key(address_line1, postal_code)
    return SECONDARY_PREFIX + hashlib.sha1(f"{street}|{zip5}".encode()).hexdigest()[:20]


def _new_location(practitioner_id: int | None, values: dict, key: str) -> Location:
    location = Location(
        practitioner_id=practitioner_id,
        source=Location.Source.NPPES,
        nppes_key=key,
        precision=Location.Precision.ZIP,
        geocode_status=Location.GeocodeStatus.PENDING,
        **values,
    )
    place_at_zip_centroid(location, leave_pending=True)  # geocode_locations places it later
    return location


def _merge(current: dict, new: dict, written: dict | None) -> tuple[dict, dict, int]:
    """Per field: take the file's value where the current one is still what the file last
    wrote (or is empty and the file never wrote it); keep staff corrections.
    Returns (changed fields, new written values, staff values kept)."""
    written = dict(written or {})
    changes: dict = {}
    kept = 0
    for name, value in new.items():
        have = current[name]
        if have == value:
            written[name] = value  # in step again, so later changes flow
        elif have == written.get(name, "") or (name not in written and have in ("", None)):
            changes[name] = value
            written[name] = value
        else:
            kept += 1
    return changes, written, kept


def _by_npi(npis: list[str]) -> QuerySet[Practitioner]:
    # Restating the unique index's condition (npi <> '') lets the database use that partial
    # index for a long IN list, which it cannot prove implies the condition by itself.
    return Practitioner.objects.exclude(npi="").filter(npi__in=npis)


class Writer:
    """Writes batches of rows: a fixed handful of queries per batch, whatever its size."""

    def __init__(
        self, report: NppesReport, *, status: str, track_locations: bool, run_date: dt.date
    ) -> None:
        self.report = report
        self.status = status
        self.track_locations = track_locations
        self.professions = {p.pk: p for p in Profession.objects.only("pk", "slug", "name")}
        self.profession_ids = {p.slug: pk for pk, p in self.professions.items()}
        self.change_reason = f"NPI registry import {run_date:%Y-%m-%d}"
        # NPIs whose secondary locations the --locations pass may sync (matched, not older
        # than the listing), packed 8 bytes each: several hundred thousand in a few MB.
        self.eligible_npis = array("q")
        self.started_at = timezone.now()

    def write(self, rows: list[Row]) -> None:
        report = self.report
        existing = {p.npi: p for p in _by_npi([row.npi for row in rows])}
        locations: dict[int, list[Location]] = {}
        for location in Location.objects.filter(
            practitioner_id__in=[p.pk for p in existing.values()]
        ):
            locations.setdefault(location.practitioner_id, []).append(location)

        now = timezone.now()
        new_practitioners: list[tuple[Practitioner, Row]] = []
        changed: list[Practitioner] = []  # what the public sees changed: saved with history
        touched: list[Practitioner] = []  # only our bookkeeping (file date, nppes_values)
        new_locations: list[Location] = []
        changed_locations: list[Location] = []
        seen: set[str] = set()
        for row in rows:
            if row.npi in seen:  # the file lists each NPI once; never trust that blindly
                continue
            seen.add(row.npi)
            practitioner = existing.get(row.npi)
            if row.deactivated_on:
                if practitioner is None:
                    report.skipped[Skip.DEACTIVATED] += 1
                    continue
                before = practitioner.nppes_values
                if self._suspend(practitioner, row):
                    practitioner.updated_at = now
                    changed.append(practitioner)
                else:
                    report.unchanged += 1
                    if practitioner.nppes_values != before:
                        touched.append(practitioner)
                continue
            profession = self.professions[row.profession_id]
            if practitioner is None:
                report.matched[profession.name] += 1
                new_practitioners.append((self._new_practitioner(row), row))
                continue
            stored = practitioner.source_updated_on
            if stored is not None and (row.last_update is None or row.last_update < stored):
                report.skipped[Skip.OLDER] += 1
                continue
            report.matched[profession.name] += 1
            if self.track_locations:
                self.eligible_npis.append(int(row.npi))
            visible = False
            before = practitioner.nppes_values
            licences_before = practitioner.licences
            if stored is None or row.last_update > stored:
                visible = self._update(practitioner, row, profession.slug)
                own = locations.get(practitioner.pk, [])
                location = self._update_practice_location(practitioner, row, own)
                if location is not None and location.pk is None:
                    new_locations.append(location)
                elif location is not None:
                    location.updated_at = now
                    changed_locations.append(location)
                visible = visible or location is not None
            if visible:
                practitioner.updated_at = now
                changed.append(practitioner)
                report.updated += 1
                continue
            report.unchanged += 1
            if (
                practitioner.nppes_values != before
                or practitioner.source_updated_on != stored
                or practitioner.licences != licences_before
            ):
                touched.append(practitioner)

        self._create(new_practitioners, new_locations)
        if changed:
            bulk_update_with_history(
                changed,
                Practitioner,
                [
                    "name",
                    "credentials",
                    "phone",
                    "gender",
                    "profession",
                    "status",
                    "status_reason",
                    "source_updated_on",
                    "nppes_values",
                    "licences",
                    "updated_at",
                ],
                default_change_reason=self.change_reason,
            )
        if touched:
            Practitioner.objects.bulk_update(
                touched, ["source_updated_on", "nppes_values", "licences"]
            )
        if changed_locations:
            bulk_update_with_history(
                changed_locations,
                Location,
                [*LOCATION_FIELDS, *GEOCODE_FIELDS, "updated_at"],
                default_change_reason=self.change_reason,
            )
            report.locations_updated += len(changed_locations)

    def _suspend(self, practitioner: Practitioner, row: Row) -> bool:
        """Suspend once per deactivation: if staff later reinstate the listing, the same file
        next month does not suspend it again. True when the listing was suspended now."""
        reason = f"NPI deactivated {row.deactivated_on:%m/%d/%Y}"
        if practitioner.nppes_values.get("status_reason") == reason:
            return False
        practitioner.nppes_values = {**practitioner.nppes_values, "status_reason": reason}
        if practitioner.status == Practitioner.Status.SUSPENDED:
            return False  # staff got there first; their reason stays
        practitioner.status = Practitioner.Status.SUSPENDED
        practitioner.status_reason = reason
        self.report.suspended += 1
        return True

    def _new_practitioner(self, row: Row) -> Practitioner:
        profession = self.professions[row.profession_id]
        return Practitioner(
            npi=row.npi,
            profession_id=row.profession_id,
            status=self.status,
            source=Practitioner.Source.NPPES,
            source_updated_on=row.last_update,
            nppes_values={
                **row.values,
                "profession": profession.slug,
                "location": dict(row.location),
            },
            licences=row.licences,
            **row.values,
        )

    def _update(self, practitioner: Practitioner, row: Row, profession_slug: str) -> bool:
        """Apply a newer row to what NPPES owns; True when a value the public sees changed."""
        current = {
            "name": practitioner.name,
            "credentials": practitioner.credentials,
            "phone": practitioner.phone,
            "gender": practitioner.gender,
            "profession": self.professions[practitioner.profession_id].slug
            if practitioner.profession_id in self.professions
            else None,
        }
        new = {**row.values, "profession": profession_slug}
        changes, written, kept = _merge(current, new, practitioner.nppes_values)
        self.report.staff_values_kept += kept
        for name, value in changes.items():
            if name == "profession":
                practitioner.profession_id = self.profession_ids[value]
            else:
                setattr(practitioner, name, value)
        practitioner.nppes_values = {**practitioner.nppes_values, **written}
        practitioner.source_updated_on = row.last_update
        # The registry's licences are the registry's alone (claims are checked against them).
        practitioner.licences = row.licences
        return bool(changes)

    def _update_practice_location(
        self, practitioner: Practitioner, row: Row, own: list[Location]
    ) -> Location | None:
        """The practice location to create or save, if anything changed."""
        written = practitioner.nppes_values.get("location")
        practice = next((loc for loc in own if loc.nppes_key == PRACTICE_KEY), None)
        new_key = same_clinic_key(row.location["address_line1"], row.location["postal_code"])
        if practice is None:
            same_as_written = written is not None and new_key == same_clinic_key(
                written.get("address_line1", ""), written.get("postal_code", "")
            )
            listed = any(
                same_clinic_key(loc.address_line1, loc.postal_code) == new_key for loc in own
            )
            practitioner.nppes_values = {
                **practitioner.nppes_values,
                "location": dict(row.location),
            }
            if same_as_written or listed:
                return None  # staff removed it, or already list this address themselves
            return _new_location(practitioner.pk, row.location, PRACTICE_KEY)
        current = {name: getattr(practice, name) for name in LOCATION_FIELDS}
        changes, values, kept = _merge(current, row.location, written)
        self.report.staff_values_kept += kept
        practitioner.nppes_values = {**practitioner.nppes_values, "location": values}
        if not changes:
            return None
        for name, value in changes.items():
            setattr(practice, name, value)
        moved = {"address_line1", "postal_code", "city"} & changes.keys()
        if moved and practice.precision != Location.Precision.MANUAL:
            # A new address: back to its ZIP centroid until geocode_locations places it (the
            # old coordinates belong to the old address, so none at all for an unknown ZIP).
            if not place_at_zip_centroid(practice, leave_pending=True):
                practice.latitude = practice.longitude = None
            practice.precision = Location.Precision.ZIP
        return practice

    def _create(self, new: list[tuple[Practitioner, Row]], new_locations: list[Location]) -> None:
        if new:
            self._assign_slugs(new)
            practitioners = [p for p, _ in new]
            Practitioner.objects.bulk_create(practitioners)
            if any(p.pk is None for p in practitioners):  # backends that return no ids
                ids = dict(_by_npi([p.npi for p in practitioners]).values_list("npi", "pk"))
                for practitioner in practitioners:
                    practitioner.pk = ids[practitioner.npi]
            for practitioner, row in new:
                new_locations.append(_new_location(practitioner.pk, row.location, PRACTICE_KEY))
                if self.track_locations:
                    self.eligible_npis.append(int(practitioner.npi))
            self.report.created += len(new)
        if new_locations:
            Location.objects.bulk_create(new_locations)
            self.report.locations_created += len(new_locations)

    def _assign_slugs(self, new: list[tuple[Practitioner, Row]]) -> None:
        slugs = unique_listing_slugs([(p.name, row.location["city"], p.npi) for p, row in new])
        for (practitioner, _), slug in zip(new, slugs, strict=True):
            practitioner.slug = slug

    # --- secondary practice locations (pl_pfile) ---

    def sync_secondary_locations(self, by_npi: dict[int, list[tuple[str, ...]]]) -> None:
        """Add the file's secondary locations, remove NPPES ones the file no longer lists
        (unless pinned by hand); a location staff deleted is not added back."""
        npis = self.eligible_npis
        now = timezone.now()
        for start in range(0, len(npis), BATCH_SIZE):
            chunk = npis[start : start + BATCH_SIZE]
            practitioners = list(
                _by_npi([f"{n:010d}" for n in chunk]).only(
                    "pk", "npi", "nppes_values", "updated_at"
                )
            )
            own: dict[int, list[Location]] = {}
            for location in Location.objects.filter(
                practitioner_id__in=[p.pk for p in practitioners]
            ):
                own.setdefault(location.practitioner_id, []).append(location)
            to_create: list[Location] = []
            to_delete: list[int] = []
            changed: list[Practitioner] = []
            for practitioner in practitioners:
                npi = int(practitioner.npi)
                in_file = {}
                for packed in by_npi.get(npi, []):
                    values = dict(zip(LOCATION_FIELDS, packed, strict=True))
                    in_file.setdefault(
                        secondary_key(values["address_line1"], values["postal_code"]), values
                    )
                written = set(practitioner.nppes_values.get("secondary_locations", []))
                if not in_file and not written:
                    continue
                mine = own.get(practitioner.pk, [])
                present = {loc.nppes_key: loc for loc in mine if loc.nppes_key}
                addresses = {loc.clinic_key for loc in mine}
                for key, values in in_file.items():
                    address = same_clinic_key(values["address_line1"], values["postal_code"])
                    if key in written or key in present or address in addresses:
                        continue
                    addresses.add(address)
                    to_create.append(_new_location(practitioner.pk, values, key))
                for key in written - in_file.keys():
                    location = present.get(key)
                    if (
                        location is not None
                        and location.source == Location.Source.NPPES
                        and location.precision != Location.Precision.MANUAL
                    ):
                        to_delete.append(location.pk)
                if written != set(in_file):
                    practitioner.nppes_values = {
                        **practitioner.nppes_values,
                        "secondary_locations": sorted(in_file),
                    }
                    if practitioner.updated_at < self.started_at:
                        # Counted unchanged by the main pass (which would have stamped it).
                        self.report.unchanged -= 1
                        self.report.updated += 1
                    practitioner.updated_at = now
                    changed.append(practitioner)
            if to_create:
                Location.objects.bulk_create(to_create)
                self.report.locations_created += len(to_create)
            if to_delete:
                Location.objects.filter(pk__in=to_delete).delete()
                self.report.locations_removed += len(to_delete)
            if changed:
                Practitioner.objects.bulk_update(changed, ["nppes_values", "updated_at"])
            forget_queries()
