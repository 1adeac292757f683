"""Pulling studies from a hospital's DICOMweb server (QIDO-RS, WADO-RS) into a dataset.

The studies are fetched on the ``ingest`` queue into a .zip that becomes an ordinary upload,
so the anonymizer sees every file before anything is stored, exactly as for a .zip sent by hand.
Only the servers listed in MICA_DICOMWEB_SOURCES can be reached.
"""

import io
import json
import logging
import re
import tempfile
import zipfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import transaction
from requests import RequestException
from requests.exceptions import HTTPError

from mica.core.storage import private_storage
from mica.core.tasks import mica_task

from .models import DicomWebPull, Upload

logger = logging.getLogger(__name__)

UID_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)*$")
FILTER_KEYS = ("PatientID", "AccessionNumber", "StudyDate")


class PullError(Exception):
    """What went wrong, in words that quote no identifier."""


def request_pull(dataset, user, source, study_uids=(), filters=None):
    """Queues a pull of the listed studies, or of the studies matching `filters` (QIDO keys of
    FILTER_KEYS); ValueError names what is wrong with the request."""
    if source not in settings.MICA_DICOMWEB_SOURCES:
        raise ValueError("This server is not among the DICOMweb sources this site may pull from.")
    study_uids = [uid.strip() for uid in study_uids if uid.strip()]
    for position, uid in enumerate(study_uids, start=1):
        if len(uid) > 64 or not UID_PATTERN.match(uid):
            raise ValueError(f"Study {position}: not a DICOM UID (digits and dots, at most 64 characters).")
    filters = {key: value.strip() for key, value in (filters or {}).items() if value and value.strip()}
    unknown = set(filters) - set(FILTER_KEYS)
    if unknown:
        raise ValueError(f"Unknown filter {sorted(unknown)[0]!r}: use {', '.join(FILTER_KEYS)}.")
    if bool(study_uids) == bool(filters):
        raise ValueError("Give either Study Instance UIDs or filters, not both and not neither.")
    pull = DicomWebPull(dataset=dataset, requested_by=user, source=source)
    private_storage().save(pull.query_path, ContentFile(json.dumps({"study_uids": study_uids, "filters": filters})))
    try:
        with transaction.atomic():
            pull.save()
            pull.dispatch_on_commit()
    except BaseException:
        private_storage().delete(pull.query_path)
        raise
    return pull


@mica_task(queue="ingest")
def pull_studies(pull_pk):
    pull = DicomWebPull.objects.select_related("dataset").filter(pk=pull_pk).first()
    if pull is None or not pull.claim("Pulling the studies."):
        return  # ended, or held by a live lease of another worker
    try:
        with pull.lease_held(), tempfile.TemporaryDirectory(prefix="pull-", dir=_scratch_dir()) as folder:
            with private_storage().open(pull.query_path, "rb") as handle:
                query = json.load(handle)
            archive = Path(folder) / "pulled.zip"
            studies, instances = _fetch(pull, query, archive)
            with archive.open("rb") as handle:
                upload = Upload.receive(dataset=pull.dataset, user=pull.requested_by,
                                        uploaded_file=File(handle, name=f"pulled-{pull.uuid}.zip"))
    except PullError as error:
        pull.finish(DicomWebPull.Status.FAILED, str(error))
    except Exception:  # other errors' messages can quote the server's URL, a UID or a patient's data
        logger.exception("pull %s failed", pull.pk)
        pull.finish(DicomWebPull.Status.FAILED, "The pull failed unexpectedly; the site's log has the details.")
    else:
        pull.finish(DicomWebPull.Status.RECEIVED,
                  f"{instances} instance{'s' if instances != 1 else ''} of {studies} stud{'ies' if studies != 1 else 'y'} "
                  "received and sent to the anonymizer.", upload=upload, studies_total=studies,
                  instances_received=instances)
    finally:
        if pull.status != DicomWebPull.Status.PULLING:
            private_storage().delete(pull.query_path)


def _scratch_dir():
    path = Path(settings.VAR_DIR) / "scratch"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fetch(pull, query, archive):
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(url=pull.source)
    study_uids = query["study_uids"] or _search(client, query["filters"])
    instances = 0
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        for position, study_uid in enumerate(study_uids, start=1):
            try:
                for number, dataset in enumerate(client.iter_study(study_uid), start=1):
                    buffer = io.BytesIO()
                    dataset.save_as(buffer, enforce_file_format=True)
                    handle.writestr(f"study-{position}/{number}.dcm", buffer.getvalue())
                    instances += 1
            except HTTPError as error:
                raise PullError(f"Study {position} of {len(study_uids)}: the server answered "
                                f"{error.response.status_code}.") from None
            except RequestException:
                raise PullError("The DICOMweb server could not be reached.") from None
    if not instances:
        raise PullError("The server sent no instance for these studies.")
    return len(study_uids), instances


def _search(client, filters):
    try:
        found = client.search_for_studies(search_filters=filters)
    except HTTPError as error:
        raise PullError(f"The server refused the search ({error.response.status_code}).") from None
    except RequestException:
        raise PullError("The DICOMweb server could not be reached.") from None
    uids = [study["0020000D"]["Value"][0] for study in found if study.get("0020000D", {}).get("Value")]
    if not uids:
        raise PullError("No study on the server matches these filters.")
    return uids
