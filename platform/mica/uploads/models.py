"""Resumable uploads (the tus 1.0 protocol): a large file arrives in chunks, survives a dropped
connection, and is handed whole to the feature it was sent for (mica.uploads.purposes).

Each chunk received is stored through the storage API as a part, `tus/<uuid>/<offset>`, so
that any web process (on any host) can take the next chunk; the parts are joined into one local
file when the feature takes the upload over.
"""

import os
import tempfile
import uuid
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Sum
from django.utils import timezone

from mica.core.storage import private_storage

from .files import COPY_BYTES


class ResumableUpload(models.Model):
    class State(models.TextChoices):
        RECEIVING = "receiving", "Receiving"
        RECEIVED = "received", "Received"
        REFUSED = "refused", "Refused"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="resumable_uploads")
    purpose = models.CharField(max_length=50)
    target = models.JSONField(default=dict, blank=True, help_text="What the purpose needs to know, e.g. the phase.")
    filename = models.CharField(max_length=255, blank=True)
    length = models.PositiveBigIntegerField()
    offset = models.PositiveBigIntegerField(default=0)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RECEIVING)
    result_url = models.CharField(max_length=300, blank=True)
    problems = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "state"]), models.Index(fields=["expires_at"])]

    def __str__(self):
        return f"{self.filename or self.uuid} ({self.offset}/{self.length} bytes)"

    @property
    def folder(self):
        return f"tus/{self.uuid}"

    def part_name(self, offset):
        # Zero-padded, so that the names sort as the offsets do.
        return f"{self.folder}/{offset:020d}"

    @classmethod
    def open_bytes_of(cls, user):
        """Bytes the user has announced in uploads still receiving: the quota counts them."""
        return cls.objects.filter(owner=user, state=cls.State.RECEIVING).aggregate(n=Sum("length"))["n"] or 0

    @classmethod
    def start(cls, *, owner, purpose, target, filename, length):
        return cls.objects.create(owner=owner, purpose=purpose, target=target, filename=filename[:255],
                                  length=length, expires_at=timezone.now() + cls.lifetime())

    @staticmethod
    def lifetime():
        return timedelta(seconds=settings.MICA_UPLOAD_EXPIRY_SECONDS)

    @property
    def is_complete(self):
        return self.offset == self.length

    def parts(self):
        storage = private_storage()
        return sorted(storage.listdir(self.folder)[1]) if storage.exists(self.folder) else []

    @contextmanager
    def joined(self):
        """The whole file, joined from its parts into a local temporary file, for the block; the
        block may move the file away (mica.uploads.files.store)."""
        storage = private_storage()
        handle, path = tempfile.mkstemp(prefix="mica-upload-")
        try:
            with os.fdopen(handle, "wb") as joined:
                for part in self.parts():
                    with storage.open(f"{self.folder}/{part}", "rb") as source:
                        while block := source.read(COPY_BYTES):
                            joined.write(block)
            yield path
        finally:
            if os.path.exists(path):
                os.remove(path)

    def delete_parts(self):
        storage = private_storage()
        for part in self.parts():
            storage.delete(f"{self.folder}/{part}")
        try:
            os.rmdir(storage.path(self.folder))  # a file-system storage keeps empty folders
        except (NotImplementedError, OSError):
            pass

    def discard(self):
        self.delete_parts()
        self.delete()

    @classmethod
    def sweep(cls, now=None):
        """Removes uploads past their expiry, with whatever bytes they still hold."""
        now = now or timezone.now()
        for upload in cls.objects.filter(expires_at__lt=now):
            upload.discard()
