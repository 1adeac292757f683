"""Archives of a challenge's data for its participants, and the log of who downloaded them.

A release is one archive: the training cases with their labels, or the test cases' images
without labels. A task reads every file once and writes the manifest (names, sizes, CRC-32s);
from then on the archive is streamed as it is built, byte for byte the same on every request,
so an interrupted download resumes with an HTTP Range request.
"""

import csv
import hashlib
import io
import json
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.urls import reverse

from mica.annotations.downloads import image_files
from mica.challenges.models import Case as TestCase
from mica.core.models import LeasedWork, leased_work_moves
from mica.core.storage import private_storage

from .archive import Entry, StoredZip


def _labels_path(release, filename):
    return f"releases/{release.challenge_id}/{release.uuid}-labels.csv"


class DataRelease(LeasedWork):
    class Kind(models.TextChoices):
        TRAINING = "training", "Training cases with their labels"
        TEST = "test", "Test images, without labels"

    class ImageFormat(models.TextChoices):
        # As RSNA served its pneumonia data: DICOM datasets also as PNG, PNG datasets also as DICOM.
        DICOM = "dicom", "DICOM"
        PNG = "png", "PNG"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PREPARING = "preparing", "Preparing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    TRANSITIONS = leased_work_moves(Status.QUEUED, Status.PREPARING, Status.FAILED, Status.READY)
    WAITING, RUNNING, FAILED = Status.QUEUED, Status.PREPARING, Status.FAILED

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    challenge = models.ForeignKey("challenges.Challenge", on_delete=models.CASCADE, related_name="data_releases")
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.CASCADE, related_name="releases")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    test_set = models.ForeignKey("challenges.TestSet", on_delete=models.CASCADE, null=True, blank=True,
                                 related_name="releases", help_text="Test releases: whose cases the archive holds.")
    labels = models.FileField(storage=private_storage, upload_to=_labels_path, blank=True, max_length=300,
                              help_text="Training releases: a CSV whose first column is case_id.")
    image_format = models.CharField(max_length=8, choices=ImageFormat.choices, default=ImageFormat.DICOM)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    manifest = models.JSONField(default=list, blank=True, editable=False)  # [[name, source, size, crc32], ...]
    size = models.PositiveBigIntegerField(null=True, blank=True)
    n_cases = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "name"]
        constraints = [models.UniqueConstraint(fields=["challenge", "name"], name="release_names_unique_per_challenge")]

    def __str__(self):
        return f"{self.challenge}: {self.name}"

    def get_absolute_url(self):
        return reverse("data-release-archive", args=[self.pk])

    @classmethod
    def task(cls):
        from .tasks import prepare_release

        return prepare_release

    @classmethod
    def create(cls, *, challenge, dataset, name, kind, user, test_set=None, labels=None, image_format=ImageFormat.DICOM):
        """Checks what can be checked at once, stores the release and queues its manifest."""
        if dataset.challenge_id != challenge.pk:
            raise ValidationError({"dataset": "The dataset belongs to another challenge."})
        if kind == cls.Kind.TEST:
            if test_set is None or test_set.challenge_id != challenge.pk:
                raise ValidationError({"test_set": "A test release names a test set of this challenge."})
            if labels:
                raise ValidationError({"labels": "A test release carries no labels."})
        elif kind == cls.Kind.TRAINING:
            if labels is None:
                raise ValidationError({"labels": "A training release needs its labels (a CSV whose first column is case_id)."})
            test_set = None
        else:
            raise ValidationError({"kind": f"{kind!r} is not a kind of release."})
        if image_format not in cls.ImageFormat.values:
            raise ValidationError({"image_format": f"{image_format!r} is not an image format; use dicom or png."})
        if cls.objects.filter(challenge=challenge, name=name).exists():
            raise ValidationError({"name": f"This challenge already has a release named {name!r}."})
        release = cls(challenge=challenge, dataset=dataset, name=name, kind=kind,
                      test_set=test_set, image_format=image_format, created_by=user)
        if labels is not None:
            release.labels.save("labels.csv", labels, save=False)
        try:
            with transaction.atomic():
                release.save()
                release.dispatch_on_commit()
        except BaseException:
            if release.labels:
                release.labels.delete(save=False)
            raise
        return release

    def delete_with_files(self):
        """Deletes the release (its download log with it) and, once committed, the files made for it."""
        made = [row[1] for row in self.manifest if row[1].startswith(f"releases/{self.challenge_id}/{self.uuid}/")]
        labels = self.labels.name if self.labels else None
        with transaction.atomic():
            self.delete()
            transaction.on_commit(lambda: [private_storage().delete(name) for name in [*made, labels] if name])

    # -- what the archive holds -------------------------------------------------------------
    def case_ids(self):
        """The cases of the release; ValueError names what does not fit."""
        if self.kind == self.Kind.TEST:
            return sorted(self.test_set.case_ids())
        with private_storage().open(self.labels.name, "rb") as handle:
            rows = list(csv.reader(io.StringIO(handle.read().decode("utf-8-sig"))))
        if not rows or not rows[0] or rows[0][0].strip() != "case_id":
            raise ValueError("labels.csv, row 1: the first column must be case_id")
        case_ids = [row[0].strip() for row in rows[1:] if row and row[0].strip()]
        seen = set()
        for row_number, case_id in enumerate(case_ids, start=2):
            if case_id in seen:
                raise ValueError(f"labels.csv, row {row_number}: a case named twice")
            seen.add(case_id)
        # Training labels must never reach a test case: that would publish hidden truth.
        hidden = TestCase.objects.filter(test_set__challenge=self.challenge_id, case_id__in=seen).count()
        if hidden:
            raise ValueError(f"labels.csv names {hidden} case(s) of a hidden test set; "
                             "training labels cannot include test cases")
        return sorted(seen)

    def files(self):
        """(name in the archive, source) for every file of the archive, in order. A source is a
        name in private storage, or a function returning a binary file object for content made
        here (a case list; later, converted images), which the manifest stores first."""
        wanted = self.case_ids()
        cases = {case.case_id: case for case in self.dataset.cases.filter(case_id__in=wanted)}
        missing = [case_id for case_id in wanted if case_id not in cases]
        if missing:
            raise ValueError(f"{len(missing)} case(s) are not in the dataset {self.dataset.name!r}, "
                             f"e.g. {missing[0]!r}")
        if self.kind == self.Kind.TRAINING:
            yield "labels.csv", self.labels.name
        else:
            yield "cases.csv", lambda: io.BytesIO(("case_id\n" + "".join(f"{c}\n" for c in wanted)).encode())
        for case_id in wanted:
            case = cases[case_id]
            for instance in case.instances:
                for image in image_files(case, instance, self.image_format):
                    yield image.name, image.stored_name or image.open

    def build_manifest(self):
        """Every entry of the archive with its size and CRC-32 (reads each file once), and the
        number of cases; content made here is stored under releases/<challenge>/<release>/."""
        from .archive import crc32_of

        storage = private_storage()
        entries, case_ids = [], set()
        for name, source in self.files():
            if callable(source):
                stored = f"releases/{self.challenge_id}/{self.uuid}/{name}"
                if storage.exists(stored):  # a retried preparation
                    storage.delete(stored)
                with source() as handle:
                    source = storage.save(stored, handle)
            with storage.open(source, "rb") as handle:
                crc, size = crc32_of(handle)
            entries.append([name, source, size, crc])
            if name.startswith("images/"):
                case_ids.add(name.split("/")[1])
        return entries, len(case_ids)

    @property
    def archive(self):
        return StoredZip([Entry(*row) for row in self.manifest])

    @property
    def etag(self):
        """A strong validator: the same manifest gives the same bytes."""
        digest = hashlib.sha256(json.dumps(self.manifest).encode()).hexdigest()[:32]
        return f'"{digest}"'

    @property
    def filename(self):
        return f"{self.challenge.slug}-{self.kind}-{self.image_format}.zip"

    def can_be_downloaded_by(self, user):
        """Participants who accepted the terms (and were approved) and the organizers."""
        challenge = self.challenge
        return challenge.is_organizer(user) or (challenge.is_published and challenge.is_participant(user))


class DownloadRecord(models.Model):
    """One request for an archive: who, what, which bytes were asked and how many were sent."""

    release = models.ForeignKey(DataRelease, on_delete=models.CASCADE, related_name="downloads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    started_at = models.DateTimeField(auto_now_add=True)
    range_start = models.PositiveBigIntegerField()
    range_end = models.PositiveBigIntegerField()  # inclusive
    bytes_sent = models.PositiveBigIntegerField(default=0)
    completed = models.BooleanField(default=False)

    class Meta:
        ordering = ["-started_at"]

    @property
    def bytes_asked(self):
        return self.range_end - self.range_start + 1
