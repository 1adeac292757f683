"""Resumable uploads (the tus 1.0 protocol): a large file arrives in chunks, survives a dropped
connection, and is handed whole to the feature it was sent for (mica.uploads.purposes).

The bytes are appended to one file in private storage (`tus/<uuid>`), so the private storage
must be a file system shared by the web processes (the `mica-data` volume).
"""

import os
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Sum
from django.utils import timezone

from mica.core.storage import private_storage


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
    def name(self):
        return f"tus/{self.uuid}"

    @property
    def path(self):
        return private_storage().path(self.name)

    @classmethod
    def open_bytes_of(cls, user):
        """Bytes the user has announced in uploads still receiving: the quota counts them."""
        return cls.objects.filter(owner=user, state=cls.State.RECEIVING).aggregate(n=Sum("length"))["n"] or 0

    @classmethod
    def start(cls, *, owner, purpose, target, filename, length):
        upload = cls.objects.create(owner=owner, purpose=purpose, target=target, filename=filename[:255],
                                    length=length, expires_at=timezone.now() + cls.lifetime())
        os.makedirs(os.path.dirname(upload.path), exist_ok=True)
        with open(upload.path, "xb"):
            pass
        return upload

    @staticmethod
    def lifetime():
        return timedelta(seconds=settings.MICA_UPLOAD_EXPIRY_SECONDS)

    @property
    def is_complete(self):
        return self.offset == self.length

    def delete_file(self):
        if private_storage().exists(self.name):
            private_storage().delete(self.name)

    def discard(self):
        self.delete_file()
        self.delete()

    @classmethod
    def sweep(cls, now=None):
        """Removes uploads past their expiry, with whatever bytes they still hold."""
        now = now or timezone.now()
        for upload in cls.objects.filter(expires_at__lt=now):
            upload.discard()
