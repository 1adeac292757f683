"""Dataset archives sent as resumable uploads (mica.uploads, the tus protocol): an archive of
many gigabytes survives a dropped connection, and the page shows its progress."""

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File

from .models import Dataset, Upload


def _organized_dataset(user, target):
    dataset_pk = str(target.get("dataset", ""))
    if not dataset_pk.isdigit():
        raise ValidationError("Upload-Metadata: 'dataset' must be the id of the dataset you upload to.")
    dataset = Dataset.objects.select_related("challenge").filter(pk=int(dataset_pk)).first()
    if dataset is None or not dataset.challenge.is_organizer(user):
        raise PermissionDenied("Only the organizers of a dataset's challenge upload studies to it.")
    return dataset


def admit_archive(user, target):
    """The dataset's organizers; the site's largest resumable upload."""
    _organized_dataset(user, target)
    return settings.MICA_UPLOAD_MAX_BYTES


def receive_archive(upload):
    """Stores the archive as the dataset's next upload and queues its anonymization."""
    dataset = _organized_dataset(upload.owner, upload.target)
    with upload.joined() as path, open(path, "rb") as handle:
        try:
            received = Upload.receive(dataset=dataset, user=upload.owner,
                                      uploaded_file=File(handle, name=upload.filename or "studies.zip"))
        except ValueError as error:
            raise ValidationError(str(error)) from error
    return received.get_absolute_url()
