"""DICOMweb (PS3.18) for one dataset: QIDO-RS search and WADO-RS retrieve of its anonymized files.

Base URL: ``/datasets/<pk>/dicomweb/``. Whoever may view the dataset may use it (organizers,
participants once it is opened to them, readers of its annotation projects), by session or
``Authorization: Token``. A UID of another dataset is answered 404, as an unknown one.
Only DICOM instances are served (PNG/JPEG images have no study or series).
"""

import fnmatch
import io
import re
import secrets
from functools import wraps

import numpy as np
import pydicom
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRLittleEndian
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500

from anonymizer.preview import dataset_preview

from .models import Dataset, Instance, Series, Study

STUDY_TAGS = ["SpecificCharacterSet", "StudyDate", "StudyTime", "AccessionNumber", "ReferringPhysicianName",
              "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID",
              "StudyDescription"]
SERIES_TAGS = ["Modality", "SeriesDescription", "SeriesInstanceUID", "SeriesNumber", "StudyInstanceUID"]
INSTANCE_TAGS = ["SOPClassUID", "SOPInstanceUID", "InstanceNumber", "Rows", "Columns", "BitsAllocated",
                 "NumberOfFrames", "StudyInstanceUID", "SeriesInstanceUID"]
# Computed at each level, not read from a file.
COUNT_TAGS = {
    "study": ["ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"],
    "series": ["NumberOfSeriesRelatedInstances"],
    "instance": [],
}
PAGING_KEYS = {"limit", "offset", "includefield", "fuzzymatching"}
MAX_RESULTS = 10000


class DicomWebError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _authenticated_user(request):
    """The session's user, or the user of an ``Authorization: Token`` header (as the REST API)."""
    if request.user.is_authenticated:
        return request.user
    try:
        result = TokenAuthentication().authenticate(request)
    except AuthenticationFailed as error:
        raise DicomWebError(401, str(error.detail)) from None
    return result[0] if result else request.user


def dicomweb_view(view):
    # Read-only and token-authenticated: a POST is answered 405, not refused for its CSRF cookie.
    @csrf_exempt
    @wraps(view)
    def wrapper(request, pk, **uids):
        if request.method not in ("GET", "HEAD"):
            return JsonResponse({"error": "DICOMweb here is read-only (GET)."}, status=405)
        try:
            user = _authenticated_user(request)
            if not user.is_authenticated:
                raise DicomWebError(401, "Log in, or send Authorization: Token <your API token>.")
            dataset = get_object_or_404(Dataset.objects.select_related("challenge"), pk=pk)
            if not dataset.can_be_viewed_by(user):
                raise DicomWebError(403, "This dataset is not open to you.")
            response = view(request, dataset, **uids)
        except DicomWebError as error:
            response = JsonResponse({"error": str(error)}, status=error.status)
            if error.status == 401:
                response["WWW-Authenticate"] = 'Token realm="mica"'
        response["Cache-Control"] = "private, no-store"
        return response

    return wrapper


# ---- finding the stored objects -------------------------------------------------------------

def _studies(dataset):
    return Study.objects.filter(dataset=dataset)


def _study(dataset, study_uid):
    study = _studies(dataset).filter(study_uid=study_uid).first()
    if study is None:
        raise DicomWebError(404, "No such study in this dataset.")
    return study


def _series(dataset, study_uid, series_uid):
    series = Series.objects.filter(study__dataset=dataset, study__study_uid=study_uid, series_uid=series_uid).first()
    if series is None:
        raise DicomWebError(404, "No such series in this dataset.")
    return series


def _instances(dataset, study_uid=None, series_uid=None):
    instances = Instance.objects.filter(dataset=dataset, kind="dicom").select_related("series__study")
    if study_uid:
        instances = instances.filter(series__study__study_uid=study_uid)
    if series_uid:
        instances = instances.filter(series__series_uid=series_uid)
    return instances.order_by("series__study__study_uid", "series__series_uid", "uid")


def _instance(dataset, study_uid, series_uid, sop_uid):
    instance = _instances(dataset, study_uid, series_uid).filter(uid=sop_uid).first()
    if instance is None:
        raise DicomWebError(404, "No such instance in this dataset.")
    return instance


def _read(instance, pixels=False):
    with instance.file.open("rb") as handle:
        return pydicom.dcmread(handle, stop_before_pixels=not pixels, force=True)


# ---- QIDO-RS ------------------------------------------------------------------------------------

def _element_json(keyword, value):
    tag = tag_for_keyword(keyword)
    vr = dictionary_VR(tag)
    if value in (None, "", []):
        return f"{tag:08X}", {"vr": vr}
    values = list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
    if vr == "PN":
        values = [{"Alphabetic": str(item)} for item in values]
    elif vr in ("IS", "US", "UL", "SS", "SL"):
        values = [int(item) for item in values]
    elif vr in ("DS", "FL", "FD"):
        values = [float(item) for item in values]
    else:
        values = [str(item) for item in values]
    return f"{tag:08X}", {"vr": vr, "Value": values}


def _record(header, keywords, computed):
    record = {}
    for keyword in keywords:
        value = computed[keyword] if keyword in computed else header.get(keyword)
        tag, element = _element_json(keyword, value)
        record[tag] = element
    return record


def _parse_query(request, level):
    """The matching keys (keyword → value) of a QIDO request, or 400 naming a bad key."""
    matches, include_all, extra = {}, False, []
    for key, value in request.GET.items():
        if key in PAGING_KEYS:
            if key == "includefield":
                for field in re.split(r"[,\s]+", ",".join(request.GET.getlist(key))):
                    if field == "all":
                        include_all = True
                    elif field:
                        extra.append(_keyword(field, "includefield"))
            continue
        matches[_keyword(key, "query key")] = value
    try:
        limit = min(int(request.GET.get("limit", MAX_RESULTS)), MAX_RESULTS)
        offset = int(request.GET.get("offset", 0))
    except ValueError:
        raise DicomWebError(400, "limit and offset must be whole numbers.") from None
    if limit < 0 or offset < 0:
        raise DicomWebError(400, "limit and offset must not be negative.")
    return matches, include_all, extra, limit, offset


def _keyword(key, what):
    if re.fullmatch(r"[0-9A-Fa-f]{8}", key):
        keyword = keyword_for_tag(int(key, 16))
    else:
        keyword = key if tag_for_keyword(key) is not None else ""
    if not keyword:
        raise DicomWebError(400, f"Unknown {what} {key[:64]!r}: give a DICOM keyword or an 8-digit tag.")
    return keyword


def _matches(record, matches):
    for keyword, wanted in matches.items():
        element = record.get(f"{tag_for_keyword(keyword):08X}")
        if element is None:
            return False
        values = element.get("Value", [])
        values = [item["Alphabetic"] if isinstance(item, dict) else str(item) for item in values]
        vr = element["vr"]
        if vr == "UI":
            if not set(re.split(r"[\\,]", wanted)) & set(values):
                return False
        elif vr in ("DA", "TM", "DT") and "-" in wanted:
            low, _, high = wanted.partition("-")
            if not any((not low or value >= low) and (not high or value <= high) for value in values):
                return False
        elif not any(fnmatch.fnmatchcase(value.upper(), wanted.upper()) for value in values):
            return False
    return True


def _search(request, dataset, level, candidates):
    """candidates: (header, computed attributes) per result; filtered, paged, as DICOM JSON."""
    matches, include_all, extra, limit, offset = _parse_query(request, level)
    keywords = {"study": STUDY_TAGS, "series": SERIES_TAGS, "instance": [*INSTANCE_TAGS, "Modality"]}[level]
    keywords = keywords + COUNT_TAGS[level]
    results = []
    for header, computed in candidates:
        wanted = keywords + [keyword for keyword in {*extra, *matches} if keyword not in keywords]
        record = _record(header, wanted, computed)
        if not _matches(record, matches):
            continue
        if include_all:
            full = header.to_json_dict(bulk_data_threshold=1 << 20)
            record = {**{tag: element for tag, element in full.items() if not tag.startswith("7FE0")}, **record}
        results.append(record)
    page = results[offset : offset + limit]
    if not page:
        return HttpResponse(status=204)
    return JsonResponse(page, safe=False, content_type="application/dicom+json")


def _study_candidates(dataset, study_uid=None):
    studies = _studies(dataset).order_by("study_uid")
    if study_uid:
        studies = studies.filter(study_uid=study_uid)
    for study in studies:
        instances = _instances(dataset, study.study_uid)
        first = instances.first()
        if first is None:
            continue
        modalities = sorted(set(instances.values_list("series__modality", flat=True)) - {""})
        yield _read(first), {
            "ModalitiesInStudy": modalities,
            "NumberOfStudyRelatedSeries": study.series.count(),
            "NumberOfStudyRelatedInstances": instances.count(),
        }


def _series_candidates(dataset, study_uid=None):
    series_rows = Series.objects.filter(study__dataset=dataset).select_related("study").order_by(
        "study__study_uid", "series_uid")
    if study_uid:
        series_rows = series_rows.filter(study__study_uid=study_uid)
    for series in series_rows:
        first = _instances(dataset, series.study.study_uid, series.series_uid).first()
        if first is not None:
            yield _read(first), {"NumberOfSeriesRelatedInstances": series.instances.count()}


def _instance_candidates(dataset, study_uid=None, series_uid=None):
    for instance in _instances(dataset, study_uid, series_uid):
        yield _read(instance), {}


@dicomweb_view
def search_studies(request, dataset):
    return _search(request, dataset, "study", _study_candidates(dataset))


@dicomweb_view
def search_series(request, dataset, study_uid=None):
    if study_uid:
        _study(dataset, study_uid)
    return _search(request, dataset, "series", _series_candidates(dataset, study_uid))


@dicomweb_view
def search_instances(request, dataset, study_uid=None, series_uid=None):
    if series_uid:
        _series(dataset, study_uid, series_uid)
    elif study_uid:
        _study(dataset, study_uid)
    return _search(request, dataset, "instance", _instance_candidates(dataset, study_uid, series_uid))


# ---- WADO-RS ------------------------------------------------------------------------------------

def _multipart(parts, part_type, extra_parameters=""):
    """A multipart/related response of (content type, bytes) parts."""
    boundary = secrets.token_hex(16)
    body = io.BytesIO()
    for content_type, content in parts:
        body.write(f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode())
        body.write(content)
        body.write(b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    header = f'multipart/related; type="{part_type}"{extra_parameters}; boundary={boundary}'
    return HttpResponse(body.getvalue(), content_type=header)


def _retrieve(instances):
    instances = list(instances)
    if not instances:
        raise DicomWebError(404, "Nothing to retrieve.")
    parts = []
    for instance in instances:
        with instance.file.open("rb") as handle:
            parts.append(("application/dicom", handle.read()))
    return _multipart(parts, "application/dicom")


def _metadata(instances):
    instances = list(instances)
    if not instances:
        raise DicomWebError(404, "Nothing to describe.")
    records = []
    for instance in instances:
        header = _read(instance)
        record = header.to_json_dict(bulk_data_threshold=1 << 20)
        # Pixel data is fetched by frame (…/frames/N); its URI tells clients where.
        record["7FE00010"] = {"vr": "OW", "BulkDataURI": f"{instance.uid}/frames/1"}
        records.append(record)
    return JsonResponse(records, safe=False, content_type="application/dicom+json")


@dicomweb_view
def retrieve_study(request, dataset, study_uid):
    _study(dataset, study_uid)
    return _retrieve(_instances(dataset, study_uid))


@dicomweb_view
def retrieve_series(request, dataset, study_uid, series_uid):
    _series(dataset, study_uid, series_uid)
    return _retrieve(_instances(dataset, study_uid, series_uid))


@dicomweb_view
def retrieve_instance(request, dataset, study_uid, series_uid, sop_uid):
    return _retrieve([_instance(dataset, study_uid, series_uid, sop_uid)])


@dicomweb_view
def study_metadata(request, dataset, study_uid):
    _study(dataset, study_uid)
    return _metadata(_instances(dataset, study_uid))


@dicomweb_view
def series_metadata(request, dataset, study_uid, series_uid):
    _series(dataset, study_uid, series_uid)
    return _metadata(_instances(dataset, study_uid, series_uid))


@dicomweb_view
def instance_metadata(request, dataset, study_uid, series_uid, sop_uid):
    return _metadata([_instance(dataset, study_uid, series_uid, sop_uid)])


def _frame_numbers(text, n_frames):
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        raise DicomWebError(400, "Frame numbers are whole numbers separated by commas, from 1.") from None
    for number in numbers:
        if not 1 <= number <= n_frames:
            raise DicomWebError(404, f"Frame {number} does not exist: this instance has {n_frames} frame(s).")
    return numbers


def frame_bytes(header, numbers):
    """The stored bytes of each frame: raw pixels, or the encapsulated (compressed) fragment."""
    n_frames = int(header.get("NumberOfFrames", 1) or 1)
    transfer_syntax = header.file_meta.TransferSyntaxUID
    if transfer_syntax.is_compressed:
        frames = list(generate_frames(header.PixelData, number_of_frames=n_frames))
        return [frames[number - 1] for number in numbers]
    bits = int(header.BitsAllocated)
    frame_size = int(header.Rows) * int(header.Columns) * int(header.get("SamplesPerPixel", 1)) * bits // 8
    data = header.PixelData
    return [data[(number - 1) * frame_size : number * frame_size] for number in numbers]


@dicomweb_view
def retrieve_frames(request, dataset, study_uid, series_uid, sop_uid, frames):
    header = _read(_instance(dataset, study_uid, series_uid, sop_uid), pixels=True)
    if "PixelData" not in header:
        raise DicomWebError(404, "This instance has no pixel data.")
    numbers = _frame_numbers(frames, int(header.get("NumberOfFrames", 1) or 1))
    transfer_syntax = header.file_meta.TransferSyntaxUID
    if not transfer_syntax.is_compressed and not transfer_syntax.is_little_endian:
        raise DicomWebError(406, "Big-endian pixel data is not served by frame; retrieve the instance.")
    part_type = f"application/octet-stream; transfer-syntax={transfer_syntax}"
    parts = [(part_type, content) for content in frame_bytes(header, numbers)]
    return _multipart(parts, "application/octet-stream", f"; transfer-syntax={transfer_syntax}")


def _window(request):
    """The ``window=center,width[,linear]`` query parameter of a rendered request (PS3.18 8.3.5.1.4)."""
    text = request.GET.get("window")
    if not text:
        return None
    parts = text.split(",")
    try:
        center, width = float(parts[0]), float(parts[1])
    except (IndexError, ValueError):
        raise DicomWebError(400, "window must be center,width[,linear] with numbers.") from None
    if width <= 0 or (len(parts) > 2 and parts[2] != "linear"):
        raise DicomWebError(400, "window: the width must be positive and the function linear.")
    return center, width


def _rendered(header, frame_number, window=None):
    if window:
        header.WindowCenter, header.WindowWidth = window
    n_frames = int(header.get("NumberOfFrames", 1) or 1)
    (frame_number,) = _frame_numbers(str(frame_number), n_frames)
    if n_frames > 1:
        # The preview renders the first frame: give it a copy holding only the frame asked for.
        pixels = header.pixel_array[frame_number - 1]
        header.PixelData = np.ascontiguousarray(pixels).tobytes()
        header.NumberOfFrames = 1
        header.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    image = dataset_preview(header, max_size=max(int(header.Rows), int(header.Columns)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return HttpResponse(buffer.getvalue(), content_type="image/png")


@dicomweb_view
def rendered_instance(request, dataset, study_uid, series_uid, sop_uid):
    return _rendered(_read(_instance(dataset, study_uid, series_uid, sop_uid), pixels=True), 1, _window(request))


@dicomweb_view
def rendered_frame(request, dataset, study_uid, series_uid, sop_uid, frames):
    return _rendered(_read(_instance(dataset, study_uid, series_uid, sop_uid), pixels=True), frames,
                     _window(request))


_STUDY = "studies/<str:study_uid>"
_SERIES = f"{_STUDY}/series/<str:series_uid>"
_INSTANCE = f"{_SERIES}/instances/<str:sop_uid>"

urlpatterns = [
    path("studies", search_studies, name="dicomweb_studies"),
    path("series", search_series, name="dicomweb_series"),
    path("instances", search_instances, name="dicomweb_instances"),
    path(_STUDY, retrieve_study, name="dicomweb_study"),
    path(f"{_STUDY}/metadata", study_metadata),
    path(f"{_STUDY}/series", search_series),
    path(f"{_STUDY}/instances", search_instances),
    path(_SERIES, retrieve_series),
    path(f"{_SERIES}/metadata", series_metadata),
    path(f"{_SERIES}/instances", search_instances),
    path(_INSTANCE, retrieve_instance),
    path(f"{_INSTANCE}/metadata", instance_metadata),
    path(f"{_INSTANCE}/rendered", rendered_instance),
    path(f"{_INSTANCE}/frames/<str:frames>", retrieve_frames),
    path(f"{_INSTANCE}/frames/<str:frames>/rendered", rendered_frame),
]
