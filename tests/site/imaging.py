"""Ingested imaging datasets for the DICOMweb and annotation tests (synthetic studies with planted PHI)."""

import io
import zipfile

import numpy as np
import pydicom
from django.core.files.uploadedfile import SimpleUploadedFile

import anonymizer.synthetic
from mica.datasets.models import Dataset, Upload
from mica.datasets.tasks import ingest_upload

PATIENT_NAME = "Doe^Johnathan"
PATIENT_ID = "MRN-99812"
CT_SLICES = 3
MULTIFRAME_FRAMES = 4


def write_multiframe(path, source):
    """A multi-frame image made of frames that differ, from one synthetic CT slice."""
    dataset = pydicom.dcmread(source)
    frame = dataset.pixel_array
    frames = np.stack([np.roll(frame, 7 * index, axis=1) for index in range(MULTIFRAME_FRAMES)])
    dataset.NumberOfFrames = MULTIFRAME_FRAMES
    dataset.PixelData = frames.astype(frame.dtype).tobytes()
    dataset.SOPInstanceUID = anonymizer.synthetic.uid_from("multiframe", str(path))
    dataset.SeriesInstanceUID = anonymizer.synthetic.uid_from("multiframe-series", str(path))
    dataset.save_as(path, enforce_file_format=True)
    return path


def studies_zip(tmp_path):
    """Two radiographs (one MONOCHROME1), a CT series of CT_SLICES slices and a multi-frame image,
    of three patients; file names inside the zip name the patients (as hospitals' exports do)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index, photometric in enumerate(["MONOCHROME2", "MONOCHROME1"]):
            path = anonymizer.synthetic.write_radiograph(
                tmp_path / f"cr{index}.dcm", patient_name=f"{PATIENT_NAME}{index}", patient_id=f"{PATIENT_ID}{index}",
                rows=256, columns=200, photometric=photometric, seed=index,
            )
            archive.write(path, f"{PATIENT_NAME}{index}/chest.dcm")
        ct_folder = tmp_path / "ct"
        ct_folder.mkdir()
        slices = anonymizer.synthetic.write_ct_series(
            ct_folder, n_slices=CT_SLICES, size=64, patient_name=f"{PATIENT_NAME}2", patient_id=f"{PATIENT_ID}2"
        )
        for index, path in enumerate(slices):
            archive.write(path, f"{PATIENT_NAME}2/ct/{index}.dcm")
        archive.write(write_multiframe(tmp_path / "multiframe.dcm", slices[0]), f"{PATIENT_NAME}2/cine.dcm")
    return SimpleUploadedFile("studies.zip", buffer.getvalue(), content_type="application/zip")


def ingested_dataset(challenge, organizer, tmp_path, name="Chest and CT", case_level="instance"):
    dataset = Dataset.objects.create(challenge=challenge, name=name, created_by=organizer, case_level=case_level)
    upload = Upload.receive(dataset=dataset, user=organizer, uploaded_file=studies_zip(tmp_path))
    ingest_upload(upload.pk)  # the worker's step, run here (test_worker.py runs real workers)
    upload.refresh_from_db()
    assert upload.status == Upload.Status.PROCESSED, upload.status_reason
    return dataset
