"""Datasets of anonymized images, and the uploads that fill them.

An upload is stored privately, anonymized by a task on the ``ingest`` queue, and deleted once
processed: only anonymized files and previews remain, indexed by pseudonymous patient, study,
series and instance. Quarantined files are listed for the organizers with their reasons.
"""

import uuid

from django.conf import settings
from django.db import models, transaction
from django.urls import reverse

import anonymizer
from mica.core.models import LeasedWork, leased_work_moves
from mica.core.storage import private_storage


def _upload_path(upload, filename):
    return f"uploads/{upload.dataset_id}/{upload.uuid}.zip"


class CaseLevel(models.TextChoices):
    INSTANCE = "instance", "One image (instance)"
    SERIES = "series", "One series"
    STUDY = "study", "One study"


class Dataset(models.Model):
    challenge = models.ForeignKey("challenges.Challenge", on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    # The anonymization key: the same original UID or patient always maps to the same pseudonym
    # across uploads of this dataset. Never shown; losing it breaks linkage of later uploads.
    anonymization_key = models.BinaryField(default=anonymizer.new_key, editable=False)
    # Per-upload limits, so that one upload cannot hold an ingest worker for long or take its memory.
    max_files_per_upload = models.PositiveIntegerField(
        default=anonymizer.tree.DEFAULT_MAX_FILES, help_text="Files of one upload beyond this many are quarantined, unread.")
    max_decoded_pixels = models.PositiveBigIntegerField(
        default=anonymizer.tree.DEFAULT_MAX_DECODED_PIXELS,
        help_text="An image with more pixels than this is quarantined rather than decoded.")
    visible_to_participants = models.BooleanField(
        default=False, help_text="Participants may browse and download the anonymized images."
    )
    case_level = models.CharField(
        max_length=8, choices=CaseLevel.choices, default=CaseLevel.INSTANCE,
        help_text="What one case is: an image, a series or a study. PNG and JPEG images are always one case each.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("datasets:detail", args=[self.pk])

    def dependents(self):
        """What deleting the dataset would break: it is deleted only while this is empty."""
        found = []
        n_projects = self.annotation_projects.count()
        if n_projects:
            found.append(f"{n_projects} annotation project{'s' if n_projects != 1 else ''}")
        busy = self.uploads.filter(status__in=[Upload.Status.RECEIVED, Upload.Status.PROCESSING]).count()
        if busy:
            found.append(f"{busy} upload{'s' if busy != 1 else ''} being anonymized")
        return found

    def delete_with_files(self):
        """Deletes the dataset and, once that is committed, its anonymized files and previews."""
        files = [field for instance in self.instances.all() for field in (instance.file, instance.preview) if field]
        with transaction.atomic():
            self.delete()
            transaction.on_commit(lambda: [field.delete(save=False) for field in files])

    def can_be_viewed_by(self, user):
        """Organizers; participants once the dataset is opened to them; readers of its annotation projects."""
        challenge = self.challenge
        return (
            challenge.is_organizer(user)
            or (self.visible_to_participants and challenge.is_participant(user))
            or (user.is_authenticated and self.annotation_projects.filter(readers__user=user).exists())
        )

    def index_cases(self):
        """Creates the missing cases from the stored instances (idempotent; run after each ingest)."""
        from .cases import index_cases

        return index_cases(self)


class Upload(LeasedWork):
    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSING = "processing", "Anonymizing"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"

    TRANSITIONS = leased_work_moves(Status.RECEIVED, Status.PROCESSING, Status.FAILED, Status.PROCESSED)
    WAITING, RUNNING, FAILED = Status.RECEIVED, Status.PROCESSING, Status.FAILED

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="uploads")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    file = models.FileField(storage=private_storage, upload_to=_upload_path, blank=True)
    original_filename = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RECEIVED)
    files_done = models.PositiveIntegerField(default=0)
    files_total = models.PositiveIntegerField(null=True, blank=True)
    action_counts = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.original_filename} ({self.status})"

    def get_absolute_url(self):
        return reverse("datasets:upload", args=[self.uuid])

    @classmethod
    def receive(cls, *, dataset, user, uploaded_file):
        """Stores the .zip privately and queues its anonymization."""
        if not uploaded_file.name.lower().endswith(".zip"):
            raise ValueError(f"{uploaded_file.name}: upload a .zip of DICOM, PNG or JPEG files.")
        if uploaded_file.size == 0:
            raise ValueError(f"{uploaded_file.name}: the file is empty (0 bytes).")
        upload = cls(dataset=dataset, uploaded_by=user, original_filename=uploaded_file.name[:255])
        upload.file.save("upload.zip", uploaded_file, save=False)
        try:
            with transaction.atomic():
                upload.save()
                upload.dispatch_on_commit()
        except BaseException:
            upload.file.delete(save=False)
            raise
        return upload

    @classmethod
    def task(cls):
        from .tasks import ingest_upload

        return ingest_upload

    def too_many_attempts_reason(self):
        return f"Anonymizing it stopped its worker {self.attempts} times; the organizers have been told."

    def watchers(self):
        from mica.notifications.models import organizers_of

        return organizers_of(self.dataset.challenge)

    def record_progress(self, done, total):
        type(self).objects.filter(pk=self.pk).update(files_done=done, files_total=total)

    @property
    def progress_percent(self):
        if not self.files_total:
            return 0
        return round(100 * self.files_done / self.files_total)


class Study(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="studies")
    study_uid = models.CharField(max_length=64)
    patient_pseudonym = models.CharField(max_length=64, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "study_uid"], name="study_unique_per_dataset")]
        ordering = ["patient_pseudonym", "study_uid"]
        verbose_name_plural = "studies"


class Series(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_uid = models.CharField(max_length=64)
    modality = models.CharField(max_length=16, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "series_uid"], name="series_unique_per_study")]
        ordering = ["series_uid"]
        verbose_name_plural = "series"


class Instance(models.Model):
    """One anonymized image file (DICOM instance, or PNG/JPEG image)."""

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances", null=True, blank=True)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="instances")
    upload = models.ForeignKey(Upload, on_delete=models.SET_NULL, null=True, related_name="instances")
    uid = models.CharField(max_length=100, help_text="The new SOP Instance UID, or the new file name of a PNG/JPEG.")
    kind = models.CharField(max_length=8)
    file = models.FileField(storage=private_storage, max_length=300)
    preview = models.FileField(storage=private_storage, max_length=300, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "uid"], name="instance_unique_per_dataset")]
        ordering = ["uid"]


class QuarantinedFile(models.Model):
    """A file of an upload that could not be made safe, kept out of the dataset."""

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="quarantined")
    source = models.CharField(max_length=1000, help_text="Its path inside the upload.")
    reason = models.TextField()

    class Meta:
        ordering = ["source"]


class Case(models.Model):
    """What one reader reads and one label is given to: an instance, a series or a study,
    named by its anonymized UID (or, for a PNG/JPEG image, its anonymized file name)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="cases")
    case_id = models.CharField(max_length=100)
    level = models.CharField(max_length=8, choices=CaseLevel.choices)
    patient_pseudonym = models.CharField(max_length=64, db_index=True)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    series = models.ForeignKey(Series, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "case_id"], name="case_unique_per_dataset")]
        ordering = ["patient_pseudonym", "case_id"]

    def __str__(self):
        return self.case_id

    @property
    def instances(self):
        """The case's images, in the order a reader scrolls them."""
        if self.level == CaseLevel.INSTANCE:
            return Instance.objects.filter(pk=self.instance_id)
        if self.level == CaseLevel.SERIES:
            return Instance.objects.filter(series=self.series_id).order_by("uid")
        return Instance.objects.filter(series__study=self.study_id).order_by("series__series_uid", "uid")


class DicomWebPull(LeasedWork):
    """Studies pulled from a hospital's DICOMweb server into a dataset, as an upload: everything
    then passes through the anonymizer. The query (original UIDs, patient ID…) identifies, so it
    is kept in private storage until the pull has run, never in the database."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PULLING = "pulling", "Pulling"
        RECEIVED = "received", "Received: anonymizing"
        FAILED = "failed", "Failed"

    TRANSITIONS = leased_work_moves(Status.QUEUED, Status.PULLING, Status.FAILED, Status.RECEIVED)
    WAITING, RUNNING, FAILED = Status.QUEUED, Status.PULLING, Status.FAILED

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="pulls")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    source = models.URLField(help_text="The DICOMweb base URL, one of MICA_DICOMWEB_SOURCES.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    studies_total = models.PositiveIntegerField(default=0)
    instances_received = models.PositiveIntegerField(default=0)
    upload = models.ForeignKey(Upload, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    @property
    def query_path(self):
        return f"pulls/{self.dataset_id}/{self.uuid}.json"

    @classmethod
    def task(cls):
        from .pull import pull_studies

        return pull_studies
