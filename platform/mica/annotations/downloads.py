"""The training cases of a split with their labels, as files for the participants' download archive
(built by mica.downloads): each file is yielded with its name in the archive and a way to open it,
so the archive streams and nothing is held in memory but one converted image at a time.

    labels.csv (or masks/<case_id>.png|.nii.gz)   the consensus, in the evaluator's truth format
    images/<case_id>/<image>.dcm                   image_format="dicom": the anonymized DICOM files
    images/<case_id>/<image>[_<frame>].png         image_format="png": curation.images.dicom_to_png

Only training cases whose label has a consensus (or a decision) are included; the test cases never.
"""

import io
import zipfile
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

from curation.images import dicom_to_png, png_to_dicom

from .models import SplitPart
from .truth import truth_file

IMAGE_FORMATS = ("dicom", "png")


@dataclass(frozen=True)
class DownloadFile:
    name: str  # the path inside the archive
    open: Callable[[], BinaryIO]  # a new binary file object each call; the caller closes it
    stored_name: str | None = None  # the file in private storage, when it goes into the archive as stored


def training_files(split, label, *, image_format="dicom", positive="") -> Iterator[DownloadFile]:
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {', '.join(IMAGE_FORMATS)}, got {image_format!r}")
    project = split.project
    labels, written = truth_file(project, label, split.case_ids(SplitPart.TRAIN), positive=positive,
                                 require_all=False)
    content = labels.read()
    if labels.name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            for entry in archive.namelist():
                yield DownloadFile(f"masks/{entry}", _bytes_opener(archive.read(entry)))
    else:
        yield DownloadFile("labels.csv", _bytes_opener(content))
    cases = project.dataset.cases.filter(case_id__in=written).order_by("case_id")
    for case in cases:
        for instance in case.instances.select_related("series__study"):
            yield from image_files(case, instance, image_format)


def image_files(case, instance, image_format):
    """One stored image of a case as the files of a download in ``image_format``: the stored
    file itself, or its conversion (each frame of a DICOM as a PNG; a PNG as a DICOM)."""
    folder = f"images/{case.case_id}"
    if instance.kind == "dicom":
        if image_format == "dicom":
            yield DownloadFile(f"{folder}/{instance.uid}.dcm", instance.file.open, instance.file.name)
            return
        import pydicom

        with instance.file.open("rb") as handle:
            frames = int(pydicom.dcmread(handle, stop_before_pixels=True, specific_tags=["NumberOfFrames"])
                         .get("NumberOfFrames") or 1)
        for frame in range(1, frames + 1):
            name = f"{folder}/{instance.uid}{f'_{frame}' if frames > 1 else ''}.png"
            yield DownloadFile(name, _converted(instance, lambda handle, frame=frame: dicom_to_png(handle, frame=frame)))
        return
    # A PNG or JPEG upload (its uid is its anonymized file name). A JPEG stays as uploaded in both formats.
    if image_format == "png" or instance.kind == "jpeg":
        suffix = ".png" if instance.kind == "png" else ".jpg"
        yield DownloadFile(f"{folder}/{instance.uid}{suffix}", instance.file.open, instance.file.name)
    else:
        yield DownloadFile(f"{folder}/{instance.uid}.dcm", _converted(
            instance, lambda handle: png_to_dicom(handle, patient_id=case.patient_pseudonym)))


def _bytes_opener(content):
    return lambda: io.BytesIO(content)


def _converted(instance, convert):
    def opener():
        with instance.file.open("rb") as handle:
            return io.BytesIO(convert(handle))
    return opener
