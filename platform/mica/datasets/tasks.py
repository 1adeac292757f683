"""Anonymization of uploads on the ``ingest`` queue."""

import io
import logging
import shutil
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import transaction

import anonymizer
from mica.core.storage import local_path
from mica.core.tasks import mica_task

from .cases import record_original_identifiers
from .models import Instance, QuarantinedFile, Series, Study, Upload

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 0.5


@mica_task(queue="ingest")
def ingest_upload(upload_pk):
    upload = Upload.objects.select_related("dataset").filter(pk=upload_pk).first()
    if upload is None or not upload.claim("Anonymizing."):
        return  # ended, or held by a live lease of another worker
    Upload.objects.filter(pk=upload.pk).update(files_done=0)

    work_dir = Path(tempfile.mkdtemp(prefix="ingest-", dir=_scratch_dir()))
    try:
        with upload.lease_held(), local_path(upload.file) as original:
            report = anonymizer.anonymize_tree(
                original, work_dir / "out", key=bytes(upload.dataset.anonymization_key),
                progress=_throttled_progress(upload), keep_uid_map=True,
                max_files=upload.dataset.max_files_per_upload, max_decoded_pixels=upload.dataset.max_decoded_pixels,
            )
            _store(upload, report, work_dir / "out")
    except Exception as error:  # the anonymizer names what was wrong with the upload as a whole
        logger.exception("ingesting upload %s failed", upload.pk)
        _discard_original(upload)
        upload.finish(Upload.Status.FAILED, f"The upload could not be processed: {error}")
        return
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)

    _discard_original(upload)
    anonymized = sum(outcome.status == "anonymized" for outcome in report.files)
    quarantined = len(report.files) - anonymized
    upload.finish(
        Upload.Status.PROCESSED,
        f"{anonymized} file{'s' if anonymized != 1 else ''} anonymized, {quarantined} quarantined.",
        action_counts=report.action_counts,
        files_done=len(report.files),
        files_total=len(report.files),
    )


def _scratch_dir():
    path = Path(settings.VAR_DIR) / "scratch"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _throttled_progress(upload):
    last_write = 0.0

    def progress(done, total):
        nonlocal last_write
        now = time.monotonic()
        if done == total or now - last_write >= PROGRESS_INTERVAL_SECONDS:
            upload.record_progress(done, total)
            last_write = now

    return progress


def _store(upload, report, out_dir):
    """Indexes and stores the anonymized files; safe to run again for the same upload."""
    dataset = upload.dataset
    with transaction.atomic():
        QuarantinedFile.objects.filter(upload=upload).delete()
        QuarantinedFile.objects.bulk_create(
            QuarantinedFile(upload=upload, source=outcome.source, reason=outcome.reason or "")
            for outcome in report.files
            if outcome.status != "anonymized"
        )
        for outcome in report.files:
            if outcome.status == "anonymized":
                _store_instance(dataset, upload, outcome, out_dir / outcome.output)
        record_original_identifiers(upload, report)
        dataset.index_cases()


def _store_instance(dataset, upload, outcome, path):
    series = None
    if outcome.kind == "dicom":
        study, _ = Study.objects.get_or_create(
            dataset=dataset, study_uid=outcome.study_uid, defaults={"patient_pseudonym": outcome.patient_pseudonym}
        )
        series, _ = Series.objects.get_or_create(
            study=study, series_uid=outcome.series_uid, defaults={"modality": outcome.modality or ""}
        )
        uid = outcome.sop_instance_uid
    else:
        uid = path.stem
    instance, _ = Instance.objects.get_or_create(
        dataset=dataset, uid=uid, defaults={"series": series, "upload": upload, "kind": outcome.kind}
    )
    for field in (instance.file, instance.preview):
        if field:
            field.delete(save=False)
    with path.open("rb") as handle:
        instance.file.save(f"datasets/{dataset.pk}/{outcome.output}", File(handle), save=False)
    try:
        preview = io.BytesIO()
        anonymizer.render_preview(path).save(preview, format="PNG")
    except Exception:
        # The anonymized image is kept; only its thumbnail is missing from the dataset page.
        logger.exception("no preview for instance %s of dataset %s", uid, dataset.pk)
    else:
        instance.preview.save(f"previews/{dataset.pk}/{uid}.png", ContentFile(preview.getvalue()), save=False)
    instance.save()


def _discard_original(upload):
    if upload.file:
        upload.file.delete(save=False)
        Upload.objects.filter(pk=upload.pk).update(file="")
