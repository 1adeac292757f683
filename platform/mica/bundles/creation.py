"""A challenge created from a bundle's plan: all of it in one transaction, or nothing.

Truth files are written while the transaction runs (the test sets check them); if anything
fails they are deleted again, so a refused bundle leaves no row and no file behind.
"""

import csv
import io
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from mica.challenges.models import Case, Challenge, Phase, Split, TestSet

from .reading import BundleError


@dataclass
class ImportResult:
    challenge: Challenge
    unmapped: list = field(default_factory=list)  # what the source had that Mica did not take


def create_challenge(plan, bundle, *, user, slug=None, unmapped=(), source="challenge.yaml"):
    """Creates the challenge (a draft; the importing user organizes it) from a plan."""
    result_unmapped = list(unmapped)
    written = []
    try:
        with transaction.atomic():
            challenge = _challenge(plan["challenge"], user, slug, source)
            test_sets = {}
            for index, entry in enumerate(plan["test_sets"]):
                test_set = _test_set(challenge, entry, bundle, user, f"{source}: test_sets[{index}]", written)
                if test_set is None:
                    result_unmapped.append(f"test set {entry['name']!r}: no truth in the bundle; upload it, "
                                           "then create the phases that use it")
                else:
                    test_sets[entry["name"]] = test_set
            phases = {}
            for index, entry in enumerate(plan["phases"]):
                test_set = test_sets.get(entry["test_set"])
                if test_set is None:
                    result_unmapped.append(f"phase {entry['name']!r}: not created, its test set "
                                           f"{entry['test_set']!r} has no truth in the bundle")
                    continue
                phases[entry["name"]] = _phase(challenge, test_set, entry, f"{source}: phases[{index}]")
            for index, entry in enumerate(plan["phases"]):
                parent = entry.get("parent")
                if parent and entry["name"] in phases:
                    if parent not in phases:
                        raise BundleError([f"{source}: phases[{index}].parent: the phase {parent!r} was not created"])
                    phase = phases[entry["name"]]
                    phase.parent = phases[parent]
                    _checked(phase, f"{source}: phases[{index}]")
                    phase.save(update_fields=["parent"])
    except BaseException:
        for stored in written:
            stored.delete(save=False)
        raise
    return ImportResult(challenge=challenge, unmapped=result_unmapped)


def _challenge(data, user, slug, source):
    fields = {key: value for key, value in data.items() if key != "slug"}
    challenge = Challenge(slug=slug or data["slug"], state=Challenge.State.DRAFT, created_by=user, **fields)
    if Challenge.objects.filter(slug=challenge.slug).exists():
        raise BundleError([f"{source}: challenge.slug: this site already has a challenge {challenge.slug!r}; "
                           "import it under another slug"])
    _checked(challenge, f"{source}: challenge", exclude=["created_by"])
    challenge.save()
    challenge.add_organizer(user)
    return challenge


def _test_set(challenge, entry, bundle, user, where, written):
    if not entry.get("truth"):
        return None
    truth = bundle.read(entry["truth"], named_by=f"{where}.truth")
    name = entry["truth"].rsplit("/", 1)[-1]
    recorded = _recorded_split(bundle, entry, where) if entry.get("cases") else None
    patients = {case: patient for case, (_, patient) in (recorded or {}).items() if patient} or None
    try:
        test_set = TestSet.create_from_upload(
            challenge, entry["name"], SimpleUploadedFile(name, truth), user=user,
            private_fraction=entry.get("private_fraction", 0.5), seed=entry.get("split_seed"), patients=patients,
        )
    except ValidationError as error:
        raise BundleError([f"{where}.truth: {message}" for message in error.messages]) from None
    written.extend(version.file for version in test_set.versions.all())
    test_set.split_stratified = entry.get("split_stratified", True)
    test_set.save(update_fields=["split_stratified"])
    if recorded is not None:  # the split exactly as it was, whatever this site's splitter would do
        if set(recorded) != set(test_set.case_ids()):
            raise BundleError([f"{where}.cases: names other cases than the truth"])
        for split in Split.values:
            Case.objects.filter(test_set=test_set, case_id__in=[c for c, (s, _) in recorded.items() if s == split]) \
                .update(split=split)
    return test_set


def _recorded_split(bundle, entry, where):
    text = bundle.text(entry["cases"], named_by=f"{where}.cases")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or rows[0] != ["case_id", "split", "patient"]:
        raise BundleError([f"{entry['cases']}, row 1: expected the header case_id,split,patient"])
    recorded = {}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != 3 or row[1] not in Split.values:
            raise BundleError([f"{entry['cases']}, row {number}: expected case_id, public or private, patient"])
        recorded[row[0]] = (row[1], row[2])
    return recorded


def _phase(challenge, test_set, entry, where):
    fields = {key: value for key, value in entry.items() if key not in {"test_set", "parent"}}
    phase = Phase(challenge=challenge, test_set=test_set, **fields)
    _checked(phase, where)
    phase.save()
    return phase


def _checked(instance, where, exclude=()):
    try:
        instance.full_clean(exclude=list(exclude) + (["challenge", "test_set", "parent"] if isinstance(instance, Phase)
                                                     else []))
    except ValidationError as error:
        raise BundleError([f"{where}.{key}: {message}" for key, messages in error.message_dict.items()
                           for message in messages]) from None
