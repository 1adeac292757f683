"""Realistic synthetic DICOM with protected health information planted everywhere.

Used by the tests (the leak test greps the output for every planted value), the benchmark
and the site's demo data. Nothing here is real: names, IDs and dates are invented, pixels
are a simple chest phantom. `planted_values(...)` lists the identifying strings a series
carries, so a test can check that none of them survives.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    UltrasoundImageStorage,
)

__all__ = ["write_ct_series", "write_radiograph", "write_ultrasound", "planted_values", "uid_from"]

# Private creator and elements planted by the generator: identifying text in private tags.
PRIVATE_CREATOR = "ACME HOSPITAL PRIVATE"
SAFE_PRIVATE_CREATOR = "SIEMENS MR HEADER"


def uid_from(*parts: str) -> str:
    """A deterministic fake 'hospital' UID (1.2.826.0.1.3680043.10.xxx root), per input."""
    digest = int(hashlib.sha256("/".join(parts).encode()).hexdigest()[:24], 16)
    return f"1.2.826.0.1.3680043.10.543.{digest}"


def planted_values(patient_name: str, patient_id: str, *, extra: dict | None = None) -> dict[str, str]:
    """Every identifying value the generator writes for this patient (label -> value)."""
    values = {
        "patient name": patient_name,
        "patient id": patient_id,
        "other patient id": f"OTH-{patient_id}",
        "accession number": f"ACC{patient_id[-4:]}77",
        "birth date": "19561103",
        "study date": "20210314",
        "referring physician": "HOUSE^GREGORY",
        "performing physician": "CAMERON^ALLISON",
        "operator": "CHASE^ROBERT",
        "reading physician": "FOREMAN^ERIC",
        "institution": "Princeton Plainsboro Teaching Hospital",
        "institution address": "221B Baker Street, Plainsboro NJ",
        "department": "Diagnostic Medicine Dept 4",
        "station name": "PPTH-CT-07",
        "device serial": "SN-99887766",
        "patient address": "42 Wallaby Way, Sydney",
        "patient phone": "+1-555-0100-999",
        "mother birth name": "MOTHERSMAIDEN",
        "study comments": "Follow-up for Mrs Nightingale nodule",
        "image comments": "Called Dr Zoidberg re findings",
        "request physician": "WILSON^JAMES",
        "requested procedure": "REQPROC-5512",
        "private text": "PRIVATE-NOTE-Nightingale",
        "medical record": "MRN-31415926",
        "admission id": "ADM-271828",
        "study id": "STUDY-8842",
    }
    values.update(extra or {})
    return values


def _phantom(size: int, slice_index: int, n_slices: int) -> np.ndarray:
    """A chest-like CT slice in stored values (HU + 1024), int16."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    centre = size / 2
    body = ((x - centre) / (0.42 * size)) ** 2 + ((y - centre) / (0.32 * size)) ** 2 <= 1
    lung_l = ((x - 0.36 * size) / (0.11 * size)) ** 2 + ((y - centre) / (0.2 * size)) ** 2 <= 1
    lung_r = ((x - 0.64 * size) / (0.11 * size)) ** 2 + ((y - centre) / (0.2 * size)) ** 2 <= 1
    image = np.full((size, size), -1000, dtype=np.int16)
    image[body] = 40
    image[lung_l | lung_r] = -850
    phase = slice_index / max(1, n_slices - 1)
    nodule = ((x - 0.62 * size) ** 2 + (y - (0.4 + 0.2 * phase) * size) ** 2) <= (0.02 * size) ** 2
    image[nodule] = 60
    spine = ((x - centre) ** 2 + (y - 0.75 * size) ** 2) <= (0.05 * size) ** 2
    image[spine] = 700
    return (image + 1024).astype(np.int16)


def _base_dataset(sop_class: str, *, patient_name: str, patient_id: str, study_uid: str,
                  series_uid: str, sop_uid: str, modality: str, charset: str,
                  plant_phi: bool) -> Dataset:
    values = planted_values(patient_name, patient_id)
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = values["study date"]
    ds.SeriesDate = values["study date"]
    ds.AcquisitionDate = values["study date"]
    ds.ContentDate = values["study date"]
    ds.StudyTime = "101530"
    ds.SeriesTime = "101531"
    ds.AcquisitionTime = "101532.123"
    ds.ContentTime = "101533"
    ds.AccessionNumber = values["accession number"]
    ds.Modality = modality
    ds.Manufacturer = "MICA SYNTHETIC"
    ds.ManufacturerModelName = "PHANTOM-1"
    ds.StudyID = values["study id"]
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = values["birth date"]
    ds.PatientSex = "F"
    ds.PatientAge = "064Y"
    ds.PatientSize = 1.68
    ds.PatientWeight = 61.5
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 3
    if not plant_phi:
        ds.ReferringPhysicianName = ""
        return ds
    ds.InstanceCreationDate = values["study date"]
    ds.InstanceCreationTime = "101534"
    ds.InstitutionName = values["institution"]
    ds.InstitutionAddress = values["institution address"]
    ds.InstitutionalDepartmentName = values["department"]
    ds.StationName = values["station name"]
    ds.DeviceSerialNumber = values["device serial"]
    ds.ReferringPhysicianName = values["referring physician"]
    ds.PerformingPhysicianName = values["performing physician"]
    ds.OperatorsName = values["operator"]
    ds.NameOfPhysiciansReadingStudy = values["reading physician"]
    ds.StudyDescription = f"CT CHEST {patient_name}"
    ds.SeriesDescription = f"Lung 1mm {patient_id}"
    ds.ProtocolName = "Chest routine for " + values["study comments"]
    ds.OtherPatientIDs = values["other patient id"]
    ds.PatientBirthTime = "071500"
    ds.PatientAddress = values["patient address"]
    ds.PatientTelephoneNumbers = values["patient phone"]
    ds.PatientMotherBirthName = values["mother birth name"]
    ds.MedicalRecordLocator = values["medical record"]
    ds.AdmissionID = values["admission id"]
    ds.StudyComments = values["study comments"]
    ds.ImageComments = values["image comments"]
    ds.AdditionalPatientHistory = f"Patient {patient_name} has history"
    ds.RequestingPhysician = values["request physician"]
    ds.RequestedProcedureID = values["requested procedure"]
    ds.FrameOfReferenceUID = uid_from(study_uid, "frame of reference")
    ds.TimezoneOffsetFromUTC = "-0500"

    # Nested sequences that carry identities.
    request = Dataset()
    request.RequestedProcedureID = values["requested procedure"]
    request.ScheduledProcedureStepID = "SPS-" + patient_id
    request.AccessionNumber = values["accession number"]
    request.RequestingPhysician = values["request physician"]
    ds.RequestAttributesSequence = Sequence([request])
    referenced_patient = Dataset()
    referenced_patient.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.1.1"
    referenced_patient.ReferencedSOPInstanceUID = uid_from(patient_id, "patient")
    ds.ReferencedPatientSequence = Sequence([referenced_patient])
    other_ids = Dataset()
    other_ids.PatientID = values["other patient id"]
    other_ids.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other_ids])
    physician_id = Dataset()
    physician_id.PersonIdentificationCodeSequence = Sequence()
    physician_id.InstitutionName = values["institution"]
    ds.ReferringPhysicianIdentificationSequence = Sequence([physician_id])
    procedure = Dataset()
    procedure.CodeValue = "CT123"
    procedure.CodingSchemeDesignator = "99ACME"
    procedure.CodeMeaning = "CT chest"
    ds.ProcedureCodeSequence = Sequence([procedure])
    ds.ReferencedStudySequence = Sequence([_reference("1.2.840.10008.3.1.2.3.1", study_uid)])
    # A deeper nest: a code item inside an item of an unlisted sequence, holding a PN.
    anatomic = Dataset()
    anatomic.CodeValue = "T-D3000"
    anatomic.CodingSchemeDesignator = "SRT"
    anatomic.CodeMeaning = "Chest"
    deeper = Dataset()
    deeper.VerifyingObserverName = values["reading physician"]
    deeper.ContentCreatorName = values["operator"]
    anatomic.ContentSequence = Sequence([deeper])
    ds.AnatomicRegionSequence = Sequence([anatomic])
    return ds


def _reference(sop_class: str, sop_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_uid
    return item


def _add_private(ds: Dataset, patient_name: str, patient_id: str) -> None:
    block = ds.private_block(0x0011, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", planted_values(patient_name, patient_id)["private text"])
    block.add_new(0x02, "PN", patient_name)
    block.add_new(0x03, "UN", ("Scanned " + patient_id).encode("ascii") + b"\0")
    nested = Dataset()
    nested.add_new(0x00100010, "PN", patient_name)
    nested_block = nested.private_block(0x0013, PRIVATE_CREATOR, create=True)
    nested_block.add_new(0x01, "LO", "NESTED-" + patient_id)
    block.add_new(0x04, "SQ", Sequence([nested]))
    safe = ds.private_block(0x0019, SAFE_PRIVATE_CREATOR, create=True)
    safe.add_new(0x0C, "IS", "1000")  # B_value, on the safe list


def _file_meta(ds: Dataset) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    meta.SourceApplicationEntityTitle = "PPTH_PACS"
    return meta


def write_ct_series(
    folder,
    *,
    n_slices: int,
    patient_name: str = "NIGHTINGALE^FLORENCE",
    patient_id: str = "PID-000001",
    size: int = 512,
    study_uid: str | None = None,
    series_uid: str | None = None,
    private_tags: bool = True,
    plant_phi: bool = True,
    per_frame_groups: bool = False,
    charset: str = "ISO_IR 192",
    file_names: str = "{patient_name}_{index:04d}.dcm",
    pixel_spacing: tuple[float, float] = (0.7, 0.7),
    slice_thickness: float = 1.0,
) -> list[Path]:
    """Write a CT series (16-bit signed, 512x512 by default) and return the file paths.

    With plant_phi (the default), identifying values from `planted_values` go into the
    patient, study and equipment modules, comments, nested sequences, private tags and the
    file names (`file_names` is a format string with patient_name, patient_id and index).
    `per_frame_groups` adds a Per-frame Functional Groups Sequence with identifying items.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or uid_from(patient_id, "study")
    series_uid = series_uid or uid_from(study_uid, "series", str(size))
    paths = []
    cached_pixels: dict[int, bytes] = {}
    for index in range(n_slices):
        sop_uid = uid_from(series_uid, str(index))
        ds = _base_dataset(CTImageStorage, patient_name=patient_name, patient_id=patient_id,
                           study_uid=study_uid, series_uid=series_uid, sop_uid=sop_uid,
                           modality="CT", charset=charset, plant_phi=plant_phi)
        ds.InstanceNumber = index + 1
        ds.SliceThickness = slice_thickness
        ds.KVP = 120
        ds.ImagePositionPatient = [-0.5 * size * pixel_spacing[1], -0.5 * size * pixel_spacing[0],
                                   -index * slice_thickness]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = -index * slice_thickness
        ds.PixelSpacing = list(pixel_spacing)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = size
        ds.Columns = size
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.WindowCenter = [-600, 40]
        ds.WindowWidth = [1500, 400]
        if plant_phi and index > 0:
            ds.SourceImageSequence = Sequence([_reference(CTImageStorage, uid_from(series_uid, str(index - 1)))])
            ds.ReferencedImageSequence = Sequence([_reference(CTImageStorage, uid_from(series_uid, "0"))])
        if per_frame_groups and plant_phi:
            frame = Dataset()
            content = Dataset()
            content.FrameAcquisitionDateTime = "20210314101532"
            content.FrameComments = "frame of " + patient_name
            frame.FrameContentSequence = Sequence([content])
            derivation = Dataset()
            derivation.DerivationDescription = "derived for " + patient_id
            derivation.SourceImageSequence = Sequence([_reference(CTImageStorage, sop_uid)])
            frame.DerivationImageSequence = Sequence([derivation])
            ds.PerFrameFunctionalGroupsSequence = Sequence([frame])
        if private_tags and plant_phi:
            _add_private(ds, patient_name, patient_id)
        # Only a few distinct phantoms: generating 2,000 slices must stay quick.
        bucket = index * 8 // max(1, n_slices)
        if bucket not in cached_pixels:
            cached_pixels[bucket] = _phantom(size, bucket, 8).tobytes()
        ds.PixelData = cached_pixels[bucket]
        ds.file_meta = _file_meta(ds)
        name = file_names.format(patient_name=patient_name.replace("^", "_"), patient_id=patient_id, index=index)
        path = folder / name
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_radiograph(
    path,
    *,
    patient_name: str = "NIGHTINGALE^FLORENCE",
    patient_id: str = "PID-000001",
    modality: str = "DX",
    rows: int = 1024,
    columns: int = 1024,
    photometric: str = "MONOCHROME2",
    study_uid: str | None = None,
    plant_phi: bool = True,
    seed: int = 0,
) -> Path:
    """Write a chest radiograph (DX or CR, 16-bit unsigned, 12 bits stored) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or uid_from(patient_id, "radiograph study", str(seed))
    series_uid = uid_from(study_uid, "series")
    ds = _base_dataset(DigitalXRayImageStorageForPresentation, patient_name=patient_name,
                       patient_id=patient_id, study_uid=study_uid, series_uid=series_uid,
                       sop_uid=uid_from(series_uid, "0"), modality=modality,
                       charset="ISO_IR 192", plant_phi=plant_phi)
    if modality == "CR":
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BurnedInAnnotation = "NO"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ViewPosition = "PA"
    ds.BodyPartExamined = "CHEST"
    ds.InstanceNumber = 1
    ds.ImagerPixelSpacing = [0.143, 0.143]
    ds.PixelSpacing = [0.143, 0.143]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = 2048
    ds.WindowWidth = 4096
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float32)
    lungs = (((x - 0.33 * columns) / (0.15 * columns)) ** 2 + ((y - 0.5 * rows) / (0.3 * rows)) ** 2 <= 1) | (
        ((x - 0.67 * columns) / (0.15 * columns)) ** 2 + ((y - 0.5 * rows) / (0.3 * rows)) ** 2 <= 1
    )
    image = np.full((rows, columns), 2600.0)
    image[lungs] = 900.0
    image += rng.normal(0, 40, size=image.shape)
    if photometric == "MONOCHROME1":
        image = 4095 - image
    ds.PixelData = np.clip(image, 0, 4095).astype(np.uint16).tobytes()
    ds.file_meta = _file_meta(ds)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_ultrasound(
    path,
    *,
    patient_name: str = "NIGHTINGALE^FLORENCE",
    patient_id: str = "PID-000001",
    burned_in_text: str | None = None,
    manufacturer: str = "MICA SYNTHETIC",
    model: str = "SONO-1",
    rows: int = 480,
    columns: int = 640,
) -> Path:
    """Write an 8-bit ultrasound image with the patient's name burned into a top banner.

    The banner (the first 48 rows) matches the built-in rule for this manufacturer and model.
    """
    from PIL import Image, ImageDraw, ImageFont

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    study_uid = uid_from(patient_id, "ultrasound")
    series_uid = uid_from(study_uid, "series")
    ds = _base_dataset(UltrasoundImageStorage, patient_name=patient_name, patient_id=patient_id,
                       study_uid=study_uid, series_uid=series_uid, sop_uid=uid_from(series_uid, "0"),
                       modality="US", charset="ISO_IR 192", plant_phi=True)
    ds.Manufacturer = manufacturer
    ds.ManufacturerModelName = model
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    canvas = Image.new("L", (columns, rows), 0)
    draw = ImageDraw.Draw(canvas)
    draw.pieslice([columns * 0.1, -rows * 0.4, columns * 0.9, rows * 0.95], 60, 120, fill=90)
    text = burned_in_text if burned_in_text is not None else f"{patient_name}  {patient_id}  2021-03-14"
    try:
        font = ImageFont.load_default(size=28)
    except TypeError:  # Pillow < 10.1 has no sized default font
        font = ImageFont.load_default()
    draw.text((8, 8), text, fill=255, font=font)
    ds.PixelData = np.asarray(canvas, dtype=np.uint8).tobytes()
    ds.file_meta = _file_meta(ds)
    ds.save_as(path, enforce_file_format=True)
    return path
